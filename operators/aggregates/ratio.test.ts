import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ratio, type RatioOptions, type Selector } from './ratio.js';
import {
  agreesWithOracle,
  arrivalOrderFree,
  exactSum,
  expectMalformed,
  feed,
  garbage,
  METRICS,
  mergeLeavesOther,
  mergesLikeOnePass,
  roundTrips,
  samples,
  survivesGarbage,
  USERS,
} from './testing/laws.js';
import type { Sample } from '../sample.js';

const RUNS = { numRuns: 60 };
const stream = samples();

const oneOrMany = <T extends string>(xs: readonly T[]) =>
  fc.oneof(fc.constantFrom(...xs), fc.uniqueArray(fc.constantFrom(...xs), { minLength: 1, maxLength: xs.length }));
const selector: fc.Arbitrary<Selector> = fc.oneof(
  oneOrMany(METRICS).map((metric) => ({ metric })),
  fc.record({ user: oneOrMany(USERS) }).map((tags) => ({ tags })),
  fc.record({ status: oneOrMany(['hit', 'miss', 'error']) }).map((tags) => ({ tags })),
  fc.tuple(oneOrMany(METRICS), oneOrMany(['hit', 'miss'])).map(([metric, status]) => ({ metric, tags: { status } })),
);
const options: fc.Arbitrary<RatioOptions> = fc.record({ numerator: selector, denominator: selector, of: fc.constantFrom('count' as const, 'sum' as const) });

/** Brute force: does the sample satisfy the selector? */
function matches(sel: Selector, s: Sample): boolean {
  const list = (v: string | readonly string[]) => (typeof v === 'string' ? [v] : v);
  if (sel.metric !== undefined && !list(sel.metric).includes(s.metric)) return false;
  return Object.entries(sel.tags ?? {}).every(([k, v]) => s.tags?.[k] !== undefined && list(v).includes(s.tags[k]));
}

function oracle(o: RatioOptions, xs: readonly Sample[]): number | null {
  const side = (sel: Selector) => exactSum(xs.filter((s) => matches(sel, s)).map((s) => (o.of === 'sum' ? s.value : 1)));
  const den = side(o.denominator);
  if (den === 0) return null;
  const r = side(o.numerator) / den;
  return Number.isFinite(r) ? r + 0 : null; // e.g. -1e300 / 5e-324; -0 is reported as 0 (JSON has no -0)
}

describe('ratio', () => {
  it('equals the brute-force ratio of selected counts or sums (null when the denominator is 0)', () =>
    fc.assert(fc.property(options, stream, (o, xs) => {
        expect(ratio(o).result(feed(ratio(o), xs))).toBe(oracle(o, xs));
      }), { numRuns: 300 }));

  it('merges like one pass, in any order, and round-trips', () =>
    fc.assert(
      fc.property(options, (o) => {
        const agg = ratio(o);
        fc.assert(mergesLikeOnePass(agg, stream), { numRuns: 5 });
        fc.assert(roundTrips(agg, stream), { numRuns: 5 });
        fc.assert(arrivalOrderFree(agg, stream), { numRuns: 5 });
        fc.assert(mergeLeavesOther(agg, stream), { numRuns: 5 });
      }),
      { numRuns: 30 },
    ));

  it('hits / (hits + misses)', () => {
    const agg = ratio({ numerator: { metric: 'hits' }, denominator: { metric: ['hits', 'misses'] } });
    fc.assert(
      agreesWithOracle(agg, stream, (xs) => {
        const hits = xs.filter((s) => s.metric === 'hits').length;
        const all = xs.filter((s) => s.metric === 'hits' || s.metric === 'misses').length;
        return all === 0 ? null : hits / all;
      }),
      RUNS,
    );
  });

  it('refuses a side that selects nothing in particular', () => {
    expect(() => ratio({ numerator: {}, denominator: { metric: 'x' } })).toThrow(/ratio: the numerator must name a metric or tags/);
    expect(() => ratio({ numerator: { metric: 'x' }, denominator: { tags: {} } })).toThrow(/ratio: the denominator must name a metric or tags/);
  });

  it('malformed states throw and say what is wrong', () => {
    const agg = ratio({ numerator: { metric: 'hits' }, denominator: { metric: 'views' } });
    expectMalformed(agg, '[[1]]', /^ratio: .*expected 2 fields \[numerator, denominator\], got 1/);
    expectMalformed(agg, '[[1.5],[2]]', /^ratio: .*field 1 must be a count \(a non-negative integer\) when of is "count", got 1.5/);
    expectMalformed(agg, '[[1],[-2]]', /^ratio: .*field 2 must be a count/);
    expectMalformed(agg, '[[1],["2"]]', /^ratio: .*field 2 \(denominator\): partial 0 must be a finite number, got "2"/);
    const bySum = ratio({ numerator: { metric: 'hits' }, denominator: { metric: 'views' }, of: 'sum' });
    expect(bySum.result(bySum.deserialize('[[1.5],[-3]]'))).toBe(-0.5);
    fc.assert(survivesGarbage(agg, 'ratio', garbage(agg, stream)), { numRuns: 150 });
  });
});
