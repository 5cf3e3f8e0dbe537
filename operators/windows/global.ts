/**
 * State of global windows for KeyedWindows: one accumulator per key that never closes (running
 * totals). The watermark never fires it, so results come from count or early firing only, and
 * are never final. Keys are never evicted: watch `size().keys`.
 */
import { GLOBAL_END, GLOBAL_START, type GlobalAssigner } from './assigners.js';
import type { KeyedBatch, StateSize, WindowContext, WindowOutput, WindowState, WindowStats } from './keyed.js';
import { decodeAcc, decodeArray, decodeCount, decodeString } from './snapshot.js';
import { NONE, type WindowCell } from './triggers.js';

interface Running<ACC> extends WindowCell {
  key: string;
  acc: ACC;
  queued: boolean;
}

export class GlobalState<IN, ACC, R> implements WindowState<IN, R> {
  private readonly name: string;
  private readonly keys = new Map<string, Running<ACC>>();
  private queue: Running<ACC>[] = [];

  constructor(
    assigner: GlobalAssigner,
    private readonly ctx: WindowContext<ACC>,
  ) {
    this.name = assigner.name;
  }

  ingest(batch: KeyedBatch<IN>, _wm: number, _out: WindowOutput<IN, R>, stats: WindowStats): void {
    const { keys, items } = batch;
    const { agg, trigger } = this.ctx;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      let run = this.keys.get(key);
      if (run === undefined) {
        run = { key, acc: agg.create(), revision: -1, needsFinal: true, pending: 0, queued: false };
        this.keys.set(key, run);
      }
      agg.add(run.acc, items[i]);
      stats.assigned++;
      if (trigger.onEvent(run, true) && !run.queued) {
        run.queued = true;
        this.queue.push(run);
      }
    }
  }

  fire(wm: number, out: WindowOutput<IN, R>): void {
    const queue = this.queue;
    this.queue = [];
    for (const run of queue) {
      run.queued = false;
      if (this.ctx.trigger.atBatchEnd(run, Infinity, wm) !== NONE) this.emit(run, out);
    }
  }

  tick(wm: number, out: WindowOutput<IN, R>): void {
    for (const run of this.keys.values()) if (this.ctx.trigger.atTick(run, Infinity, wm)) this.emit(run, out);
  }

  emitKeys(keys: Iterable<string>, _wm: number, out: WindowOutput<IN, R>): void {
    for (const key of keys) {
      const run = this.keys.get(key);
      if (run !== undefined && run.pending > 0) this.emit(run, out);
    }
  }

  private emit(run: Running<ACC>, out: WindowOutput<IN, R>): void {
    const { agg, trigger } = this.ctx;
    out.emit({ window: this.name, key: run.key, start: GLOBAL_START, end: GLOBAL_END, result: agg.result(run.acc) as R, revision: trigger.emitted(run, false), final: false });
  }

  stateSize(): StateSize {
    return { keys: this.keys.size, windows: this.keys.size, accumulators: this.keys.size };
  }

  snapshot(): unknown {
    const serialize = this.ctx.agg.serialize;
    const keys: unknown[] = [];
    for (const run of this.keys.values()) keys.push(run.key, serialize(run.acc), run.revision, run.pending);
    return { keys };
  }

  restore(state: unknown): void {
    const s = (state ?? {}) as { keys?: unknown };
    const deserialize = (text: string) => this.ctx.agg.deserialize(text);
    const flat = decodeArray(s.keys, 'state.keys', 4);
    const keys = new Map<string, Running<ACC>>();
    for (let j = 0; j < flat.length; j += 4) {
      const key = decodeString(flat[j], `state.keys[${j}]`);
      const where = `state.keys (key ${key})`;
      keys.set(key, { key, acc: decodeAcc(deserialize, flat[j + 1], where), revision: decodeCount(flat[j + 2], where), needsFinal: true, pending: decodeCount(flat[j + 3], where), queued: false });
    }
    this.keys.clear();
    for (const [k, v] of keys) this.keys.set(k, v);
    this.queue = [];
  }
}
