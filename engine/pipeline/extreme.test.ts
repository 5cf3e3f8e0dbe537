/**
 * Hostile numbers (issue 5) through a declared pipeline's runtime: every window type (tumbling,
 * sliding, session, rolling, global) with every aggregate, scores, trend and alerts, fed extreme
 * but valid finite values on one key.
 * - Every column of every row is a finite number or null (never NaN or ±Infinity), so JSON and
 *   QuestDB carry exactly what was computed.
 * - The hostile key never changes another key's rows or alerts: a run with it gives, for every
 *   other key, exactly the rows of a run without it (scores use static normalisers here; running
 *   ones compare keys by design).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { deepStrictEqual } from 'node:assert/strict';
import { PipelineRuntime, type KeyedSample, type PipelineResult } from './runtime.js';
import { parsePipeline } from './spec.js';
import type { AlertEvent } from './sink.js';
import { EXTREMES, extremeValue } from '../../operators/testing/exact.js';
import { decodeMessage } from '../decode.js';

const WINDOWS = [
  { type: 'tumbling', size: '10s' },
  { type: 'sliding', size: '20s', slide: '10s' },
  { type: 'session', gap: '5s' },
  { type: 'rolling', pane: '10s', sizes: ['30s'] },
  { type: 'global' },
] as const;

function specFor(window: (typeof WINDOWS)[number]) {
  const fixed = window.type === 'tumbling' || window.type === 'sliding';
  return parsePipeline({
    name: 'hostile',
    source: { metrics: ['m', 'n'] },
    window,
    ...(window.type === 'global' ? { trigger: { count: 1 } } : {}),
    aggregates: {
      n: { fn: 'count' },
      total: { fn: 'sum' },
      lo: { fn: 'min' },
      hi: { fn: 'max' },
      avg: { fn: 'mean' },
      spread: { fn: 'variance' },
      sd: { fn: 'stddev' },
      ...(fixed ? { per_s: { fn: 'rate', of: 'sum' } } : {}),
      smooth: { fn: 'ewma', halfLife: '5s' },
      first_v: { fn: 'first' },
      last_v: { fn: 'last' },
      kinds: { fn: 'distinct' },
      lat: { fn: 'percentiles', q: [0.5, 0.99] },
      share: { fn: 'ratio', numerator: { metric: 'm' }, denominator: { metric: ['m', 'n'] }, of: 'sum' },
    },
    score: {
      normalise: { avg: { minmax: { min: -1e308, max: 1e308 } }, sd: { log: { max: 1e300 } } },
      components: { level: { avg: 1, total: 1e-300 }, noise: { sd: 2, hi: -1 } },
      profiles: { best: { level: 1e308, noise: 1 } },
    },
    ...(window.type === 'session' || window.type === 'global' ? {} : { trend: { field: 'avg' } }),
    alerts: [
      { name: 'huge_mean', field: 'avg', op: '>', threshold: 1e300 },
      { name: 'deep_sum', field: 'total', op: '<=', threshold: -1e307 },
      ...(window.type === 'session' || window.type === 'global' ? [] : [{ name: 'swing', field: 'trend_pct', op: '>=' as const, threshold: 1e10 }]),
    ],
  });
}

const eventArb = fc.record({
  key: fc.constantFrom('a', 'b', 'h'),
  metric: fc.constantFrom('m', 'n'),
  ts: fc.integer({ min: 0, max: 59_999 }),
  ordinary: fc.integer({ min: -1000, max: 1000 }),
  hostile: extremeValue,
});

describe('a declared pipeline fed extreme values on one key', () => {
  for (const window of WINDOWS) {
    const spec = specFor(window);
    it(`${window.type}: every column is finite or null, and the hostile key changes no other key's rows or alerts`, () =>
      fc.assert(
        fc.property(fc.array(eventArb, { maxLength: 80 }), fc.array(fc.nat({ max: 79 }), { maxLength: 4 }), (events, cuts) => {
          const samples: KeyedSample[] = events.map((e) => ({ key: e.key, metric: e.metric, ts: e.ts, value: e.key === 'h' ? e.hostile : e.ordinary }));
          const run = (keep: (s: KeyedSample) => boolean) => {
            const rt = new PipelineRuntime(spec);
            const results: PipelineResult[] = [];
            const alerts: AlertEvent[] = [];
            const bounds = [...new Set([0, ...cuts.filter((c) => c < samples.length), samples.length])].sort((a, b) => a - b);
            for (let i = 0; i + 1 < bounds.length; i++) {
              // the watermark comes from the test, not from the events: both runs see the same one
              const wm = (i * 60_000) / bounds.length - 5_000;
              const out = rt.process(samples.slice(bounds[i], bounds[i + 1]).filter(keep), wm, wm, i);
              results.push(...out.results);
              alerts.push(...out.alerts);
            }
            const end = rt.tick(1e9, 99);
            results.push(...end.results);
            alerts.push(...end.alerts);
            return { results, alerts };
          };
          const all = run(() => true);
          for (const r of all.results)
            for (const [c, v] of Object.entries(r)) {
              if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`${r.key} ${r.window} ${r.start}: ${c} is ${v}`);
            }
          for (const a of all.alerts) expect(Number.isFinite(a.value)).toBe(true);
          deepStrictEqual(JSON.parse(JSON.stringify(all.results)), all.results);
          const without = run((s) => s.key !== 'h');
          // rows are upserts keyed by (key, window, start): compare each key's rows in order (the
          // order across keys of one firing follows key insertion and is not part of the result)
          const others = <T extends { key: string }>(xs: T[]) => xs.filter((x) => x.key !== 'h').map((x) => ({ ...x, emittedAt: 0 })).sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
          expect(others(all.results)).toEqual(others(without.results));
          expect(others(all.alerts)).toEqual(others(without.alerts));
        }),
        { numRuns: 60 },
      ));
  }

  it('the hostile key itself: its sum is null past ±1.8e308 while its mean, score and trend are numbers, and its alerts fire and resolve', () => {
    const rt = new PipelineRuntime(specFor(WINDOWS[0]));
    const s = (value: number, ts: number): KeyedSample => ({ key: 'h', metric: 'm', ts, value });
    const out = rt.process([s(1e308, 0), s(1e308, 1), s(1e308, 2), s(-1e308, 10_000), s(-1e308, 10_001)], -1, 30_000, 0);
    const first = out.results.find((r) => r.start === 0)!;
    expect(first.total).toBeNull(); // 3e308
    expect(first.avg).toBe(1e308);
    expect(first.sd).toBe(0);
    expect(typeof first.best).toBe('number');
    const second = out.results.find((r) => r.start === 10_000)!;
    expect(second.total).toBeNull(); // -2e308
    expect(second.trend_pct).toBe(-2); // from 1e308 to -1e308: the difference overflows, the halves do not
    expect(second.trend_dir).toBe(-1);
    // huge_mean fires on 1e308 and resolves on -1e308; deep_sum never sees a value: a sum past the
    // range is null, and null is "no value" to alerts (docs/operators-aggregates.md, Extreme values)
    expect(out.alerts.map((a) => `${a.rule} ${a.state}@${a.at} ${a.value}`)).toEqual(['huge_mean firing@10000 1e+308', 'huge_mean resolved@20000 -1e+308']);
  });
});

describe('the decoder takes any finite value (the contract bounds nothing else)', () => {
  it('±1.8e308, 5e-324, -0 and 2^53 ± 1 come through exactly; 1e309 (Infinity once parsed) is refused at its index, its neighbours kept', () => {
    const texts = [...EXTREMES.map((v) => (Object.is(v, -0) ? '-0' : String(v))), '1e309', '-1e309', '1.7976931348623159e308'];
    const body = `[${texts.map((t, i) => `{"key":"k${i}","value":${t},"ts":1700000000000}`).join(',')}]`;
    const accepted: [string, number][] = [];
    const rejected: [number, string][] = [];
    const limits = { maxPayloadBytes: 1 << 20, maxEventsPerMessage: 10_000, maxKeyLength: 256, maxTags: 16, maxFutureMs: 3_600_000 };
    decodeMessage('weir.events.lat', new TextEncoder().encode(body), () => 0, 1_700_000_000_000, limits, {
      accept: (_m, key, _ts, value) => accepted.push([key, value]),
      reject: (reason, index) => rejected.push([index, reason]),
    });
    expect(accepted).toEqual(EXTREMES.map((v, i) => [`k${i}`, v]));
    const n = EXTREMES.length;
    expect(rejected.map(([i]) => i)).toEqual([n, n + 1, n + 2]);
    for (const [, reason] of rejected) expect(reason).toMatch(/^event\.value must be a finite number, got -?Infinity \(key k\d+\)/);
  });
});
