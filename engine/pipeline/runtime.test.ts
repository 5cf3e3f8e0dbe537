import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PipelineRuntime, type KeyedSample, type PipelineResult } from './runtime.js';
import { parsePipeline, type PipelineSpec } from './spec.js';

const sampleArb = fc.record({
  metric: fc.constantFrom('req', 'lat', 'other'),
  key: fc.constantFrom('a', 'b', 'c'),
  ts: fc.integer({ min: 0, max: 59_999 }),
  value: fc.integer({ min: -50, max: 1000 }),
  tags: fc.option(fc.record({ variant: fc.constantFrom('A', 'B'), env: fc.constantFrom('prod', 'dev') }, { requiredKeys: [] }), { nil: undefined }),
});

/** The newest result per (key, window, start): what the table holds after upserts. */
function table(results: PipelineResult[]) {
  const rows = new Map<string, PipelineResult>();
  for (const r of results) rows.set(`${r.key}|${r.window}|${r.start}`, r);
  return rows;
}

describe('PipelineRuntime vs brute force', () => {
  const spec = parsePipeline({
    name: 'ops',
    source: { metrics: ['req', 'lat'], where: { tags: { env: 'prod' } } },
    keyBy: ['tag:variant', 'key'],
    window: { type: 'tumbling', size: '10s' },
    aggregates: { n: { fn: 'count' }, reqs: { fn: 'count', metric: 'req' }, lat_sum: { fn: 'sum', metric: 'lat' }, lat_max: { fn: 'max', metric: 'lat' } },
  });

  it('tumbling: every window of every key equals a recomputation from the events it kept, in any batch split', () => {
    fc.assert(
      fc.property(fc.array(sampleArb, { maxLength: 200 }), fc.array(fc.nat({ max: 199 }), { maxLength: 5 }), (samples, cuts) => {
        const rt = new PipelineRuntime(spec);
        const out: PipelineResult[] = [];
        const bounds = [...new Set([0, ...cuts.filter((c) => c < samples.length), samples.length])].sort((a, b) => a - b);
        // Watermark stays behind every event (no lateness here), then one tick closes everything.
        for (let i = 0; i + 1 < bounds.length; i++) out.push(...rt.process(samples.slice(bounds[i], bounds[i + 1]) as KeyedSample[], -1, -1, 0).results);
        out.push(...rt.tick(1e12, 1).results);
        const kept = samples.filter((s) => s.metric !== 'other' && s.tags?.env === 'prod' && s.tags.variant !== undefined);
        const want = new Map<string, { n: number; reqs: number; lat: number[] }>();
        for (const s of kept) {
          const id = `${s.tags!.variant}|${s.key}|10s|${s.ts - (s.ts % 10_000)}`;
          const w = want.get(id) ?? { n: 0, reqs: 0, lat: [] };
          w.n++;
          if (s.metric === 'req') w.reqs++;
          else w.lat.push(s.value);
          want.set(id, w);
        }
        const got = table(out);
        expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
        for (const [id, w] of want) {
          const r = got.get(id)!;
          expect({ n: r.n, reqs: r.reqs, lat_sum: r.lat_sum, lat_max: r.lat_max, final: r.final }, id).toEqual({
            n: w.n,
            reqs: w.reqs,
            lat_sum: w.lat.reduce((a, b) => a + b, 0), // sum is 0 when empty
            lat_max: w.lat.length ? Math.max(...w.lat) : null,
            final: true,
          });
        }
        const skippedNoTag = samples.filter((s) => s.metric !== 'other' && s.tags?.env === 'prod' && s.tags.variant === undefined).length;
        expect(rt.skipped.no_key_tag ?? 0).toBe(skippedNoTag);
      }),
      { numRuns: 150 },
    );
  });

  it('global: one running result per key, updated once per batch in which the key changed', () => {
    const g = parsePipeline({ name: 'films', source: { metrics: ['rating', 'click'] }, window: { type: 'global' }, aggregates: { rating: { fn: 'last', metric: 'rating' }, clicks: { fn: 'sum', metric: 'click' } } });
    fc.assert(
      fc.property(fc.array(fc.array(fc.record({ metric: fc.constantFrom('rating', 'click'), key: fc.constantFrom('f1', 'f2'), ts: fc.integer({ min: 0, max: 1000 }), value: fc.integer({ min: 0, max: 10 }) }), { maxLength: 20 }), { maxLength: 6 }), (batches) => {
        const rt = new PipelineRuntime(g);
        const all: PipelineResult[] = [];
        for (const b of batches) {
          const res = rt.process(b as KeyedSample[], 0, 0, 0).results;
          expect(res.map((r) => r.key).sort()).toEqual([...new Set(b.map((s) => s.key))].sort());
          all.push(...res);
        }
        const events = batches.flat();
        for (const key of ['f1', 'f2']) {
          const mine = events.filter((e) => e.key === key);
          if (!mine.length) continue;
          const last = all.filter((r) => r.key === key).at(-1)!;
          const ratings = mine.filter((e) => e.metric === 'rating');
          // last by event time; among equal times the larger value (the aggregator's documented tie-break)
          const newest = ratings.reduce<(typeof ratings)[number] | null>((m, e) => (!m || e.ts > m.ts || (e.ts === m.ts && e.value > m.value) ? e : m), null);
          expect(last.rating).toBe(newest ? newest.value : null);
          const clicks = mine.filter((e) => e.metric === 'click').map((e) => e.value);
          expect(last.clicks).toBe(clicks.reduce((a, b) => a + b, 0));
          expect(last.window).toBe('global');
          const mineOut = all.filter((r) => r.key === key);
          expect(mineOut.map((r) => r.revision)).toEqual(mineOut.map((_, i) => i));
          expect(mineOut.every((r) => r.final && r.start === 0)).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('PipelineRuntime: rate takes the window length', () => {
  it('a tumbling rate is count per second of the window; a global rate is refused with its path', () => {
    const rt = new PipelineRuntime(parsePipeline({ name: 'r', source: { metrics: ['x'] }, window: { type: 'tumbling', size: '10s' }, aggregates: { per_s: { fn: 'rate' } } }));
    const samples = Array.from({ length: 25 }, (_, i) => ({ metric: 'x', key: 'k', ts: 1000 + i, value: 1 }));
    rt.process(samples, -1, -1, 0);
    const [r] = rt.tick(1e12, 1).results;
    expect(r.per_s).toBe(2.5);
    expect(() => new PipelineRuntime(parsePipeline({ name: 'g', source: { metrics: ['x'] }, window: { type: 'global' }, aggregates: { per_s: { fn: 'rate' } } }))).toThrow(/pipeline g: aggregates\.per_s: rate needs a fixed window length/);
  });
});

describe('PipelineRuntime: what it refuses, with the pipeline named', () => {
  const session = { source: { metrics: ['x'] }, window: { type: 'session', gap: '5m' }, aggregates: { n: { fn: 'count' } } } as const;

  it('a session window with maxDuration (the operator does not bound sessions)', () => {
    const spec = parsePipeline({ ...session, name: 'visits', window: { ...session.window, maxDuration: '1h' } });
    expect(() => new PipelineRuntime(spec)).toThrow(Error);
    expect(() => new PipelineRuntime(spec)).toThrow(/pipeline visits\b.*maxDuration/);
    expect(() => new PipelineRuntime(parsePipeline({ ...session, name: 'visits' }))).not.toThrow();
  });

  it('a trend on a session window (no period to compare with): the format refuses it, and so does the runtime if handed one', () => {
    expect(() => parsePipeline({ ...session, name: 'visit_trend', trend: { field: 'n' } }, 'visit_trend.yaml')).toThrow(/visit_trend\.yaml: trend: .*session/);
    // a spec built in code, past the format's checks
    const spec: PipelineSpec = { ...parsePipeline({ ...session, name: 'visit_trend', window: { type: 'tumbling', size: '10s' }, trend: { field: 'n' } }), window: { type: 'session', gap: 300_000 } };
    expect(() => new PipelineRuntime(spec)).toThrow(Error);
    expect(() => new PipelineRuntime(spec)).toThrow(/pipeline visit_trend\b.*trend.*session/);
  });

  it('every other stage on every window it applies to builds (alerts, debounce, score, trend)', () => {
    const stages = {
      debounce: { wait: '2s', maxWait: '10s' },
      score: { components: { c: { n: 1 } }, profiles: { p: { c: 1 } } },
      alerts: [{ name: 'busy', field: 'n', op: '>', threshold: 5 }],
    } as const;
    for (const window of [{ type: 'tumbling', size: '10s' }, { type: 'sliding', size: '20s', slide: '10s' }, { type: 'rolling', pane: '1d', sizes: ['7d', '30d'] }] as const)
      expect(() => new PipelineRuntime(parsePipeline({ ...session, ...stages, name: 'all', window, trend: { field: 'n' } })), window.type).not.toThrow();
    expect(() => new PipelineRuntime(parsePipeline({ ...session, ...stages, name: 'all' })), 'session').not.toThrow();
    expect(() => new PipelineRuntime(parsePipeline({ ...session, ...stages, name: 'all', window: { type: 'global' } }))).not.toThrow();
  });
});
