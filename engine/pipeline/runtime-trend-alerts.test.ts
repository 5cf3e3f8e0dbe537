/**
 * PipelineRuntime's trend and alert stages against brute force, on random streams (events out of
 * order, random batch splits, watermarks that never go back, ticks, `now` increasing, early or
 * count partials, allowed lateness):
 * - trend: in the final table every row's trend_pct/trend_dir is its own value against the same
 *   key's row one period earlier (docs/pipelines.md "Trend", operators/trend/trend.ts);
 * - alerts: the transitions of every call are what a small threshold/for/resolve state machine
 *   (operators/alerts/machine.ts and evaluator.ts doc comments) gives when fed the rows the docs
 *   say alerts observe, in emission order, at ts = window end.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PipelineRuntime, type KeyedSample, type PipelineResult } from './runtime.js';
import { parsePipeline, type PipelineInput } from './spec.js';
import type { AlertEvent } from './sink.js';
import { call, FINAL_WM, stepsOf, table, type Step } from './testing/streams.js';


/**
 * Random events over [0, span) for keys a, b, c, delivered roughly in event time (delays up to
 * `disorder`, a few stragglers up to the span), cut into batches; the watermark trails the newest
 * event by a random lag and never goes back; ticks between batches; `now` only grows.
 */
function streamArb(span: number, disorder: number, maxLag: number) {
  const ev = fc.record({
    key: fc.constantFrom('a', 'b', 'c'),
    ts: fc.integer({ min: 0, max: span - 1 }),
    value: fc.oneof(fc.constant(0), fc.integer({ min: -5, max: 20 })),
    delay: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: disorder }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: span }) }),
  });
  const params = fc.record({
    lag: fc.integer({ min: -Math.floor(maxLag / 4), max: maxLag }),
    before: fc.constantFrom(0, 0.5, 1),
    nowDelta: fc.integer({ min: 0, max: 3000 }),
    tick: fc.option(fc.record({ wm: fc.integer({ min: 0, max: maxLag }), nowDelta: fc.integer({ min: 0, max: 3000 }) }), { freq: 3 }),
  });
  return fc
    .record({ events: fc.array(ev, { maxLength: 100, size: 'max' }), cuts: fc.array(fc.nat({ max: 99 }), { maxLength: 14, size: 'max' }), params: fc.array(params, { minLength: 15, maxLength: 15 }) })
    .map(({ events, cuts, params }) => stepsOf(events, cuts, params, (e) => ({ metric: 'm', key: e.key, ts: e.ts, value: e.value })));
}



const base = { source: { metrics: ['m'] }, aggregates: { n: { fn: 'count' as const }, total: { fn: 'sum' as const } } };
const triggerArb = fc.constantFrom<PipelineInput['trigger']>(undefined, { early: '1s' }, { count: 1 }, { count: 2 });

describe('PipelineRuntime trend vs brute force', () => {
  /** The trend of a value against the previous window's, from the definitions. */
  function trendOf(v: number, prev: number | undefined, threshold: number): { trend_pct: number | null; trend_dir: number | null } {
    if (prev === undefined) return { trend_pct: null, trend_dir: null };
    const change = v - prev;
    const pct = prev === 0 ? null : change / Math.abs(prev);
    const sign = pct ?? change;
    const dir = sign === 0 || (pct !== null && Math.abs(pct) < threshold) ? 0 : sign > 0 ? 1 : -1;
    return { trend_pct: pct, trend_dir: dir };
  }

  it('in the final table every row has the trend of its value against the same key’s row one period earlier, corrections included', () => {
    let reemitted = 0;
    fc.assert(
      fc.property(
        streamArb(100_000, 15_000, 20_000),
        fc.constantFrom('n', 'total'),
        fc.constantFrom(0, 0.1, 0.5),
        fc.constantFrom(0, 10_000, 30_000),
        triggerArb,
        (steps, field, threshold, lateness, trigger) => {
          const rt = new PipelineRuntime(
            parsePipeline({ ...base, name: 'tr', window: { type: 'tumbling', size: '10s' }, allowedLateness: lateness, trigger, trend: { field, threshold } }),
          );
          const out: PipelineResult[] = [];
          for (const s of steps) out.push(...call(rt, s).results);
          const rows = table(out);
          for (const [id, r] of rows) {
            const prev = rows.get(`${r.key}|10s|${r.start - 10_000}`);
            const want = trendOf(r[field] as number, prev?.[field] as number | undefined, threshold);
            const got = { trend_pct: r.trend_pct as number | null, trend_dir: r.trend_dir as number | null };
            const close = got.trend_pct === want.trend_pct || (got.trend_pct !== null && want.trend_pct !== null && Math.abs(got.trend_pct - want.trend_pct) < 1e-12);
            expect(close && got.trend_dir === want.trend_dir, `${id}: ${field} ${r[field]} against ${prev ? prev[field] : 'no row'}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`).toBe(true);
          }
          // a row emitted again with the same figures and another trend: a correction of the window before it
          const before = new Map<string, PipelineResult>();
          for (const r of out) {
            const id = `${r.key}|${r.start}`;
            const b = before.get(id);
            if (b && b.revision === r.revision && b[field] === r[field] && b.trend_pct !== r.trend_pct) reemitted++;
            before.set(id, r);
          }
        },
      ),
      { numRuns: 300 },
    );
    expect(reemitted).toBeGreaterThan(0);
  });
});

describe('PipelineRuntime alerts vs a threshold/for/resolve state machine', () => {
  type Op = '>' | '>=' | '<' | '<=';
  interface Rule {
    name: string;
    field: string;
    op: Op;
    threshold: number;
    for: number;
    resolve?: number;
    severity: 'info' | 'warning' | 'critical';
  }
  const holds = (op: Op, v: number, b: number) => (op === '>' ? v > b : op === '>=' ? v >= b : op === '<' ? v < b : v <= b);

  /**
   * One rule over every (window, key): each window name of a key is its own series (a key's 10s
   * and 30s rolling rows never share a state). A series whose condition does not hold has no state (the evaluator
   * keeps none for keys in the ok state, so the order check applies only while pending or
   * firing). Pending from the first observation that holds; firing once it held `for` (event
   * time); a firing alert resolves when `value op resolve` fails. Older observations than the
   * newest one seen while active are ignored.
   */
  class AlertModel {
    private readonly keys = new Map<string, { firing: boolean; since: number; lastTs: number }>();
    constructor(
      private readonly pipeline: string,
      private readonly rule: Rule,
    ) {}

    observe(window: string, key: string, ts: number, value: unknown): AlertEvent | null {
      if (typeof value !== 'number' || !Number.isFinite(value)) return null;
      const { op, threshold } = this.rule;
      const resolveAt = this.rule.resolve ?? threshold;
      const id = `${window}|${key}`;
      let st = this.keys.get(id);
      if (st === undefined) {
        if (!holds(op, value, threshold)) return null;
        this.keys.set(id, (st = { firing: false, since: ts, lastTs: ts }));
      } else {
        if (ts < st.lastTs) return null;
        st.lastTs = ts;
        if (st.firing) {
          if (holds(op, value, resolveAt)) return null;
          this.keys.delete(id);
          return this.event(window, key, 'resolved', value, ts, ts);
        }
        if (!holds(op, value, threshold)) {
          this.keys.delete(id);
          return null;
        }
      }
      if (ts - st.since < this.rule.for) return null;
      st.firing = true;
      return this.event(window, key, 'firing', value, st.since, ts);
    }

    private event(window: string, key: string, state: 'firing' | 'resolved', value: number, since: number, at: number): AlertEvent {
      const r = this.rule;
      return { pipeline: this.pipeline, window, rule: r.name, key, state, severity: r.severity, field: r.field, value, threshold: r.threshold, since, at };
    }
  }

  const ruleArb = (fields: string[]) =>
    fc
      .record({
        field: fc.constantFrom(...fields),
        op: fc.constantFrom<Op>('>', '>=', '<', '<='),
        threshold: fc.integer({ min: 0, max: 12 }),
        for: fc.constantFrom(0, 0, 10_000, 20_000),
        band: fc.option(fc.integer({ min: 0, max: 5 })),
        severity: fc.constantFrom<Rule['severity']>('info', 'warning', 'critical'),
      })
      .map(({ band, ...r }): Rule => {
        const rule: Rule = { name: 'watch', ...r };
        // resolve on the clear side of the threshold
        if (band !== null) rule.resolve = r.op.startsWith('>') ? r.threshold - band : r.threshold + band;
        return rule;
      });

  /** Runs the pipeline; at every call its alerts must equal the model fed the observed rows of that call, in emission order. */
  function check(spec: PipelineInput, rule: Rule, steps: Step[], observed: (r: PipelineResult) => boolean): { transitions: number; partials: number } {
    const { name: _, ...ruleSpec } = rule;
    const rt = new PipelineRuntime(parsePipeline({ ...spec, alerts: [{ name: rule.name, ...ruleSpec }] }));
    const model = new AlertModel(spec.name, rule);
    let transitions = 0;
    let partials = 0;
    for (const s of steps) {
      const out = call(rt, s);
      const want: AlertEvent[] = [];
      for (const r of out.results) {
        if (!r.final) partials++;
        if (!observed(r)) continue;
        const t = model.observe(r.window, r.key, r.end, r[rule.field]);
        if (t) want.push(t);
      }
      expect(out.alerts, `alerts at step ${JSON.stringify(s).slice(0, 200)}`).toEqual(want);
      transitions += want.length;
    }
    return { transitions, partials };
  }

  it('tumbling with early partials: transitions come from final rows only (firings and corrections, in emission order, at the window end)', () => {
    const seen = { transitions: 0, partials: 0 };
    fc.assert(
      fc.property(streamArb(100_000, 15_000, 20_000), fc.constantFrom(0, 10_000, 30_000), fc.constantFrom<PipelineInput['trigger']>({ early: '1s' }, { count: 1 }), ruleArb(['n', 'total']), (steps, lateness, trigger, rule) => {
        const spec: PipelineInput = { ...base, name: 'al', window: { type: 'tumbling', size: '10s' }, trigger, allowedLateness: lateness };
        const c = check(spec, rule, steps, (r) => r.final && !r.superseded);
        seen.transitions += c.transitions;
        seen.partials += c.partials;
      }),
      { numRuns: 300 },
    );
    expect(seen.transitions).toBeGreaterThan(0);
    expect(seen.partials).toBeGreaterThan(0);
  });

  it('rolling: every row is observed, partial or final, at its window end; each size of a key has its own alert state', () => {
    let transitions = 0;
    fc.assert(
      fc.property(streamArb(200_000, 20_000, 30_000), fc.constantFrom(0, 20_000), ruleArb(['n', 'total']), (steps, lateness, rule) => {
        const spec: PipelineInput = { ...base, name: 'ar', window: { type: 'rolling', pane: '10s', sizes: ['10s', '30s'] }, allowedLateness: lateness };
        transitions += check(spec, rule, steps, () => true).transitions;
      }),
      { numRuns: 200 },
    );
    expect(transitions).toBeGreaterThan(0);
  });
});

describe('PipelineRuntime trend with a debounce', () => {
  it('the table equals the same pipeline without debounce, trends included (held rows keep the trend of their window)', () => {
    fc.assert(
      fc.property(
        streamArb(100_000, 15_000, 20_000),
        fc.constantFrom<PipelineInput['window']>({ type: 'tumbling', size: '10s' }, { type: 'sliding', size: '20s', slide: '10s' }),
        fc.constantFrom(0, 10_000),
        triggerArb,
        (steps, window, lateness, trigger) => {
          const spec = { ...base, name: 'td', window, allowedLateness: lateness, trigger, trend: { field: 'total', threshold: 0 } };
          const plain = new PipelineRuntime(parsePipeline(spec));
          const debounced = new PipelineRuntime(parsePipeline({ ...spec, debounce: { wait: '2s' } }));
          const a: PipelineResult[] = [];
          const b: PipelineResult[] = [];
          const last = steps[steps.length - 1];
          for (const s of [...steps, { kind: 'tick', wm: FINAL_WM, now: last.now + 100_000 } as Step]) {
            a.push(...call(plain, s).results);
            b.push(...call(debounced, s).results);
          }
          const strip = (t: Map<string, PipelineResult>) => new Map([...t].map(([id, r]) => [id, { ...r, revision: undefined, emittedAt: undefined }]));
          expect(strip(table(b))).toEqual(strip(table(a)));
        },
      ),
      { numRuns: 200 },
    );
  });
});
