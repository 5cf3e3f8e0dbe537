import type { MonoTypeOperatorFunction, SchedulerLike } from 'rxjs';
import { checkTimingOptions, HeapGate, keyedGate, type GateEntry } from './gate.js';
import { encodeNum } from './snapshot.js';

export interface DebounceOptions {
  /** A key's burst ends once it has been quiet this long (ms); its last value is emitted then. */
  waitMs: number;
  /**
   * Upper bound (ms, >= waitMs) on how long a value is held under a continuous stream: a pending
   * value is emitted at most maxWaitMs after the burst started or after the key's previous
   * emission. Default: no bound.
   */
  maxWaitMs?: number;
  /** Emit the first value of a burst at once. Default false. */
  leading?: boolean;
  /** Emit the last value of a burst when it ends (if not already emitted as leading). Default true. */
  trailing?: boolean;
}

interface Entry<T> extends GateEntry<T> {
  /** Time of the key's latest value. */
  last: number;
  /** Start of the burst, or time of the key's latest maxWait emission. */
  anchor: number;
}

/**
 * Per-key debounce as a clock-free state machine (see `KeyedGate`). A key is waiting from its
 * first value until its burst ends; then its entry is deleted, so state is bounded by the keys
 * that had a value in the last max(waitMs, maxWaitMs) ms.
 *
 * Per key: a value when the key is not waiting starts a burst at t (anchor = t; emitted at once
 * if `leading`, otherwise held). A value during a burst replaces the held one. The key's deadline
 * is min(last + waitMs, anchor + maxWaitMs). At the deadline:
 * - quiet (last + waitMs reached first, or at the same instant): the burst ends; the held value
 *   is emitted if `trailing`; the entry is deleted;
 * - maxWait reached: with `trailing`, the held value is emitted and anchor moves to now (the
 *   burst goes on); without it the entry is deleted, so the next value is a leading edge.
 * Timers run before values at the same instant: a value exactly waitMs after the previous one
 * starts a new burst.
 */
export class KeyedDebounce<T> extends HeapGate<T, Entry<T>> {
  private readonly maxWait: number;

  constructor(opts: DebounceOptions) {
    checkTimingOptions('debounceByKey', opts, { leading: false, trailing: true });
    super(opts.waitMs, opts.leading ?? false, opts.trailing ?? true);
    this.maxWait = opts.maxWaitMs ?? Infinity;
  }

  protected open(key: string, now: number, value: T | undefined): Entry<T> {
    return { key, due: now + this.wait, last: now, anchor: now, pending: !this.leading, value };
  }

  protected readonly snapshotName = 'debounce';

  protected readonly snapshotFieldNames = ['last', 'anchor'];

  protected snapshotSpec() {
    return { waitMs: this.wait, maxWaitMs: encodeNum(this.maxWait), leading: this.leading, trailing: this.trailing };
  }

  protected snapshotFields(e: Entry<T>): number[] {
    return [e.last, e.anchor];
  }

  // No check that due lags behind min(last + waitMs, anchor + maxWaitMs): it holds while time
  // only moves forward, but a wall clock stepping back (the runner passes Date.now()) breaks it,
  // and a checkpoint taken then must still restore.
  protected revive(key: string, due: number, [last, anchor]: number[], pending: boolean, value: T | undefined): Entry<T> {
    return { key, due, last, anchor, pending, value };
  }

  protected override hold(e: Entry<T>, now: number, value: T): void {
    e.last = now;
    super.hold(e, now, value);
  }

  advance(now: number, emit: (value: T, at: number) => void): void {
    const { heap, wait, maxWait } = this;
    for (let e = heap.peek(); e !== undefined && e.due <= now; e = heap.peek()) {
      const quietAt = e.last + wait;
      const maxAt = e.anchor + maxWait;
      const deadline = quietAt <= maxAt ? quietAt : maxAt;
      if (deadline > e.due) {
        e.due = deadline;
        heap.siftDownTop();
        continue;
      }
      if (quietAt <= maxAt || !this.trailing) {
        heap.pop();
        this.entries.delete(e.key);
        if (this.trailing && e.pending) emit(e.value as T, deadline);
        continue;
      }
      // maxWait reached under a continuous stream: emit and keep the burst going.
      e.anchor = deadline;
      e.due = Math.min(quietAt, deadline + maxWait);
      heap.siftDownTop();
      if (e.pending) {
        const v = e.value as T;
        e.pending = false;
        e.value = undefined;
        emit(v, deadline);
      }
    }
  }
}

/**
 * Debounces each key independently: a burst of values of one key (gaps shorter than waitMs)
 * gives one emission, its last value, once the key has been quiet for waitMs; `maxWaitMs` bounds
 * the delay under a continuous stream, `leading`/`trailing` choose the edges (lodash's
 * `debounce` options; the differences are in docs/operators-keyed.md). Values of different keys
 * never delay each other. On complete, held values are emitted at once, then complete follows;
 * on error they are dropped.
 *
 * @example
 * // one metrics recalculation per tutor burst, at most 30 s after the first session of a burst
 * sessions$.pipe(debounceByKey((s) => s.tutorId, { waitMs: 2_000, maxWaitMs: 30_000 }))
 */
export function debounceByKey<T>(keyOf: (value: T) => string, opts: DebounceOptions, scheduler?: SchedulerLike): MonoTypeOperatorFunction<T> {
  checkTimingOptions('debounceByKey', opts, { leading: false, trailing: true });
  return keyedGate(() => new KeyedDebounce<T>(opts), keyOf, scheduler);
}
