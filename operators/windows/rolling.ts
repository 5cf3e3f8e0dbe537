/**
 * State of rolling windows for KeyedWindows: per key, its panes (starts ascending, accumulators) and,
 * per size, the trigger cell of the window [E - size, E) where E is the end of the pane of the
 * key's newest event. When a newer pane arrives, those windows are replaced by the ones ending
 * with it: the old ones that changed since their last final emission are emitted once more,
 * final (they never change again), before the event is added, so the rows a key leaves behind do
 * not depend on how the stream was cut into batches. Panes older than the largest size are then
 * dropped. A key is dropped once the watermark passes E + largest size + allowed lateness:
 * any later event starts windows that hold none of its panes.
 */
import { tumblingStart } from './assign.js';
import type { RollingAssigner, RollingSize } from './assigners.js';
import { sendLate } from './late.js';
import type { KeyedBatch, StateSize, WindowContext, WindowOutput, WindowState, WindowStats } from './keyed.js';
import { decodeAcc, decodeArray, decodeCount, decodeNumber, decodeString } from './snapshot.js';
import { TimerHeap, type Timed } from './timers.js';
import { FINAL, NONE, PARTIAL, newCell, type Firing, type WindowCell } from './triggers.js';

interface RollingKey<ACC> extends Timed {
  key: string;
  /** Pane starts, ascending, and their accumulators (a key holds at most the largest size of panes). */
  starts: number[];
  accs: ACC[];
  /** Start of the pane of the newest event. */
  newest: number;
  /** One per size, in the assigner's order. */
  cells: WindowCell[];
  queued: boolean;
  dead: boolean;
}

export class RollingState<IN, ACC, R> implements WindowState<IN, R> {
  private readonly name: string;
  private readonly pane: number;
  private readonly sizes: readonly RollingSize[];
  private readonly maxSize: number;
  /** Size indexes from the smallest size up. */
  private readonly ascending: number[];
  private readonly keys = new Map<string, RollingKey<ACC>>();
  private readonly timers = new TimerHeap<RollingKey<ACC>>();
  private queue: RollingKey<ACC>[] = [];
  private accCount = 0;

  constructor(
    assigner: RollingAssigner,
    private readonly ctx: WindowContext<ACC>,
  ) {
    this.name = assigner.name;
    this.pane = assigner.paneMs;
    this.sizes = assigner.sizes;
    this.maxSize = Math.max(...assigner.sizes.map((s) => s.sizeMs));
    this.ascending = assigner.sizes.map((_, j) => j).sort((a, b) => assigner.sizes[a].sizeMs - assigner.sizes[b].sizeMs);
  }

  ingest(batch: KeyedBatch<IN>, wm: number, out: WindowOutput<IN, R>, stats: WindowStats): void {
    const { keys, ts, items } = batch;
    const { agg, trigger, allowedLatenessMs: lateness } = this.ctx;
    const { pane, sizes, maxSize } = this;
    for (let i = 0; i < keys.length; i++) {
      const t = ts[i];
      const key = keys[i];
      if (!Number.isFinite(t)) {
        sendLate(out, stats, this.name, key, t, items[i], 'bad-timestamp', wm);
        continue;
      }
      const p = tumblingStart(t, pane);
      if (p + pane + lateness <= wm) {
        sendLate(out, stats, this.name, key, t, items[i], 'closed', wm);
        continue;
      }
      let rk = this.keys.get(key);
      if (rk !== undefined && p + pane <= rk.newest + pane - maxSize) {
        sendLate(out, stats, this.name, key, t, items[i], 'out-of-range', wm);
        continue;
      }
      if (rk === undefined) {
        rk = { key, starts: [], accs: [], newest: -Infinity, cells: [], queued: false, dead: false, due: Infinity };
        this.keys.set(key, rk);
      }
      if (p > rk.newest) {
        // The key's windows move on to end with pane p. The windows they replace never change
        // again: emit the ones that changed since their last final emission, final, now, so what
        // a row ends with does not depend on where batches were cut.
        if (rk.cells.length) this.closeSuperseded(rk, out);
        this.advanceNewest(rk, p);
      }
      // events mostly land in the newest pane: search from the end
      let j = rk.starts.length - 1;
      while (j >= 0 && rk.starts[j] > p) j--;
      if (j < 0 || rk.starts[j] !== p) {
        rk.starts.splice(++j, 0, p);
        rk.accs.splice(j, 0, agg.create());
        this.accCount++;
      }
      agg.add(rk.accs[j], items[i]);
      stats.assigned++;
      const end = rk.newest + pane;
      const open = end > wm;
      let look = false;
      for (let j = 0; j < sizes.length; j++) if (p >= end - sizes[j].sizeMs && trigger.onEvent(rk.cells[j], open)) look = true;
      if (look && !rk.queued) {
        rk.queued = true;
        this.queue.push(rk);
      }
      this.timers.schedule(rk, end);
    }
  }

  /** Emits, final, every window of `rk` that changed since its last final emission. */
  private closeSuperseded(rk: RollingKey<ACC>, out: WindowOutput<IN, R>): void {
    let any = false;
    const firings: Firing[] = rk.cells.map((c) => {
      if (!c.needsFinal) return NONE;
      any = true;
      return FINAL;
    });
    if (any) this.emit(rk, firings, out);
  }

  /** The key's windows now end with pane `p`: fresh cells, and panes older than the largest size go. */
  private advanceNewest(rk: RollingKey<ACC>, p: number): void {
    rk.newest = p;
    rk.cells = this.sizes.map(newCell);
    const oldest = p + this.pane - this.maxSize;
    let k = 0;
    while (k < rk.starts.length && rk.starts[k] < oldest) k++;
    if (k > 0) {
      rk.starts.splice(0, k);
      rk.accs.splice(0, k);
      this.accCount -= k;
    }
  }

  fire(wm: number, out: WindowOutput<IN, R>): void {
    const { trigger, allowedLatenessMs: lateness } = this.ctx;
    const firings: Firing[] = this.sizes.map(() => NONE);
    for (let rk = this.timers.next(wm); rk !== undefined; rk = this.timers.next(wm)) {
      if (rk.dead) continue;
      const end = rk.newest + this.pane;
      if (end <= wm) {
        let any = false;
        for (let j = 0; j < firings.length; j++) any = (firings[j] = rk.cells[j].needsFinal ? FINAL : NONE) !== NONE || any;
        if (any) this.emit(rk, firings, out);
      }
      if (end + this.maxSize + lateness <= wm) {
        this.keys.delete(rk.key);
        rk.dead = true;
        this.accCount -= rk.starts.length;
      } else this.timers.schedule(rk, rk.cells.some((c) => c.needsFinal) ? end : end + this.maxSize + lateness);
    }
    const queue = this.queue;
    this.queue = [];
    for (const rk of queue) {
      rk.queued = false;
      if (rk.dead) continue;
      const end = rk.newest + this.pane;
      let any = false;
      for (let j = 0; j < firings.length; j++) any = (firings[j] = trigger.atBatchEnd(rk.cells[j], end, wm)) !== NONE || any;
      if (any) this.emit(rk, firings, out);
    }
  }

  emitKeys(keys: Iterable<string>, wm: number, out: WindowOutput<IN, R>): void {
    const firings: Firing[] = this.sizes.map(() => NONE);
    for (const key of keys) {
      const rk = this.keys.get(key);
      if (rk === undefined || rk.dead) continue;
      const end = rk.newest + this.pane;
      let any = false;
      for (let j = 0; j < firings.length; j++) any = (firings[j] = end > wm && rk.cells[j].pending > 0 ? PARTIAL : NONE) !== NONE || any;
      if (any) this.emit(rk, firings, out);
    }
  }

  tick(wm: number, out: WindowOutput<IN, R>): void {
    const { trigger } = this.ctx;
    const firings: Firing[] = this.sizes.map(() => NONE);
    for (const rk of this.keys.values()) {
      const end = rk.newest + this.pane;
      let any = false;
      for (let j = 0; j < firings.length; j++) any = (firings[j] = trigger.atTick(rk.cells[j], end, wm) ? PARTIAL : NONE) !== NONE || any;
      if (any) this.emit(rk, firings, out);
    }
  }

  /**
   * Emits the windows of `rk` marked in `firings`, merging panes once from the newest back:
   * each size starts from the result of the next smaller one.
   */
  private emit(rk: RollingKey<ACC>, firings: readonly Firing[], out: WindowOutput<IN, R>): void {
    const { agg, trigger } = this.ctx;
    const end = rk.newest + this.pane;
    let widest = 0;
    for (let j = 0; j < firings.length; j++) if (firings[j] !== NONE && this.sizes[j].sizeMs > widest) widest = this.sizes[j].sizeMs;
    const { starts, accs } = rk;
    let acc = agg.create();
    let k = starts.length - 1;
    for (const j of this.ascending) {
      const size = this.sizes[j].sizeMs;
      if (size > widest) break;
      for (; k >= 0 && starts[k] >= end - size; k--) agg.merge(acc, accs[k]);
      if (firings[j] === NONE) continue;
      const final = firings[j] === FINAL;
      out.emit({ window: this.sizes[j].name, key: rk.key, start: end - size, end, result: agg.result(acc) as R, revision: trigger.emitted(rk.cells[j], final), final });
      if (size < widest) acc = agg.merge(agg.create(), acc);
    }
  }

  stateSize(wm: number): StateSize {
    let windows = 0;
    for (const rk of this.keys.values()) if (rk.newest + this.pane + this.ctx.allowedLatenessMs > wm) windows += this.sizes.length;
    return { keys: this.keys.size, windows, accumulators: this.accCount };
  }

  snapshot(): unknown {
    const serialize = this.ctx.agg.serialize;
    const keys: unknown[] = [];
    for (const rk of this.keys.values()) {
      const panes: unknown[] = [];
      for (let j = 0; j < rk.starts.length; j++) panes.push(rk.starts[j], serialize(rk.accs[j]));
      const cells: number[] = [];
      for (const c of rk.cells) cells.push(c.revision, c.needsFinal ? 1 : 0, c.pending);
      keys.push([rk.key, rk.newest, panes, cells]);
    }
    return { keys };
  }

  restore(state: unknown): void {
    const s = (state ?? {}) as { keys?: unknown };
    const { agg, allowedLatenessMs: lateness } = this.ctx;
    const deserialize = (text: string) => agg.deserialize(text);
    const keys = new Map<string, RollingKey<ACC>>();
    let accCount = 0;
    for (const [i, entry] of decodeArray(s.keys, 'state.keys').entries()) {
      const [key, newest, panes, cells] = decodeArray(entry, `state.keys[${i}]`, 4);
      const where = `state.keys[${i}]`;
      const rk: RollingKey<ACC> = { key: decodeString(key, where), starts: [], accs: [], newest: decodeNumber(newest, `${where} newest`), cells: [], queued: false, dead: false, due: Infinity };
      const flat = decodeArray(panes, `${where} panes`, 2);
      for (let j = 0; j < flat.length; j += 2) {
        const p = decodeNumber(flat[j], `${where} pane`);
        if (rk.starts.length > 0 && p <= rk.starts[rk.starts.length - 1]) throw new Error(`window snapshot: ${where} panes must be in ascending order of start`);
        rk.starts.push(p);
        rk.accs.push(decodeAcc(deserialize, flat[j + 1], `${where} (key ${rk.key}) pane ${p}`));
      }
      const c = decodeArray(cells, `${where} cells`, 3);
      if (c.length !== 3 * this.sizes.length) throw new Error(`window snapshot: ${where} has ${c.length / 3} window cells, the assigner has ${this.sizes.length} sizes`);
      for (let j = 0; j < c.length; j += 3) rk.cells.push({ revision: decodeCount(c[j], where), needsFinal: decodeCount(c[j + 1], where) === 1, pending: decodeCount(c[j + 2], where) });
      accCount += rk.starts.length;
      keys.set(rk.key, rk);
    }
    this.keys.clear();
    this.timers.clear();
    this.queue = [];
    for (const [key, rk] of keys) {
      this.keys.set(key, rk);
      const end = rk.newest + this.pane;
      this.timers.schedule(rk, rk.cells.some((c) => c.needsFinal) ? end : end + this.maxSize + lateness);
    }
    this.accCount = accCount;
  }
}
