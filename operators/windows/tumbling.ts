import { Observable, type OperatorFunction } from 'rxjs';
import type { Aggregator } from '../aggregate.js';
import { tumblingStart, type TumblingSpec } from './assign.js';

/**
 * A batch of events for one partition, in columns. `series` identifies the aggregation key
 * (for the default pipeline `metric + "\u0001" + key`). `wmBefore` is the watermark in force
 * while the batch is assigned (it decides lateness); `wmAfter` is the watermark once the batch
 * is taken into account (it decides which windows fire).
 */
export interface EventBatch {
  series: readonly string[];
  ts: ArrayLike<number>;
  values: ArrayLike<number>;
  wmBefore: number;
  wmAfter: number;
  /** Ask the operator to also emit partial results of the open windows that changed (see `partials()`). */
  partials?: boolean;
}

/** One window result. `revision` 0 is the on-time firing; > 0 are late corrections (upserts). */
export interface WindowEmission<R> {
  window: string;
  start: number;
  end: number;
  series: string;
  result: R;
  revision: number;
}

export interface TumblingOptions {
  specs: readonly TumblingSpec[];
  /** How long after a window fires late events still correct it. */
  allowedLatenessMs: number;
  /** Track which series of open windows changed, for `partials()` (live updates before a window fires). */
  trackPartials?: boolean;
}

/** Per-batch counters, for invariant 1 (counts add up). */
export interface BatchStats {
  /** (event, window) pairs taken into a window. */
  assigned: number;
  /** (event, window) pairs dropped because the window had already closed for good, per spec name. */
  late: Record<string, number>;
}

interface WindowGroup<ACC> {
  start: number;
  end: number;
  fired: boolean;
  accs: Map<string, ACC>;
  revisions: Map<string, number>;
  /** Series updated after the group fired: re-emitted (upsert) at the end of the batch. */
  dirty: Set<string>;
  /** Series updated since the last `partials()` call while the group is open. */
  touched: Set<string>;
}

/**
 * Keyed tumbling windows in event time. Windows of one size that share a start are grouped,
 * so triggering walks the few open window groups instead of scanning every key.
 * State: per spec, start -> (series -> accumulator). Pure: no I/O, no clock.
 */
export class TumblingWindows<IN extends number, ACC, R> {
  private readonly groups: Map<number, WindowGroup<ACC>>[];

  constructor(
    private readonly opts: TumblingOptions,
    private readonly agg: Aggregator<IN, ACC, R>,
  ) {
    this.groups = opts.specs.map(() => new Map());
  }

  /** Takes a batch, returns what fires or is corrected, and what was late. */
  process(batch: EventBatch, emit: (e: WindowEmission<R>) => void): BatchStats {
    const stats: BatchStats = { assigned: 0, late: {} };
    const { specs, allowedLatenessMs } = this.opts;
    const n = batch.series.length;
    const track = this.opts.trackPartials === true;
    for (let s = 0; s < specs.length; s++) {
      const size = specs[s].sizeMs;
      const groups = this.groups[s];
      let late = 0;
      let lastStart = NaN;
      let group: WindowGroup<ACC> | undefined;
      for (let i = 0; i < n; i++) {
        const ts = batch.ts[i];
        const start = tumblingStart(ts, size);
        if (start + size + allowedLatenessMs <= batch.wmBefore) {
          late++;
          continue;
        }
        if (start !== lastStart) {
          group = groups.get(start);
          if (!group) {
            group = { start, end: start + size, fired: false, accs: new Map(), revisions: new Map(), dirty: new Set(), touched: new Set() };
            groups.set(start, group);
          }
          lastStart = start;
        }
        const series = batch.series[i];
        let acc = group!.accs.get(series);
        if (acc === undefined) {
          acc = this.agg.create();
          group!.accs.set(series, acc);
        }
        this.agg.add(acc, batch.values[i] as IN);
        if (group!.fired) group!.dirty.add(series);
        else if (track) group!.touched.add(series);
        stats.assigned++;
      }
      if (late) stats.late[specs[s].name] = late;
    }
    this.advance(batch.wmAfter, emit);
    return stats;
  }

  /** Fires windows the watermark has passed, re-emits corrected ones, evicts closed ones. */
  advance(wm: number, emit: (e: WindowEmission<R>) => void): void {
    const { specs, allowedLatenessMs } = this.opts;
    for (let s = 0; s < specs.length; s++) {
      const name = specs[s].name;
      const groups = this.groups[s];
      for (const group of groups.values()) {
        if (!group.fired) {
          if (group.end <= wm) {
            group.fired = true;
            group.touched.clear();
            for (const [series, acc] of group.accs) {
              group.revisions.set(series, 0);
              emit({ window: name, start: group.start, end: group.end, series, result: this.agg.result(acc), revision: 0 });
            }
          }
        } else if (group.dirty.size) {
          for (const series of group.dirty) {
            const revision = (group.revisions.get(series) ?? -1) + 1;
            group.revisions.set(series, revision);
            emit({ window: name, start: group.start, end: group.end, series, result: this.agg.result(group.accs.get(series)!), revision });
          }
          group.dirty.clear();
        }
        if (group.fired && group.end + allowedLatenessMs <= wm) groups.delete(group.start);
      }
    }
  }

  /**
   * Visits the accumulators of open (not yet fired) windows that changed since the last call,
   * for live partial results. Needs `trackPartials`. The accumulator must not be modified.
   */
  partials(visit: (window: string, start: number, end: number, series: string, acc: ACC) => void): void {
    const { specs } = this.opts;
    for (let s = 0; s < specs.length; s++) {
      for (const group of this.groups[s].values()) {
        if (group.fired || group.touched.size === 0) continue;
        for (const series of group.touched) visit(specs[s].name, group.start, group.end, series, group.accs.get(series)!);
        group.touched.clear();
      }
    }
  }

  /** Number of live (series, window) accumulators, for the bounded-memory gauge. */
  size(): number {
    let n = 0;
    for (const groups of this.groups) for (const g of groups.values()) n += g.accs.size;
    return n;
  }
}

/**
 * RxJS operator: keyed tumbling windows over a stream of event batches. Emits, per batch, the
 * array of window results that fired or were corrected (possibly empty) with the batch stats.
 *
 * @example
 * batches$.pipe(tumblingWindows({ specs: [{ name: '10s', sizeMs: 10_000 }], allowedLatenessMs: 30_000 }, summaryAggregator()))
 */
export function tumblingWindows<ACC, R, P = R>(
  opts: TumblingOptions & { partialResult?: (acc: ACC) => P },
  agg: Aggregator<number, ACC, R>,
): OperatorFunction<EventBatch, { emissions: WindowEmission<R>[]; partials: WindowEmission<P>[]; stats: BatchStats }> {
  const partialResult = opts.partialResult ?? (agg.result as unknown as (acc: ACC) => P);
  return (source) =>
    new Observable((destination) => {
      const windows = new TumblingWindows(opts, agg);
      return source.subscribe({
        next(batch) {
          const emissions: WindowEmission<R>[] = [];
          const partials: WindowEmission<P>[] = [];
          const stats = windows.process(batch, (e) => emissions.push(e));
          if (batch.partials)
            windows.partials((window, start, end, series, acc) => partials.push({ window, start, end, series, result: partialResult(acc), revision: -1 }));
          destination.next({ emissions, partials, stats });
        },
        error: (err) => destination.error(err),
        complete: () => destination.complete(),
      });
    });
}
