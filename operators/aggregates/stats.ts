import type { Aggregator } from '../aggregate.js';

/** Mergeable moments: count, sum, min, max and Welford's M2 (sum of squared deviations). */
export interface Moments {
  count: number;
  sum: number;
  min: number;
  max: number;
  /** Running mean (Welford); kept beside `sum` so variance merges stay stable. */
  mean: number;
  m2: number;
}

export interface MomentsResult {
  count: number;
  sum: number;
  min: number;
  max: number;
  mean: number;
  /** Sample standard deviation (n - 1); null when count < 2. */
  stddev: number | null;
  /** Sample variance (n - 1); null when count < 2. */
  variance: number | null;
}

/** Adds one value with Welford's update. */
export function addMoment(acc: Moments, x: number): Moments {
  const n = ++acc.count;
  acc.sum += x;
  if (x < acc.min) acc.min = x;
  if (x > acc.max) acc.max = x;
  const d = x - acc.mean;
  acc.mean += d / n;
  acc.m2 += d * (x - acc.mean);
  return acc;
}

/** Merges b into a with Chan et al.'s parallel formula. */
export function mergeMoments(a: Moments, b: Moments): Moments {
  if (b.count === 0) return a;
  if (a.count === 0) {
    Object.assign(a, b);
    return a;
  }
  const n = a.count + b.count;
  const d = b.mean - a.mean;
  a.m2 = a.m2 + b.m2 + (d * d * a.count * b.count) / n;
  a.mean = a.mean + (d * b.count) / n;
  a.count = n;
  a.sum += b.sum;
  if (b.min < a.min) a.min = b.min;
  if (b.max > a.max) a.max = b.max;
  return a;
}

export function emptyMoments(): Moments {
  return { count: 0, sum: 0, min: Infinity, max: -Infinity, mean: 0, m2: 0 };
}

export function momentsResult(acc: Moments): MomentsResult {
  const variance = acc.count < 2 ? null : Math.max(0, acc.m2 / (acc.count - 1));
  return {
    count: acc.count,
    sum: acc.sum,
    min: acc.count ? acc.min : NaN,
    max: acc.count ? acc.max : NaN,
    // sum / count, not the running mean: it is order-independent whenever the sum is exact.
    mean: acc.count ? acc.sum / acc.count : NaN,
    stddev: variance === null ? null : Math.sqrt(variance),
    variance,
  };
}

/** count, sum, min, max, mean, sample variance and stddev in one mergeable accumulator. */
export const moments: Aggregator<number, Moments, MomentsResult> = {
  create: emptyMoments,
  add: addMoment,
  merge: mergeMoments,
  result: momentsResult,
  serialize(acc) {
    return JSON.stringify([acc.count, acc.sum, acc.min, acc.max, acc.mean, acc.m2].map(finiteOrNull));
  },
  deserialize(text) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`moments: not JSON: ${text.slice(0, 40)}`);
    }
    if (!Array.isArray(parsed) || parsed.length !== 6) throw new Error('moments: expected an array of 6 numbers');
    const [count, sum, min, max, mean, m2] = parsed.map((v, i) => (v === null ? (i === 2 ? Infinity : -Infinity) : v));
    for (const v of [count, sum, mean, m2]) if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error('moments: non-finite field');
    if (typeof min !== 'number' || typeof max !== 'number') throw new Error('moments: min and max must be numbers or null');
    if (!Number.isSafeInteger(count) || count < 0) throw new Error(`moments: count must be a non-negative integer, got ${count}`);
    return { count, sum, min, max, mean, m2 };
  },
};

function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
