import type { Aggregator } from '../aggregate.js';

/**
 * Mergeable moments: count, sum, min, max and Welford's M2 (sum of squared deviations).
 *
 * Extreme values (any finite double) are handled without changing anything for ordinary ones:
 * - `sum` is the plain running sum, but whole units of 2^1022 move into `carry` before it could
 *   overflow, so 1e308 + 1e308 − 1e308 is 1e308 and a sum is reported as ±Infinity only when the
 *   total is past ±1.8e308 (momentsResult).
 * - `mean` and `m2` are Welford's figures of the values times 2^-scale. `scale` stays 0 while every
 *   value is 0 or in [2^-400, 2^401); beyond, it follows the largest magnitude so scaled values
 *   stay in that range, where squared deviations neither overflow nor underflow. Scaling by a
 *   power of two is exact, so the result is the same as unscaled arithmetic wherever that works,
 *   and the standard deviation is reported whenever it fits in a double.
 */
export interface Moments {
  count: number;
  sum: number;
  min: number;
  max: number;
  /** Running mean (Welford), of the values times 2^-scale; kept beside `sum` so variance merges stay stable. */
  mean: number;
  /** Sum of squared deviations, of the values times 2^-scale. */
  m2: number;
  /** Whole units of 2^1022 moved out of `sum`: the total is carry·2^1022 + sum. */
  carry: number;
  /** The power of two `mean` and `m2` are scaled by (0 for ordinary values). */
  scale: number;
}

export interface MomentsResult {
  count: number;
  /** ±Infinity when the total is beyond the double range. */
  sum: number;
  min: number;
  max: number;
  mean: number;
  /** Sample standard deviation (n - 1); null when count < 2 or when it is beyond the double range. */
  stddev: number | null;
  /** Sample variance (n - 1); null when count < 2 or when it is beyond the double range (a spread of ~1.3e154 and up). */
  variance: number | null;
}

/** The carry unit of `sum`. */
const UNIT = 2 ** 1022;
/** Welford runs unscaled while every value is 0 or has a magnitude in [LO, HI). */
const HI = 2 ** 401;
const LO = 2 ** -400;

/** Adds one value with Welford's update. */
export function addMoment(acc: Moments, x: number): Moments {
  const n = ++acc.count;
  const s = acc.sum + x;
  if (s < UNIT && s > -UNIT) acc.sum = s;
  else carrySum(acc, x);
  if (x < acc.min) acc.min = x;
  if (x > acc.max) acc.max = x;
  const ax = Math.abs(x);
  if (acc.scale === 0 && ax < HI && (ax >= LO || ax === 0)) {
    const d = x - acc.mean;
    acc.mean += d / n;
    acc.m2 += d * (x - acc.mean);
  } else scaledWelford(acc, x, n);
  return acc;
}

/** acc.sum += x for a sum that reaches 2^1022: whole units go to acc.carry, exactly. */
function carrySum(acc: Moments, x: number): void {
  let k = 0;
  if (!(x < UNIT && x > -UNIT)) {
    // |x| in [2^1022, 2^1024): x - k·2^1022 is exact.
    k = Math.trunc(x / UNIT);
    x -= k * UNIT;
  }
  let s = acc.sum + x; // both below 2^1022: no overflow
  if (!(s < UNIT && s > -UNIT)) {
    const j = Math.trunc(s / UNIT);
    s -= j * UNIT; // exact: s is a multiple of its ulp (>= 2^970) below 2^1023
    k += j;
  }
  acc.sum = s;
  acc.carry += k;
}

/** The scale that keeps |x| · 2^-scale within [2^-400, 2^401). */
function scaleFor(ax: number): number {
  const e = Math.floor(Math.log2(ax));
  return e > 400 ? e - 400 : e < -400 ? e + 400 : 0;
}

/** Moves mean and m2 to a larger scale `s` (exact but for contributions that fall below 2^-1022). */
function rescale(acc: Moments, s: number): void {
  const f = 2 ** (acc.scale - s);
  acc.mean *= f;
  acc.m2 = acc.m2 * f * f;
  acc.scale = s;
}

function scaledWelford(acc: Moments, x: number, n: number): void {
  if (x !== 0) {
    const want = scaleFor(Math.abs(x));
    // Only zeros so far (mean and m2 0): any scale holds them.
    if (n === 1 || (acc.mean === 0 && acc.m2 === 0)) acc.scale = want;
    else if (want > acc.scale) rescale(acc, want);
  }
  const y = x * 2 ** -acc.scale;
  const d = y - acc.mean;
  acc.mean += d / n;
  acc.m2 += d * (y - acc.mean);
}

/** Merges b into a with Chan et al.'s parallel formula. */
export function mergeMoments(a: Moments, b: Moments): Moments {
  if (b.count === 0) return a;
  if (a.count === 0) {
    Object.assign(a, b);
    return a;
  }
  let bMean = b.mean;
  let bM2 = b.m2;
  // A side holding only zeros (mean and m2 0) fits any scale: it takes the other's.
  if (a.mean === 0 && a.m2 === 0) a.scale = b.scale;
  else if (b.mean === 0 && b.m2 === 0) bMean = bM2 = 0;
  else if (a.scale !== b.scale) {
    if (a.scale < b.scale) rescale(a, b.scale);
    else {
      // Scale copies: merge leaves b as it was.
      const f = 2 ** (b.scale - a.scale);
      bMean *= f;
      bM2 = bM2 * f * f;
    }
  }
  const n = a.count + b.count;
  const d = bMean - a.mean;
  a.m2 = a.m2 + bM2 + (d * d * a.count * b.count) / n;
  a.mean = a.mean + (d * b.count) / n;
  a.count = n;
  const s = a.sum + b.sum;
  if (s < UNIT && s > -UNIT) a.sum = s;
  else carrySum(a, b.sum);
  a.carry += b.carry;
  if (b.min < a.min) a.min = b.min;
  if (b.max > a.max) a.max = b.max;
  return a;
}

export function emptyMoments(): Moments {
  return { count: 0, sum: 0, min: Infinity, max: -Infinity, mean: 0, m2: 0, carry: 0, scale: 0 };
}

/** The total carry·2^1022 + sum, rounded (±Infinity past the double range). */
function totalOf(acc: Moments): number {
  return acc.carry === 0 ? acc.sum : (acc.carry * 2 ** 958 + acc.sum * 2 ** -64) * 2 ** 64;
}

/** Sample variance (n - 1) scaled by 2^-2·scale, as computed for the result. */
function scaledVariance(acc: Moments): number {
  return Math.max(0, acc.m2 / (acc.count - 1));
}

export function momentsResult(acc: Moments): MomentsResult {
  let variance: number | null = null;
  let stddev: number | null = null;
  if (acc.count >= 2) {
    const v = scaledVariance(acc);
    const f = 2 ** acc.scale;
    const fv = v * f * f;
    const sd = Math.sqrt(v) * f;
    variance = Number.isFinite(fv) ? fv : null;
    stddev = Number.isFinite(sd) ? sd : null;
  }
  return {
    count: acc.count,
    sum: totalOf(acc),
    min: acc.count ? acc.min : NaN,
    max: acc.count ? acc.max : NaN,
    // sum / count, not the running mean: it is order-independent whenever the sum is exact. A sum
    // with a carry is divided in scaled form (the mean of finite values always fits).
    mean: acc.count === 0 ? NaN : acc.carry === 0 ? acc.sum / acc.count : ((acc.carry * 2 ** 958 + acc.sum * 2 ** -64) / acc.count) * 2 ** 64,
    stddev,
    variance,
  };
}

/** The largest |scale| a state may claim: values span 2^-1074 .. 2^1024. */
const MAX_SCALE = 700;

/** count, sum, min, max, mean, sample variance and stddev in one mergeable accumulator. */
export const moments: Aggregator<number, Moments, MomentsResult> = {
  create: emptyMoments,
  add: addMoment,
  merge: mergeMoments,
  result: momentsResult,
  serialize(acc) {
    const fields = [acc.count, acc.sum, acc.min, acc.max, acc.mean, acc.m2].map(finiteOrNull);
    // The carry and the scale only when they are not 0, so ordinary states keep their six-field form.
    if (acc.carry !== 0 || acc.scale !== 0) fields.push(acc.carry, acc.scale);
    return JSON.stringify(fields);
  },
  deserialize(text) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`moments: not JSON: ${text.slice(0, 40)}`);
    }
    if (!Array.isArray(parsed) || (parsed.length !== 6 && parsed.length !== 8)) throw new Error('moments: expected an array of 6 numbers (or 8, with carry and scale)');
    const [count, sum, min, max, mean, m2] = parsed.slice(0, 6).map((v, i) => (v === null ? (i === 2 ? Infinity : -Infinity) : v));
    for (const v of [count, sum, mean, m2]) if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error('moments: non-finite field');
    if (typeof min !== 'number' || typeof max !== 'number') throw new Error('moments: min and max must be numbers or null');
    if (!Number.isSafeInteger(count) || count < 0) throw new Error(`moments: count must be a non-negative integer, got ${count}`);
    const [carry, scale] = parsed.length === 8 ? parsed.slice(6) : [0, 0];
    if (typeof carry !== 'number' || !Number.isSafeInteger(carry)) throw new Error(`moments: carry (field 7) must be a whole number of 2^1022 units, got ${JSON.stringify(carry)}`);
    if (typeof scale !== 'number' || !Number.isSafeInteger(scale) || Math.abs(scale) > MAX_SCALE) throw new Error(`moments: scale (field 8) must be a whole number in [-${MAX_SCALE}, ${MAX_SCALE}], got ${JSON.stringify(scale)}`);
    const acc = { count, sum: 0, min, max, mean, m2, carry, scale };
    // A sum of 2^1022 or more (written before sums carried) moves its whole units to the carry.
    if (Math.abs(sum) >= UNIT) carrySum(acc, sum);
    else acc.sum = sum;
    return acc;
  },
};

function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
