import type { MonoTypeOperatorFunction, SchedulerLike } from 'rxjs';
import { checkTimingOptions, DueHeap, keyedGate, type KeyedGate } from './gate.js';

export interface ThrottleOptions {
  /** Length (ms) of a key's throttle window: at most one emission per window and edge. */
  waitMs: number;
  /** Emit the value that opens a window at once. Default true. */
  leading?: boolean;
  /** Emit the last value held during a window when it closes, and open the next window then. Default true. */
  trailing?: boolean;
}

interface Entry<T> {
  key: string;
  /** End of the key's current window. */
  due: number;
  pending: boolean;
  value: T | undefined;
}

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
export class KeyedThrottle<T> implements KeyedGate<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly heap = new DueHeap<Entry<T>>();
  private readonly wait: number;
  private readonly leading: boolean;
  private readonly trailing: boolean;

  constructor(opts: ThrottleOptions) {
    checkTimingOptions('throttleByKey', opts, { leading: true, trailing: true });
    this.wait = opts.waitMs;
    this.leading = opts.leading ?? true;
    this.trailing = opts.trailing ?? true;
  }

  get size(): number {
    return this.entries.size;
  }

  offer(now: number, key: string, value: T, emit: (value: T, at: number) => void): void {
    this.advance(now, emit);
    const e = this.entries.get(key);
    if (e) {
      e.pending = true;
      e.value = value;
      return;
    }
    const fresh: Entry<T> = { key, due: now + this.wait, pending: !this.leading, value: this.leading ? undefined : value };
    this.entries.set(key, fresh);
    this.heap.push(fresh);
    if (this.leading) emit(value, now);
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
