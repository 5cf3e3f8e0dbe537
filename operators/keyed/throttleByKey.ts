import type { MonoTypeOperatorFunction, SchedulerLike } from 'rxjs';
import { checkTimingOptions, HeapGate, keyedGate, type GateEntry } from './gate.js';

export interface ThrottleOptions {
  /** Length (ms) of a key's throttle window: at most one emission per window and edge. */
  waitMs: number;
  /** Emit the value that opens a window at once. Default true. */
  leading?: boolean;
  /** Emit the last value held during a window when it closes, and open the next window then. Default true. */
  trailing?: boolean;
}

/** `due` is the end of the key's current window. */
type Entry<T> = GateEntry<T>;

/**
 * Per-key throttle as a clock-free state machine (see `KeyedGate`).
 *
 * Per key: a value when the key has no window opens one, [t, t + waitMs), emitted at once if
 * `leading`, otherwise held. Values inside a window replace the held one. When the window
 * closes: with `trailing` and a held value, that value is emitted and a new window opens at that
 * instant; otherwise the key's entry is deleted. So a key emits at most once per waitMs (leading
 * and trailing edges are waitMs apart), and under a continuous stream it emits every waitMs.
 * Timers run before values at the same instant.
 */
export class KeyedThrottle<T> extends HeapGate<T, Entry<T>> {
  constructor(opts: ThrottleOptions) {
    checkTimingOptions('throttleByKey', opts, { leading: true, trailing: true });
    super(opts.waitMs, opts.leading ?? true, opts.trailing ?? true);
  }

  protected open(key: string, now: number, value: T | undefined): Entry<T> {
    return { key, due: now + this.wait, pending: !this.leading, value };
  }

  protected readonly snapshotName = 'throttle';

  protected readonly snapshotFieldNames = [];

  protected snapshotSpec() {
    return { waitMs: this.wait, leading: this.leading, trailing: this.trailing };
  }

  protected snapshotFields(): number[] {
    return [];
  }

  protected revive(key: string, due: number, _fields: number[], pending: boolean, value: T | undefined): Entry<T> {
    return { key, due, pending, value };
  }

  advance(now: number, emit: (value: T, at: number) => void): void {
    const heap = this.heap;
    for (let e = heap.peek(); e !== undefined && e.due <= now; e = heap.peek()) {
      const end = e.due;
      if (this.trailing && e.pending) {
        const v = e.value as T;
        e.pending = false;
        e.value = undefined;
        e.due = end + this.wait;
        heap.siftDownTop();
        emit(v, end);
      } else {
        heap.pop();
        this.entries.delete(e.key);
      }
    }
  }
}

/**
 * Throttles each key independently: at most one emission per key per waitMs window, the first
 * value of a window at once (`leading`) and the last one when the window closes (`trailing`),
 * as lodash's `throttle` does per call site, but with windows that do not drift (see
 * docs/operators-keyed.md). On complete, held values are emitted at once, then complete
 * follows; on error they are dropped.
 *
 * @example
 * // live score of each film at most once a second, newest value last
 * updates$.pipe(throttleByKey((u) => u.film, { waitMs: 1_000 }))
 */
export function throttleByKey<T>(keyOf: (value: T) => string, opts: ThrottleOptions, scheduler?: SchedulerLike): MonoTypeOperatorFunction<T> {
  checkTimingOptions('throttleByKey', opts, { leading: true, trailing: true });
  return keyedGate(() => new KeyedThrottle<T>(opts), keyOf, scheduler);
}
