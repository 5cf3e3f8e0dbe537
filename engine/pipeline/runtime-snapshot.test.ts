/**
 * PipelineRuntime.snapshot()/restore(), the state a pipeline checkpoint holds: random event
 * streams (out of order, tags that `where` and keyBy skip, random batch splits, watermarks that
 * never go back, ticks, processing time that moves on and sometimes steps back) through every
 * window type with every later stage (debounce, score with running normalisers, trend, alerts).
 * The run is cut after a random call, snapshotted, restored into a fresh runtime, and both go on
 * with the same calls: every later output (results and alert transitions) and every readout
 * (late and skip counts, debounce counters, top-K of profiles) must be identical.
 *
 * Up to the order within one call: the window operator's snapshot keeps its state, not the order
 * in which keys whose timers fall due at the same watermark come out of its timer heap (its own
 * tests compare each call's emissions sorted). That order reaches a row's figures only through
 * running score normalisers (zscore, rank, open minmax), where a row gets the score as of its own
 * update, so with those the score columns are left out of the comparison; with static
 * normalisers they are compared too.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PipelineRuntime, type KeyedSample, type RuntimeOutput } from './runtime.js';
import { parsePipeline, type PipelineInput, type PipelineSpec } from './spec.js';
import { call, FINAL_WM, stepsOf, type Ev, type Step } from './testing/streams.js';


/**
 * Random events over [0, span) for keys a, b, c (metric m, or x which the pipelines do not read;
 * a tag env the `where` filter looks at, and sometimes a tag v that keyBy may need), delivered
 * roughly in event time (delays up to `disorder`, a few stragglers), cut into batches, with
 * ticks between them; the watermark trails the newest event by a random lag (a tick sometimes
 * passes an older one), `now` mostly grows.
 */
function streamArb(span: number, disorder: number, maxLag: number) {
  const ev = fc.record({
    metric: fc.constantFrom('m', 'm', 'm', 'x'),
    key: fc.constantFrom('a', 'b', 'c'),
    ts: fc.integer({ min: 0, max: span - 1 }),
    value: fc.oneof(fc.constant(0), fc.integer({ min: -5, max: 20 }), fc.double({ min: -10, max: 10, noNaN: true })),
    env: fc.constantFrom('prod', 'prod', 'prod', 'dev'),
    v: fc.option(fc.constantFrom('A', 'B'), { freq: 8 }),
    delay: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: disorder }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: span }) }),
  });
  const params = fc.record({
    lag: fc.integer({ min: -Math.floor(maxLag / 4), max: maxLag }),
    before: fc.constantFrom(0, 0.5, 1),
    nowDelta: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 3000 }) }, { weight: 1, arbitrary: fc.integer({ min: -2000, max: 0 }) }),
    tick: fc.option(fc.record({ wm: fc.integer({ min: 0, max: maxLag }), nowDelta: fc.integer({ min: 0, max: 5000 }), back: fc.boolean() }), { freq: 3 }),
  });
  return fc
    .record({ events: fc.array(ev, { maxLength: 120, size: 'max' }), cuts: fc.array(fc.nat({ max: 119 }), { maxLength: 14, size: 'max' }), params: fc.array(params, { minLength: 15, maxLength: 15 }) })
    .map(({ events, cuts, params }) => stepsOf(events, cuts, params, (e): Ev => ({ metric: e.metric, key: e.key, ts: e.ts, value: e.value, tags: e.v === null ? { env: e.env } : { env: e.env, v: e.v } }), { now0: 1_000_000, drain: [1_000_000, 2_000_000] }));
}


const aggregates = {
  n: { fn: 'count' },
  total: { fn: 'sum' },
  lo: { fn: 'min' },
  avg: { fn: 'mean' },
  p: { fn: 'percentiles', q: [0.5, 0.9] },
  uniq: { fn: 'distinct' },
} as const;

const scoreOf = (running: boolean) =>
  ({
    normalise: running ? { n: { rank: {} }, total: { zscore: {} }, avg: { minmax: {} } } : { n: { log: { max: 100 } }, total: { capped: { cap: 50 } }, avg: { minmax: { min: -10, max: 20 } } },
    components: { volume: { n: 1, total: 0.5 }, level: { avg: 1 } },
    profiles: { overall: { volume: 0.7, level: 0.3 } },
    topK: 2,
  }) as const;
const SCORE_COLUMNS = ['volume', 'level', 'overall'];

const alerts = [
  { name: 'busy', field: 'n', op: '>', threshold: 2, resolve: 1, for: '5s' },
  { name: 'low', field: 'avg', op: '<', threshold: 0 },
] as const;

const windowArb = fc.constantFrom<PipelineInput['window']>(
  { type: 'tumbling', size: '10s' },
  { type: 'sliding', size: '20s', slide: '10s' },
  { type: 'session', gap: '5s' },
  { type: 'rolling', pane: '10s', sizes: ['30s', '60s'] },
  { type: 'global' },
);

/** A pipeline of the given window with a random choice of the later stages. */
const specArb = fc
  .record({
    window: windowArb,
    trigger: fc.constantFrom<PipelineInput['trigger']>(undefined, { early: '1s' }, { count: 2 }),
    lateness: fc.constantFrom(0, 10_000, 30_000),
    debounce: fc.constantFrom<PipelineInput['debounce']>(undefined, { wait: '2s' }, { wait: '1s', maxWait: '3s' }, { wait: '2s', leading: true }),
    score: fc.constantFrom<'none' | 'static' | 'running'>('none', 'static', 'running'),
    trend: fc.boolean(),
    alerts: fc.boolean(),
    keyBy: fc.constantFrom<PipelineInput['keyBy']>('key', ['tag:v', 'key']),
  })
  .map((c): { spec: PipelineSpec; running: boolean } => ({
    running: c.score === 'running',
    spec: parsePipeline({
      name: 'snap',
      source: { metrics: ['m'], where: { tags: { env: 'prod' } } },
      keyBy: c.keyBy,
      window: c.window,
      trigger: c.trigger,
      allowedLateness: c.lateness,
      aggregates,
      debounce: c.debounce,
      score: c.score === 'none' ? undefined : scoreOf(c.score === 'running'),
      trend: c.trend && c.window.type !== 'session' && c.window.type !== 'global' ? { field: 'total', threshold: 0.1 } : undefined,
      alerts: c.alerts ? alerts : [],
    }),
  }));

/** Everything a caller can read from a runtime besides its outputs (top-K of profiles only with static normalisers). */
function readouts(rt: PipelineRuntime, running: boolean) {
  return {
    late: rt.lateCount,
    skipped: { ...rt.skipped },
    debounced: rt.debounced,
    state: rt.stateSize(),
    top: running ? null : rt.windows.map((w) => rt.profiles.map((p) => rt.topProfile(w, p, 3))),
  };
}

const order = (a: unknown, b: unknown) => {
  const x = JSON.stringify(a);
  const y = JSON.stringify(b);
  return x < y ? -1 : x > y ? 1 : 0;
};

/** One call's output in a canonical order; without the score columns when normalisers are running. */
function canonical(out: RuntimeOutput, running: boolean) {
  const results = out.results.map((r) => {
    if (!running) return r;
    const copy: Record<string, unknown> = { ...r };
    for (const c of SCORE_COLUMNS) delete copy[c];
    return copy;
  });
  return { results: results.sort(order), alerts: [...out.alerts].sort(order) };
}

describe('PipelineRuntime snapshot and restore', () => {
  it('cut anywhere, restored into a fresh runtime: every later result, alert and readout is the same as without the cut', () => {
    const seen = { debounceHeld: 0, alerts: 0, trend: 0, score: 0 };
    fc.assert(
      fc.property(specArb, streamArb(120_000, 15_000, 20_000), fc.nat(), ({ spec, running }, steps, cutAt) => {
        const cut = cutAt % steps.length;
        const a = new PipelineRuntime(spec);
        for (let i = 0; i < cut; i++) call(a, steps[i]);
        const text = a.snapshot();
        const b = new PipelineRuntime(spec);
        b.restore(text);
        // (Taking the snapshot again need not give the same text: an exact sum's partials may come
        // back as another expansion of the same value. What counts is what the runtime does next.)
        expect(readouts(b, running)).toEqual(readouts(a, running));
        if ((a.debounced?.waiting ?? 0) > 0) seen.debounceHeld++;
        for (let i = cut; i < steps.length; i++) {
          const outA = call(a, steps[i]);
          const outB = call(b, steps[i]);
          expect(canonical(outB, running), `call ${i} (cut after ${cut})`).toEqual(canonical(outA, running));
          if (outA.alerts.length) seen.alerts++;
          if (outA.results.some((r) => r.trend_pct !== undefined && r.trend_pct !== null)) seen.trend++;
          if (spec.score && !running && outA.results.length) seen.score++;
        }
        expect(readouts(b, running)).toEqual(readouts(a, running));
      }),
      { numRuns: 300 },
    );
    // the generators reach the states worth restoring
    expect(seen.debounceHeld).toBeGreaterThan(10);
    expect(seen.alerts).toBeGreaterThan(10);
    expect(seen.trend).toBeGreaterThan(10);
    expect(seen.score).toBeGreaterThan(10);
  });

  it('restoring into a used runtime replaces its state', () => {
    fc.assert(
      fc.property(specArb, streamArb(60_000, 10_000, 10_000), streamArb(60_000, 10_000, 10_000), fc.nat(), ({ spec, running }, steps, other, cutAt) => {
        const cut = cutAt % steps.length;
        const a = new PipelineRuntime(spec);
        for (let i = 0; i < cut; i++) call(a, steps[i]);
        const b = new PipelineRuntime(spec);
        for (const s of other.slice(0, -2)) call(b, s);
        b.restore(a.snapshot());
        for (let i = cut; i < steps.length; i++) expect(canonical(call(b, steps[i]), running)).toEqual(canonical(call(a, steps[i]), running));
      }),
      { numRuns: 60 },
    );
  });

  it('the watermark comes back: a global row released after the restore is observed at the watermark of before', () => {
    const spec = parsePipeline({ name: 'g', source: { metrics: ['m'] }, window: { type: 'global' }, aggregates: { n: { fn: 'count' } }, debounce: { wait: '1s' }, alerts: [{ name: 'many', field: 'n', op: '>=', threshold: 1 }] });
    const a = new PipelineRuntime(spec);
    expect(a.process([{ metric: 'm', key: 'k', ts: 100, value: 1 }], 0, 100, 0).results).toEqual([]);
    const b = new PipelineRuntime(spec);
    b.restore(a.snapshot());
    const outA = a.tick(50, 5000);
    expect(outA.alerts.map((t) => t.at)).toEqual([100]);
    expect(b.tick(50, 5000)).toEqual(outA);
  });

  it('the trend stage comes back with its sweep schedule: rows it keeps, and forgets, at the same calls', () => {
    // found by the property: a restored trend stage swept at its first call and so kept a row the
    // original forgot one call later (the original's own sweep schedule decides a row's trend here)
    const spec = parsePipeline({ name: 'snap', source: { metrics: ['m'] }, window: { type: 'sliding', size: '20s', slide: '10s' }, aggregates: { total: { fn: 'sum' } }, debounce: { wait: '2s' }, trend: { field: 'total', threshold: 0.1 } });
    const e = (ts: number) => [{ metric: 'm', key: 'a', ts, value: 0 }];
    const steps: Step[] = [
      { kind: 'batch', events: e(0), wmBefore: -1, wmAfter: -1, now: 1_000_000 },
      { kind: 'tick', wm: -1, now: 1_000_000 },
      { kind: 'batch', events: e(0), wmBefore: -1, wmAfter: 0, now: 1_000_000 },
      { kind: 'tick', wm: 10_000, now: 1_000_000 },
      { kind: 'batch', events: e(0), wmBefore: 10_000, wmAfter: 10_000, now: 1_000_000 },
      { kind: 'tick', wm: 10_000, now: 1_000_000 },
      { kind: 'batch', events: e(29_396), wmBefore: 10_000, wmAfter: 30_000, now: 1_002_000 },
      { kind: 'tick', wm: FINAL_WM, now: 2_002_000 },
      { kind: 'tick', wm: FINAL_WM, now: 3_002_000 },
    ];
    const a = new PipelineRuntime(spec);
    for (const s of steps.slice(0, 3)) call(a, s);
    const b = new PipelineRuntime(spec);
    b.restore(a.snapshot());
    for (const s of steps.slice(3)) expect(call(b, s)).toEqual(call(a, s));
  });

  it('a snapshot of another spec is refused, naming the first difference, and the runtime is left as it was', () => {
    const base: PipelineInput = { name: 'p', source: { metrics: ['m'] }, window: { type: 'rolling', pane: '1d', sizes: ['7d', '30d'] }, aggregates: { n: { fn: 'count' }, total: { fn: 'sum' } } };
    const a = new PipelineRuntime(parsePipeline(base));
    a.process([{ metric: 'm', key: 'k', ts: 5, value: 1 }], 0, 0, 0);
    const text = a.snapshot();
    const cases: [PipelineInput, RegExp][] = [
      [{ ...base, window: { type: 'rolling', pane: '1d', sizes: ['7d', '90d'] } }, /spec\.window\.sizes\[1\]: snapshot has 2592000000, this pipeline has 7776000000/],
      [{ ...base, aggregates: { total: { fn: 'sum' }, n: { fn: 'count' } } }, /spec\.aggregates.*order/],
      [{ ...base, aggregates: { ...base.aggregates, lo: { fn: 'min' } } }, /spec\.aggregates\.lo: snapshot has nothing/],
      [{ ...base, source: { metrics: ['m', 'z'] } }, /spec\.source\.metrics/],
      [{ ...base, debounce: { wait: '2s' } }, /spec\.debounce: snapshot has nothing/],
      [{ ...base, alerts: [{ name: 'hi', field: 'n', op: '>', threshold: 3 }] }, /spec\.alerts/],
    ];
    for (const [input, message] of cases) {
      const other = new PipelineRuntime(parsePipeline(input));
      other.process([{ metric: 'm', key: 'q', ts: 7, value: 2 }], 0, 0, 0);
      const before = other.snapshot();
      expect(() => other.restore(text), JSON.stringify(input)).toThrow(/^pipeline snapshot: taken with another spec of pipeline p: /);
      expect(() => other.restore(text)).toThrow(message);
      expect(other.snapshot()).toBe(before);
    }
    // the description is not part of the spec a snapshot is tied to
    const described = new PipelineRuntime(parsePipeline({ ...base, description: 'now with words' }));
    described.restore(text);
    expect(described.snapshot()).toBe(text);
  });

  it('a corrupt snapshot is refused with a pipeline snapshot Error and leaves the runtime as it was, or restores a runtime that behaves like its own snapshot', () => {
    fc.assert(
      fc.property(specArb, streamArb(60_000, 10_000, 10_000), fc.nat(), fc.nat(), fc.constantFrom('char', 'truncate', 'node'), ({ spec, running }, steps, cutAt, where, how) => {
        const cut = cutAt % steps.length;
        const a = new PipelineRuntime(spec);
        for (let i = 0; i < cut; i++) call(a, steps[i]);
        const text = a.snapshot();
        let bad: string;
        if (how === 'truncate') bad = text.slice(0, where % text.length);
        else if (how === 'char') {
          const i = where % text.length;
          bad = text.slice(0, i) + (text[i] === '1' ? '7' : '1') + text.slice(i + 1);
        } else bad = corruptNode(text, where);
        const victim = new PipelineRuntime(spec);
        for (let i = 0; i < Math.min(3, steps.length); i++) call(victim, steps[i]);
        const before = victim.snapshot();
        try {
          victim.restore(bad);
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
          expect((err as Error).message).toMatch(/^pipeline snapshot: /);
          expect(victim.snapshot()).toBe(before);
          return;
        }
        // accepted: it must behave like a copy restored from its own snapshot
        const copy = new PipelineRuntime(spec);
        copy.restore(victim.snapshot());
        for (let i = cut; i < steps.length; i++) expect(canonical(call(copy, steps[i]), running)).toEqual(canonical(call(victim, steps[i]), running));
      }),
      { numRuns: 300 },
    );
  });
});

/** Replaces one JSON node of the snapshot, or of a snapshot nested in it as a string, with another value. */
function corruptNode(text: string, pick: number): string {
  const nodes: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const walk = (v: unknown) => {
    if (v === null || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      nodes.push({ parent: v as Record<string, unknown>, key: Array.isArray(v) ? Number(k) : k });
      walk(x);
    }
  };
  const root = JSON.parse(text) as Record<string, unknown>;
  walk(root);
  const n = nodes[pick % nodes.length];
  const old = (n.parent as Record<string, unknown>)[n.key as string];
  const replacements = [null, -1, 1e300, 'x', [], {}, true, typeof old === 'number' ? old + 1 : 0, typeof old === 'string' && old.startsWith('{') ? old.slice(0, -5) : '{}'];
  (n.parent as Record<string, unknown>)[n.key as string] = replacements[pick % replacements.length];
  return JSON.stringify(root);
}
