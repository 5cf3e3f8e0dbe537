/**
 * PipelineRuntime's window stage for sliding, session and rolling windows against brute-force
 * oracles written from the documented semantics (docs/operators-windows.md and the header
 * comments of operators/windows/{panes,sessions,rolling}.ts), not from the operators: random
 * events out of order, random batch splits, watermarks that never go back (wmBefore <= wmAfter,
 * ticks between batches), `now` increasing, random triggers and allowed lateness.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PipelineRuntime, durationName, type KeyedSample, type PipelineResult } from './runtime.js';
import { parsePipeline, type PipelineInput } from './spec.js';
import { FINAL_WM, stepsOf, table, type Ev, type Step } from './testing/streams.js';


/**
 * Random events over [0, span) for a few keys, delivered roughly in event time (each event is
 * delayed by up to `disorder`, a few stragglers by up to the whole span), cut into batches. The
 * watermark follows the newest event minus a random lag (sometimes ahead of it), wmBefore lies
 * between the previous watermark and wmAfter, ticks move it further; `now` only grows.
 */
function streamArb(span: number, disorder: number, maxLag: number, keys = ['a', 'b', 'c']) {
  const ev = fc.record({
    metric: fc.constantFrom('m', 'm', 'x', 'other'),
    key: fc.constantFrom(...keys),
    // whole seconds half the time, so events, window bounds and watermarks meet exactly
    ts: fc.oneof(fc.integer({ min: 0, max: span - 1 }), fc.integer({ min: 0, max: span / 1000 - 1 }).map((s) => s * 1000)),
    value: fc.integer({ min: -20, max: 100 }),
    delay: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: disorder }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: span }) }),
  });
  const batchParams = fc.record({
    lag: fc.oneof(fc.integer({ min: -Math.floor(maxLag / 4), max: maxLag }), fc.integer({ min: -Math.floor(maxLag / 4000), max: Math.floor(maxLag / 1000) }).map((s) => s * 1000)),
    before: fc.constantFrom(0, 0, 0.5, 1),
    nowDelta: fc.integer({ min: 0, max: 3000 }),
    tick: fc.option(fc.record({ wm: fc.oneof(fc.integer({ min: 0, max: maxLag }), fc.integer({ min: 0, max: Math.floor(maxLag / 1000) }).map((s) => s * 1000)), nowDelta: fc.integer({ min: 0, max: 3000 }) }), { freq: 3 }),
  });
  return fc
    .record({ events: fc.array(ev, { maxLength: 100, size: 'max' }), cuts: fc.array(fc.nat({ max: 99 }), { maxLength: 12, size: 'max' }), params: fc.array(batchParams, { minLength: 13, maxLength: 13 }) })
    .map(({ events, cuts, params }) => stepsOf(events, cuts, params, (e) => ({ metric: e.metric, key: e.key, ts: e.ts, value: e.value })));
}

const triggerArb = fc.constantFrom<PipelineInput['trigger']>(undefined, { early: '1s' }, { count: 2 }, { early: '2s', count: 3 });

/** Runs the steps; returns every result in emission order. */
function drive(rt: PipelineRuntime, steps: Step[]): PipelineResult[] {
  const out: PipelineResult[] = [];
  for (const s of steps) {
    const res = s.kind === 'batch' ? rt.process(s.events as KeyedSample[], s.wmBefore, s.wmAfter, s.now) : rt.tick(s.wm, s.now);
    out.push(...res.results);
  }
  return out;
}

/** The newest result per (key, window, start): what the table holds after upserts. */

/** The watermark each batch assigns its events against, and the watermark after every step. */
function watermarks(steps: Step[]): { assign: number; after: number }[] {
  let wm = -Infinity;
  return steps.map((s) => {
    if (s.kind === 'tick') {
      wm = Math.max(wm, s.wm);
      return { assign: wm, after: wm };
    }
    const assign = Math.max(wm, s.wmBefore);
    wm = Math.max(assign, s.wmAfter);
    return { assign, after: wm };
  });
}

/** What the pipelines below compute, brute force. */
interface Agg {
  n: number;
  total: number;
  x_max: number | null;
}
const emptyAgg = (): Agg => ({ n: 0, total: 0, x_max: null });
function addTo(a: Agg, e: Ev): void {
  a.n++;
  a.total += e.value;
  if (e.metric === 'x') a.x_max = a.x_max === null ? e.value : Math.max(a.x_max, e.value);
}
const aggOf = (events: Ev[]): Agg => {
  const a = emptyAgg();
  for (const e of events) addTo(a, e);
  return a;
};
const columnsOf = (r: PipelineResult): Agg => ({ n: r.n as number, total: r.total as number, x_max: r.x_max as number | null });

const base = {
  source: { metrics: ['m', 'x'] },
  aggregates: { n: { fn: 'count' }, total: { fn: 'sum' }, x_max: { fn: 'max', metric: 'x' } },
} as const;

const read = (e: Ev) => e.metric !== 'other';
const floorTo = (t: number, size: number) => Math.floor(t / size) * size;

describe('PipelineRuntime sliding windows vs brute force', () => {
  const shapes = fc.constantFrom({ size: 20_000, slide: 5_000 }, { size: 30_000, slide: 10_000 }, { size: 10_000, slide: 10_000 }, { size: 15_000, slide: 5_000 });

  it('every window holding kept events has their aggregate; events later than the lateness are counted late and in no row', () => {
    const seen = { late: 0, partial: 0, correction: 0, partlyClosed: 0 };
    fc.assert(
      fc.property(streamArb(100_000, 8_000, 20_000), shapes, fc.constantFrom(0, 5_000, 15_000), triggerArb, (steps, shape, lateness, trigger) => {
        const spec = parsePipeline({ ...base, name: 'sl', window: { type: 'sliding', size: shape.size, slide: shape.slide }, allowedLateness: lateness, trigger });
        const rt = new PipelineRuntime(spec);
        const out = drive(rt, steps);
        const name = durationName(shape.size);

        // Oracle: an event goes into every window [w, w + size) holding it whose end + lateness is
        // still ahead of the watermark it is assigned against; with no such window it is late.
        const want = new Map<string, Ev[]>();
        let late = 0;
        const wms = watermarks(steps);
        steps.forEach((s, i) => {
          if (s.kind !== 'batch') return;
          const W = wms[i].assign;
          for (const e of s.events.filter(read)) {
            let taken = false;
            let skipped = false;
            for (let w = floorTo(e.ts, shape.slide); w > e.ts - shape.size; w -= shape.slide) {
              if (w + shape.size + lateness <= W) {
                skipped = true;
                continue;
              }
              const id = `${e.key}|${name}|${w}`;
              want.set(id, [...(want.get(id) ?? []), e]);
              taken = true;
            }
            if (!taken) late++;
            else if (skipped) seen.partlyClosed++;
          }
        });

        const got = table(out);
        expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
        for (const [id, events] of want) {
          const r = got.get(id)!;
          expect({ ...columnsOf(r), end: r.end, final: r.final }, id).toEqual({ ...aggOf(events), end: r.start + shape.size, final: true });
        }
        expect(rt.lateCount).toBe(late);
        // every emission of a window carries the next revision
        const revisions = new Map<string, number[]>();
        for (const r of out) revisions.set(`${r.key}|${r.start}`, [...(revisions.get(`${r.key}|${r.start}`) ?? []), r.revision]);
        for (const [id, revs] of revisions) expect(revs, id).toEqual(revs.map((_, i) => i));
        if (late) seen.late++;
        if (out.some((r) => !r.final)) seen.partial++;
        if (out.some((r) => r.final && r.revision > 0 && out.some((q) => q.key === r.key && q.start === r.start && q.final && q.revision < r.revision))) seen.correction++;
      }),
      { numRuns: 200 },
    );
    // the generator does produce what the property is about
    for (const [what, n] of Object.entries(seen)) expect(n, what).toBeGreaterThan(0);
  });
});

describe('PipelineRuntime session windows vs brute force', () => {
  interface Session {
    start: number;
    last: number;
    events: Ev[];
  }
  /** Events of one key sorted by time, split where consecutive events are >= gap apart. */
  function sessionsOf(events: Ev[], gap: number): Session[] {
    const sorted = [...events].sort((a, b) => a.ts - b.ts);
    const out: Session[] = [];
    for (const e of sorted) {
      const cur = out.at(-1);
      if (cur && e.ts - cur.last < gap) {
        cur.last = e.ts;
        cur.events.push(e);
      } else out.push({ start: e.ts, last: e.ts, events: [e] });
    }
    return out;
  }

  /**
   * The documented lateness rules of sessions, per key: a session is closed for good once
   * end + lateness <= watermark, and the key's frontier is the end of its latest closed session;
   * an event is late if it falls before the frontier, or if it joins no live session and its own
   * [t, t + gap) is already closed. A key with no live session is forgotten once the watermark
   * reaches frontier + gap + lateness; its sessions stay as they were, and later events start
   * afresh (a new epoch).
   */
  class Oracle {
    private readonly keys = new Map<string, { events: Ev[]; frontier: number }>();
    /** Sessions of forgotten epochs. */
    readonly done: { key: string; s: Session }[] = [];
    private readonly forgotten = new Set<string>();
    late = 0;
    /** Events accepted for a key after it was forgotten. */
    reborn = 0;
    /** Events late because they fall before the key's frontier. */
    frontierLate = 0;
    constructor(
      private readonly gap: number,
      private readonly lateness: number,
    ) {}

    advance(W: number): void {
      for (const [key, k] of this.keys) {
        let live = 0;
        for (const s of sessionsOf(k.events, this.gap)) {
          const end = s.last + this.gap;
          if (end + this.lateness <= W) k.frontier = Math.max(k.frontier, end);
          else live++;
        }
        if (live === 0 && k.frontier + this.gap + this.lateness <= W) {
          for (const s of sessionsOf(k.events, this.gap)) this.done.push({ key, s });
          this.keys.delete(key);
          this.forgotten.add(key);
        }
      }
    }

    ingest(e: Ev, W: number): void {
      let k = this.keys.get(e.key);
      if (k && e.ts < k.frontier) {
        this.late++;
        this.frontierLate++;
        return;
      }
      const joins = (k ? sessionsOf(k.events, this.gap) : []).some((s) => s.last + this.gap + this.lateness > W && s.start < e.ts + this.gap && s.last + this.gap > e.ts);
      if (!joins && e.ts + this.gap + this.lateness <= W) {
        this.late++;
        return;
      }
      if (!k) this.keys.set(e.key, (k = { events: [], frontier: -Infinity }));
      if (this.forgotten.has(e.key)) this.reborn++;
      k.events.push(e);
    }

    sessions(): { key: string; s: Session }[] {
      const out = [...this.done];
      for (const [key, k] of this.keys) for (const s of sessionsOf(k.events, this.gap)) out.push({ key, s });
      return out;
    }
  }

  it('after dropping tombstoned rows the table holds exactly the brute-force sessions; every emitted start that no longer exists is tombstoned', () => {
    const seen = { late: 0, tombstone: 0, frontierLate: 0, forgottenKey: 0 };
    const triggers = fc.constantFrom<PipelineInput['trigger']>(undefined, { count: 1 }, { early: '1s' }, { count: 2 }, { early: '2s', count: 3 });
    fc.assert(
      fc.property(streamArb(200_000, 8_000, 25_000, ['a', 'b', 'c', 'd']), fc.constantFrom(3_000, 5_000, 10_000), fc.constantFrom(0, 0, 4_000, 20_000), triggers, (steps, gap, lateness, trigger) => {
        const rt = new PipelineRuntime(parsePipeline({ ...base, name: 'se', window: { type: 'session', gap }, allowedLateness: lateness, trigger }));
        const out = drive(rt, steps);

        const oracle = new Oracle(gap, lateness);
        let wm = -Infinity;
        for (const s of steps) {
          if (s.kind === 'tick') {
            wm = Math.max(wm, s.wm);
            oracle.advance(wm);
            continue;
          }
          wm = Math.max(wm, s.wmBefore);
          oracle.advance(wm);
          for (const e of s.events.filter(read)) oracle.ingest(e, wm);
          wm = Math.max(wm, s.wmAfter);
          oracle.advance(wm);
        }
        const want = new Map<string, { agg: Agg; end: number }>();
        for (const { key, s } of oracle.sessions()) want.set(`${key}|${s.start}`, { agg: aggOf(s.events), end: s.last + gap });

        // The table: upserts per (key, start); a tombstone removes its (key, start).
        const got = new Map<string, PipelineResult>();
        const lastWord = new Map<string, PipelineResult>();
        for (const r of out) {
          const id = `${r.key}|${r.start}`;
          expect(r.window).toBe('session');
          lastWord.set(id, r);
          if (r.superseded) {
            expect({ final: r.final, revision: r.revision }).toEqual({ final: true, revision: -1 });
            got.delete(id);
          } else got.set(id, r);
        }
        expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
        for (const [id, w] of want) {
          const r = got.get(id)!;
          expect({ ...columnsOf(r), end: r.end, final: r.final }, id).toEqual({ ...w.agg, end: w.end, final: true });
        }
        for (const [id, r] of lastWord) if (!want.has(id)) expect(r.superseded, `${id} was emitted and no longer exists: its last row must be a tombstone`).toBe(true);
        expect(rt.lateCount).toBe(oracle.late);
        if (oracle.late) seen.late++;
        if (out.some((r) => r.superseded)) seen.tombstone++;
        if (oracle.frontierLate) seen.frontierLate++;
        if (oracle.reborn) seen.forgottenKey++;
      }),
      { numRuns: 300 },
    );
    for (const [what, n] of Object.entries(seen)) expect(n, what).toBeGreaterThan(0);
  });
});

describe('PipelineRuntime rolling windows vs brute force', () => {
  const shapes = fc.constantFrom({ pane: 10_000, sizes: [30_000, 60_000] }, { pane: 10_000, sizes: [90_000, 10_000, 30_000] }, { pane: 5_000, sizes: [20_000] });

  it('for each key and size S, the row [E - S, E) aggregates the key’s kept events in it (E: end of the pane of its newest kept event)', () => {
    const seen = { closed: 0, outOfRange: 0, olderPane: 0 };
    fc.assert(
      fc.property(streamArb(300_000, 20_000, 40_000), shapes, fc.constantFrom(0, 10_000, 30_000), triggerArb, (steps, shape, lateness, trigger) => {
        const rt = new PipelineRuntime(parsePipeline({ ...base, name: 'ro', window: { type: 'rolling', pane: shape.pane, sizes: shape.sizes }, allowedLateness: lateness, trigger }));
        expect(rt.windows).toEqual(shape.sizes.map(durationName));
        const out = drive(rt, steps);

        // Oracle (rolling.ts): an event is late if its pane ends at or before watermark - lateness
        // (closed), or if its pane is older than the key's largest window (out of range).
        const maxSize = Math.max(...shape.sizes);
        const kept = new Map<string, Ev[]>();
        const newest = new Map<string, number>();
        let late = 0;
        const wms = watermarks(steps);
        steps.forEach((s, i) => {
          if (s.kind !== 'batch') return;
          const W = wms[i].assign;
          for (const e of s.events.filter(read)) {
            const p = floorTo(e.ts, shape.pane);
            const nw = newest.get(e.key);
            if (p + shape.pane + lateness <= W) {
              late++;
              seen.closed++;
              continue;
            }
            if (nw !== undefined && p <= nw - maxSize) {
              late++;
              seen.outOfRange++;
              continue;
            }
            if (nw !== undefined && p < nw) seen.olderPane++;
            kept.set(e.key, [...(kept.get(e.key) ?? []), e]);
            newest.set(e.key, Math.max(nw ?? -Infinity, p));
          }
        });

        const got = table(out);
        for (const [key, events] of kept) {
          const E = newest.get(key)! + shape.pane;
          for (const S of shape.sizes) {
            const id = `${key}|${durationName(S)}|${E - S}`;
            const r = got.get(id);
            expect(r, `row ${id}`).toBeDefined();
            expect({ ...columnsOf(r!), end: r!.end, final: r!.final }, id).toEqual({ ...aggOf(events.filter((e) => e.ts >= E - S && e.ts < E)), end: E, final: true });
          }
        }
        // no row of a window that ends after the key's newest pane, none of a key without events
        for (const r of got.values()) {
          expect(kept.has(r.key), r.key).toBe(true);
          expect(r.end).toBeLessThanOrEqual(newest.get(r.key)! + shape.pane);
        }
        expect(rt.lateCount).toBe(late);
      }),
      { numRuns: 200 },
    );
    for (const [what, n] of Object.entries(seen)) expect(n, what).toBeGreaterThan(0);
  });
});
