import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ewma } from './ewma.js';
import {
  agreesWithOracle,
  arrivalOrderFree,
  expectMalformed,
  feed,
  garbage,
  mergeLeavesOther,
  mergesLikeOnePass,
  roundTrips,
  samples,
  survivesGarbage,
  T0,
  type Check,
} from './testing/laws.js';
import type { Sample } from '../sample.js';

const RUNS = { numRuns: 50 };
const HALF_LIVES = [1, 7.5, 1000, 60_000];

/** The definition, computed directly: Σ 2^((t − t_max)/h)·x / Σ 2^((t − t_max)/h). */
function oracle(xs: readonly Sample[], h: number): number | null {
  if (xs.length === 0) return null;
  const tMax = Math.max(...xs.map((s) => s.ts));
  let num = 0;
  let den = 0;
  for (const s of xs) {
    const w = 2 ** ((s.ts - tMax) / h);
    num += w * s.value;
    den += w;
  }
  return num / den;
}

/** Within 1e-9 of the weighted mean of |x| (the scale cancellation cannot beat). */
const close = (h: number): Check<number | null> => (actual, expected, xs) => {
  if (expected === null || actual === null) return void expect(actual).toBe(expected);
  const tMax = Math.max(...xs.map((s) => s.ts));
  let scale = 0;
  let den = 0;
  for (const s of xs) {
    const w = 2 ** ((s.ts - tMax) / h);
    scale += w * Math.abs(s.value);
    den += w;
  }
  const tol = 1e-9 * (scale / den) + 1e-300;
  if (!(Math.abs(actual - expected) <= tol)) throw new Error(`ewma ${actual}, expected ${expected} (tolerance ${tol})`);
};

describe('ewma by event time', () => {
  for (const h of HALF_LIVES) {
    const agg = ewma({ halfLifeMs: h });
    // Event times within 300 half-lives: no weight underflows, so results are bit-identical.
    const stream = samples({ tsSpan: Math.round(300 * h) });
    it(`matches the definition (half-life ${h} ms)`, () => fc.assert(agreesWithOracle(agg, stream, (xs) => oracle(xs, h), close(h)), RUNS));
    it(`is bit-identical in any arrival order (half-life ${h} ms)`, () => fc.assert(arrivalOrderFree(agg, stream), RUNS));
    it(`merges bit-identically to one pass (half-life ${h} ms)`, () => fc.assert(mergesLikeOnePass(agg, stream), RUNS));
    it(`round-trips, also after merges, and merge leaves the other side alone (half-life ${h} ms)`, () => {
      fc.assert(roundTrips(agg, stream), RUNS);
      fc.assert(mergeLeavesOther(agg, stream), RUNS);
    });
  }

  it('handles fractional and negative event times the same way', () => {
    const h = 7.5;
    const agg = ewma({ halfLifeMs: h });
    const stream = samples().chain((xs) =>
      fc.array(fc.double({ min: -150 * h, max: 150 * h, noNaN: true }), { minLength: xs.length, maxLength: xs.length }).map((ts) => xs.map((x, i) => ({ ...x, ts: ts[i] + 0 }))),
    );
    fc.assert(agreesWithOracle(agg, stream, (xs) => oracle(xs, h), close(h)), RUNS);
    fc.assert(arrivalOrderFree(agg, stream), RUNS);
    fc.assert(mergesLikeOnePass(agg, stream), RUNS);
  });

  it('weighs a sample one half-life older by half', () => {
    const agg = ewma({ halfLifeMs: 1000 });
    const acc = feed(agg, [
      { metric: 'm', value: 3, ts: T0 + 1000 },
      { metric: 'm', value: 0, ts: T0 },
    ]);
    expect(agg.result(acc)).toBe(2); // (1·3 + 0.5·0) / 1.5
    expect(agg.result(agg.create())).toBeNull();
  });

  it('stays order-free across a wide span of event times (old weights underflow to nothing)', () => {
    const agg = ewma({ halfLifeMs: 1 });
    const xs: Sample[] = [
      { metric: 'm', value: 5, ts: T0 },
      { metric: 'm', value: 7, ts: T0 + 5000 },
      { metric: 'm', value: 9, ts: T0 + 5000 },
    ];
    expect(agg.result(feed(agg, xs))).toBe(8);
    expect(agg.result(feed(agg, [...xs].reverse()))).toBe(8);
  });

  it('refuses a half-life that is not positive', () => {
    expect(() => ewma({ halfLifeMs: 0 })).toThrow(/ewma: halfLifeMs must be a positive number of ms, got 0/);
  });

  it('malformed states throw and say what is wrong', () => {
    const agg = ewma({ halfLifeMs: 1000 });
    expectMalformed(agg, '[500]', /^ewma: .*the state has half-life 500 ms, this aggregator 1000 ms/);
    expectMalformed(agg, '[1000,1.5,[1],[1]]', /^ewma: .*field 2 \(ref\) must be an integer, got 1.5/);
    expectMalformed(agg, '[1000,3,[1],[0]]', /^ewma: .*field 4 \(weight sum\) must be positive/);
    expectMalformed(agg, '[1000,3,["a"],[1]]', /^ewma: .*field 3 \(weighted sum\): partial 0 must be a finite number/);
    expectMalformed(agg, '[1000,3]', /^ewma: .*expected \[halfLifeMs\] or/);
    expectMalformed(agg, 'nope', /^ewma: cannot deserialize "nope": not JSON/);
    fc.assert(survivesGarbage(agg, 'ewma', garbage(agg, samples({ tsSpan: 100_000 }))), { numRuns: 150 });
  });
});
