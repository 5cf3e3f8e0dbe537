import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { clampedQuantiles, SUMMARY_QUANTILES, summaryAggregator, type Summary, type SummaryResult } from './summary.js';
import { createSketch, sketchAdd, sketchFromBase64, sketchQuantiles } from './ddsketch.js';

const agg = summaryAggregator();
const P_FIELDS = ['p50', 'p90', 'p95', 'p99', 'p999'] as const;

/** Finite doubles over many magnitudes, with zeros and negatives; -0 normalised (JSON has no -0). */
const value = fc
  .oneof(
    fc.tuple(fc.boolean(), fc.double({ min: -100, max: 100, noNaN: true })).map(([neg, e]) => (neg ? -1 : 1) * 10 ** e),
    fc.integer({ min: -10_000, max: 10_000 }),
    fc.double({ min: -1e9, max: 1e9, noNaN: true }).filter((x) => x === 0 || Math.abs(x) >= 1e-100),
  )
  .map((x) => x + 0);
/** Dyadic values: sums exact in any order, so merged and single-pass sums must agree exactly. */
const dyadic = fc.integer({ min: -(2 ** 20), max: 2 ** 20 }).map((k) => k / 8);

function feed(xs: readonly number[]): Summary {
  const acc = agg.create();
  for (const x of xs) agg.add(acc, x);
  return acc;
}

const pOf = (r: SummaryResult) => P_FIELDS.map((f) => r[f]);

describe('summary: percentiles', () => {
  it('percentiles lie within [min, max] and within 1% of the exact value (n >= 100)', () => {
    fc.assert(
      fc.property(fc.array(value, { minLength: 100, maxLength: 400, size: 'max' }), (xs) => {
        const r = agg.result(feed(xs));
        const sorted = [...xs].sort((a, b) => a - b);
        expect(r.count).toBe(xs.length);
        expect(r.min).toBe(sorted[0]);
        expect(r.max).toBe(sorted[sorted.length - 1]);
        SUMMARY_QUANTILES.forEach((q, i) => {
          const p = pOf(r)[i];
          const exact = sorted[Math.floor(q * (xs.length - 1))];
          expect(p).toBeGreaterThanOrEqual(r.min);
          expect(p).toBeLessThanOrEqual(r.max);
          if (!(Math.abs(p - exact) <= 0.01 * Math.abs(exact))) throw new Error(`q=${q}: ${p} vs exact ${exact}`);
        });
      }),
      { numRuns: 150 },
    );
  });

  it('small inputs: percentiles still within [min, max]; a constant input gives exactly that constant', () => {
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 10 }), value, fc.integer({ min: 1, max: 50 }), (xs, c, n) => {
        const r = agg.result(feed(xs));
        for (const p of pOf(r)) {
          expect(p).toBeGreaterThanOrEqual(r.min);
          expect(p).toBeLessThanOrEqual(r.max);
        }
        // the sketch alone would answer c within alpha; the clamp into [min, max] = [c, c] makes it exact
        const constant = agg.result(feed(Array(n).fill(c)));
        for (const p of pOf(constant)) expect(p).toBe(c);
      }),
      { numRuns: 150 },
    );
  });

  it('clampedQuantiles clamps the sketch answer into [min, max] and otherwise leaves it alone', () => {
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 100, size: 'max' }), value, value, (xs, a, b) => {
        const s = createSketch();
        for (const x of xs) sketchAdd(s, x);
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const raw = sketchQuantiles(s, SUMMARY_QUANTILES);
        const clamped = clampedQuantiles(s, lo, hi, SUMMARY_QUANTILES);
        raw.forEach((v, i) => expect(clamped[i]).toBe(Math.min(hi, Math.max(lo, v))));
      }),
    );
  });

  it('the sketch field of the result decodes to the same percentiles (before clamping)', () => {
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 200, size: 'max' }), (xs) => {
        const r = agg.result(feed(xs));
        const fromField = clampedQuantiles(sketchFromBase64(r.sketch), r.min, r.max, SUMMARY_QUANTILES);
        expect(fromField).toEqual(pOf(r));
        expect(sketchFromBase64(r.sketch).count).toBe(xs.length);
      }),
      { numRuns: 100 },
    );
  });

  it('an empty summary has count 0, NaN percentiles and no stddev', () => {
    const r = agg.result(agg.create());
    expect(r.count).toBe(0);
    for (const p of pOf(r)) expect(p).toBeNaN();
    expect(r.stddev).toBeNull();
  });
});

describe('summary: serialize / deserialize and merge', () => {
  it('round trip gives an accumulator with the same result, that keeps accumulating identically', () => {
    fc.assert(
      fc.property(fc.array(value, { maxLength: 200, size: 'max' }), fc.array(value, { maxLength: 20 }), (xs, more) => {
        const acc = feed(xs);
        const back = agg.deserialize(agg.serialize(acc));
        expect(agg.result(back)).toEqual(agg.result(acc));
        expect(back.moments).toEqual(acc.moments);
        for (const x of more) {
          agg.add(acc, x);
          agg.add(back, x);
        }
        expect(agg.result(back)).toEqual(agg.result(acc));
      }),
      { numRuns: 150 },
    );
  });

  it('malformed serialised text throws an Error', () => {
    const good = agg.serialize(feed([1, 2, 3]));
    const [m, sk] = good.split('|');
    for (const text of ['', 'nonsense', m, `${m}|`, `${m}|!!!`, `[1,2]|${sk}`, `${m}|${sk.slice(0, -4)}`]) {
      expect(() => agg.deserialize(text), text).toThrow(Error);
    }
  });

  it('merging a random split in random order equals the single pass', () => {
    const splitCase = fc.integer({ min: 1, max: 5 }).chain((k) =>
      fc.record({
        xs: fc.array(dyadic, { minLength: 2, maxLength: 300, size: 'max' }),
        parts: fc.array(fc.nat({ max: k - 1 }), { minLength: 300, maxLength: 300 }),
        order: fc.shuffledSubarray([...Array(k).keys()], { minLength: k, maxLength: k }),
        k: fc.constant(k),
      }),
    );
    fc.assert(
      fc.property(splitCase, ({ xs, parts, order, k }) => {
        const buckets: number[][] = Array.from({ length: k }, () => []);
        xs.forEach((x, i) => buckets[parts[i]].push(x));
        let acc = agg.create();
        for (const p of order) acc = agg.merge(acc, agg.deserialize(agg.serialize(feed(buckets[p]))));
        const merged = agg.result(acc);
        const single = agg.result(feed(xs));
        // sketch merge is exact and min/max are exact, so clamped percentiles agree exactly; dyadic sums are exact
        for (const f of ['count', 'sum', 'min', 'max', 'mean', 'sketch', ...P_FIELDS] as const) expect(merged[f], f).toBe(single[f]);
        expect(Math.abs(merged.stddev! - single.stddev!)).toBeLessThanOrEqual(1e-9 * single.stddev! + 1e-12 * Math.max(...xs.map(Math.abs)));
      }),
      { numRuns: 150 },
    );
  });
});
