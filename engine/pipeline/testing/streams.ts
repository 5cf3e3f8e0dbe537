/**
 * Random event streams for the PipelineRuntime property tests: events delivered roughly in event
 * time (each delayed by its own `delay`), cut into batches, the watermark trailing the newest
 * event by a random lag and never going back, ticks between batches, processing time moving on.
 * Each test file chooses its own events and batch parameters; this is the part they share.
 */
import type { KeyedSample } from '../runtime.js';
import type { PipelineResult } from '../runtime.js';
import type { PipelineRuntime } from '../runtime.js';

/** An event as the pipeline runtime takes it. */
export type Ev = KeyedSample;

export type Step = { kind: 'batch'; events: Ev[]; wmBefore: number; wmAfter: number; now: number } | { kind: 'tick'; wm: number; now: number };

export const FINAL_WM = 1e12;

/** Per batch: how far the watermark trails the newest event, where wmBefore lies, how `now` moves, an optional tick after it (`back`: a tick with an older watermark, which the runtime must ignore). */
export interface BatchParams {
  lag: number;
  before: number;
  nowDelta: number;
  tick: { wm: number; nowDelta: number; back?: boolean } | null;
}

/**
 * Orders `events` by ts + delay (stable), cuts them at `cuts`, and gives each batch its
 * watermark and processing time from `params` (one per batch, at least cuts + 1). Ends with
 * ticks at FINAL_WM, `drain` processing time apart (closing every window, releasing every
 * debounce).
 */
export function stepsOf<E extends { ts: number; delay: number }>(
  events: readonly E[],
  cuts: readonly number[],
  params: readonly BatchParams[],
  toEv: (e: E) => Ev,
  o: { now0?: number; drain?: number[] } = {},
): Step[] {
  const ordered = events
    .map((e, i) => ({ e, at: e.ts + e.delay, i }))
    .sort((x, y) => x.at - y.at || x.i - y.i)
    .map(({ e }) => toEv(e));
  const bounds = [...new Set([0, ...cuts.filter((c) => c < ordered.length), ordered.length])].sort((a, b) => a - b);
  const steps: Step[] = [];
  let wm = -1;
  let now = o.now0 ?? 0;
  let newest = -Infinity;
  for (let b = 0; b + 1 < bounds.length; b++) {
    const p = params[b];
    const batch = ordered.slice(bounds[b], bounds[b + 1]);
    for (const e of batch) newest = Math.max(newest, e.ts);
    const wmAfter = Number.isFinite(newest) ? Math.max(wm, newest - p.lag) : wm;
    const wmBefore = wm + Math.floor(p.before * (wmAfter - wm));
    now += p.nowDelta;
    steps.push({ kind: 'batch', events: batch, wmBefore, wmAfter, now });
    wm = wmAfter;
    if (p.tick) {
      now += p.tick.nowDelta;
      if (p.tick.back) steps.push({ kind: 'tick', wm: wm - p.tick.wm, now });
      else steps.push({ kind: 'tick', wm: (wm += p.tick.wm), now });
    }
  }
  for (const d of o.drain ?? [1_000_000]) steps.push({ kind: 'tick', wm: FINAL_WM, now: now + d });
  return steps;
}

/** Feeds one step to a runtime. */
export const call = (rt: PipelineRuntime, s: Step) => (s.kind === 'batch' ? rt.process(s.events as KeyedSample[], s.wmBefore, s.wmAfter, s.now) : rt.tick(s.wm, s.now));

/** The newest result per key|window|start: what the table holds after upserts. */
export function table(results: readonly PipelineResult[]): Map<string, PipelineResult> {
  const rows = new Map<string, PipelineResult>();
  for (const r of results) rows.set(`${r.key}|${r.window}|${r.start}`, r);
  return rows;
}
