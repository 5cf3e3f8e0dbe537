import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { count, max, mean, min, sum } from './scalar.js';
import { emptySum, sumAdd, sumFromJson, sumMerge, sumScale, sumToJson, sumValue } from './exact-sum.js';
import {
  agreesWithOracle,
  anyValue,
  arrivalOrderFree,
  dyadic,
  exactSum,
  expectMalformed,
  garbage,
  mergeLeavesOther,
  mergesLikeOnePass,
  roundTrips,
  samples,
  survivesGarbage,
} from './testing/laws.js';
import type { Sample } from '../sample.js';

const values = (xs: readonly Sample[]) => xs.map((s) => s.value);
const stream = samples();
const RUNS = { numRuns: 120 };

/** Doubles that make naive summation fail: huge and tiny magnitudes that cancel. */
const nasty = fc.oneof(
  fc.double({ min: -1e300, max: 1e300, noNaN: true }),
  fc.constantFrom(1e300, -1e300, 1, -1, 1e-16, 2 ** 53, -(2 ** 53), 0.1, 5e-324, -5e-324),
);

describe('exact sum', () => {
  it('equals the BigInt exact sum, correctly rounded, for any doubles', () => {
    fc.assert(
      fc.property(fc.array(nasty, { maxLength: 200 }), (xs) => {
        const s = emptySum();
        for (const x of xs) sumAdd(s, x);
        expect(sumValue(s)).toBe(exactSum(xs));
      }),
      { numRuns: 300 },
    );
  });

  it('catches cancellation that naive summation loses', () => {
    const s = emptySum();
    for (const x of [1e100, 1, -1e100, 1e-300]) sumAdd(s, x);
    expect(sumValue(s)).toBe(1);
    expect(1e100 + 1 - 1e100).toBe(0); // what a plain loop gives
  });

  it('merging exact sums of any split equals the exact sum of everything', () => {
    fc.assert(
      fc.property(fc.array(nasty, { maxLength: 100 }), fc.array(nasty, { maxLength: 100 }), (xs, ys) => {
        const a = emptySum();
        const b = emptySum();
        for (const x of xs) sumAdd(a, x);
        for (const y of ys) sumAdd(b, y);
        const bBefore = sumToJson(b);
        expect(sumValue(sumMerge(a, b))).toBe(exactSum([...xs, ...ys]));
        expect(sumToJson(b)).toEqual(bBefore);
      }),
      { numRuns: 200 },
    );
  });

  it('scaling by 2^k multiplies the exact total by 2^k (no underflow)', () => {
    // Magnitudes in [1e-100, 1e100] (or 0): times 2^±500 every partial stays a normal double.
    const normal = fc.double({ min: -1e100, max: 1e100, noNaN: true }).filter((x) => x === 0 || Math.abs(x) >= 1e-100);
    fc.assert(
      fc.property(fc.array(normal, { maxLength: 50 }), fc.integer({ min: -500, max: 500 }), (xs, k) => {
        const s = emptySum();
        for (const x of xs) sumAdd(s, x);
        sumScale(s, k);
        expect(sumValue(s)).toBe(exactSum(xs.map((x) => x * 2 ** k)));
      }),
      { numRuns: 200 },
    );
  });

  it('a total past the double range reports NaN, keeps its carry through merges and serialisation, and comes back when it returns into range', () => {
    const s = emptySum();
    sumAdd(s, 1.5e308);
    sumAdd(s, 1.5e308);
    expect(sumValue(s)).toBeNaN();
    expect(sumToJson(s)).toEqual({ carry: 6, partials: [2 * (1.5e308 - 3 * 2 ** 1022)] }); // 3e308 = 6·2^1022 + rest
    const other = emptySum();
    sumAdd(other, 1);
    expect(sumValue(sumMerge(other, s))).toBeNaN();
    const back = sumFromJson(sumToJson(other), () => { throw new Error('no'); });
    sumAdd(back, -1.5e308);
    expect(sumValue(back)).toBe(exactSum([1.5e308, 1, 0]));
    // the state written before sums carried: its total is lost for good
    expect(sumValue(sumFromJson('overflow', () => { throw new Error('no'); }))).toBeNaN();
  });
});

describe('count', () => {
  const oracle = (xs: readonly Sample[]) => xs.length;
  it('counts every sample', () => fc.assert(agreesWithOracle(count, stream, oracle), RUNS));
  it('merges like one pass', () => fc.assert(mergesLikeOnePass(count, stream), RUNS));
  it('merge leaves the other side alone', () => fc.assert(mergeLeavesOther(count, stream), RUNS));
  it('round-trips', () => fc.assert(roundTrips(count, stream), RUNS));
  it('malformed states throw and say what is wrong', () => {
    expectMalformed(count, '', /^count: cannot deserialize "": expected a non-negative integer/);
    expectMalformed(count, '-1', /^count: .*non-negative integer/);
    expectMalformed(count, '1.5', /^count: .*non-negative integer/);
    expectMalformed(count, '99999999999999999999', /^count: .*non-negative integer, got 100000000000000000000/);
    fc.assert(survivesGarbage(count, 'count', garbage(count, stream)), { numRuns: 200 });
  });
});

describe('sum', () => {
  it('is the exact sum, correctly rounded, for any finite values', () =>
    fc.assert(agreesWithOracle(sum, stream, (xs) => exactSum(values(xs))), RUNS));
  it('is bit-identical in any arrival order', () => fc.assert(arrivalOrderFree(sum, stream), RUNS));
  it('merges bit-identically to one pass', () => fc.assert(mergesLikeOnePass(sum, stream), RUNS));
  it('merge leaves the other side alone', () => fc.assert(mergeLeavesOther(sum, stream), RUNS));
  it('round-trips, also after merges', () => fc.assert(roundTrips(sum, stream), RUNS));
  it('is 0 when empty and null when it overflows', () => {
    expect(sum.result(sum.create())).toBe(0);
    const acc = sum.create();
    sum.add(acc, { metric: 'm', value: Number.MAX_VALUE, ts: 0 });
    sum.add(acc, { metric: 'm', value: Number.MAX_VALUE, ts: 0 });
    expect(sum.result(acc)).toBeNull();
    expect(sum.result(sum.deserialize(sum.serialize(acc)))).toBeNull();
  });
  it('malformed states throw and say what is wrong', () => {
    expectMalformed(sum, '[1,', /^sum: cannot deserialize "\[1,": not JSON/);
    expectMalformed(sum, '{"a":1}', /^sum: .*expected an array of partial sums/);
    expectMalformed(sum, '[1,"x"]', /^sum: .*partial 1 must be a finite number, got "x"/);
    expectMalformed(sum, '{"carry":0,"partials":[1]}', /^sum: .*carry must be a non-zero whole number of 2\^1022 units, got 0/);
    expectMalformed(sum, '{"carry":1,"partials":[1],"x":2}', /^sum: .*unexpected field "x" in a carried sum/);
    // partials written before sums carried may add up past 1.8e308: they read as such a sum
    expect(sum.result(sum.deserialize('[1e308,1e308]'))).toBeNull();
    fc.assert(survivesGarbage(sum, 'sum', garbage(sum, stream)), { numRuns: 200 });
  });
});

describe('min and max', () => {
  const lo = (xs: readonly Sample[]) => (xs.length ? Math.min(...values(xs)) + 0 : null);
  const hi = (xs: readonly Sample[]) => (xs.length ? Math.max(...values(xs)) + 0 : null);
  for (const [agg, oracle, name] of [
    [min, lo, 'min'],
    [max, hi, 'max'],
  ] as const) {
    it(`${name} equals the brute force (null when empty)`, () => fc.assert(agreesWithOracle(agg, stream, oracle), RUNS));
    it(`${name} is the same in any arrival order`, () => fc.assert(arrivalOrderFree(agg, stream), RUNS));
    it(`${name} merges like one pass`, () => fc.assert(mergesLikeOnePass(agg, stream), RUNS));
    it(`${name} merge leaves the other side alone`, () => fc.assert(mergeLeavesOther(agg, stream), RUNS));
    it(`${name} round-trips`, () => fc.assert(roundTrips(agg, stream), RUNS));
    it(`${name}: malformed states throw and say what is wrong`, () => {
      expectMalformed(agg, 'abc', new RegExp(`^${name}: cannot deserialize "abc": not JSON`));
      expectMalformed(agg, '"3"', new RegExp(`^${name}: .*${name} must be a finite number, got "3"`));
      expectMalformed(agg, '[3]', new RegExp(`^${name}: .*must be a finite number`));
      fc.assert(survivesGarbage(agg, name, garbage(agg, stream)), { numRuns: 200 });
    });
  }
});

describe('mean', () => {
  const oracle = (xs: readonly Sample[]) => (xs.length ? exactSum(values(xs)) / xs.length : null);
  it('is the exact sum over the count (null when empty)', () => fc.assert(agreesWithOracle(mean, stream, oracle), RUNS));
  it('is exact for dyadic values', () =>
    fc.assert(
      agreesWithOracle(mean, samples({ value: dyadic }, 1), (xs) => values(xs).reduce((a, b) => a + b, 0) / xs.length),
      RUNS,
    ));
  it('is bit-identical in any arrival order', () => fc.assert(arrivalOrderFree(mean, stream), RUNS));
  it('merges bit-identically to one pass', () => fc.assert(mergesLikeOnePass(mean, samples({ value: anyValue })), RUNS));
  it('merge leaves the other side alone', () => fc.assert(mergeLeavesOther(mean, stream), RUNS));
  it('round-trips, also after merges', () => fc.assert(roundTrips(mean, stream), RUNS));
  it('malformed states throw and say what is wrong', () => {
    expectMalformed(mean, '[[1],2,3]', /^mean: .*expected 2 fields \[sum, count\], got 3/);
    expectMalformed(mean, '[[1],-2]', /^mean: .*field 2 \(count\) must be a non-negative integer, got -2/);
    expectMalformed(mean, '[[1,"a"],2]', /^mean: .*field 1 \(sum\): partial 1 must be a finite number/);
    expectMalformed(mean, '[[5],0]', /^mean: .*count of 0 with a non-zero sum/);
    fc.assert(survivesGarbage(mean, 'mean', garbage(mean, stream)), { numRuns: 200 });
  });
});
