/**
 * What the `percentiles` aggregator needs from a quantile sketch (DDSketch, HDR histogram,
 * t-digest): add values, merge, read several quantiles at once, and round-trip through text.
 */
export interface QuantileSketch<S> {
  /** 'ddsketch', 'hdr' or 'tdigest': named in errors. */
  readonly name: string;
  create(): S;
  add(s: S, value: number): void;
  /** Merges b into a; b is left as it was. */
  merge(a: S, b: S): void;
  /** One estimate per q in [0, 1]; NaN for an empty sketch. */
  quantiles(s: S, qs: readonly number[]): number[];
  serialize(s: S): string;
  /** The inverse of serialize; calls `fail(what is wrong)` (which throws) on malformed text. */
  deserialize(text: string, fail: (what: string) => never): S;
}

/** The 0-based rank a quantile stands for: floor(q · (n − 1)) of the sorted values. */
export function rankOf(q: number, n: number): number {
  return Math.floor(q * (n - 1));
}
