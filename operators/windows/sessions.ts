/**
 * State of session windows for KeyedWindows: per key, its sessions sorted by start (they never
 * overlap). An event opens [ts, ts + gap); it joins every session that window overlaps, and when
 * it bridges several they merge with Aggregator.merge (revision continues from the highest, and
 * the next result lists the absorbed windows in `replaces`). Sessions fire and are evicted on
 * event-time timers; after eviction the key keeps its `frontier` (the end of its last closed
 * session) until no accepted event could reach it, so an event that would reopen a closed
 * session goes to the late output instead of starting a second, overlapping one.
 */
import type { SessionAssigner } from './assigners.js';
import { sendLate } from './late.js';
import type { KeyedBatch, StateSize, WindowBounds, WindowContext, WindowOutput, WindowState, WindowStats } from './keyed.js';
import { decodeAcc, decodeArray, decodeCount, decodeNumber, decodeString, encodeNumber } from './snapshot.js';
import { TimerHeap, type Timed } from './timers.js';
import { FINAL, NONE, type WindowCell } from './triggers.js';

interface Session<ACC> extends WindowCell, Timed {
  owner: KeySessions<ACC>;
  start: number;
  /** Time of the latest event; the session ends at last + gap. */
  last: number;
  end: number;
  acc: ACC;
  queued: boolean;
  dead: boolean;
  /** Bounds under which this session, or a session it absorbed, was emitted: [start, end, start, end, ...]. */
  shown: number[] | null;
}

interface KeySessions<ACC> extends Timed {
  key: string;
  list: Session<ACC>[];
  /** End of the latest session closed for good; events before it are late. */
  frontier: number;
}

export class SessionState<IN, ACC, R> implements WindowState<IN, R> {
  private readonly name: string;
  private readonly gap: number;
  private readonly keys = new Map<string, KeySessions<ACC>>();
  private readonly timers = new TimerHeap<Session<ACC>>();
  private readonly keyTimers = new TimerHeap<KeySessions<ACC>>();
  private queue: Session<ACC>[] = [];
  private accCount = 0;

  constructor(
    assigner: SessionAssigner,
    private readonly ctx: WindowContext<ACC>,
  ) {
    this.name = assigner.name;
    this.gap = assigner.gapMs;
  }

  ingest(batch: KeyedBatch<IN>, wm: number, out: WindowOutput<IN, R>, stats: WindowStats): void {
    const { keys, ts, items } = batch;
    const { agg, trigger, allowedLatenessMs: lateness } = this.ctx;
    const gap = this.gap;
    for (let i = 0; i < keys.length; i++) {
      const t = ts[i];
      const key = keys[i];
      if (!Number.isFinite(t)) {
        sendLate(out, stats, this.name, key, t, items[i], 'bad-timestamp', wm);
        continue;
      }
      let ks = this.keys.get(key);
      if (ks !== undefined && t < ks.frontier) {
        sendLate(out, stats, this.name, key, t, items[i], 'closed', wm);
        continue;
      }
      // the sessions [i0, i1) overlap [t, t + gap)
      const list = ks?.list;
      let i1 = list === undefined ? 0 : list.length;
      while (i1 > 0 && list![i1 - 1].start >= t + gap) i1--;
      let i0 = i1;
      while (i0 > 0 && list![i0 - 1].end > t) i0--;
      let s: Session<ACC>;
      if (i0 === i1) {
        if (t + gap + lateness <= wm) {
          sendLate(out, stats, this.name, key, t, items[i], 'closed', wm);
          continue;
        }
        if (ks === undefined) {
          ks = { key, list: [], frontier: -Infinity, due: Infinity };
          this.keys.set(key, ks);
        }
        s = { owner: ks, start: t, last: t, end: t + gap, acc: agg.create(), revision: -1, needsFinal: true, pending: 0, queued: false, dead: false, due: Infinity, shown: null };
        ks.list.splice(i0, 0, s);
        this.accCount++;
      } else {
        s = list![i0];
        for (let j = i0 + 1; j < i1; j++) this.absorb(s, list![j]);
        if (i1 - i0 > 1) list!.splice(i0 + 1, i1 - i0 - 1);
      }
      agg.add(s.acc, items[i]);
      if (t < s.start) s.start = t;
      if (t > s.last) {
        s.last = t;
        s.end = t + gap;
      }
      stats.assigned++;
      if (trigger.onEvent(s, s.end > wm) && !s.queued) {
        s.queued = true;
        this.queue.push(s);
      }
      this.timers.schedule(s, s.end);
    }
  }

  /** Merges session `o` (later, bridged by an event) into `s`. */
  private absorb(s: Session<ACC>, o: Session<ACC>): void {
    this.ctx.agg.merge(s.acc, o.acc);
    if (o.start < s.start) s.start = o.start;
    if (o.last > s.last) {
      s.last = o.last;
      s.end = o.end;
    }
    if (o.revision > s.revision) s.revision = o.revision;
    s.pending += o.pending;
    s.needsFinal = true;
    if (o.shown) s.shown = s.shown ? s.shown.concat(o.shown) : o.shown;
    o.dead = true;
    o.due = -Infinity;
    this.accCount--;
  }

  fire(wm: number, out: WindowOutput<IN, R>): void {
    const { trigger, allowedLatenessMs: lateness } = this.ctx;
    for (let s = this.timers.next(wm); s !== undefined; s = this.timers.next(wm)) {
      if (s.dead) continue;
      if (s.end <= wm && s.needsFinal) this.emit(s, true, out);
      if (s.end + lateness <= wm) this.evict(s);
      else this.timers.schedule(s, s.needsFinal ? s.end : s.end + lateness);
    }
    const queue = this.queue;
    this.queue = [];
    for (const s of queue) {
      s.queued = false;
      if (s.dead) continue;
      const firing = trigger.atBatchEnd(s, s.end, wm);
      if (firing !== NONE) this.emit(s, firing === FINAL, out);
    }
    for (let ks = this.keyTimers.next(wm); ks !== undefined; ks = this.keyTimers.next(wm)) {
      if (ks.list.length > 0 || this.keys.get(ks.key) !== ks) continue;
      if (ks.frontier + lateness + this.gap <= wm) this.keys.delete(ks.key);
      else this.keyTimers.schedule(ks, ks.frontier + lateness + this.gap);
    }
  }

  private emit(s: Session<ACC>, final: boolean, out: WindowOutput<IN, R>): void {
    const { trigger, agg } = this.ctx;
    let replaces: WindowBounds[] | undefined;
    if (s.shown !== null) {
      for (let j = 0; j < s.shown.length; j += 2) {
        const start = s.shown[j];
        const end = s.shown[j + 1];
        if (start === s.start && end === s.end) continue;
        if (replaces?.some((b) => b.start === start && b.end === end)) continue;
        (replaces ??= []).push({ start, end });
      }
    }
    const result = { window: this.name, key: s.owner.key, start: s.start, end: s.end, result: agg.result(s.acc) as R, revision: trigger.emitted(s, final), final };
    out.emit(replaces ? { ...result, replaces } : result);
    s.shown = [s.start, s.end];
  }

  private evict(s: Session<ACC>): void {
    const ks = s.owner;
    ks.list.splice(ks.list.indexOf(s), 1);
    s.dead = true;
    s.due = -Infinity;
    this.accCount--;
    if (s.end > ks.frontier) ks.frontier = s.end;
    if (ks.list.length === 0) this.keyTimers.schedule(ks, ks.frontier + this.ctx.allowedLatenessMs + this.gap);
  }

  tick(wm: number, out: WindowOutput<IN, R>): void {
    const { trigger } = this.ctx;
    for (const ks of this.keys.values()) for (const s of ks.list) if (trigger.atTick(s, s.end, wm)) this.emit(s, false, out);
  }

  stateSize(): StateSize {
    return { keys: this.keys.size, windows: this.accCount, accumulators: this.accCount };
  }

  snapshot(): unknown {
    const serialize = this.ctx.agg.serialize;
    const keys: unknown[] = [];
    for (const ks of this.keys.values()) {
      const flat: unknown[] = [ks.key, encodeNumber(ks.frontier)];
      for (const s of ks.list) flat.push(s.start, s.last, serialize(s.acc), s.revision, s.needsFinal ? 1 : 0, s.pending, s.shown);
      keys.push(flat);
    }
    return { keys };
  }

  restore(state: unknown): void {
    const s = (state ?? {}) as { keys?: unknown };
    const { agg, allowedLatenessMs: lateness } = this.ctx;
    const deserialize = (text: string) => agg.deserialize(text);
    const keys = new Map<string, KeySessions<ACC>>();
    let accCount = 0;
    for (const [i, entry] of decodeArray(s.keys, 'state.keys').entries()) {
      const flat = decodeArray(entry, `state.keys[${i}]`);
      if (flat.length < 2 || (flat.length - 2) % 7 !== 0) throw new Error(`window snapshot: state.keys[${i}] must be [key, frontier, 7 values per session...]`);
      const ks: KeySessions<ACC> = { key: decodeString(flat[0], `state.keys[${i}][0]`), list: [], frontier: decodeNumber(flat[1], `state.keys[${i}][1]`), due: Infinity };
      for (let j = 2; j < flat.length; j += 7) {
        const where = `state.keys[${i}] (key ${ks.key}) session ${(j - 2) / 7}`;
        const last = decodeNumber(flat[j + 1], where);
        const shown = flat[j + 6] === null ? null : decodeArray(flat[j + 6], `${where} shown`, 2).map((v) => decodeNumber(v, `${where} shown`));
        ks.list.push({
          owner: ks,
          start: decodeNumber(flat[j], where),
          last,
          end: last + this.gap,
          acc: decodeAcc(deserialize, flat[j + 2], where),
          revision: decodeCount(flat[j + 3], where),
          needsFinal: decodeCount(flat[j + 4], where) === 1,
          pending: decodeCount(flat[j + 5], where),
          queued: false,
          dead: false,
          due: Infinity,
          shown,
        });
      }
      accCount += ks.list.length;
      keys.set(ks.key, ks);
    }
    this.keys.clear();
    this.timers.clear();
    this.keyTimers.clear();
    this.queue = [];
    for (const [key, ks] of keys) {
      this.keys.set(key, ks);
      for (const x of ks.list) this.timers.schedule(x, x.needsFinal ? x.end : x.end + lateness);
      if (ks.list.length === 0) this.keyTimers.schedule(ks, ks.frontier + lateness + this.gap);
    }
    this.accCount = accCount;
  }
}
