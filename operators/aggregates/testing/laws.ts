/**
 * Property-test laws every aggregator must keep, shared by the *.test.ts files of this folder
 * (test support only: nothing in the engine imports it). Each function returns a fast-check
 * property; a test wraps it in fc.assert. Results are compared with node:assert's deep strict
 * equality unless the test passes a looser check (for sketches with an error bound).
 */
import fc from 'fast-check';
import { deepStrictEqual } from 'node:assert/strict';
import type { Aggregator } from '../../aggregate.js';
import type { Sample } from '../../sample.js';
import { big } from '../../testing/exact.js';

export type Check<OUT> = (actual: OUT, expected: OUT, samples: readonly Sample[]) => void;

export const exactly: Check<unknown> = (actual, expected) => deepStrictEqual(actual, expected);

export function feed<ACC, OUT>(agg: Aggregator<Sample, ACC, OUT>, samples: readonly Sample[], acc = agg.create()): ACC {
  for (const s of samples) agg.add(acc, s);
  return acc;
}

// ---- generators -------------------------------------------------------------------------------

export const T0 = 1_700_000_000_000;

/** Dyadic k/8: sums of a few hundred are exact in any order. */
export const dyadic = fc.integer({ min: -(2 ** 20), max: 2 ** 20 }).map((k) => k / 8);
/** Finite doubles over many magnitudes, zeros and negatives included (-0 too). */
export const anyValue = fc.oneof(
  { weight: 3, arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true }) },
  { weight: 2, arbitrary: fc.tuple(fc.boolean(), fc.double({ min: -100, max: 100, noNaN: true })).map(([neg, e]) => (neg ? -1 : 1) * 10 ** e) },
  { weight: 2, arbitrary: fc.integer({ min: -1000, max: 1000 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -0, 1, -1, 0.1, 1e-300, -1e300, 2 ** 53, 5e-324) },
);
export const METRICS = ['hits', 'misses', 'clicks', 'views'] as const;
export const USERS = ['ann', 'bob', 'cy', 'dee', 'eve', 'fay', 'gus', 'hal'] as const;

export interface SampleShape {
  value?: fc.Arbitrary<number>;
  /** Event times are T0 + [0, tsSpan] ms (small spans make ties). */
  tsSpan?: number;
}

export const sample = ({ value = anyValue, tsSpan = 40 }: SampleShape = {}): fc.Arbitrary<Sample> =>
  fc
    .record({
      metric: fc.constantFrom(...METRICS),
      value,
      ts: fc.integer({ min: T0, max: T0 + tsSpan }),
      user: fc.option(fc.constantFrom(...USERS), { nil: undefined }),
      status: fc.option(fc.constantFrom('hit', 'miss', 'error'), { nil: undefined }),
    })
    .map(({ metric, value, ts, user, status }) => {
      const tags: Record<string, string> = {};
      if (user !== undefined) tags.user = user;
      if (status !== undefined) tags.status = status;
      return { metric, value, ts, tags };
    });

export const samples = (shape: SampleShape = {}, minLength = 0, maxLength = 150) =>
  fc.array(sample(shape), { minLength, maxLength, size: 'max' });

/** A stream, a split into k parts, and a random merge tree over the parts. */
export interface SplitCase {
  xs: Sample[];
  parts: Sample[][];
  /** Pairs picked while merging: pick % remaining chooses the two operands. */
  picks: number[];
  flips: boolean[];
  /** Which parts go through serialize/deserialize before merging. */
  roundTrips: boolean[];
}

export const splitCase = (stream: fc.Arbitrary<Sample[]>): fc.Arbitrary<SplitCase> =>
  fc.integer({ min: 1, max: 6 }).chain((k) =>
    fc.record({
      xs: stream,
      assign: fc.array(fc.nat({ max: k - 1 }), { minLength: 400, maxLength: 400 }),
      picks: fc.array(fc.nat(), { minLength: 2 * k, maxLength: 2 * k }),
      flips: fc.array(fc.boolean(), { minLength: k, maxLength: k }),
      roundTrips: fc.array(fc.boolean(), { minLength: k, maxLength: k }),
      k: fc.constant(k),
    }).map(({ xs, assign, picks, flips, roundTrips, k }) => {
      const parts: Sample[][] = Array.from({ length: k }, () => []);
      xs.forEach((x, i) => parts[assign[i % assign.length]].push(x));
      return { xs, parts, picks, flips, roundTrips };
    }),
  );

/** Feeds each part and merges them along the case's random tree. */
export function mergeTree<ACC, OUT>(agg: Aggregator<Sample, ACC, OUT>, c: SplitCase): ACC {
  const accs = c.parts.map((p, i) => {
    const acc = feed(agg, p);
    return c.roundTrips[i] ? agg.deserialize(agg.serialize(acc)) : acc;
  });
  let step = 0;
  while (accs.length > 1) {
    const i = c.picks[step % c.picks.length] % accs.length;
    const [a] = accs.splice(i, 1);
    const j = c.picks[(step + 1) % c.picks.length] % accs.length;
    const [b] = accs.splice(j, 1);
    accs.push(c.flips[step % c.flips.length] ? agg.merge(a, b) : agg.merge(b, a));
    step += 2;
  }
  return accs[0];
}

// ---- laws -------------------------------------------------------------------------------------

/** One pass over the stream gives the oracle's answer (within `check`). */
export function agreesWithOracle<ACC, OUT>(
  agg: Aggregator<Sample, ACC, OUT>,
  stream: fc.Arbitrary<Sample[]>,
  oracle: (xs: readonly Sample[]) => OUT,
  check: Check<OUT> = exactly,
) {
  return fc.property(stream, (xs) => {
    check(agg.result(feed(agg, xs)), oracle(xs), xs);
  });
}

/** Merging a random split along a random tree gives the single-pass answer (within `check`). */
export function mergesLikeOnePass<ACC, OUT>(agg: Aggregator<Sample, ACC, OUT>, stream: fc.Arbitrary<Sample[]>, check: Check<OUT> = exactly) {
  return fc.property(splitCase(stream), (c) => {
    check(agg.result(mergeTree(agg, c)), agg.result(feed(agg, c.xs)), c.xs);
  });
}

/** merge(a, b) leaves b's result and serialised state as they were. */
export function mergeLeavesOther<ACC, OUT>(agg: Aggregator<Sample, ACC, OUT>, stream: fc.Arbitrary<Sample[]>) {
  return fc.property(stream, stream, (xs, ys) => {
    const a = feed(agg, xs);
    const b = feed(agg, ys);
    const before = [agg.result(b), agg.serialize(b)];
    agg.merge(a, b);
    deepStrictEqual([agg.result(b), agg.serialize(b)], before);
  });
}

/**
 * A serialised state (fed, or merged from parts) deserialises to the same result, and keeps
 * giving the same results as the original when both are fed more samples.
 */
export function roundTrips<ACC, OUT>(agg: Aggregator<Sample, ACC, OUT>, stream: fc.Arbitrary<Sample[]>, check: Check<OUT> = exactly) {
  return fc.property(splitCase(stream), stream, (c, more) => {
    for (const acc of [feed(agg, c.xs), mergeTree(agg, c)]) {
      const text = agg.serialize(acc);
      if (typeof text !== 'string') throw new Error(`serialize returned ${typeof text}`);
      const back = agg.deserialize(text);
      deepStrictEqual(agg.result(back), agg.result(acc));
      deepStrictEqual(agg.result(agg.deserialize(agg.serialize(back))), agg.result(acc));
      feed(agg, more, acc);
      feed(agg, more, back);
      check(agg.result(back), agg.result(acc), [...c.xs, ...more]);
    }
  });
}

/** The result does not depend on the order the samples arrive in: bit-identical. */
export function arrivalOrderFree<ACC, OUT>(agg: Aggregator<Sample, ACC, OUT>, stream: fc.Arbitrary<Sample[]>) {
  return fc.property(
    stream.chain((xs) => fc.tuple(fc.constant(xs), fc.shuffledSubarray(xs, { minLength: xs.length, maxLength: xs.length }))),
    ([xs, shuffled]) => {
      deepStrictEqual(agg.result(feed(agg, shuffled)), agg.result(feed(agg, xs)));
    },
  );
}

/** deserialize(text) throws an Error whose message matches `pattern` (name, what, where). */
export function expectMalformed<ACC, OUT>(agg: Aggregator<Sample, ACC, OUT>, text: string, pattern: RegExp): void {
  let thrown: unknown;
  try {
    agg.deserialize(text);
  } catch (err) {
    thrown = err;
  }
  if (!(thrown instanceof Error)) throw new Error(`deserialize(${JSON.stringify(text)}) did not throw an Error`);
  if (!pattern.test(thrown.message)) throw new Error(`deserialize(${JSON.stringify(text)}) threw "${thrown.message}", which does not match ${pattern}`);
}

/**
 * Any text either throws an Error whose message starts with `name` (never a TypeError from deep
 * inside), or gives a state that reads, serialises and merges without throwing.
 */
export function survivesGarbage<ACC, OUT>(agg: Aggregator<Sample, ACC, OUT>, name: string, text: fc.Arbitrary<string>) {
  return fc.property(text, (t) => {
    let acc: ACC;
    try {
      acc = agg.deserialize(t);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith(`${name}: `)) throw new Error(`deserialize(${JSON.stringify(t)}) threw ${String(err)}`);
      return;
    }
    agg.result(acc);
    agg.merge(acc, agg.create());
    agg.result(agg.deserialize(agg.serialize(acc)));
  });
}

/** Garbage for survivesGarbage: arbitrary strings, JSON values, and mutations of valid states. */
export function garbage<ACC, OUT>(agg: Aggregator<Sample, ACC, OUT>, stream: fc.Arbitrary<Sample[]>): fc.Arbitrary<string> {
  const mutated = fc
    .tuple(stream, fc.nat(), fc.nat(), fc.string({ maxLength: 3 }))
    .map(([xs, at, len, insert]) => {
      const text = agg.serialize(feed(agg, xs));
      const i = at % (text.length + 1);
      return text.slice(0, i) + insert + text.slice(i + (len % 4));
    });
  return fc.oneof(fc.string(), fc.jsonValue().map((v) => JSON.stringify(v)), mutated);
}

// ---- exact oracles ----------------------------------------------------------------------------

/** The exact sum of finite doubles, correctly rounded (half to even), by BigInt arithmetic. */
export function exactSum(xs: readonly number[]): number {
  let s = 0n;
  for (const x of xs) s += big(x);
  if (s === 0n) return 0;
  const neg = s < 0n;
  let a = neg ? -s : s;
  const bits = a.toString(2).length;
  let shift = 0;
  if (bits > 53) {
    shift = bits - 53;
    const rem = a & ((1n << BigInt(shift)) - 1n);
    const half = 1n << BigInt(shift - 1);
    a >>= BigInt(shift);
    if (rem > half || (rem === half && (a & 1n) === 1n)) a += 1n;
  }
  // Number(a) is exact (a <= 2^53); one or two exact power-of-two scalings follow.
  const e = shift - 1074;
  const v = e < -1022 ? Number(a) * 2 ** (e + 600) * 2 ** -600 : Number(a) * 2 ** e;
  return neg ? -v : v;
}
