/**
 * Test helpers for the keyed window operator (used by operators/windows/*.test.ts only): an
 * exact count/sum aggregator, random event streams with disorder, batch boundaries, watermark
 * jumps and processing-time timers, a driver that runs KeyedWindows over them (with an optional
 * snapshot/restore mid-stream), and the trigger rules restated for brute-force oracles.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import type { Aggregator } from '../../aggregate.js';
import type { KeyedWindows, LateEvent, LateReason, StateSize, WindowResult, WindowStats } from '../keyed.js';
import type { TriggerSpec } from '../triggers.js';

export interface Item {
  id: number;
  value: number;
}

export interface CountSum {
  count: number;
  sum: number;
}

/** Exact count and sum of integer values. */
export const countSum: Aggregator<Item, CountSum, CountSum> = {
  create: () => ({ count: 0, sum: 0 }),
  add(acc, item) {
    acc.count++;
    acc.sum += item.value;
    return acc;
  },
  merge(a, b) {
    a.count += b.count;
    a.sum += b.sum;
    return a;
  },
  result: (acc) => ({ count: acc.count, sum: acc.sum }),
  serialize: (acc) => `${acc.count}:${acc.sum}`,
  deserialize(text) {
    const m = /^(\d+):(-?\d+)$/.exec(text);
    if (!m) throw new Error(`count/sum must look like "3:42", got ${JSON.stringify(text)}`);
    return { count: Number(m[1]), sum: Number(m[2]) };
  },
};

export interface Ev {
  key: string;
  ts: number;
  item: Item;
}

export type Step = { kind: 'batch'; events: Ev[]; wmBefore: number; wmAfter: number; now: number } | { kind: 'timer'; now: number };

export interface Stream {
  steps: Step[];
  eventCount: number;
}

export const KEYS = ['a', 'b', 'c', 'd'];
export const FINAL_WM = 1e15;

export interface StreamShape {
  /** Largest gap between consecutive base event times. */
  maxStep: number;
  /** Largest displacement of an event from the base clock (disorder). */
  maxDisorder: number;
  maxEvents?: number;
}

/**
 * Random event streams: event times follow a base clock with bounded disorder; batches of
 * random size; the watermark follows max(ts) - lag, sometimes jumps ahead (idle advances, as an
 * empty batch or as a later wmBefore), processing time moves on and timers fire in between;
 * the stream ends with a final advance to FINAL_WM and a late timer.
 */
export function streams(shape: StreamShape): fc.Arbitrary<Stream> {
  return fc
    .record({
      keyCount: fc.integer({ min: 1, max: KEYS.length }),
      t0: fc.integer({ min: -2_000, max: 2_000 }),
      disorder: fc.oneof(fc.integer({ min: 0, max: Math.ceil(shape.maxDisorder / 10) }), fc.integer({ min: 0, max: shape.maxDisorder })),
      lag: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: shape.maxDisorder })),
      raw: fc.array(
        fc.record({ step: fc.integer({ min: 0, max: shape.maxStep }), jitter: fc.double({ min: -1, max: 1, noNaN: true }), k: fc.nat({ max: KEYS.length - 1 }), value: fc.integer({ min: 1, max: 1 << 24 }) }),
        { maxLength: shape.maxEvents ?? 200, size: 'max' },
      ),
      batchSizes: fc.array(fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 20 })), { minLength: 1, maxLength: 80, size: 'max' }),
      between: fc.array(
        fc.oneof(
          { weight: 5, arbitrary: fc.constant({ t: 'none' as const }) },
          { weight: 1, arbitrary: fc.record({ t: fc.constant('idle' as const), jump: fc.integer({ min: 1, max: shape.maxDisorder + 10 }), empty: fc.boolean() }) },
          { weight: 2, arbitrary: fc.record({ t: fc.constant('timer' as const), dt: fc.integer({ min: 0, max: 300 }) }) },
        ),
        { minLength: 80, maxLength: 80 },
      ),
      nowSteps: fc.array(fc.integer({ min: 0, max: 120 }), { minLength: 80, maxLength: 80 }),
      /** Some events arrive this many places later than their turn (stragglers that bridge sessions or correct windows). */
      delays: fc.array(fc.option(fc.integer({ min: 1, max: 40 }), { freq: 5 }), { minLength: shape.maxEvents ?? 200, maxLength: shape.maxEvents ?? 200 }),
    })
    .map(({ keyCount, t0, disorder, lag, raw, batchSizes, between, nowSteps, delays }) => {
      let base = t0;
      const events: Ev[] = raw
        .map((r, id) => {
          base += r.step;
          return { key: KEYS[r.k % keyCount], ts: base + Math.round(r.jitter * disorder), item: { id, value: r.value }, arrival: id + (delays[id] ?? 0) };
        })
        .sort((a, b) => a.arrival - b.arrival)
        .map(({ arrival: _, ...e }) => e);
      const steps: Step[] = [];
      let wm = -Infinity;
      let now = 1_000_000 + t0;
      let jumpNext = -Infinity;
      let i = 0;
      for (let b = 0; b < batchSizes.length && i < events.length; b++) {
        const act = between[b];
        if (act.t === 'timer') steps.push({ kind: 'timer', now: (now += act.dt) });
        else if (act.t === 'idle') {
          const target = (wm === -Infinity ? t0 - 500 : wm) + act.jump;
          if (act.empty) {
            steps.push({ kind: 'batch', events: [], wmBefore: target, wmAfter: target, now: (now += 1) });
            wm = target;
          } else jumpNext = target;
        }
        const batch = events.slice(i, i + batchSizes[b]);
        i += batchSizes[b];
        const wmBefore = Math.max(wm, jumpNext);
        jumpNext = -Infinity;
        const maxTs = batch.reduce((m, e) => Math.max(m, e.ts), -Infinity);
        const wmAfter = Math.max(wmBefore, maxTs - lag);
        steps.push({ kind: 'batch', events: batch, wmBefore, wmAfter, now: (now += nowSteps[b]) });
        wm = wmAfter;
      }
      if (i < events.length) {
        const batch = events.slice(i);
        const wmAfter = Math.max(wm, batch.reduce((m, e) => Math.max(m, e.ts), -Infinity) - lag);
        steps.push({ kind: 'batch', events: batch, wmBefore: wm, wmAfter, now: (now += 50) });
        wm = wmAfter;
      }
      steps.push({ kind: 'batch', events: [], wmBefore: FINAL_WM, wmAfter: FINAL_WM, now: (now += 1) });
      steps.push({ kind: 'timer', now: now + 1e6 });
      return { steps, eventCount: events.length };
    });
}

/** No trigger option (the assigner's default), or early and/or count firing. */
export const triggers: fc.Arbitrary<TriggerSpec | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constant({}),
  fc.record({ earlyMs: fc.integer({ min: 1, max: 200 }) }),
  fc.record({ count: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ earlyMs: fc.integer({ min: 1, max: 200 }), count: fc.integer({ min: 1, max: 4 }) }),
);

export const latenesses: fc.Arbitrary<number> = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 50, max: 400 }));

// ---- what a step produced, in a comparable form -------------------------------------------------

export interface Emitted {
  window: string;
  key: string;
  start: number;
  end: number;
  revision: number;
  final: boolean;
  count: number;
  sum: number;
  replaces?: string[];
}

export interface Rejected {
  window: string;
  key: string;
  id: number;
  reason: LateReason;
}

export interface StepRecord {
  results: Emitted[];
  late: Rejected[];
  stats: { assigned: number; late: number; emitted: number };
  size: StateSize;
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function sortEmitted(xs: Emitted[]): Emitted[] {
  return [...xs].sort((a, b) => byText(a.window, b.window) || byText(a.key, b.key) || a.start - b.start || a.end - b.end || a.revision - b.revision);
}

export function emitted(e: WindowResult<CountSum>): Emitted {
  const out: Emitted = { window: e.window, key: e.key, start: e.start, end: e.end, revision: e.revision, final: e.final, count: e.result.count, sum: e.result.sum };
  if (e.replaces) out.replaces = e.replaces.map((b) => `${b.start}-${b.end}`).sort(byText);
  return out;
}

export function rejected(e: LateEvent<Item>): Rejected {
  return { window: e.window, key: e.key, id: e.item.id, reason: e.reason };
}

export interface Run {
  records: StepRecord[];
  /** Snapshot taken before step `snapshotAt`, and the snapshot of the operator restored from it. */
  roundTrip?: { taken: string; restored: string };
}

/**
 * Drives an operator over the steps. If `snapshotAt` is a step index, the operator is
 * snapshotted before that step and replaced by a fresh one restored from the snapshot.
 */
/**
 * Runs a fixed sample of scenarios, for tests that the generator reaches the interesting cases:
 * `share(pred)` is the fraction of sampled runs for which `pred` holds.
 */
export function sampleRuns<S extends { stream: Stream; snapshotAt: number }>(scenarios: fc.Arbitrary<S>, make: (sc: S) => () => KeyedWindows<Item, CountSum, CountSum>, numRuns: number, seed: number) {
  const samples = fc.sample(scenarios, { numRuns, seed }).map((sc) => ({ sc, run: drive(sc.stream.steps, make(sc), sc.snapshotAt) }));
  type Sampled = (typeof samples)[number];
  return {
    share: (pred: (x: Sampled) => boolean) => samples.filter(pred).length / samples.length,
    results: (x: Sampled) => x.run.records.flatMap((r) => r.results),
    late: (x: Sampled) => x.run.records.flatMap((r) => r.late),
  };
}

export function drive(steps: Step[], make: () => KeyedWindows<Item, CountSum, CountSum>, snapshotAt = -1): Run {
  let w = make();
  const run: Run = { records: [] };
  steps.forEach((step, i) => {
    if (i === snapshotAt) {
      const taken = w.snapshot();
      w = make();
      // state from a different stream must be replaced, not merged
      if (steps[0].kind === 'batch') w.process({ keys: ['zz'], ts: [0], items: [{ id: -1, value: 1 }], wmBefore: -Infinity, wmAfter: -Infinity, now: 0 }, { emit() {}, late() {} });
      w.restore(taken);
      run.roundTrip = { taken, restored: w.snapshot() };
    }
    const results: Emitted[] = [];
    const late: Rejected[] = [];
    const out = { emit: (e: WindowResult<CountSum>) => results.push(emitted(e)), late: (e: LateEvent<Item>) => late.push(rejected(e)) };
    let stats: WindowStats;
    if (step.kind === 'timer') stats = w.onTimer(step.now, out);
    else {
      const { events } = step;
      stats = w.process(
        { keys: events.map((e) => e.key), ts: Float64Array.from(events.map((e) => e.ts)), items: events.map((e) => e.item), wmBefore: step.wmBefore, wmAfter: step.wmAfter, now: step.now },
        out,
      );
    }
    run.records.push({ results: sortEmitted(results), late: late.sort((a, b) => a.id - b.id), stats, size: w.size() });
  });
  return run;
}

// ---- the trigger rules, restated for oracles ----------------------------------------------------

export interface OracleCell {
  revision: number;
  needsFinal: boolean;
  pending: number;
}

export const oracleCell = (): OracleCell => ({ revision: -1, needsFinal: true, pending: 0 });

/** A window as an oracle sees it: bounds, trigger state, and its content recomputed from the accepted events. */
export interface OracleWindow {
  window: string;
  key: string;
  start: number;
  end: number;
  cell: OracleCell;
  content(): Ev[];
  /** Sessions: bounds emitted before under this window or windows it absorbed. */
  shown?: string[];
}

/**
 * The shared part of every oracle: watermark, early-firing schedule and the firing rules, over
 * the windows a subclass recomputes by brute force.
 */
export abstract class Oracle {
  wm = -Infinity;
  private nextTick = NaN;
  /** Emissions an `accept` caused (rolling windows superseded by a newer pane). */
  protected readonly emittedOnAccept: Emitted[] = [];

  constructor(
    readonly earlyMs: number,
    readonly count: number,
    readonly lateness: number,
  ) {}

  /** Takes one event judged against watermark `wm`; returns why it is late, or null. */
  abstract accept(e: Ev, wm: number): LateReason | null;
  /** The windows that can still emit, with their trigger state up to date. */
  abstract windows(): OracleWindow[];
  /** Forgets what the watermark closed for good. */
  abstract evict(wm: number): void;
  abstract stateSize(wm: number): StateSize;

  step(step: Step): StepRecord {
    const results: Emitted[] = [];
    const late: Rejected[] = [];
    let assigned = 0;
    if (step.kind === 'batch') {
      if (step.wmBefore > this.wm) {
        this.wm = step.wmBefore;
        this.batchEnd(results);
      }
      for (const e of step.events) {
        const reason = this.accept(e, this.wm);
        if (reason) late.push({ window: this.lateName(), key: e.key, id: e.item.id, reason });
        else assigned++;
        results.push(...this.emittedOnAccept.splice(0));
      }
      if (step.wmAfter > this.wm) this.wm = step.wmAfter;
      this.batchEnd(results);
    }
    this.tick(step.now, results);
    return {
      results: sortEmitted(results),
      late: late.sort((a, b) => a.id - b.id),
      stats: { assigned, late: late.length, emitted: results.length },
      size: this.stateSize(this.wm),
    };
  }

  protected abstract lateName(): string;

  private batchEnd(results: Emitted[]): void {
    for (const w of this.windows()) {
      if (w.end <= this.wm) {
        if (w.cell.needsFinal) results.push(this.emit(w, true));
      } else if (this.count > 0 && w.cell.pending >= this.count) results.push(this.emit(w, false));
    }
    this.evict(this.wm);
  }

  private tick(now: number, results: Emitted[]): void {
    if (this.earlyMs === 0) return;
    const next = now - (((now % this.earlyMs) + this.earlyMs) % this.earlyMs) + this.earlyMs;
    if (Number.isNaN(this.nextTick)) {
      this.nextTick = next;
      return;
    }
    if (now < this.nextTick) return;
    for (const w of this.windows()) if (w.end > this.wm && w.cell.pending > 0) results.push(this.emit(w, false));
    this.nextTick = next;
  }

  protected emit(w: OracleWindow, final: boolean): Emitted {
    const content = w.content();
    w.cell.pending = 0;
    if (final) w.cell.needsFinal = false;
    const out: Emitted = { window: w.window, key: w.key, start: w.start, end: w.end, revision: ++w.cell.revision, final, count: content.length, sum: content.reduce((a, e) => a + e.item.value, 0) };
    if (w.shown) {
      const self = `${w.start}-${w.end}`;
      const replaces = [...new Set(w.shown.filter((b) => b !== self))].sort(byText);
      if (replaces.length) out.replaces = replaces;
      w.shown.length = 0;
      w.shown.push(self);
    }
    return out;
  }
}

/** Runs an oracle over the steps. */
export function runOracle(steps: Step[], oracle: Oracle): StepRecord[] {
  return steps.map((s) => oracle.step(s));
}

/** Floor of `ts` to a multiple of `size` (negative included), independent of the operator's code. */
export function floorTo(ts: number, size: number): number {
  return Math.floor(ts / size) * size;
}

/**
 * The checks every assigner's oracle test makes: at each step the same results, late events,
 * stats and state size as the oracle; a restored snapshot identical to the one taken; every event
 * either assigned or late; and nothing held after the final advance.
 */
export function expectRunMatchesOracle(stream: Stream, run: Run, expected: StepRecord[]): void {
  run.records.forEach((rec, i) => {
    const step = stream.steps[i];
    const where = `step ${i} (${step.kind}${step.kind === 'batch' ? `, wm ${step.wmBefore} -> ${step.wmAfter}, ${step.events.length} events` : ''}, now ${step.now})`;
    expect(rec.results, `results at ${where}`).toEqual(expected[i].results);
    expect(rec.late, `late at ${where}`).toEqual(expected[i].late);
    expect(rec.stats, `stats at ${where}`).toEqual(expected[i].stats);
    expect(rec.size, `size at ${where}`).toEqual(expected[i].size);
  });
  if (run.roundTrip) expect(run.roundTrip.restored).toBe(run.roundTrip.taken);
  expect(run.records.reduce((a, r) => a + r.stats.assigned + r.stats.late, 0)).toBe(stream.eventCount);
  expect(run.records[run.records.length - 1].size).toEqual({ keys: 0, windows: 0, accumulators: 0 });
}
