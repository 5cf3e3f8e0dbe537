/**
 * The accumulator contract every Weir aggregator keeps (Flink's AggregateFunction plus
 * serialisation): state is created empty, fed values, merged with other partial states in any
 * order, read, and serialised for checkpoints and stored sketches with the same code.
 */
export interface Aggregator<IN, ACC, OUT> {
  /** A fresh, empty accumulator. */
  create(): ACC;
  /** Adds one input; may mutate and return `acc`. */
  add(acc: ACC, value: IN): ACC;
  /** Merges `b` into `a`; may mutate and return `a`. Associative and commutative. */
  merge(a: ACC, b: ACC): ACC;
  /** Reads the result without consuming the accumulator. */
  result(acc: ACC): OUT;
  /** A compact, self-contained string form of `acc`. */
  serialize(acc: ACC): string;
  /** The inverse of `serialize`; throws a descriptive Error on malformed input. */
  deserialize(text: string): ACC;
}
