/**
 * Triggers: when a window emits, kept apart from assignment (operators/windows/assigners.ts).
 * Every window has the watermark trigger: it fires once, final, when the watermark reaches its
 * end, and again (a correction, still final) after each batch that changed it while
 * end + allowedLateness is ahead of the watermark. Two triggers compose with it and emit
 * partial results (final=false) of windows the watermark has not reached:
 *   - early: every `earlyMs` of processing time, the windows that changed since their last emission;
 *   - count: at the end of a batch, the windows that received `count` events since their last emission.
 * Every emission of a window carries the next revision (0, 1, 2, ...), so a sink can upsert.
 */

export interface TriggerSpec {
  /** Partial results every this many ms of processing time (aligned to multiples of it). */
  earlyMs?: number;
  /** Partial result once a window received this many events since its last emission. */
  count?: number;
}

/** Trigger state of one (window, key). */
export interface WindowCell {
  /** Revision of the last emission; -1 before the first. */
  revision: number;
  /** Changed since its last final emission, or never emitted final: the watermark must fire it. */
  needsFinal: boolean;
  /** Events received since the last emission (count and early triggers). */
  pending: number;
}

export function newCell(): WindowCell {
  return { revision: -1, needsFinal: true, pending: 0 };
}

/** What a window emits at the end of a batch. */
export const NONE = 0;
export const FINAL = 1;
export const PARTIAL = 2;
export type Firing = typeof NONE | typeof FINAL | typeof PARTIAL;

/** The firing rules for one operator instance, and the processing-time schedule of early firing. */
export class Trigger {
  readonly count: number;
  readonly earlyMs: number;
  /** Whether open windows need per-window counters (count or early firing). */
  readonly tracksOpen: boolean;
  /** Processing time of the next early firing; NaN until the first `now` is seen. */
  private nextTick = NaN;

  constructor(spec: TriggerSpec) {
    this.count = spec.count ?? 0;
    this.earlyMs = spec.earlyMs ?? 0;
    if (!Number.isSafeInteger(this.count) || this.count < 0) throw new Error(`trigger.count must be a positive whole number of events, got ${spec.count}`);
    if (!Number.isSafeInteger(this.earlyMs) || this.earlyMs < 0) throw new Error(`trigger.earlyMs must be a positive whole number of ms, got ${spec.earlyMs}`);
    this.tracksOpen = this.count > 0 || this.earlyMs > 0;
  }

  /** Records one event taken by a window; true if the window must be looked at when the batch ends. */
  onEvent(cell: WindowCell, open: boolean): boolean {
    cell.needsFinal = true;
    cell.pending++;
    return !open || (this.count > 0 && cell.pending >= this.count);
  }

  /** The emission the watermark and count rules ask of a window at the end of a batch. */
  atBatchEnd(cell: WindowCell, end: number, wm: number): Firing {
    if (end <= wm) return cell.needsFinal ? FINAL : NONE;
    return this.count > 0 && cell.pending >= this.count ? PARTIAL : NONE;
  }

  /** Whether an early firing emits this window. */
  atTick(cell: WindowCell, end: number, wm: number): boolean {
    return end > wm && cell.pending > 0;
  }

  /** Records an emission and returns its revision. */
  emitted(cell: WindowCell, final: boolean): number {
    cell.pending = 0;
    if (final) cell.needsFinal = false;
    return ++cell.revision;
  }

  /** Whether an early firing is due at processing time `now` (the first `now` seen starts the schedule). */
  tickDue(now: number): boolean {
    if (this.earlyMs === 0 || !Number.isFinite(now)) return false;
    if (Number.isNaN(this.nextTick)) {
      this.nextTick = this.nextAfter(now);
      return false;
    }
    return now >= this.nextTick;
  }

  /** Moves the schedule past `now` after an early firing. */
  ticked(now: number): void {
    this.nextTick = this.nextAfter(now);
  }

  /** Processing time of the next early firing (Infinity without early firing, NaN before the first `now`). */
  nextTimer(): number {
    return this.earlyMs === 0 ? Infinity : this.nextTick;
  }

  /** The schedule, for snapshots. */
  get schedule(): number {
    return this.nextTick;
  }

  set schedule(next: number) {
    this.nextTick = next;
  }

  private nextAfter(now: number): number {
    return now - (((now % this.earlyMs) + this.earlyMs) % this.earlyMs) + this.earlyMs;
  }
}
