/**
 * PipelineRuntime's debounce stage (processing time, per key) against an independent model of
 * the documented rules (docs/operators-keyed.md, operators/keyed/debounceByKey.ts): the same
 * pipeline without debounce runs beside it on the same inputs, and its rows are what the debounce
 * is offered. `now` is driven explicitly: gaps shorter than `wait` (bursts) and longer ones.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PipelineRuntime, type KeyedSample, type PipelineResult } from './runtime.js';
import { parsePipeline, type PipelineInput } from './spec.js';

interface Ev {
  metric: string;
  key: string;
  ts: number;
  value: number;
}

type Step = { kind: 'batch'; events: Ev[]; wmBefore: number; wmAfter: number; now: number } | { kind: 'tick'; wm: number; now: number };

const evArb = (keys: string[], span: number) =>
  fc.record({ metric: fc.constantFrom('m', 'x'), key: fc.constantFrom(...keys), ts: fc.integer({ min: 0, max: span - 1 }), value: fc.integer({ min: 0, max: 50 }) });

/**
 * Batches of random events (out of order within the span), each at a `now` a random gap after
 * the previous step: below `wait` (the burst goes on) or at/after it (the burst ends); the
 * watermark trails the newest event and never goes back; some ticks between batches.
 */
function stepsArb(wait: number, span = 60_000) {
  // round gaps too, so that calls land exactly on deadlines (last + wait, anchor + maxWait)
  const gap = fc.oneof(fc.integer({ min: 0, max: wait - 1 }), fc.constantFrom(wait / 4, wait / 2, wait - 1, wait, wait + 1), fc.integer({ min: wait, max: 4 * wait }));
  const batch = fc.record({
    events: fc.array(evArb(['a', 'b', 'c'], span), { maxLength: 8 }),
    gap,
    lag: fc.integer({ min: 0, max: 30_000 }),
    before: fc.constantFrom(0, 1),
    tick: fc.option(fc.record({ gap, wm: fc.integer({ min: 0, max: 10_000 }) }), { freq: 4 }),
  });
  return fc.array(batch, { minLength: 1, maxLength: 25, size: 'max' }).map((batches) => {
    const steps: Step[] = [];
    let now = 1_000_000;
    let wm = -1;
    let newest = -Infinity;
    for (const b of batches) {
      for (const e of b.events) newest = Math.max(newest, e.ts);
      const wmAfter = Number.isFinite(newest) ? Math.max(wm, newest - b.lag) : wm;
      now += b.gap;
      steps.push({ kind: 'batch', events: b.events, wmBefore: b.before ? wmAfter : wm, wmAfter, now });
      wm = wmAfter;
      if (b.tick) {
        now += b.tick.gap;
        wm += b.tick.wm;
        steps.push({ kind: 'tick', wm, now });
      }
    }
    return steps;
  });
}

const call = (rt: PipelineRuntime, s: Step) => (s.kind === 'batch' ? rt.process(s.events as KeyedSample[], s.wmBefore, s.wmAfter, s.now) : rt.tick(s.wm, s.now));
const lastNow = (steps: Step[]) => steps.at(-1)!.now;
const lastWm = (steps: Step[]) => steps.reduce((wm, s) => Math.max(wm, s.kind === 'batch' ? s.wmAfter : s.wm), -1);

const rowId = (r: PipelineResult) => `${r.key}|${r.window}|${r.start}`;
/** A row without its processing time: what must match between the two pipelines. */
const content = (r: PipelineResult) => {
  const { emittedAt: _, ...rest } = r;
  return rest;
};
function table(results: PipelineResult[]) {
  const rows = new Map<string, ReturnType<typeof content>>();
  for (const r of results) rows.set(rowId(r), content(r));
  return rows;
}
const sorted = <T extends PipelineResult | ReturnType<typeof content>>(rows: T[]) => [...rows].sort((a, b) => (rowId(a as PipelineResult) < rowId(b as PipelineResult) ? -1 : 1));

/**
 * The documented debounce per key, written out: a row of a key that is not waiting starts a
 * burst (anchor = last = now); later rows move `last`. Its deadline is min(last + wait,
 * anchor + maxWait). Quiet first (or at the same instant): the held rows go out and the key is
 * forgotten. maxWait first: the held rows go out, anchor moves to that deadline and the burst
 * goes on. Deadlines at or before `now` are settled before the rows offered at `now`. Rows of one
 * (window, start) replace each other while held.
 */
class DebounceModel {
  private readonly keys = new Map<string, { last: number; anchor: number; held: Map<string, PipelineResult> }>();
  releases = 0;
  constructor(
    private readonly wait: number,
    private readonly maxWait = Infinity,
  ) {}

  settle(now: number): PipelineResult[] {
    const out: PipelineResult[] = [];
    const release = (held: Map<string, PipelineResult>) => {
      if (held.size === 0) return;
      this.releases++;
      out.push(...held.values());
    };
    for (const [key, k] of this.keys)
      for (;;) {
        const quietAt = k.last + this.wait;
        const maxAt = k.anchor + this.maxWait;
        if (quietAt <= maxAt) {
          if (quietAt <= now) {
            release(k.held);
            this.keys.delete(key);
          }
          break;
        }
        if (maxAt > now) break;
        release(k.held);
        k.held = new Map();
        k.anchor = maxAt;
      }
    return out;
  }

  offer(r: PipelineResult, now: number): void {
    let k = this.keys.get(r.key);
    if (!k) this.keys.set(r.key, (k = { last: now, anchor: now, held: new Map() }));
    else k.last = now;
    k.held.set(`${r.window}|${r.start}`, r);
  }

  /** Keys holding rows. */
  get waiting(): number {
    let n = 0;
    for (const k of this.keys.values()) if (k.held.size) n++;
    return n;
  }
}

const base = { source: { metrics: ['m', 'x'] }, aggregates: { n: { fn: 'count' }, total: { fn: 'sum' }, x_last: { fn: 'last', metric: 'x' } } } as const;

/** Window shapes whose rows do not depend on the debounce (the window stage runs the same with or without it). */
const shapeArb = fc.constantFrom<Pick<PipelineInput, 'window' | 'trigger' | 'allowedLateness'>>(
  { window: { type: 'tumbling', size: '10s' }, trigger: { count: 1 }, allowedLateness: '5s' },
  { window: { type: 'tumbling', size: '10s' }, trigger: { early: '1s' } },
  { window: { type: 'sliding', size: '20s', slide: '10s' }, trigger: { count: 1 } },
  { window: { type: 'rolling', pane: '10s', sizes: ['10s', '30s'] }, trigger: { count: 1 }, allowedLateness: '10s' },
);

describe('PipelineRuntime debounce vs a model of the documented rules', () => {
  it('releases, at each call, exactly the rows the model releases (newest per window and start of each key whose burst ended or hit maxWait); the table ends as without debounce', () => {
    const seen = { bursts: 0, maxWait: 0, replaced: 0 };
    fc.assert(
      fc.property(
        fc.constantFrom(2000, 5000).chain((wait) => fc.tuple(fc.constant(wait), fc.constantFrom(undefined, wait, 2 * wait, 3 * wait), stepsArb(wait))),
        shapeArb,
        ([wait, maxWait, steps], shape) => {
          const spec = { ...base, ...shape, name: 'db' };
          const plain = new PipelineRuntime(parsePipeline(spec));
          const debounced = new PipelineRuntime(parsePipeline({ ...spec, debounce: { wait, maxWait } }));
          const model = new DebounceModel(wait, maxWait);
          const plainOut: PipelineResult[] = [];
          const debouncedOut: PipelineResult[] = [];
          let offered = 0;
          const run = (s: Step) => {
            const p = call(plain, s).results;
            const d = call(debounced, s).results;
            plainOut.push(...p);
            debouncedOut.push(...d);
            const want = model.settle(s.now);
            for (const r of p) model.offer(r, s.now);
            offered += p.length;
            expect(sorted(d.map(content)), `released at now=${s.now}`).toEqual(sorted(want.map(content)));
            for (const r of d) expect(r.emittedAt).toBe(s.now);
          };
          for (const s of steps) run(s);
          expect(debounced.debounced).toEqual({ offered, recalculations: model.releases, waiting: model.waiting });
          const before = model.releases;
          // Quiet for `wait` after the last step: everything held goes out. The first tick may
          // still fire early partials (offered then), so a second one, `wait` later.
          run({ kind: 'tick', wm: lastWm(steps), now: lastNow(steps) + wait });
          run({ kind: 'tick', wm: lastWm(steps), now: lastNow(steps) + 2 * wait });
          expect(debounced.debounced!.waiting).toBe(0);
          expect(table(debouncedOut)).toEqual(table(plainOut));
          if (model.releases > before + 1) seen.bursts++;
          if (maxWait !== undefined && steps.some((s) => s.now - steps[0].now > maxWait)) seen.maxWait++;
          if (offered > model.releases) seen.replaced++;
        },
      ),
      { numRuns: 200 },
    );
    for (const [what, n] of Object.entries(seen)) expect(n, what).toBeGreaterThan(0);
  });

  it('a burst of one key (gaps < wait) gives one release, wait after its last batch, of the newest row per (window, start)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(2000, 5000).chain((wait) =>
          fc.tuple(fc.constant(wait), fc.array(fc.tuple(fc.integer({ min: 0, max: wait - 1 }), fc.array(evArb(['k'], 25_000), { minLength: 1, maxLength: 5 })), { minLength: 1, maxLength: 15 })),
        ),
        // shapes that emit after every batch (count 1): every batch offers the key's rows
        shapeArb.filter((s) => s.trigger?.count === 1),
        ([wait, batches], shape) => {
          const spec = { ...base, ...shape, name: 'db' };
          const plain = new PipelineRuntime(parsePipeline(spec));
          const debounced = new PipelineRuntime(parsePipeline({ ...spec, debounce: { wait } }));
          let now = 50_000;
          const plainOut: PipelineResult[] = [];
          // The watermark stays behind every event, and events span less than the largest rolling
          // window (none is out of range), so each batch changes the key's windows: an offer.
          for (const [gap, events] of batches) {
            now += gap;
            plainOut.push(...plain.process(events as KeyedSample[], -1, -1, now).results);
            expect(debounced.process(events as KeyedSample[], -1, -1, now).results).toEqual([]);
          }
          expect(debounced.tick(-1, now + wait - 1).results).toEqual([]);
          const released = debounced.tick(-1, now + wait).results;
          expect(debounced.debounced!.recalculations).toBe(1);
          expect(released.every((r) => r.emittedAt === now + wait)).toBe(true);
          expect(sorted(released.map(content))).toEqual(sorted([...table(plainOut).values()]));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('maxWait: under a continuous stream (gaps < wait) a key is released at the first call at or after burst start + j·maxWait, never later', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(2000, 5000).chain((wait) =>
          fc.tuple(fc.constant(wait), fc.constantFrom(wait, 2 * wait, 3 * wait + 1), fc.array(fc.oneof(fc.integer({ min: 1, max: wait - 1 }), fc.constantFrom(wait / 4, wait / 2)), { minLength: 10, maxLength: 40 })),
        ),
        ([wait, maxWait, gaps]) => {
          const rt = new PipelineRuntime(parsePipeline({ ...base, name: 'mw', window: { type: 'tumbling', size: '10s' }, trigger: { count: 1 }, debounce: { wait, maxWait } }));
          const start = 1_000_000;
          const times = [start];
          for (const g of gaps) times.push(times.at(-1)! + g);
          const releases: number[] = [];
          times.forEach((now, i) => {
            const out = rt.process([{ metric: 'm', key: 'k', ts: i, value: 1 }], -1, -1, now).results;
            if (out.length) releases.push(now);
          });
          // expected: for j = 1, 2, ..., the first call time >= start + j * maxWait
          const want: number[] = [];
          for (let j = 1; start + j * maxWait <= times.at(-1)!; j++) {
            const t = times.find((x) => x >= start + j * maxWait)!;
            if (want.at(-1) !== t) want.push(t);
          }
          expect(releases).toEqual(want);
          if (releases.length) expect(releases[0] - start).toBeLessThan(maxWait + wait);
          expect(rt.debounced!.recalculations).toBe(want.length);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('PipelineRuntime debounce of rolling and global windows (rows computed at the release)', () => {
  it('the table ends as without debounce, and a key is released at most once per call', () => {
    const shapes = fc.constantFrom<Pick<PipelineInput, 'window' | 'allowedLateness'>>(
      { window: { type: 'rolling', pane: '10s', sizes: ['10s', '30s'] }, allowedLateness: '10s' },
      { window: { type: 'rolling', pane: '5s', sizes: ['20s'] } },
      { window: { type: 'global' } },
    );
    fc.assert(
      fc.property(
        fc.constantFrom(2000, 5000).chain((wait) => fc.tuple(fc.constant(wait), fc.constantFrom(undefined, 2 * wait), stepsArb(wait))),
        shapes,
        ([wait, maxWait, steps], shape) => {
          const spec = { ...base, ...shape, name: 'dr' };
          const plain = new PipelineRuntime(parsePipeline(spec));
          const debounced = new PipelineRuntime(parsePipeline({ ...spec, debounce: { wait, maxWait } }));
          const plainOut: PipelineResult[] = [];
          const debouncedOut: PipelineResult[] = [];
          const all = [...steps, { kind: 'tick', wm: lastWm(steps), now: lastNow(steps) + wait } as Step];
          for (const s of all) {
            plainOut.push(...call(plain, s).results);
            const d = call(debounced, s).results;
            debouncedOut.push(...d);
            const ids = d.map(rowId);
            expect(new Set(ids).size, `one row per (key, window, start) in a call`).toBe(ids.length);
          }
          expect(debounced.debounced!.waiting).toBe(0);
          const strip = (t: Map<string, ReturnType<typeof content>>) => new Map([...t].map(([id, r]) => [id, { ...r, revision: undefined }]));
          // Revisions count emissions, which the debounce saves; everything else must agree.
          expect(strip(table(debouncedOut))).toEqual(strip(table(plainOut)));
        },
      ),
      { numRuns: 150 },
    );
  });
});
