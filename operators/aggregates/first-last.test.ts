import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { first, last } from './first-last.js';
import { agreesWithOracle, arrivalOrderFree, expectMalformed, feed, garbage, mergeLeavesOther, mergesLikeOnePass, roundTrips, samples, survivesGarbage } from './testing/laws.js';
import type { Sample } from '../sample.js';

const RUNS = { numRuns: 120 };
/** Few event times and few values: many ties on both. */
const stream = samples({ value: fc.constantFrom(-2, -0, 0, 1, 2.5, 7), tsSpan: 4 });
const wide = samples({ tsSpan: 1_000_000 });

/** Sort by (ts, value) and take the first / last by ts, the largest value among equal ts. */
function pick(xs: readonly Sample[], latest: boolean): number | null {
  if (xs.length === 0) return null;
  const ts = latest ? Math.max(...xs.map((s) => s.ts)) : Math.min(...xs.map((s) => s.ts));
  return Math.max(...xs.filter((s) => s.ts === ts).map((s) => s.value)) + 0;
}

for (const [agg, name, latest] of [
  [first, 'first', false],
  [last, 'last', true],
] as const) {
  describe(name, () => {
    it('picks by event time, ties to the larger value (null when empty)', () => {
      fc.assert(agreesWithOracle(agg, stream, (xs) => pick(xs, latest)), RUNS);
      fc.assert(agreesWithOracle(agg, wide, (xs) => pick(xs, latest)), RUNS);
    });
    it('does not depend on arrival order', () => {
      fc.assert(arrivalOrderFree(agg, stream), RUNS);
      fc.assert(arrivalOrderFree(agg, wide), RUNS);
    });
    it('merges like one pass', () => fc.assert(mergesLikeOnePass(agg, stream), RUNS));
    it('merge leaves the other side alone', () => fc.assert(mergeLeavesOther(agg, stream), RUNS));
    it('round-trips, also after merges', () => fc.assert(roundTrips(agg, wide), RUNS));
    it('malformed states throw and say what is wrong', () => {
      expectMalformed(agg, '[1]', new RegExp(`^${name}: .*expected null or \\[ts, value\\]`));
      expectMalformed(agg, '["1",2]', new RegExp(`^${name}: .*field 1 \\(ts\\) must be a finite number, got "1"`));
      expectMalformed(agg, '[1,null]', new RegExp(`^${name}: .*field 2 \\(value\\) must be a finite number, got null`));
      fc.assert(survivesGarbage(agg, name, garbage(agg, wide)), { numRuns: 150 });
    });
  });
}

it('first and last of one stream: earliest and latest sample', () => {
  const xs: Sample[] = [
    { metric: 'm', value: 1, ts: 20 },
    { metric: 'm', value: 2, ts: 10 },
    { metric: 'm', value: 3, ts: 30 },
    { metric: 'm', value: 4, ts: 10 },
  ];
  expect(first.result(feed(first, xs))).toBe(4);
  expect(last.result(feed(last, xs))).toBe(3);
});
