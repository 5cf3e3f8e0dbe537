/**
 * State of aligned windows (tumbling and sliding) for KeyedWindows. Events go into panes of
 * gcd(size, slide) (the window itself when tumbling): pane start -> (key -> accumulator), so an
 * event updates one accumulator and a window result merges the window's panes for the key.
 * Trigger state lives per window start -> (key -> cell), created only when needed: for open
 * windows under count or early firing, and for fired windows that take an event within allowed
 * lateness. A fired window without a cell for a key emitted it once, at revision 0, if it held
 * data for it then, so the watermark firing of a large window allocates nothing per key.
 */
import { tumblingStart } from './assign.js';
import { paneWidth, type SlidingAssigner, type TumblingAssigner } from './assigners.js';
import { sendLate } from './late.js';
import type { KeyedBatch, StateSize, WindowContext, WindowOutput, WindowState, WindowStats } from './keyed.js';
import { decodeAcc, decodeArray, decodeCount, decodeNumber, decodeString, encodeNumber } from './snapshot.js';
import { FINAL, NONE, type WindowCell } from './triggers.js';

interface PaneGroup<ACC> {
  start: number;
  accs: Map<string, ACC>;
}

interface PaneCell extends WindowCell {
  queued: boolean;
}

/** A literal, not a spread of newCell(): spread objects made cell updates ten times slower in V8. */
function newPaneCell(): PaneCell {
  return { revision: -1, needsFinal: true, pending: 0, queued: false };
}

interface WindowGroup {
  start: number;
  end: number;
  cells: Map<string, PaneCell>;
}

interface Queued {
  group: WindowGroup;
  key: string;
  cell: PaneCell;
}

export class PaneState<IN, ACC, R> implements WindowState<IN, R> {
  private readonly name: string;
  private readonly size: number;
  private readonly slide: number;
  private readonly pane: number;
  private readonly panes = new Map<number, PaneGroup<ACC>>();
  private readonly windows = new Map<number, WindowGroup>();
  private queue: Queued[] = [];
  /** Windows with end <= fired have had their watermark firing. */
  private fired = -Infinity;
  private accCount = 0;

  constructor(
    assigner: TumblingAssigner | SlidingAssigner,
    private readonly ctx: WindowContext<ACC>,
  ) {
    this.name = assigner.name;
    this.size = assigner.sizeMs;
    this.slide = assigner.type === 'tumbling' ? assigner.sizeMs : assigner.slideMs;
    this.pane = paneWidth(assigner);
  }

  ingest(batch: KeyedBatch<IN>, wm: number, out: WindowOutput<IN, R>, stats: WindowStats): void {
    const { keys, ts, items } = batch;
    const { size, slide, pane, panes } = this;
    const { agg, allowedLatenessMs: lateness } = this.ctx;
    const tracks = this.ctx.trigger.tracksOpen;
    const n = keys.length;
    let lastPane = NaN;
    let group: PaneGroup<ACC> | undefined;
    /** End of the earliest window holding the current pane: if the watermark passed it, some window already fired. */
    let firstEnd = NaN;
    for (let i = 0; i < n; i++) {
      const t = ts[i];
      if (!Number.isFinite(t)) {
        sendLate(out, stats, this.name, keys[i], t, items[i], 'bad-timestamp', wm);
        continue;
      }
      if (tumblingStart(t, slide) + size + lateness <= wm) {
        sendLate(out, stats, this.name, keys[i], t, items[i], 'closed', wm);
        continue;
      }
      const p = tumblingStart(t, pane);
      if (p !== lastPane) {
        group = panes.get(p);
        if (group === undefined) {
          group = { start: p, accs: new Map() };
          panes.set(p, group);
        }
        lastPane = p;
        firstEnd = tumblingStart(p - size, slide) + slide + size;
      }
      const key = keys[i];
      let acc = group!.accs.get(key);
      const created = acc === undefined;
      if (acc === undefined) {
        acc = agg.create();
        group!.accs.set(key, acc);
        this.accCount++;
      }
      agg.add(acc, items[i]);
      stats.assigned++;
      if (tracks || firstEnd <= wm) this.touch(p, key, wm, created);
    }
  }

  /**
   * Tells the trigger of every window holding pane `p` (and not closed for good) that `key` got
   * an event; `created` says the event opened the key's accumulator in `p`.
   */
  private touch(p: number, key: string, wm: number, created: boolean): void {
    const { size, slide } = this;
    const { trigger, allowedLatenessMs: lateness } = this.ctx;
    const last = tumblingStart(p, slide);
    for (let w = tumblingStart(p - size, slide) + slide; w <= last; w += slide) {
      const end = w + size;
      if (end + lateness <= wm) continue;
      const open = end > wm;
      if (open && !trigger.tracksOpen) continue;
      const group = this.windowGroup(w);
      let cell = group.cells.get(key);
      if (cell === undefined) {
        cell = newPaneCell();
        // fired windows keep no cell for keys emitted by the watermark firing alone (revision 0)
        if (!open && this.heldBefore(w, key, p, created)) cell.revision = 0;
        group.cells.set(key, cell);
      }
      if (trigger.onEvent(cell, open) && !cell.queued) {
        cell.queued = true;
        this.queue.push({ group, key, cell });
      }
    }
  }

  /** Whether `key` had data in window `w` before the current event (which went to pane `p`). */
  private heldBefore(w: number, key: string, p: number, created: boolean): boolean {
    for (let q = w, end = w + this.size; q < end; q += this.pane) {
      if (q === p && created) continue;
      if (this.panes.get(q)?.accs.has(key)) return true;
    }
    return false;
  }

  private windowGroup(w: number): WindowGroup {
    let group = this.windows.get(w);
    if (group === undefined) {
      group = { start: w, end: w + this.size, cells: new Map() };
      this.windows.set(w, group);
    }
    return group;
  }

  fire(wm: number, out: WindowOutput<IN, R>): void {
    const { size, slide } = this;
    const { trigger, allowedLatenessMs: lateness } = this.ctx;
    const advanced = wm > this.fired;
    if (advanced) {
      // windows reaching the watermark now: those holding an existing pane with fired < end <= wm
      const starts = new Set<number>();
      for (const p of this.panes.keys()) {
        const last = tumblingStart(p, slide);
        for (let w = tumblingStart(p - size, slide) + slide; w <= last; w += slide) {
          const end = w + size;
          if (end > this.fired && end <= wm) starts.add(w);
        }
      }
      for (const w of [...starts].sort((a, b) => a - b)) this.fireWindow(w, out);
      this.fired = wm;
    }
    const queue = this.queue;
    this.queue = [];
    for (const { group, key, cell } of queue) {
      cell.queued = false;
      const firing = trigger.atBatchEnd(cell, group.end, wm);
      if (firing === NONE) continue;
      const final = firing === FINAL;
      out.emit({ window: this.name, key, start: group.start, end: group.end, result: this.resultOf(group.start, key), revision: trigger.emitted(cell, final), final });
    }
    if (!advanced) return;
    // evict windows closed for good, and panes whose every window is
    for (const group of this.windows.values()) if (group.end + lateness <= wm) this.windows.delete(group.start);
    for (const group of this.panes.values()) {
      if (tumblingStart(group.start, slide) + size + lateness <= wm) {
        this.accCount -= group.accs.size;
        this.panes.delete(group.start);
      }
    }
  }

  /** The watermark firing of window `w`: every key with data in it that has not had a final result since it last changed. */
  private fireWindow(w: number, out: WindowOutput<IN, R>): void {
    const { trigger, agg } = this.ctx;
    const end = w + this.size;
    const group = this.windows.get(w);
    // keys without a cell (no early or count firing) get revision 0 and no cell: see touch()
    const emit = (key: string, result: R) => {
      const cell = group?.cells.get(key);
      out.emit({ window: this.name, key, start: w, end, result, revision: cell === undefined ? 0 : trigger.emitted(cell, true), final: true });
    };
    if (this.pane === this.size) {
      const only = this.panes.get(w);
      if (only) for (const [key, acc] of only.accs) emit(key, agg.result(acc) as R);
      return;
    }
    const merged = new Map<string, { acc: ACC; owned: boolean }>();
    for (let p = w; p < end; p += this.pane) {
      const group = this.panes.get(p);
      if (group === undefined) continue;
      for (const [key, acc] of group.accs) {
        const m = merged.get(key);
        if (m === undefined) merged.set(key, { acc, owned: false });
        else if (m.owned) agg.merge(m.acc, acc);
        else merged.set(key, { acc: agg.merge(agg.merge(agg.create(), m.acc), acc), owned: true });
      }
    }
    for (const [key, m] of merged) emit(key, agg.result(m.acc) as R);
  }

  /** The aggregate of `key` over the panes of window `w`. */
  private resultOf(w: number, key: string): R {
    const { agg } = this.ctx;
    if (this.pane === this.size) {
      const acc = this.panes.get(w)?.accs.get(key);
      return agg.result(acc ?? agg.create()) as R;
    }
    let merged: ACC | undefined;
    for (let p = w, end = w + this.size; p < end; p += this.pane) {
      const acc = this.panes.get(p)?.accs.get(key);
      if (acc !== undefined) merged = agg.merge(merged ?? agg.create(), acc);
    }
    return agg.result(merged ?? agg.create()) as R;
  }

  tick(wm: number, out: WindowOutput<IN, R>): void {
    const { trigger } = this.ctx;
    for (const group of this.windows.values()) {
      if (group.end <= wm) continue;
      for (const [key, cell] of group.cells) {
        if (!trigger.atTick(cell, group.end, wm)) continue;
        out.emit({ window: this.name, key, start: group.start, end: group.end, result: this.resultOf(group.start, key), revision: trigger.emitted(cell, false), final: false });
      }
    }
  }

  stateSize(wm: number): StateSize {
    const lateness = this.ctx.allowedLatenessMs;
    const keys = new Set<string>();
    for (const group of this.panes.values()) for (const key of group.accs.keys()) keys.add(key);
    const starts = new Set<number>();
    for (const p of this.panes.keys()) {
      const last = tumblingStart(p, this.slide);
      for (let w = tumblingStart(p - this.size, this.slide) + this.slide; w <= last; w += this.slide) if (w + this.size + lateness > wm) starts.add(w);
    }
    let windows = 0;
    for (const w of starts) {
      const inWindow = new Set<string>();
      for (let p = w; p < w + this.size; p += this.pane) for (const key of this.panes.get(p)?.accs.keys() ?? []) inWindow.add(key);
      windows += inWindow.size;
    }
    return { keys: keys.size, windows, accumulators: this.accCount };
  }

  snapshot(): unknown {
    const serialize = this.ctx.agg.serialize;
    const panes: unknown[] = [];
    for (const group of this.panes.values()) {
      const flat: unknown[] = [];
      for (const [key, acc] of group.accs) flat.push(key, serialize(acc));
      panes.push([group.start, flat]);
    }
    const windows: unknown[] = [];
    for (const group of this.windows.values()) {
      const flat: unknown[] = [];
      for (const [key, c] of group.cells) flat.push(key, c.revision, c.needsFinal ? 1 : 0, c.pending);
      windows.push([group.start, flat]);
    }
    return { fired: encodeNumber(this.fired), panes, windows };
  }

  restore(state: unknown, _wm: number): void {
    const s = (state ?? {}) as { fired?: unknown; panes?: unknown; windows?: unknown };
    const deserialize = (text: string) => this.ctx.agg.deserialize(text);
    const panes = new Map<number, PaneGroup<ACC>>();
    let accCount = 0;
    for (const [i, entry] of decodeArray(s.panes, 'state.panes').entries()) {
      const [start, flat] = decodeArray(entry, `state.panes[${i}]`) as [unknown, unknown];
      const group: PaneGroup<ACC> = { start: decodeNumber(start, `state.panes[${i}][0]`), accs: new Map() };
      const list = decodeArray(flat, `state.panes[${i}][1]`, 2);
      for (let j = 0; j < list.length; j += 2) group.accs.set(decodeString(list[j], `state.panes[${i}][1][${j}]`), decodeAcc(deserialize, list[j + 1], `state.panes[${i}] key ${String(list[j])}`));
      accCount += group.accs.size;
      panes.set(group.start, group);
    }
    const windows = new Map<number, WindowGroup>();
    for (const [i, entry] of decodeArray(s.windows, 'state.windows').entries()) {
      const [start, flat] = decodeArray(entry, `state.windows[${i}]`) as [unknown, unknown];
      const w = decodeNumber(start, `state.windows[${i}][0]`);
      const group: WindowGroup = { start: w, end: w + this.size, cells: new Map() };
      const list = decodeArray(flat, `state.windows[${i}][1]`, 4);
      for (let j = 0; j < list.length; j += 4) {
        const where = `state.windows[${i}][1][${j}]`;
        group.cells.set(decodeString(list[j], where), {
          revision: decodeCount(list[j + 1], where),
          needsFinal: decodeCount(list[j + 2], where) === 1,
          pending: decodeCount(list[j + 3], where),
          queued: false,
        });
      }
      windows.set(w, group);
    }
    const fired = decodeNumber(s.fired, 'state.fired');
    this.panes.clear();
    this.windows.clear();
    for (const [k, v] of panes) this.panes.set(k, v);
    for (const [k, v] of windows) this.windows.set(k, v);
    this.accCount = accCount;
    this.fired = fired;
    this.queue = [];
  }
}
