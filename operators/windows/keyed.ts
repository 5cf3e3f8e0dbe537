import { Observable, type OperatorFunction } from 'rxjs';
import type { Aggregator } from '../aggregate.js';
import {
  globalWindow,
  rolling,
  session,
  sliding,
  tumbling,
  validateAssigner,
  type RollingSize,
  type WindowAssigner,
} from './assigners.js';
import { GlobalState } from './global.js';
import { PaneState } from './panes.js';
import { RollingState } from './rolling.js';
import { SessionState } from './sessions.js';
import { decodeNumber, encodeNumber } from './snapshot.js';
import { Trigger, type TriggerSpec } from './triggers.js';

/**
 * A batch of events for one partition, in columns. `wmBefore` is the watermark in force while
 * the batch is assigned (it decides lateness); `wmAfter` the watermark once the batch is taken
 * into account (it decides what fires). `now` is processing time, for early firing.
 */
export interface KeyedBatch<IN> {
  keys: readonly string[];
  ts: ArrayLike<number>;
  items: ArrayLike<IN>;
  wmBefore: number;
  wmAfter: number;
  now: number;
}

/** Bounds of a window. */
export interface WindowBounds {
  start: number;
  end: number;
}

/**
 * One window result. Every emission of a (window, key, start) carries the next revision, so a
 * sink upserts on it; `final` is true once the watermark reached `end` (the on-time firing and
 * later corrections) and false for early and count firings.
 */
export interface WindowResult<R> {
  /** The assigner's name (for rolling windows, the size's name). */
  window: string;
  key: string;
  start: number;
  end: number;
  result: R;
  revision: number;
  final: boolean;
  /** Sessions only: windows emitted earlier for this key that this one absorbed (merged or extended); delete them. */
  replaces?: readonly WindowBounds[];
}

/**
 * Why an event was not taken:
 * - closed: every window it belongs to ended at least allowedLateness before the watermark
 *   (for sessions, also: it would reopen a session already closed for good);
 * - out-of-range: rolling windows only, it is older than the largest window ending with the
 *   key's newest pane, so no result will ever include it;
 * - bad-timestamp: its event time is not a finite number.
 */
export type LateReason = 'closed' | 'out-of-range' | 'bad-timestamp';

/** An event the operator did not take (the late side output). */
export interface LateEvent<IN> {
  window: string;
  key: string;
  ts: number;
  item: IN;
  reason: LateReason;
  /** The watermark it was judged against. */
  watermark: number;
}

export interface WindowOutput<IN, R> {
  emit(e: WindowResult<R>): void;
  late(e: LateEvent<IN>): void;
}

/** Counters of one call: every event of a batch is either assigned or late. */
export interface WindowStats {
  assigned: number;
  late: number;
  /** Window results emitted (firings, corrections, partials). */
  emitted: number;
}

/** How much state the operator holds, for memory bounds. */
export interface StateSize {
  /** Keys with any state. */
  keys: number;
  /** (window, key) pairs with data that can still emit or be corrected. */
  windows: number;
  /** Accumulators held (panes, sessions, rolling panes, global totals). */
  accumulators: number;
}

/** The state of one assigner kind, driven by KeyedWindows. Not for direct use. */
export interface WindowState<IN, R> {
  /** Takes the events of a batch; windows with end <= wm have had their watermark firing. */
  ingest(batch: KeyedBatch<IN>, wm: number, out: WindowOutput<IN, R>, stats: WindowStats): void;
  /** End of a batch at watermark `wm`: watermark firings, corrections, count firings, then eviction. */
  fire(wm: number, out: WindowOutput<IN, R>): void;
  /** Early firing: partial results of open windows that received events since their last emission. */
  tick(wm: number, out: WindowOutput<IN, R>): void;
  /**
   * Rolling and global windows: emits now, as partials, the open windows of these keys that
   * received events since their last emission (a processing-time trigger per key, e.g. debounce).
   */
  emitKeys?(keys: Iterable<string>, wm: number, out: WindowOutput<IN, R>): void;
  stateSize(wm: number): StateSize;
  snapshot(): unknown;
  restore(state: unknown, wm: number): void;
}

/** What a window state is built from. */
export interface WindowContext<ACC> {
  readonly trigger: Trigger;
  readonly allowedLatenessMs: number;
  readonly agg: Aggregator<unknown, ACC, unknown>;
}

export interface KeyedWindowsOptions {
  assigner: WindowAssigner;
  /** Early and count firing; default none (rolling and global: { count: 1 }, a result after each batch that changed the key). */
  trigger?: TriggerSpec;
  /** How long after a window's end late events still correct it; default 0. */
  allowedLatenessMs?: number;
}

const SNAPSHOT_FORMAT = 'weir.windows/1';

/**
 * Keyed event-time windows over any assigner (tumbling, sliding, session, rolling, global),
 * any trigger (watermark, plus early and count firing) and any Aggregator. Batches go in with
 * their watermark and processing time; window results (firings, partials, corrections) and late
 * events come out. Pure: no I/O, no clock.
 *
 * @example
 * const w = new KeyedWindows({ assigner: sliding('1m/10s', 60_000, 10_000), allowedLatenessMs: 30_000 }, moments);
 * w.process({ keys, ts, items, wmBefore, wmAfter, now: Date.now() }, { emit: upsert, late: deadLetter });
 */
export class KeyedWindows<IN, ACC, R> {
  private wm = -Infinity;
  private readonly trigger: Trigger;
  private readonly state: WindowState<IN, R>;
  private readonly allowedLatenessMs: number;

  constructor(
    private readonly opts: KeyedWindowsOptions,
    agg: Aggregator<IN, ACC, R>,
  ) {
    validateAssigner(opts.assigner);
    const lateness = opts.allowedLatenessMs ?? 0;
    if (!(lateness >= 0) || !Number.isFinite(lateness)) throw new Error(`allowedLatenessMs must be a non-negative number of ms, got ${opts.allowedLatenessMs}`);
    this.allowedLatenessMs = lateness;
    const a = opts.assigner;
    this.trigger = new Trigger(opts.trigger ?? (a.type === 'rolling' || a.type === 'global' ? { count: 1 } : {}));
    const ctx: WindowContext<ACC> = { trigger: this.trigger, allowedLatenessMs: lateness, agg: agg as Aggregator<unknown, ACC, unknown> };
    switch (a.type) {
      case 'tumbling':
      case 'sliding':
        this.state = new PaneState<IN, ACC, R>(a, ctx);
        break;
      case 'session':
        this.state = new SessionState<IN, ACC, R>(a, ctx);
        break;
      case 'rolling':
        this.state = new RollingState<IN, ACC, R>(a, ctx);
        break;
      case 'global':
        this.state = new GlobalState<IN, ACC, R>(a, ctx);
        break;
    }
  }

  /** The operator's watermark: the largest seen; it never moves backwards. */
  get watermark(): number {
    return this.wm;
  }

  /**
   * Takes a batch: a watermark that moved since the last call is applied first, the events are
   * assigned (or sent to `out.late`), then what the triggers ask for at `wmAfter` and `now` is
   * emitted, and windows closed for good are evicted.
   */
  process(batch: KeyedBatch<IN>, out: WindowOutput<IN, R>): WindowStats {
    const stats: WindowStats = { assigned: 0, late: 0, emitted: 0 };
    const counted = countEmits(out, stats);
    if (batch.wmBefore > this.wm) {
      this.wm = batch.wmBefore;
      this.state.fire(this.wm, counted);
    }
    if (batch.keys.length > 0) this.state.ingest(batch, this.wm, counted, stats);
    if (batch.wmAfter > this.wm) this.wm = batch.wmAfter;
    this.state.fire(this.wm, counted);
    this.early(batch.now, counted);
    return stats;
  }

  /** Moves the watermark without events (an idle source), at processing time `now`. */
  advance(wm: number, now: number, out: WindowOutput<IN, R>): WindowStats {
    return this.process({ keys: [], ts: [], items: [], wmBefore: wm, wmAfter: wm, now }, out);
  }

  /**
   * Emits the current results of these keys' open windows that changed since their last
   * emission (partials), whatever the trigger: for a per-key processing-time policy such as a
   * debounce, with a trigger that does not fire on events. Rolling and global windows only.
   */
  emitKeys(keys: Iterable<string>, out: WindowOutput<IN, R>): WindowStats {
    if (!this.state.emitKeys) throw new Error(`emitKeys: ${this.opts.assigner.type} windows do not emit per key (rolling and global do)`);
    const stats: WindowStats = { assigned: 0, late: 0, emitted: 0 };
    this.state.emitKeys(keys, this.wm, countEmits(out, stats));
    return stats;
  }

  /** Processing-time timer: emits early results if due at `now`. Call it at `nextTimer()`. */
  onTimer(now: number, out: WindowOutput<IN, R>): WindowStats {
    const stats: WindowStats = { assigned: 0, late: 0, emitted: 0 };
    this.early(now, countEmits(out, stats));
    return stats;
  }

  /** Processing time of the next early firing: Infinity without early firing, NaN before the first `now`. */
  nextTimer(): number {
    return this.trigger.nextTimer();
  }

  /** Keys, windows and accumulators held. `windows` and (for tumbling/sliding) `keys` walk the state. */
  size(): StateSize {
    return this.state.stateSize(this.wm);
  }

  /** The whole state as text (accumulators through Aggregator.serialize), for checkpoints. */
  snapshot(): string {
    return JSON.stringify({
      format: SNAPSHOT_FORMAT,
      spec: this.spec(),
      wm: encodeNumber(this.wm),
      nextTick: encodeNumber(this.trigger.schedule),
      state: this.state.snapshot(),
    });
  }

  /**
   * Replaces the state with a snapshot taken by an operator with the same assigner, trigger and
   * allowed lateness; throws an Error saying what differs or what is malformed.
   */
  restore(snapshot: string): void {
    let parsed: { format?: unknown; spec?: unknown; wm?: unknown; nextTick?: unknown; state?: unknown };
    try {
      parsed = JSON.parse(snapshot);
    } catch (err) {
      throw new Error(`window snapshot: not JSON (${(err as Error).message})`);
    }
    if (parsed === null || typeof parsed !== 'object') throw new Error('window snapshot: expected an object');
    if (parsed.format !== SNAPSHOT_FORMAT) throw new Error(`window snapshot: format ${JSON.stringify(parsed.format)} is not ${SNAPSHOT_FORMAT}`);
    const mine = JSON.stringify(this.spec());
    const theirs = JSON.stringify(parsed.spec);
    if (mine !== theirs) throw new Error(`window snapshot: taken with ${theirs}, this operator is ${mine}`);
    const wm = decodeNumber(parsed.wm, 'wm');
    const nextTick = decodeNumber(parsed.nextTick, 'nextTick');
    this.state.restore(parsed.state, wm);
    this.wm = wm;
    this.trigger.schedule = nextTick;
  }

  private spec() {
    return {
      assigner: this.opts.assigner,
      trigger: { earlyMs: this.trigger.earlyMs, count: this.trigger.count },
      allowedLatenessMs: this.allowedLatenessMs,
    };
  }

  private early(now: number, out: WindowOutput<IN, R>): void {
    if (!this.trigger.tickDue(now)) return;
    this.state.tick(this.wm, out);
    this.trigger.ticked(now);
  }
}

function countEmits<IN, R>(out: WindowOutput<IN, R>, stats: WindowStats): WindowOutput<IN, R> {
  return {
    emit(e) {
      stats.emitted++;
      out.emit(e);
    },
    late: (e) => out.late(e),
  };
}

// ---- RxJS operators ----------------------------------------------------------------------------

/** A processing-time tick for the RxJS operators: early results are emitted if due at `now`. */
export interface WindowTick {
  now: number;
}

export type WindowInput<IN> = KeyedBatch<IN> | WindowTick;

/** What the RxJS operators emit per input: the window results, the late events and the counters. */
export interface WindowBatchOutput<IN, R> {
  results: WindowResult<R>[];
  late: LateEvent<IN>[];
  stats: WindowStats;
}

/**
 * RxJS operator over KeyedWindows: for each batch (or tick), one output with the results and
 * late events it caused (possibly empty). State lives in the subscription.
 *
 * @example
 * batches$.pipe(keyedWindows({ assigner: session('visit', 30 * 60_000), allowedLatenessMs: 60_000 }, summaryAggregator()))
 */
export function keyedWindows<IN, ACC, R>(opts: KeyedWindowsOptions, agg: Aggregator<IN, ACC, R>): OperatorFunction<WindowInput<IN>, WindowBatchOutput<IN, R>> {
  return (source) =>
    new Observable((destination) => {
      const windows = new KeyedWindows(opts, agg);
      return source.subscribe({
        next(input) {
          const results: WindowResult<R>[] = [];
          const late: LateEvent<IN>[] = [];
          const out: WindowOutput<IN, R> = { emit: (e) => results.push(e), late: (e) => late.push(e) };
          let stats: WindowStats;
          try {
            stats = 'keys' in input ? windows.process(input, out) : windows.onTimer(input.now, out);
          } catch (err) {
            destination.error(err);
            return;
          }
          destination.next({ results, late, stats });
        },
        error: (err) => destination.error(err),
        complete: () => destination.complete(),
      });
    });
}

/** Options shared by the per-assigner operators. */
export interface WindowOptions {
  name: string;
  trigger?: TriggerSpec;
  allowedLatenessMs?: number;
}

/** RxJS operator: keyed tumbling windows of `sizeMs` over any aggregator (the general form of tumblingWindows). */
export function keyedTumblingWindows<IN, ACC, R>(opts: WindowOptions & { sizeMs: number }, agg: Aggregator<IN, ACC, R>) {
  return keyedWindows({ ...opts, assigner: tumbling(opts.name, opts.sizeMs) }, agg);
}

/** RxJS operator: keyed sliding windows of `sizeMs` every `slideMs`, built from panes. */
export function slidingWindows<IN, ACC, R>(opts: WindowOptions & { sizeMs: number; slideMs: number }, agg: Aggregator<IN, ACC, R>) {
  return keyedWindows({ ...opts, assigner: sliding(opts.name, opts.sizeMs, opts.slideMs) }, agg);
}

/** RxJS operator: per-key session windows closed by `gapMs` of inactivity, merged when an event bridges two. */
export function sessionWindows<IN, ACC, R>(opts: WindowOptions & { gapMs: number }, agg: Aggregator<IN, ACC, R>) {
  return keyedWindows({ ...opts, assigner: session(opts.name, opts.gapMs) }, agg);
}

/** RxJS operator: per-key rolling windows (e.g. 7/30/90 days over daily panes), a result after each batch that changed the key. */
export function rollingWindows<IN, ACC, R>(opts: WindowOptions & { paneMs: number; sizes: readonly RollingSize[] }, agg: Aggregator<IN, ACC, R>) {
  return keyedWindows({ ...opts, assigner: rolling(opts.name, opts.paneMs, opts.sizes) }, agg);
}

/** RxJS operator: running totals per key that never close, a result after each batch that changed the key. */
export function globalWindows<IN, ACC, R>(opts: WindowOptions, agg: Aggregator<IN, ACC, R>) {
  return keyedWindows({ ...opts, assigner: globalWindow(opts.name) }, agg);
}
