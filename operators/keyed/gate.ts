import { asyncScheduler, Observable, type MonoTypeOperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';
import { encodeNum, jsonCodec, SnapshotReader, type ValueCodec } from './snapshot.js';

/**
 * A per-key timing policy (debounce, throttle) as a clock-free state machine: the caller says
 * what time it is. Due times of all keys share one heap, so the driver needs one timer however
 * many keys are waiting.
 *
 * Contract: `offer` and `advance` first settle every deadline due at or before `now` (timers at
 * an instant run before events at that instant), and emit in deadline order.
 */
export interface KeyedGate<T> {
  /** Takes one value of `key` arriving at `now`; may emit at once (a leading edge). */
  offer(now: number, key: string, value: T, emit: (value: T, at: number) => void): void;
  /** Settles every deadline due at or before `now`. */
  advance(now: number, emit: (value: T, at: number) => void): void;
  /**
   * Settles what is due at `now`, then emits at `now` what would still have been emitted later
   * (held trailing values) and forgets every key.
   */
  flush(now: number, emit: (value: T, at: number) => void): void;
  /** Earliest instant `advance` may have work to do; Infinity when no key is waiting. */
  nextDue(): number;
  /** Keys with state (waiting for a deadline). */
  readonly size: number;
  /** Forgets every key without emitting. */
  clear(): void;
}

/** Key state kept in a `DueHeap`: `due` may lag behind the real deadline, never run ahead of it. */
export interface Due {
  due: number;
}

/** What every gate keeps per waiting key: its deadline and the value held for a trailing edge. */
export interface GateEntry<T> extends Due {
  key: string;
  pending: boolean;
  value: T | undefined;
}

/**
 * The bookkeeping debounce and throttle share: waiting keys in a map and a `DueHeap`, the
 * leading edge of a key that was not waiting, held values replaced while it waits, and the
 * flush. Subclasses say how a key's entry starts and what happens at its deadline (`advance`).
 */
export abstract class HeapGate<T, E extends GateEntry<T>> implements KeyedGate<T> {
  protected readonly entries = new Map<string, E>();
  protected readonly heap = new DueHeap<E>();

  constructor(
    protected readonly wait: number,
    protected readonly leading: boolean,
    protected readonly trailing: boolean,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** A fresh entry for a key that was not waiting, holding `value` (undefined after a leading emission). */
  protected abstract open(key: string, now: number, value: T | undefined): E;

  /** A value of a waiting key replaces the held one. */
  protected hold(e: E, _now: number, value: T): void {
    e.pending = true;
    e.value = value;
  }

  abstract advance(now: number, emit: (value: T, at: number) => void): void;

  /** `debounce`, `throttle`: snapshots are tagged `weir.<name>/1` and errors start with "<name> snapshot:". */
  protected abstract readonly snapshotName: string;
  /** The options as snapshots record them (defaults filled in). */
  protected abstract snapshotSpec(): Record<string, unknown>;
  /** Names of the numbers an entry keeps besides key and due (debounce: last, anchor). */
  protected abstract readonly snapshotFieldNames: readonly string[];
  /** Those numbers of an entry, in the order of snapshotFieldNames. */
  protected abstract snapshotFields(e: E): number[];
  /**
   * An entry from a snapshot row; `fields` are the numbers snapshotFields wrote (already read as
   * finite numbers). Refuses, through `read`, a state the policy cannot reach.
   */
  protected abstract revive(key: string, due: number, fields: number[], pending: boolean, value: T | undefined, read: SnapshotReader, where: string): E;

  /**
   * The state as JSON text, for checkpoints: format `weir.<name>/1`, the options, and the
   * waiting keys in heap order (which decides the order of emissions due at the same instant),
   * each as `[key, due, ...fields, held]`: held is null when no value is held, else `[value]`,
   * the value as `codec.encode` gives it. The default codec takes JSON values as they are and
   * refuses anything else (undefined, NaN, Date, Map, class instances): pass a codec for those.
   */
  snapshot(codec: ValueCodec<T> = jsonCodec<T>()): string {
    const keys = this.heap.toArray().map((e) => {
      const held = e.pending ? [this.encodeHeld(codec, e)] : null;
      return [e.key, encodeNum(e.due), ...this.snapshotFields(e).map(encodeNum), held];
    });
    return JSON.stringify({ format: `weir.${this.snapshotName}/1`, spec: this.snapshotSpec(), keys });
  }

  /**
   * Replaces the state with a snapshot taken by a gate with the same options (held values read
   * with `codec.decode`). Throws an Error saying what differs or what is malformed, and then
   * leaves the gate as it was.
   */
  restore(text: string, codec: ValueCodec<T> = jsonCodec<T>()): void {
    const read = new SnapshotReader(this.snapshotName);
    const top = read.open(text, `weir.${this.snapshotName}/1`, this.snapshotSpec());
    const seen = new Set<string>();
    const rows = read.array(top.keys, 'keys');
    const entries = rows.map((r, i) => {
      const where = `keys[${i}]`;
      const row = read.array(r, where);
      const key = read.string(row[0], `${where}[0] (key)`);
      read.unique(seen, key, 'keys');
      const at = `${where} (${JSON.stringify(key)})`;
      const names = this.snapshotFieldNames;
      if (row.length !== names.length + 3) read.fail(`${at} must be [${['key', 'due', ...names, 'held'].join(', ')}], got ${row.length} entries`);
      const due = read.finite(row[1], `${at} due`);
      const fields = names.map((name, j) => read.finite(row[j + 2], `${at} ${name}`));
      const held = row[row.length - 1];
      let value: T | undefined;
      if (held !== null) {
        const box = read.array(held, `${at} held value`, { min: 1, max: 1 });
        value = read.within(`${at} held value`, () => codec.decode(box[0]));
      }
      return this.revive(key, due, fields, held !== null, value, read, at);
    });
    for (let i = 1; i < entries.length; i++) {
      const parent = (i - 1) >> 1;
      if (entries[parent].due > entries[i].due) read.fail(`keys[${i}]: due ${entries[i].due} is earlier than its heap parent's (keys[${parent}]: ${entries[parent].due}): not in heap order`);
    }
    this.entries.clear();
    for (const e of entries) this.entries.set(e.key, e);
    this.heap.load(entries);
  }

  private encodeHeld(codec: ValueCodec<T>, e: E): unknown {
    try {
      return codec.encode(e.value as T);
    } catch (err) {
      throw new Error(`${this.snapshotName} snapshot: the value held for key ${JSON.stringify(e.key)} cannot be encoded: ${(err as Error).message}`);
    }
  }

  offer(now: number, key: string, value: T, emit: (value: T, at: number) => void): void {
    this.advance(now, emit);
    const e = this.entries.get(key);
    if (e) return this.hold(e, now, value);
    const fresh = this.open(key, now, this.leading ? undefined : value);
    this.entries.set(key, fresh);
    this.heap.push(fresh);
    if (this.leading) emit(value, now);
  }

  flush(now: number, emit: (value: T, at: number) => void): void {
    this.advance(now, emit);
    const trailing = this.trailing;
    for (let e = this.heap.pop(); e !== undefined; e = this.heap.pop()) {
      this.entries.delete(e.key);
      if (trailing && e.pending) emit(e.value as T, now);
    }
  }

  nextDue(): number {
    return this.heap.peek()?.due ?? Infinity;
  }

  clear(): void {
    this.entries.clear();
    this.heap.clear();
  }
}

/** A binary min-heap on `due`. Only the top is ever moved, so entries need no index. */
export class DueHeap<E extends Due> {
  private items: E[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): E | undefined {
    return this.items[0];
  }

  push(e: E): void {
    const a = this.items;
    let i = a.length;
    a.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p].due <= e.due) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = e;
  }

  pop(): E | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      this.siftDownTop();
    }
    return top;
  }

  /** Restores heap order after the top entry's `due` grew. */
  siftDownTop(): void {
    const a = this.items;
    const n = a.length;
    if (n === 0) return;
    const e = a[0];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && a[c + 1].due < a[c].due) c++;
      if (a[c].due >= e.due) break;
      a[i] = a[c];
      i = c;
    }
    a[i] = e;
  }

  clear(): void {
    this.items = [];
  }

  /** The entries in heap order (for snapshots). */
  toArray(): readonly E[] {
    return this.items;
  }

  /** Replaces the entries with `items`, which must be in heap order. */
  load(items: readonly E[]): void {
    this.items = [...items];
  }
}

/**
 * Runs a `KeyedGate` as an RxJS operator: one scheduled action at the earliest due time of any
 * key, re-armed after every event and every firing. On complete, deadlines already due are
 * settled, then pending values are flushed (see `KeyedGate.flush`), then complete propagates. On
 * error, pending values are dropped and the error propagates. Unsubscribing drops everything.
 */
export function keyedGate<T>(create: () => KeyedGate<T>, keyOf: (value: T) => string, scheduler: SchedulerLike = asyncScheduler): MonoTypeOperatorFunction<T> {
  return (source) =>
    new Observable<T>((destination) => {
      const gate = create();
      let armed: Subscription | null = null;
      let armedAt = Infinity;
      const emit = (value: T) => destination.next(value);
      const disarm = () => {
        armed?.unsubscribe();
        armed = null;
        armedAt = Infinity;
      };
      const rearm = () => {
        const due = gate.nextDue();
        if (due === armedAt) return;
        disarm();
        if (due === Infinity) return;
        armedAt = due;
        armed = scheduler.schedule(fire, Math.max(0, due - scheduler.now()));
      };
      // Timers can fire a little early against scheduler.now() (wall clock vs monotonic): then
      // advance settles nothing and rearm schedules the remainder.
      const fire = () => {
        armed = null;
        armedAt = Infinity;
        gate.advance(scheduler.now(), emit);
        rearm();
      };
      const subscription = source.subscribe({
        next(value) {
          let key: string;
          try {
            key = keyOf(value);
          } catch (err) {
            destination.error(err);
            return;
          }
          gate.offer(scheduler.now(), key, value, emit);
          rearm();
        },
        error(err) {
          disarm();
          gate.clear();
          destination.error(err);
        },
        complete() {
          disarm();
          gate.flush(scheduler.now(), emit);
          destination.complete();
        },
      });
      return () => {
        subscription.unsubscribe();
        disarm();
        gate.clear();
      };
    });
}

/** Throws a descriptive Error unless the timing options are usable. */
export function checkTimingOptions(op: string, opts: { waitMs: number; maxWaitMs?: number; leading?: boolean; trailing?: boolean }, defaults: { leading: boolean; trailing: boolean }): void {
  if (!(Number.isFinite(opts.waitMs) && opts.waitMs > 0)) throw new Error(`${op}: waitMs must be a positive finite number of ms, got ${opts.waitMs}`);
  if (opts.maxWaitMs !== undefined && !(opts.maxWaitMs >= opts.waitMs && opts.maxWaitMs < Infinity))
    throw new Error(`${op}: maxWaitMs must be a finite number of ms >= waitMs (${opts.waitMs}), got ${opts.maxWaitMs}`);
  if (!(opts.leading ?? defaults.leading) && !(opts.trailing ?? defaults.trailing)) throw new Error(`${op}: leading and trailing are both false, so nothing would ever be emitted`);
}
