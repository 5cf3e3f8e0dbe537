import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { rate } from './rate.js';
import { agreesWithOracle, arrivalOrderFree, exactSum, expectMalformed, garbage, mergeLeavesOther, mergesLikeOnePass, roundTrips, samples, survivesGarbage } from './testing/laws.js';

const RUNS = { numRuns: 60 };
const stream = samples();
const windows = [
  { windowMs: 10_000 },
  { windowMs: 60_000, perMs: 60_000 },
  { windowMs: 1500, perMs: 1000 },
  { windowMs: 7, perMs: 3 },
];

describe('rate', () => {
  for (const w of windows) {
    const per = w.perMs ?? 1000;
    const byCount = rate(w);
    const bySum = rate({ ...w, of: 'sum' });
    const label = `window ${w.windowMs} ms, per ${per} ms`;
    it(`count per unit (${label})`, () => fc.assert(agreesWithOracle(byCount, stream, (xs) => (xs.length * per) / w.windowMs), RUNS));
    it(`sum per unit, exact (${label})`, () =>
      fc.assert(agreesWithOracle(bySum, stream, (xs) => (exactSum(xs.map((s) => s.value)) * per) / w.windowMs), RUNS));
    it(`merges like one pass (${label})`, () => {
      fc.assert(mergesLikeOnePass(byCount, stream), RUNS);
      fc.assert(mergesLikeOnePass(bySum, stream), RUNS);
    });
    it(`is the same in any arrival order and round-trips (${label})`, () => {
      fc.assert(arrivalOrderFree(bySum, stream), RUNS);
      fc.assert(roundTrips(byCount, stream), RUNS);
      fc.assert(roundTrips(bySum, stream), RUNS);
      fc.assert(mergeLeavesOther(bySum, stream), RUNS);
    });
  }

  it('is 0 for an empty window', () => {
    const r = rate({ windowMs: 1000 });
    expect(r.result(r.create())).toBe(0);
  });

  it('refuses a window or unit that is not a positive length', () => {
    expect(() => rate({ windowMs: 0 })).toThrow(/rate: windowMs must be a positive number of ms, got 0/);
    expect(() => rate({ windowMs: NaN })).toThrow(/windowMs/);
    expect(() => rate({ windowMs: 1000, perMs: -1 })).toThrow(/rate: perMs must be a positive number of ms, got -1/);
  });

  it('malformed states throw and say what is wrong', () => {
    const r = rate({ windowMs: 1000 });
    expectMalformed(r, 'x', /^rate: count: cannot deserialize "x": expected a non-negative integer/);
    expectMalformed(rate({ windowMs: 1000, of: 'sum' }), '[true]', /^rate: sum: .*partial 0 must be a finite number, got true/);
    fc.assert(survivesGarbage(r, 'rate', garbage(r, stream)), { numRuns: 100 });
  });
});
