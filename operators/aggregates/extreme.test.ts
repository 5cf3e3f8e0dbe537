/**
 * Hostile numbers (issue 5): every aggregate of the registry, fed extreme but valid finite values
 * (±1.8e308, 5e-324, -0, 2^53 ± 1, huge and tiny mixed), against exact BigInt oracles.
 * - Every figure is a finite number or null, and null only where docs/operators-aggregates.md says
 *   the figure is undefined ("Extreme values"): never NaN or ±Infinity, never null by accident.
 * - The exact aggregates stay exact (sum bit-identical to the BigInt sum in any order and merge
 *   tree; a sum is null exactly when the true sum is past the double range), the others within
 *   their documented bounds, scaled so the bounds mean something at 1e308.
 * - States round-trip and merge like one pass; results survive JSON unchanged.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { deepStrictEqual } from 'node:assert/strict';
import { aggregatorFor, type AggregateValue, type AnyAggregator } from './registry.js';
import { DEFAULT_QUANTILES, quantileName } from './percentiles.js';
import { arrivalOrderFree, feed, mergesLikeOnePass, mergeTree, roundTrips, sample, splitCase, T0, type Check } from './testing/laws.js';
import { bigSum, exactMeanOf, exactStddev, exactSumOf, exactVarianceOf, extremeValue, times2, toDouble, withinUlps } from '../testing/exact.js';
import type { Sample } from '../sample.js';
import { SUMMARY_QUANTILES, summaryAggregator, summaryFigures, type SummaryFigures, type SummaryResult } from './summary.js';
import { DEFAULT_ALPHA } from './ddsketch.js';
import { TumblingWindows, type WindowEmission } from '../windows/tumbling.js';

const M = Number.MAX_VALUE;
const stream = fc.array(sample({ value: extremeValue }), { maxLength: 60 });
const nonEmpty = fc.array(sample({ value: extremeValue }), { minLength: 1, maxLength: 60 });
const RUNS = { numRuns: 150 };

const values = (xs: readonly Sample[]) => xs.map((s) => s.value);
const maxAbs = (xs: readonly number[]) => xs.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
const exponent = (x: number) => (x === 0 ? 0 : Math.floor(Math.log2(Math.abs(x))));
/** Past the range by more than rounding: the figure must be null; within it by more than rounding: a number. */
const pastRange = (x: number) => Math.abs(x) > M * (1 + 1e-9);
const inRange = (x: number) => Math.abs(x) < M * (1 - 1e-9);

function fail(what: string, xs: readonly Sample[]): never {
  throw new Error(`${what}; values ${JSON.stringify(values(xs).map(String))}`);
}

/** null exactly where the exact figure is past the range (a number where it is clearly inside, either at the boundary). */
function nullIffPastRange(name: string, got: number | null, exact: number, xs: readonly Sample[]): void {
  if (got === null ? inRange(exact) : pastRange(exact)) fail(`${name} is ${got}, exact ${exact}`, xs);
}

/** What each aggregate of the registry is built with here (every impl of percentiles, both ratio modes). */
const CASES: [string, Record<string, unknown>][] = [
  ['count', {}],
  ['sum', {}],
  ['min', {}],
  ['max', {}],
  ['mean', {}],
  ['variance', {}],
  ['stddev', {}],
  ['rate', { window: '10s' }],
  ['rate', { window: 60_000, per: '1m', of: 'sum' }],
  ['ewma', { halfLife: '30s' }],
  ['first', {}],
  ['last', {}],
  ['distinct', {}],
  ['percentiles', {}],
  ['percentiles', { impl: 'hdr' }],
  ['percentiles', { impl: 'tdigest' }],
  ['ratio', { numerator: { metric: 'hits' }, denominator: { metric: ['hits', 'misses'] } }],
  ['ratio', { numerator: { tags: { status: 'hit' } }, denominator: { tags: { status: ['hit', 'miss'] } }, of: 'sum' }],
];
const label = ([name, options]: [string, Record<string, unknown>]) => `${name} ${JSON.stringify(options)}`;

/** The value at 0-based rank floor(q·(n − 1)) of the sorted values (the documented quantile). */
function exactQuantile(sorted: readonly number[], q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))];
}

/** Checks one result against the exact figures of its samples. */
function checkResult([name, options]: [string, Record<string, unknown>], got: AggregateValue, xs: readonly Sample[]): void {
  const vs = values(xs);
  const n = vs.length;
  const all = got === null ? [] : typeof got === 'number' ? [got] : Object.values(got);
  for (const v of all) if (v !== null && !Number.isFinite(v)) fail(`${name} gave ${v}`, xs);
  deepStrictEqual(JSON.parse(JSON.stringify(got)), got); // nothing turns into null on the way out
  const num = got as number | null;
  switch (name) {
    case 'count':
      return expect(num).toBe(n);
    case 'sum': {
      const exact = exactSumOf(vs);
      if (Number.isFinite(exact) ? num !== exact + 0 : num !== null) fail(`sum ${num}, exact ${exact}`, xs);
      return;
    }
    case 'min':
    case 'max':
      return expect(num).toBe(n ? (name === 'min' ? Math.min(...vs) : Math.max(...vs)) + 0 : null);
    case 'first':
    case 'last': {
      if (!n) return expect(num).toBeNull();
      // smallest (largest) ts, ties by the larger value
      const pick = [...xs].sort((a, b) => (name === 'first' ? a.ts - b.ts : b.ts - a.ts) || b.value - a.value)[0];
      return expect(num).toBe(pick.value + 0);
    }
    case 'mean': {
      if (!n) return expect(num).toBeNull();
      const exact = exactMeanOf(vs);
      if (num === null || !withinUlps(num, exact, 2)) fail(`mean ${num}, exact ${exact}`, xs);
      return;
    }
    case 'variance': {
      const v = exactVarianceOf(vs);
      if (!v) return expect(num).toBeNull();
      // Compare at the scale of the largest value: tolerance 1e-9 of the variance plus 1e-12·max².
      const k = exponent(maxAbs(vs));
      const exact = toDouble(v.num, v.den, -2148);
      nullIffPastRange('variance', num, exact, xs);
      if (num === null) return;
      const a = times2(num, -2 * k);
      const b = toDouble(v.num, v.den, -2148 - 2 * k);
      // (a variance below 2^-1022 rounds to a subnormal or 0: then it is compared as such)
      if (!(Math.abs(a - b) <= 1e-9 * b + 1e-12 * times2(maxAbs(vs), -k) ** 2) && !(exact < 2 ** -1022 && withinUlps(num, exact, 2))) fail(`variance ${num}, exact ${exact}`, xs);
      return;
    }
    case 'stddev': {
      const exact = exactStddev(vs);
      if (exact === null) return expect(num).toBeNull();
      nullIffPastRange('stddev', num, exact, xs);
      if (num !== null && !(Math.abs(num - exact) <= 1e-9 * exact + 1e-6 * maxAbs(vs))) fail(`stddev ${num}, exact ${exact}`, xs);
      return;
    }
    case 'rate': {
      if (options.of !== 'sum') return expect(num).toBe((n * 1000) / 10_000);
      // per = window = 1 min: the rate is the sum
      const exact = exactSumOf(vs);
      nullIffPastRange('rate', num, exact, xs);
      if (num !== null && !withinUlps(num, exact, 2)) fail(`rate ${num}, exact ${exact}`, xs);
      return;
    }
    case 'ewma': {
      if (!n) return expect(num).toBeNull();
      // A weighted mean: close to one done at the values' scale.
      const h = 30_000;
      const tMax = Math.max(...xs.map((s) => s.ts));
      const k = exponent(maxAbs(vs));
      let wx = 0;
      let w = 0;
      for (const s of xs) {
        const wi = 2 ** ((s.ts - tMax) / h);
        wx += wi * times2(s.value, -k);
        w += wi;
      }
      const want = times2(wx / w, k);
      // relative bound, but never below one subnormal step: the mean of 5e-324 and 0 is 2.5e-324, which rounds either way
      if (num === null || !(Math.abs(num - want) <= Math.max(1e-9 * maxAbs(vs), Number.MIN_VALUE))) fail(`ewma ${num}, expected ~${want}`, xs);
      return;
    }
    case 'distinct':
      return expect(num).toBe(new Set(vs.map((v) => v + 0)).size);
    case 'percentiles': {
      const ps = got as Record<string, number | null>;
      const sorted = [...vs].sort((a, b) => a - b);
      for (const q of DEFAULT_QUANTILES) {
        const est = ps[quantileName(q)];
        if (!n) {
          expect(est).toBeNull();
          continue;
        }
        if (est === null || est < sorted[0] || est > sorted[n - 1]) fail(`${quantileName(q)} ${est} outside [${sorted[0]}, ${sorted[n - 1]}]`, xs);
        const exact = exactQuantile(sorted, q);
        if (options.impl === undefined) {
          // DDSketch: within α = 0.005 of the value; magnitudes below 1e-300 count as 0.
          if (!(Math.abs(est - exact) <= 0.005 * Math.abs(exact) + 1e-300)) fail(`ddsketch ${quantileName(q)} ${est}, exact ${exact}`, xs);
        } else if (options.impl === 'tdigest') {
          // rank error max(0, L/n − q, q − H/n) ≤ δ + (m − ½)/n
          const L = vs.filter((v) => v < est).length;
          const H = vs.filter((v) => v <= est).length;
          const counts = new Map<number, number>();
          for (const v of vs) counts.set(v + 0, (counts.get(v + 0) ?? 0) + 1);
          const m = Math.max(...counts.values());
          const err = Math.max(0, L / n - q, q - H / n);
          if (!(err <= 0.01 + (m - 0.5) / n + 1e-12)) fail(`tdigest ${quantileName(q)} ${est}: rank error ${err}`, xs);
        }
        // hdr records magnitudes past resolution·(2^53 − 1) as that (documented): only the clamp applies.
      }
      return;
    }
    case 'ratio': {
      const bySum = options.of === 'sum';
      const inNum = (s: Sample) => (bySum ? s.tags?.status === 'hit' : s.metric === 'hits');
      const inDen = (s: Sample) => (bySum ? s.tags?.status === 'hit' || s.tags?.status === 'miss' : s.metric === 'hits' || s.metric === 'misses');
      const part = (f: (s: Sample) => boolean) => xs.filter(f).map((s) => (bySum ? s.value : 1));
      let a = bigSum(part(inNum));
      let b = bigSum(part(inDen));
      if (b === 0n) return expect(num).toBeNull();
      if (b < 0n) [a, b] = [-a, -b];
      const exact = toDouble(a, b, 0);
      nullIffPastRange('ratio', num, exact, xs);
      if (num !== null && !withinUlps(num, exact, 3)) fail(`ratio ${num}, exact ${exact}`, xs);
      return;
    }
    default:
      throw new Error(`no check for ${name}`);
  }
}

/** Variance and stddev merge within rounding of the spread; the others as their own tests say. */
const closeAtScale = (name: string): Check<AggregateValue> => (actual, expected, xs) => {
  if (typeof actual !== 'number' || typeof expected !== 'number') return deepStrictEqual(actual, expected);
  const k = exponent(maxAbs(values(xs)));
  const [a, b] = name === 'variance' ? [times2(actual, -2 * k), times2(expected, -2 * k)] : [times2(actual, -k), times2(expected, -k)];
  if (!(Math.abs(a - b) <= 1e-9 * Math.abs(b) + 1e-9)) throw new Error(`${name}: merged ${actual}, one pass ${expected}`);
};

describe('every aggregate of the registry with extreme values', () => {
  for (const c of CASES) {
    const agg = aggregatorFor(c[0], c[1], 'extreme.test') as AnyAggregator;
    it(`${label(c)}: finite or null (null only where documented), equal to the exact oracle within its bound, unchanged by JSON`, () =>
      fc.assert(
        fc.property(stream, (xs) => {
          checkResult(c, agg.result(feed(agg, xs)), xs);
        }),
        RUNS,
      ));
    const exactMerge = !(c[0] === 'variance' || c[0] === 'stddev' || c[1].impl === 'tdigest');
    it(`${label(c)}: merged splits ${exactMerge ? 'equal one pass' : 'stay within rounding (and the bound)'}; states round-trip and keep working`, () => {
      if (c[1].impl === 'tdigest') fc.assert(fc.property(splitCase(stream), (s) => {
          checkResult(c, agg.result(mergeTree(agg, s)), s.xs);
        }), RUNS);
      else fc.assert(mergesLikeOnePass(agg, stream, exactMerge ? undefined : closeAtScale(c[0])), RUNS);
      fc.assert(roundTrips(agg, stream, c[1].impl === 'tdigest' || !exactMerge ? closeAtScale(c[0]) : undefined), { numRuns: 60 });
    });
    if (['sum', 'mean', 'min', 'max', 'ewma', 'first', 'last', 'distinct', 'ratio'].includes(c[0]) || (c[0] === 'percentiles' && c[1].impl !== 'tdigest'))
      it(`${label(c)}: the same bits in any arrival order`, () => fc.assert(arrivalOrderFree(agg, stream), RUNS));
  }

  it('sum: partial sums never overflow, so only the true total decides (1e308 + 1e308 − 1e308 is 1e308 in every order)', () => {
    const agg = aggregatorFor('sum', {}, 'x');
    const mean = aggregatorFor('mean', {}, 'x');
    const s = (value: number, i: number): Sample => ({ metric: 'm', value, ts: T0 + i });
    for (const order of [[1e308, 1e308, -1e308], [1e308, -1e308, 1e308], [-1e308, 1e308, 1e308]]) {
      expect(agg.result(feed(agg, order.map(s)))).toBe(1e308);
      expect(mean.result(feed(mean, order.map(s)))).toBe(1e308 / 3);
    }
    const past = [M, M, 1].map(s);
    expect(agg.result(feed(agg, past))).toBeNull(); // 3.6e308: past the range, and said so
    expect(mean.result(feed(mean, past))).toBe(exactMeanOf([M, M, 1]));
    // each half overflowed before; merged they are in range again
    const a = feed(agg, [M, M].map(s));
    const b = feed(agg, [-M, -M, 5e-324].map(s));
    expect(agg.result(a)).toBeNull();
    expect(agg.result(agg.merge(a, agg.deserialize(agg.serialize(b))))).toBe(5e-324);
  });

  it('variance and stddev of huge and tiny values are their true figures (they used to read 0 or null)', () => {
    const f = (name: string, vs: number[]) => {
      const agg = aggregatorFor(name, {}, 'x');
      return agg.result(feed(agg, vs.map((value, i) => ({ metric: 'm', value, ts: T0 + i }))));
    };
    expect(f('stddev', [1e308, 1e308, -1e308])).toBeCloseTo(exactStddev([1e308, 1e308, -1e308])!, -300);
    expect(f('variance', [1e308, 1e308, -1e308])).toBeNull(); // 1.3e616: past the range
    expect(f('stddev', [M, -M])).toBeNull(); // √2·M
    expect((f('stddev', [1e160, 1e160, 1]) as number) / exactStddev([1e160, 1e160, 1])!).toBeCloseTo(1, 12);
    expect((f('stddev', [1e-170, 3e-170]) as number) / exactStddev([1e-170, 3e-170])!).toBeCloseTo(1, 12);
    expect(f('variance', [1e-170, 3e-170])).toBe(0); // 2e-340 rounds to 0 in a double
  });
});

// ---- the default pipeline's summary (engine/worker.ts) ---------------------------------------

describe('the default summary aggregator (engine/worker.ts, tables weir_agg_*) with extreme values', () => {
  const agg = summaryAggregator();
  const nums = fc.array(extremeValue, { minLength: 1, maxLength: 60 });

  /** Its sum and mean are plain running sums (carried past 2^1022): within n·ε·Σ|x| of the exact ones, compared at the values' scale. */
  function checkFigures(f: SummaryFigures, vs: readonly number[]): void {
    const n = vs.length;
    const what = () => `${JSON.stringify(f)}; values ${JSON.stringify(vs.map(String))}`;
    for (const [k, v] of Object.entries(f)) if (v !== null && !Number.isFinite(v)) throw new Error(`${k} is ${v}: ${what()}`);
    deepStrictEqual(JSON.parse(JSON.stringify(f)), f);
    expect(f.count).toBe(n);
    expect([f.min, f.max]).toEqual([Math.min(...vs) + 0, Math.max(...vs) + 0]);
    const k = exponent(maxAbs(vs));
    const tol = n * 2 ** -52 * vs.reduce((s, x) => s + Math.abs(times2(x, -k)), 0) + 2 ** -1000;
    const exactSum = toDouble(bigSum(vs), 1n, -1074 - k);
    if (f.sum === null) {
      if (!(Math.abs(exactSum) + tol >= times2(M, -k))) throw new Error(`sum null, exact ${exactSumOf(vs)}: ${what()}`);
    } else if (!(Math.abs(times2(f.sum, -k) - exactSum) <= tol)) throw new Error(`sum ${f.sum}, exact ${exactSumOf(vs)}: ${what()}`);
    if (!(Math.abs(times2(f.mean, -k) - exactSum / n) <= tol / n + 2 ** -52 * Math.abs(exactSum / n)) && !withinUlps(f.mean, exactMeanOf(vs), 2)) throw new Error(`mean ${f.mean}, exact ${exactMeanOf(vs)}: ${what()}`);
    const sd = exactStddev(vs);
    if (sd === null) expect(f.stddev).toBeNull();
    else {
      nullIffPastRange('stddev', f.stddev, sd, vs.map((value) => ({ metric: 'm', value, ts: 0 })));
      if (f.stddev !== null && !(Math.abs(f.stddev - sd) <= 1e-9 * sd + 1e-6 * maxAbs(vs))) throw new Error(`stddev ${f.stddev}, exact ${sd}: ${what()}`);
    }
    const sorted = [...vs].sort((a, b) => a - b);
    for (const [i, q] of SUMMARY_QUANTILES.entries()) {
      const est = [f.p50, f.p90, f.p95, f.p99, f.p999][i];
      const exact = exactQuantile(sorted, q);
      if (est < sorted[0] || est > sorted[n - 1] || !(Math.abs(est - exact) <= DEFAULT_ALPHA * Math.abs(exact) + 1e-300)) throw new Error(`p${q} ${est}, exact ${exact}: ${what()}`);
    }
  }

  it('every figure is finite or null (sum null only past ±1.8e308, stddev only below two events or past the range), within its bound of the exact figure, and unchanged by JSON', () =>
    fc.assert(
      fc.property(nums, (vs) => {
        const acc = agg.create();
        for (const v of vs) agg.add(acc, v);
        checkFigures(summaryFigures(acc), vs);
        const { sketch, ...rest } = agg.result(acc);
        expect(typeof sketch).toBe('string');
        expect(rest).toEqual(summaryFigures(acc));
      }),
      { numRuns: 300 },
    ));

  it('serialised states (as checkpoints would hold them) give the same figures; merged splits keep the bounds', () =>
    fc.assert(
      fc.property(nums, fc.array(fc.nat({ max: 3 }), { minLength: 60, maxLength: 60 }), (vs, assign) => {
        const parts = [0, 1, 2, 3].map(() => agg.create());
        const one = agg.create();
        vs.forEach((v, i) => {
          agg.add(one, v);
          agg.add(parts[assign[i]], v);
        });
        expect(summaryFigures(agg.deserialize(agg.serialize(one)))).toEqual(summaryFigures(one));
        const merged = parts.map((p) => agg.deserialize(agg.serialize(p))).reduce((a, b) => agg.merge(a, b));
        checkFigures(summaryFigures(merged), vs);
      }),
      { numRuns: 200 },
    ));

  it('a huge value in one series never changes another series\' rows (tumbling windows of 10 s and 1 min)', () =>
    fc.assert(
      fc.property(
        fc.array(fc.record({ s: fc.constantFrom('lat\u0001a', 'lat\u0001b', 'lat\u0001h'), ts: fc.integer({ min: 0, max: 119_999 }), v: fc.double({ min: -1e6, max: 1e6, noNaN: true }), x: extremeValue }), { maxLength: 120 }),
        fc.array(fc.nat({ max: 119 }), { maxLength: 4 }),
        (events, cuts) => {
          // series h gets the extreme values; a and b ordinary ones
          const all = events.map((e) => ({ series: e.s, ts: e.ts, value: e.s.endsWith('h') ? e.x : e.v }));
          const run = (evs: typeof all) => {
            const w = new TumblingWindows({ specs: [{ name: '10s', sizeMs: 10_000 }, { name: '1m', sizeMs: 60_000 }], allowedLatenessMs: 0 }, agg);
            const rows: WindowEmission<SummaryResult>[] = [];
            const bounds = [...new Set([0, ...cuts.filter((c) => c < events.length), events.length])].sort((a, b) => a - b);
            for (let i = 0; i + 1 < bounds.length; i++) {
              const b = events.slice(bounds[i], bounds[i + 1]).map((_, j) => all[bounds[i] + j]).filter((e) => evs.includes(e));
              w.process({ series: b.map((e) => e.series), ts: b.map((e) => e.ts), values: b.map((e) => e.value), wmBefore: -1, wmAfter: -1 }, (e) => rows.push(e));
            }
            w.process({ series: [], ts: [], values: [], wmBefore: -1, wmAfter: 1e9 }, (e) => rows.push(e));
            return rows;
          };
          const withHostile = run(all);
          const without = run(all.filter((e) => !e.series.endsWith('h')));
          const order = (rows: WindowEmission<SummaryResult>[]) => [...rows].sort((a, b) => `${a.window}|${a.start}|${a.series}|${a.revision}`.localeCompare(`${b.window}|${b.start}|${b.series}|${b.revision}`));
          expect(order(withHostile.filter((r) => !r.series.endsWith('h')))).toEqual(order(without));
          expect(withHostile.some((r) => r.series.endsWith('h'))).toBe(all.some((e) => e.series.endsWith('h')));
          for (const r of withHostile) {
            const { sketch: _s, ...figures } = r.result;
            deepStrictEqual(JSON.parse(JSON.stringify(figures)), figures);
          }
        },
      ),
      { numRuns: 150 },
    ));
});
