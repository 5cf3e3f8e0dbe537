/**
 * The pure core of a declared pipeline: samples in, results and alert transitions out. No I/O
 * and no clock: the runner passes the watermark and processing time (`now`), so tests drive it
 * with plain arrays.
 *
 *   where -> keyBy -> window stage (composite aggregator) -> results
 *
 * Window stages: tumbling (operators/windows/tumbling.ts, with early partials and allowed
 * lateness) and global (operators/windows/global.ts through KeyedWindows).
 */
import { TumblingWindows } from '../../operators/windows/tumbling.js';
import { globalWindow } from '../../operators/windows/assigners.js';
import { KeyedWindows } from '../../operators/windows/keyed.js';
import type { Sample } from '../../operators/sample.js';
import type { Aggregator } from '../../operators/aggregate.js';
import type { ViewResult } from '../live-view.js';
import type { AlertEvent, ResultRow } from './sink.js';
import { compositeAggregator, type Columns } from './composite.js';
import type { PipelineSpec } from './spec.js';

/** A decoded event: the sample plus the event's own key (keyBy may replace it). */
export interface KeyedSample extends Sample {
  key: string;
}

/** One result of a declared pipeline, flat: identity, then its columns. */
export type PipelineResult = ViewResult & {
  pipeline: string;
  revision: number;
  emittedAt: number;
} & Record<string, unknown>;

export interface RuntimeOutput {
  results: PipelineResult[];
  alerts: AlertEvent[];
}

/** A window stage's output: a row's identity (sink.ts ResultRow) and its columns. */
type WindowOut = Omit<ResultRow, 'emittedAt' | 'fields'> & { columns: Columns };

interface WindowStage {
  readonly names: string[];
  /** Takes one batch (already keyed); emits firings, corrections and updates; returns how many (event, window) pairs were too late. */
  process(keys: string[], items: Sample[], wmBefore: number, wmAfter: number, now: number, emit: (o: WindowOut) => void): number;
  /** Processing-time work: early partials, watermark-only advance. */
  tick(wm: number, now: number, emit: (o: WindowOut) => void): void;
}

const durationName = (ms: number): string => {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const)
    if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
};

/** Tumbling windows: the engine's proven operator, fed sample indices (it aggregates numbers). */
class TumblingStage implements WindowStage {
  readonly names: string[];
  private readonly windows: TumblingWindows<number, unknown[], Columns>;
  private current: Sample[] = [];
  private readonly agg: Aggregator<Sample, unknown[], Columns>;
  private lastPartials = -Infinity;
  private lastWm = -Infinity;

  constructor(
    sizeMs: number,
    lateness: number,
    agg: Aggregator<Sample, unknown[], Columns>,
    private readonly earlyMs: number | undefined,
  ) {
    const name = durationName(sizeMs);
    this.names = [name];
    this.agg = agg;
    const byIndex: Aggregator<number, unknown[], Columns> = {
      create: agg.create,
      add: (acc, i) => agg.add(acc, this.current[i]),
      merge: agg.merge,
      result: agg.result,
      serialize: agg.serialize,
      deserialize: agg.deserialize,
    };
    this.windows = new TumblingWindows({ specs: [{ name, sizeMs }], allowedLatenessMs: lateness, trackPartials: earlyMs !== undefined }, byIndex);
  }

  process(keys: string[], items: Sample[], wmBefore: number, wmAfter: number, _now: number, emit: (o: WindowOut) => void): number {
    this.current = items;
    const values = Float64Array.from(items, (_, i) => i);
    const ts = Float64Array.from(items, (s) => s.ts);
    const stats = this.windows.process({ series: keys, ts, values, wmBefore, wmAfter }, (e) =>
      emit({ key: e.series, window: e.window, start: e.start, end: e.end, final: true, revision: e.revision, columns: e.result }),
    );
    this.current = [];
    this.lastWm = wmAfter;
    let late = 0;
    for (const n of Object.values(stats.late)) late += n;
    return late;
  }

  tick(wm: number, now: number, emit: (o: WindowOut) => void): void {
    if (wm > this.lastWm) {
      this.windows.process({ series: [], ts: [], values: [], wmBefore: wm, wmAfter: wm }, (e) =>
        emit({ key: e.series, window: e.window, start: e.start, end: e.end, final: true, revision: e.revision, columns: e.result }),
      );
      this.lastWm = wm;
    }
    if (this.earlyMs !== undefined && now - this.lastPartials >= this.earlyMs) {
      this.lastPartials = now;
      this.windows.partials((window, start, end, series, acc) => emit({ key: series, window, start, end, final: false, revision: -1, columns: this.agg.result(acc) }));
    }
  }
}

/**
 * Global window (operators/windows/global.ts): running state per key, one result per key that
 * changed in a batch. Rows are keyed at ts 0 and always final: the row is the key's current value.
 */
class GlobalStage implements WindowStage {
  readonly names = ['global'];
  private readonly windows: KeyedWindows<Sample, unknown[], Columns>;
  constructor(agg: Aggregator<Sample, unknown[], Columns>) {
    this.windows = new KeyedWindows({ assigner: globalWindow('global') }, agg);
  }

  process(keys: string[], items: Sample[], wmBefore: number, wmAfter: number, now: number, emit: (o: WindowOut) => void): number {
    const ts = Float64Array.from(items, (s) => s.ts);
    const stats = this.windows.process(
      { keys, ts, items, wmBefore, wmAfter, now },
      { emit: (e) => emit({ key: e.key, window: 'global', start: 0, end: 0, final: true, revision: e.revision, columns: e.result }), late() {} },
    );
    return stats.late;
  }

  tick(): void {}
}

export class PipelineRuntime {
  readonly columns: string[];
  readonly windows: string[];
  /** Columns top-K may rank by. */
  readonly rankable: string[];
  readonly skipped: Record<string, number> = {};
  lateCount = 0;
  private readonly stage: WindowStage;
  private readonly tagWhere: [string, Set<string>][];

  constructor(private readonly spec: PipelineSpec) {
    const where = `pipeline ${spec.name}`;
    const unsupported = (['score', 'trend', 'debounce'] as const).filter((k) => spec[k] !== undefined);
    if (spec.alerts.length) unsupported.push('alerts' as never);
    if (unsupported.length) throw new Error(`${where}: ${unsupported.join(', ')} ${unsupported.length > 1 ? 'are' : 'is'} declared, but this runtime does not run ${unsupported.length > 1 ? 'them' : 'it'} yet`);
    const { aggregator, columns } = compositeAggregator(spec, where);
    this.columns = columns;
    this.rankable = columns;
    const w = spec.window;
    if (w.type === 'tumbling') this.stage = new TumblingStage(w.size, spec.allowedLateness, aggregator, spec.trigger?.early);
    else if (w.type === 'global') this.stage = new GlobalStage(aggregator);
    else throw new Error(`${where}: window type "${w.type}" is declared, but this runtime does not run it yet`);
    this.windows = this.stage.names;
    this.tagWhere = Object.entries(spec.source.where?.tags ?? {}).map(([t, v]) => [t, new Set(Array.isArray(v) ? v : [v])]);
  }

  private skip(reason: string) {
    this.skipped[reason] = (this.skipped[reason] ?? 0) + 1;
  }

  /** The key of a sample under keyBy, or undefined (skipped) when a tag it needs is missing. */
  private keyOf(s: KeyedSample): string | undefined {
    const parts = this.spec.keyBy;
    if (parts.length === 1 && parts[0] === 'key') return s.key;
    const out: string[] = [];
    for (const p of parts) {
      if (p === 'key') out.push(s.key);
      else if (p === 'metric') out.push(s.metric);
      else {
        const v = s.tags?.[p.slice(4)];
        if (v === undefined) return undefined;
        out.push(v);
      }
    }
    return out.join('|');
  }

  private passes(s: KeyedSample): boolean {
    const where = this.spec.source.where;
    if (!where) return true;
    if (where.value?.min !== undefined && s.value < where.value.min) return false;
    if (where.value?.max !== undefined && s.value > where.value.max) return false;
    for (const [t, allowed] of this.tagWhere) {
      const v = s.tags?.[t];
      if (v === undefined || !allowed.has(v)) return false;
    }
    return true;
  }

  process(samples: readonly KeyedSample[], wmBefore: number, wmAfter: number, now: number): RuntimeOutput {
    const keys: string[] = [];
    const items: Sample[] = [];
    const reads = this.spec.source.metrics;
    const all = reads.includes('*');
    for (const s of samples) {
      if (!all && !reads.includes(s.metric)) continue;
      if (!this.passes(s)) {
        this.skip('where');
        continue;
      }
      const k = this.keyOf(s);
      if (k === undefined) {
        this.skip('no_key_tag');
        continue;
      }
      keys.push(k);
      items.push(s);
    }
    const out: RuntimeOutput = { results: [], alerts: [] };
    this.lateCount += this.stage.process(keys, items, wmBefore, wmAfter, now, (o) => out.results.push(this.toResult(o, now)));
    return out;
  }

  tick(wm: number, now: number): RuntimeOutput {
    const out: RuntimeOutput = { results: [], alerts: [] };
    this.stage.tick(wm, now, (o) => out.results.push(this.toResult(o, now)));
    return out;
  }

  private toResult(o: WindowOut, now: number): PipelineResult {
    const name = this.spec.name;
    return { pipeline: name, metric: name, key: o.key, window: o.window, start: o.start, end: o.end, final: o.final, revision: o.revision, emittedAt: now, ...o.columns };
  }
}
