import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { distinct, type DistinctOf } from './distinct.js';
import { hllAddString, hllCreate, hllEstimate, hllFromBytes, hllMerge, hllStandardError, hllToBytes } from './hyperloglog.js';
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
  type Check,
} from './testing/laws.js';
import type { Sample } from '../sample.js';

const RUNS = { numRuns: 60 };

function items(xs: readonly Sample[], of: DistinctOf): Set<number | string> {
  const set = new Set<number | string>();
  for (const s of xs) {
    if (of === 'value') set.add(s.value + 0);
    else if (of === 'metric') set.add(s.metric);
    else if (s.tags?.[of.slice(4)] !== undefined) set.add(s.tags[of.slice(4)]);
  }
  return set;
}

/** Many distinct values (so the sketch is used) with some repeats. */
const manyValues = samples({ value: fc.oneof(fc.integer({ min: 0, max: 100_000 }), fc.constantFrom(1, 2, 3)) }, 0, 300);

/** Within 6 documented standard errors (plus 1), and never below exactUpTo + 1 once estimating. */
const withinHll =
  (p: number, exactUpTo: number, of: DistinctOf): Check<number> =>
  (actual, _expected, xs) => {
    const n = items(xs, of).size;
    if (n <= exactUpTo) return void expect(actual).toBe(n);
    expect(actual).toBeGreaterThan(exactUpTo);
    const tol = 6 * hllStandardError(p) * n + 1;
    if (!(Math.abs(actual - n) <= tol)) throw new Error(`estimate ${actual} for ${n} distinct items: off by more than ${tol}`);
  };

describe('distinct: exact below the bound', () => {
  for (const of of ['value', 'metric', 'tag:user', 'tag:status'] as const) {
    const agg = distinct({ of });
    it(`counts distinct ${of} exactly`, () => fc.assert(agreesWithOracle(agg, samples(), (xs) => items(xs, of).size), RUNS));
    it(`merges, round-trips and ignores arrival order (${of})`, () => {
      fc.assert(mergesLikeOnePass(agg, samples()), RUNS);
      fc.assert(roundTrips(agg, samples()), RUNS);
      fc.assert(arrivalOrderFree(agg, samples()), RUNS);
      fc.assert(mergeLeavesOther(agg, samples()), RUNS);
    });
  }
  it('0 and -0 are one value', () => {
    const agg = distinct();
    expect(agg.result(feed(agg, [0, -0, 0].map((value) => ({ metric: 'm', value, ts: 0 }))))).toBe(1);
  });
});

describe('distinct: HyperLogLog above the bound', () => {
  for (const [p, exactUpTo] of [
    [8, 0],
    [10, 20],
    [12, 100],
  ] as const) {
    const agg = distinct({ of: 'value', exactUpTo, precision: p });
    const label = `precision ${p}, exact up to ${exactUpTo}`;
    it(`estimates within 6 standard errors (${label})`, () =>
      fc.assert(agreesWithOracle(agg, manyValues, (xs) => items(xs, 'value').size, withinHll(p, exactUpTo, 'value')), RUNS));
    it(`merges to exactly the one-pass state in any order (${label})`, () => {
      fc.assert(mergesLikeOnePass(agg, manyValues), RUNS);
      fc.assert(
        fc.property(manyValues, manyValues, (xs, ys) => {
          const ab = agg.merge(feed(agg, xs), feed(agg, ys));
          expect(agg.serialize(ab)).toBe(agg.serialize(feed(agg, [...ys, ...xs])));
        }),
        RUNS,
      );
    });
    it(`round-trips and ignores arrival order (${label})`, () => {
      fc.assert(roundTrips(agg, manyValues), RUNS);
      fc.assert(arrivalOrderFree(agg, manyValues), RUNS);
      fc.assert(mergeLeavesOther(agg, manyValues), RUNS);
    });
  }

  it('tag values switch to the sketch too', () => {
    const agg = distinct({ of: 'tag:user', exactUpTo: 10, precision: 12 });
    const xs = Array.from({ length: 5000 }, (_, i) => ({ metric: 'm', value: 1, ts: i, tags: { user: `user-${i % 3000}` } }));
    const est = agg.result(feed(agg, xs));
    expect(Math.abs(est - 3000)).toBeLessThan(6 * hllStandardError(12) * 3000);
    expect(agg.serialize(feed(agg, xs))).toMatch(/^h:12:/);
  });

  it('the root mean square error is within 1.35x the documented 1.04/sqrt(m), with little bias', () => {
    // Deterministic item sets: this is a measurement, not a sample of random seeds.
    for (const p of [8, 10, 12]) {
      for (const n of [300, 3000, 30_000]) {
        let sq = 0;
        let bias = 0;
        const trials = 30;
        for (let t = 0; t < trials; t++) {
          const h = hllCreate(p);
          for (let i = 0; i < n; i++) hllAddString(h, `t${t}-p${p}-item-${i}`);
          const rel = (hllEstimate(h) - n) / n;
          sq += rel * rel;
          bias += rel;
        }
        const rmse = Math.sqrt(sq / trials);
        const se = hllStandardError(p);
        expect(rmse, `p=${p} n=${n}`).toBeLessThan(1.35 * se);
        expect(Math.abs(bias / trials), `p=${p} n=${n}`).toBeLessThan(0.6 * se);
      }
    }
  });

  it('hll merge is the sketch of the union; registers round-trip through 6-bit packing', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { maxLength: 200 }), fc.array(fc.string(), { maxLength: 200 }), fc.integer({ min: 4, max: 12 }), (xs, ys, p) => {
        const a = hllCreate(p);
        const b = hllCreate(p);
        const u = hllCreate(p);
        for (const x of xs) hllAddString(a, x), hllAddString(u, x);
        for (const y of ys) hllAddString(b, y), hllAddString(u, y);
        const same = (x: Uint8Array, y: Uint8Array) => Buffer.from(x.buffer, x.byteOffset, x.length).equals(Buffer.from(y.buffer, y.byteOffset, y.length));
        expect(same(hllMerge(a, b).registers, u.registers)).toBe(true);
        const fail = (what: string): never => {
          throw new Error(what);
        };
        expect(same(hllFromBytes(p, hllToBytes(u), fail).registers, u.registers)).toBe(true);
      }),
      { numRuns: 60 },
    );
    expect(hllEstimate(hllCreate(10))).toBe(0);
  });
});

describe('distinct: options and malformed states', () => {
  it('refuses bad options', () => {
    expect(() => distinct({ exactUpTo: -1 })).toThrow(/distinct: exactUpTo must be a non-negative integer, got -1/);
    expect(() => distinct({ precision: 3 })).toThrow(/hyperloglog: precision must be an integer in \[4, 18\], got 3/);
    expect(() => distinct({ of: 'tag:' as DistinctOf })).toThrow(/distinct: "tag:" needs a tag name/);
    expect(() => distinct({ of: 'key' as DistinctOf })).toThrow(/distinct: of must be "value", "metric" or "tag:<name>", got "key"/);
  });

  it('malformed states throw and say what is wrong', () => {
    const values = distinct({ exactUpTo: 3, precision: 8 });
    const tags = distinct({ of: 'tag:user', exactUpTo: 3, precision: 8 });
    expectMalformed(values, 'x:[1,1]', /^distinct: .*an item is listed twice/);
    expectMalformed(values, 'x:[0,-0]', /^distinct: .*an item is listed twice/);
    expectMalformed(values, 'x:["a"]', /^distinct: .*item 0 must be a finite number \(distinct of value\), got "a"/);
    expectMalformed(tags, 'x:[1]', /^distinct: .*item 0 must be a string \(distinct of tag:user\), got 1/);
    expectMalformed(values, 'x:[1,2,3,4]', /^distinct: .*4 exact items, more than exactUpTo \(3\)/);
    expectMalformed(values, 'x:[1', /^distinct: .*the exact items after "x:" are not JSON/);
    expectMalformed(values, 'h:10:AAAA', /^distinct: .*the sketch has precision 10, this aggregator 8/);
    expectMalformed(values, 'h:8:AAAA', /^distinct: .*precision 8 needs 192 bytes of registers, got 3/);
    expectMalformed(values, `h:8:${Buffer.alloc(192, 0xff).toString('base64')}`, /^distinct: .*register 0 holds 63, more than the largest rank 57/);
    expectMalformed(values, 'y:1', /^distinct: .*expected "x:<JSON items>" or "h:<precision>:<base64 registers>"/);
    fc.assert(survivesGarbage(values, 'distinct', garbage(values, manyValues)), { numRuns: 150 });
    fc.assert(survivesGarbage(tags, 'distinct', garbage(tags, samples())), { numRuns: 150 });
  });
});
