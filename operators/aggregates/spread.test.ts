import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { stddev, variance } from './spread.js';
import { agreesWithOracle, dyadic, expectMalformed, feed, garbage, mergeLeavesOther, mergesLikeOnePass, roundTrips, samples, survivesGarbage, type Check } from './testing/laws.js';
import type { Sample } from '../sample.js';

const RUNS = { numRuns: 120 };
const values = (xs: readonly Sample[]) => xs.map((s) => s.value);

/** Exact sample variance of dyadic values (x · 8 integral), by BigInt. */
function exactVariance(xs: readonly number[]): number | null {
  if (xs.length < 2) return null;
  const n = BigInt(xs.length);
  let s1 = 0n;
  let s2 = 0n;
  for (const x of xs) {
    const k = BigInt(x * 8);
    s1 += k;
    s2 += k * k;
  }
  return Number(n * s2 - s1 * s1) / Number(n * (n - 1n)) / 64;
}

/** Values of moderate magnitude: Welford is accurate to ~1e-9 relative of the spread. */
const moderate = fc.oneof(dyadic, fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.integer({ min: -100, max: 100 }));

/** Two-pass variance with compensated sums: a precise oracle for general doubles. */
function twoPass(xs: readonly number[]): number | null {
  if (xs.length < 2) return null;
  const fsum = (ys: readonly number[]) => {
    let s = 0;
    let c = 0;
    for (const y of ys) {
      const t = s + y;
      c += Math.abs(s) >= Math.abs(y) ? s - t + y : y - t + s;
      s = t;
    }
    return s + c;
  };
  const m = fsum(xs) / xs.length;
  const d = xs.map((x) => x - m);
  const corr = fsum(d);
  return Math.max(0, (fsum(d.map((e) => e * e)) - (corr * corr) / xs.length) / (xs.length - 1));
}

const maxAbs = (xs: readonly number[]) => xs.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

/**
 * Within 1e-9 relative of the expected variance, plus a floor scaled by max |x|², plus two
 * subnormal steps. Below 2^-1022 rounding is absolute, and 1e-12·max|x|² underflows to 0 for
 * |x| < ~1e-156: twoPass squares its deviations unscaled, so each square that lands among the
 * subnormals is off by up to MIN_VALUE/2; n of them summed (compensated) and divided by n - 1 is
 * at most MIN_VALUE off, the division another MIN_VALUE/2; the aggregator scales values below
 * 2^-400 up, so only its last rounding into the subnormals counts (MIN_VALUE/2).
 * Found by a 24,000-run sweep (seed -1461422811): [0, -1.3368004492098995e-160], exact variance
 * 1808.5000000000005 steps of 2^-1074; the aggregator gave 1809 steps, twoPass 1808.
 */
const closeVariance: Check<number | null> = (actual, expected, xs) => {
  if (expected === null || actual === null) return expect(actual).toBe(expected);
  const tol = 1e-9 * expected + 1e-12 * maxAbs(values(xs)) ** 2 + 2 * Number.MIN_VALUE;
  if (!(Math.abs(actual - expected) <= tol)) throw new Error(`variance ${actual}, expected ${expected} (tolerance ${tol})`);
};
const closeStddev: Check<number | null> = (actual, expected, xs) => {
  if (expected === null || actual === null) return expect(actual).toBe(expected);
  const tol = 1e-9 * expected + 1e-6 * maxAbs(values(xs));
  if (!(Math.abs(actual - expected) <= tol)) throw new Error(`stddev ${actual}, expected ${expected} (tolerance ${tol})`);
};

describe('variance', () => {
  it('matches the exact variance of dyadic values (null below two samples)', () =>
    fc.assert(agreesWithOracle(variance, samples({ value: dyadic }), (xs) => exactVariance(values(xs)), closeVariance), RUNS));
  it('matches a compensated two-pass variance of general values', () =>
    fc.assert(agreesWithOracle(variance, samples({ value: moderate }), (xs) => twoPass(values(xs)), closeVariance), RUNS));
  it('merges (Chan) like one pass, within rounding', () => fc.assert(mergesLikeOnePass(variance, samples({ value: moderate }), closeVariance), RUNS));
  it('merge leaves the other side alone', () => fc.assert(mergeLeavesOther(variance, samples()), RUNS));
  it('round-trips exactly, also after merges', () => fc.assert(roundTrips(variance, samples({ value: moderate })), RUNS));
  it('a variance among the subnormals is within two steps of the two-pass one (found by a sweep)', () => {
    const xs = [0, -1.3368004492098995e-160].map((value) => ({ metric: 'm', value, ts: 0 }));
    closeVariance(variance.result(feed(variance, xs)), twoPass(values(xs)), xs);
    expect(variance.result(feed(variance, xs))).toBe(1809 * Number.MIN_VALUE); // the exact 1808.5000000000005 steps, rounded
  });
  it('keeps the spread of a tight cluster around a large mean', () => {
    const xs = Array.from({ length: 100 }, (_, i) => ({ metric: 'm', value: 1e9 + (i % 2) / 8, ts: i }));
    const v = variance.result(feed(variance, xs))!;
    expect(Math.abs(v - exactVariance(values(xs))!)).toBeLessThan(1e-9);
  });
  it('is null when the spread overflows, and such a state round-trips and merges', () => {
    const xs = [1e300, -1e300].map((value) => ({ metric: 'm', value, ts: 0 }));
    const acc = feed(variance, xs);
    expect(variance.result(acc)).toBeNull();
    const back = variance.deserialize(variance.serialize(acc));
    expect(variance.result(back)).toBeNull();
    expect(variance.result(variance.merge(feed(variance, xs.slice(0, 1)), back))).toBeNull();
  });
  it('malformed states throw and say what is wrong', () => {
    expectMalformed(variance, 'x', /^variance: cannot deserialize "x": not JSON/);
    expectMalformed(variance, '[1,2,3,4,5]', /^variance: .*expected 3 fields \[count, mean, m2\] \(or 4, with scale\), got 5/);
    expectMalformed(variance, '[2,1,2,0.5]', /^variance: .*field 4 \(scale\) must be a whole number in \[-700, 700\], got 0.5/);
    expectMalformed(variance, '[2,1,-1]', /^variance: .*field 3 \(m2\), the sum of squared deviations, cannot be negative, got -1/);
    expectMalformed(variance, '[0,1,0]', /^variance: .*a count of 0 needs mean 0 and m2 0/);
    expectMalformed(variance, '[1,1,2]', /^variance: .*one sample has no spread/);
    expectMalformed(variance, '[-1,1,2]', /^variance: .*field 1 \(count\) must be a non-negative integer, got -1/);
    expectMalformed(variance, '[3,"a",2]', /^variance: .*field 2 \(mean\) must be a finite number, got "a"/);
    fc.assert(survivesGarbage(variance, 'variance', garbage(variance, samples())), { numRuns: 200 });
  });
});

describe('stddev', () => {
  const oracle = (xs: readonly Sample[]) => {
    const v = exactVariance(values(xs));
    return v === null ? null : Math.sqrt(v);
  };
  it('is the square root of the exact variance (null below two samples)', () =>
    fc.assert(agreesWithOracle(stddev, samples({ value: dyadic }), oracle, closeStddev), RUNS));
  it('merges like one pass, within rounding', () => fc.assert(mergesLikeOnePass(stddev, samples({ value: moderate }), closeStddev), RUNS));
  it('round-trips exactly', () => fc.assert(roundTrips(stddev, samples({ value: moderate })), RUNS));
  it('is null for zero or one sample and 0 for equal values', () => {
    expect(stddev.result(stddev.create())).toBeNull();
    expect(stddev.result(feed(stddev, [{ metric: 'm', value: 3, ts: 0 }]))).toBeNull();
    expect(stddev.result(feed(stddev, [3, 3, 3].map((value) => ({ metric: 'm', value, ts: 0 }))))).toBe(0);
  });
  it('malformed states throw with the aggregator name', () => {
    expectMalformed(stddev, '{}', /^stddev: cannot deserialize "\{\}": expected a JSON array \[count, mean, m2\]/);
    fc.assert(survivesGarbage(stddev, 'stddev', garbage(stddev, samples())), { numRuns: 100 });
  });
});
