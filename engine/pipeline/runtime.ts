/**
 * The pure core of a declared pipeline: samples in, results and alert transitions out. No I/O
 * and no clock: the runner passes the watermark and processing time (`now`), so tests drive it
 * with plain arrays.
 *
 *   where -> keyBy -> window stage (KeyedWindows + composite aggregator)
 *         -> debounce -> score -> trend -> alerts -> results
 *
 * Every window type runs on operators/windows/keyed.ts (tumbling, sliding, session, rolling,
 * global), with its trigger (watermark, early, count) and allowed lateness. The stages after it
 * are the operators of operators/keyed (debounce), operators/scores, operators/trend and
 * operators/alerts, each applied to result rows. docs/pipelines.md describes what each stage
 * adds to a row and when alerts observe one.
 */
import { KeyedWindows, type WindowOutput, type WindowResult } from '../../operators/windows/keyed.js';
import { globalWindow, rolling, session, sliding, tumbling, type WindowAssigner } from '../../operators/windows/assigners.js';
import type { TriggerSpec } from '../../operators/windows/triggers.js';
import { KeyedDebounce } from '../../operators/keyed/debounceByKey.js';
import { ScoreBoard, type ScoreSpec } from '../../operators/scores/scoreboard.js';
import { TrendTracker, type Trend } from '../../operators/trend/trend.js';
import { AlertEvaluator } from '../../operators/alerts/evaluator.js';
import type { Sample } from '../../operators/sample.js';
import type { ViewResult } from '../live-view.js';
import type { AlertEvent } from './sink.js';
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
  /** Present (true) only on the tombstone of a session window that a later one absorbed. */
  superseded?: boolean;
} & Record<string, unknown>;

export interface RuntimeOutput {
  results: PipelineResult[];
  alerts: AlertEvent[];
}

/** A row between stages: identity and columns, before it becomes a PipelineResult. */
interface Row {
  key: string;
  window: string;
  start: number;
  end: number;
  final: boolean;
  revision: number;
  superseded: boolean;
  columns: Columns;
}

export const durationName = (ms: number): string => {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const)
    if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
};

/** The assigner of a pipeline's window; window names are what rows, the live view and the gateway call them. */
function assignerOf(spec: PipelineSpec, where: string): { assigner: WindowAssigner; names: string[] } {
  const w = spec.window;
  switch (w.type) {
    case 'tumbling': {
      const name = durationName(w.size);
      return { assigner: tumbling(name, w.size), names: [name] };
    }
    case 'sliding': {
      const name = durationName(w.size);
      return { assigner: sliding(name, w.size, w.slide), names: [name] };
    }
    case 'session':
      if (w.maxDuration !== undefined) throw new Error(`${where}: window.maxDuration is declared, but session windows do not bound their length yet; remove it`);
      return { assigner: session('session', w.gap), names: ['session'] };
    case 'rolling': {
      const sizes = w.sizes.map((s) => ({ name: durationName(s), sizeMs: s }));
      return { assigner: rolling('rolling', w.pane, sizes), names: sizes.map((s) => s.name) };
    }
    case 'global':
      return { assigner: globalWindow('global'), names: ['global'] };
  }
}

/**
 * The window stage: KeyedWindows over the composite aggregator. Global windows never close: their
 * rows are keyed at start 0 and carry the key's current value (always final). A session that
 * absorbs earlier ones emits a tombstone row for each of them whose start differs.
 */
class WindowStage {
  readonly names: string[];
  private readonly windows: KeyedWindows<Sample, unknown[], Columns>;
  private readonly global: boolean;
  private readonly out: WindowOutput<Sample, Columns>;
  private sink: (r: Row) => void = () => undefined;
  late = 0;

  /**
   * @param perKey rolling and global windows emit when the caller asks per key (`emitKeys`, driven
   *   by the debounce) instead of after every batch that changed the key.
   */
  constructor(spec: PipelineSpec, where: string, perKey = false) {
    const { aggregator } = compositeAggregator(spec, where);
    const { assigner, names } = assignerOf(spec, where);
    this.names = names;
    this.global = assigner.type === 'global';
    const t = spec.trigger;
    const everyChange = assigner.type === 'rolling' || assigner.type === 'global';
    const trigger: TriggerSpec = {};
    if (t?.early !== undefined) trigger.earlyMs = t.early;
    if (t?.count !== undefined) trigger.count = t.count;
    else if (everyChange && !perKey) trigger.count = 1;
    this.windows = new KeyedWindows({ assigner, trigger, allowedLatenessMs: spec.allowedLateness }, aggregator);
    this.out = {
      emit: (e) => this.emitResult(e),
      late: () => {
        this.late++;
      },
    };
  }

  private emitResult(e: WindowResult<Columns>): void {
    if (this.global) {
      this.sink({ key: e.key, window: e.window, start: 0, end: 0, final: true, revision: e.revision, superseded: false, columns: e.result });
      return;
    }
    if (e.replaces)
      for (const old of e.replaces)
        if (old.start !== e.start) this.sink({ key: e.key, window: e.window, start: old.start, end: old.end, final: true, revision: -1, superseded: true, columns: {} });
    this.sink({ key: e.key, window: e.window, start: e.start, end: e.end, final: e.final, revision: e.revision, superseded: false, columns: e.result });
  }

  process(keys: string[], items: Sample[], wmBefore: number, wmAfter: number, now: number, sink: (r: Row) => void): void {
    this.sink = sink;
    const ts = new Float64Array(items.length);
    for (let i = 0; i < items.length; i++) ts[i] = items[i].ts;
    this.windows.process({ keys, ts, items, wmBefore, wmAfter, now }, this.out);
  }

  /** The current rows of these keys' windows that changed since their last emission. */
  emitKeys(keys: Iterable<string>, sink: (r: Row) => void): void {
    this.sink = sink;
    this.windows.emitKeys(keys, this.out);
  }

  tick(wm: number, now: number, sink: (r: Row) => void): void {
    this.sink = sink;
    if (wm > this.windows.watermark) this.windows.advance(wm, now, this.out);
    else this.windows.onTimer(now, this.out);
  }

  get size() {
    return this.windows.size();
  }
}

/**
 * Debounce per key (processing time): a key's rows are held until it has been quiet `wait` (or
 * `maxWait` passed), then all of them go on together: one recalculation. Rows of the same
 * (window, start) replace each other while held.
 */
class DebounceStage {
  private readonly gate: KeyedDebounce<string>;
  private readonly held = new Map<string, Map<string, Row>>();
  recalculations = 0;
  offered = 0;

  /**
   * @param pull per-key mode (rolling and global windows): at a release, the window stage
   *   computes the key's current rows then, once per burst, instead of after every batch.
   */
  constructor(
    d: NonNullable<PipelineSpec['debounce']>,
    private readonly pull?: (key: string, into: (r: Row) => void) => void,
  ) {
    this.gate = new KeyedDebounce<string>({ waitMs: d.wait, maxWaitMs: d.maxWait, leading: d.leading, trailing: d.trailing });
  }

  offer(r: Row, now: number, next: (r: Row) => void): void {
    this.offered++;
    const release = (key: string) => this.release(key, next);
    // Settle what is due first, so a row never joins a burst that already ended.
    this.gate.advance(now, release);
    let rows = this.held.get(r.key);
    if (!rows) this.held.set(r.key, (rows = new Map()));
    rows.set(rowId(r), r);
    this.gate.offer(now, r.key, r.key, release);
  }

  /** Per-key mode: the key changed at `now`; its rows are computed when its burst ends. */
  offerKey(key: string, now: number, next: (r: Row) => void): void {
    this.offered++;
    const release = (k: string) => this.release(k, next);
    this.gate.advance(now, release);
    this.gate.offer(now, key, key, release);
  }

  advance(now: number, next: (r: Row) => void): void {
    this.gate.advance(now, (key) => this.release(key, next));
  }

  private release(key: string, next: (r: Row) => void): void {
    let rows = this.held.get(key);
    if (this.pull) {
      const into = rows ?? new Map<string, Row>();
      this.pull(key, (r) => into.set(rowId(r), r));
      rows = into;
    }
    this.held.delete(key);
    if (!rows || rows.size === 0) return;
    this.recalculations++;
    for (const r of rows.values()) next(r);
  }

  get waiting(): number {
    return this.held.size;
  }
}

const rowId = (r: Row) => `${r.window}\u0001${r.start}`;

/** Scores per window name: one ScoreBoard each (a global pipeline has one). */
class ScoreStage {
  private readonly boards = new Map<string, ScoreBoard>();
  readonly columns: string[];
  readonly profiles: string[];
  private readonly inputs: string[];

  constructor(private readonly score: NonNullable<PipelineSpec['score']>) {
    const probe = this.create();
    this.inputs = [...probe.metricNames];
    this.profiles = [...probe.profileNames];
    this.columns = [...probe.componentNames, ...probe.profileNames];
  }

  private create(): ScoreBoard {
    return new ScoreBoard({ normalise: this.score.normalise as ScoreSpec['normalise'], components: this.score.components, profiles: this.score.profiles, topK: this.score.topK });
  }

  board(window: string): ScoreBoard | undefined {
    return this.boards.get(window);
  }

  apply(r: Row): void {
    let board = this.boards.get(r.window);
    if (!board) this.boards.set(r.window, (board = this.create()));
    const values: Record<string, number | null> = {};
    for (const m of this.inputs) {
      const v = r.columns[m];
      values[m] = typeof v === 'number' && Number.isFinite(v) ? v : null;
    }
    board.update(r.key, values);
    const s = board.scores(r.key)!;
    for (const c in s.components) r.columns[c] = s.components[c];
    for (const p in s.profiles) r.columns[p] = s.profiles[p];
  }
}

const DIRECTION = { rising: 1, falling: -1, flat: 0 } as const;

/**
 * Window-over-window change of one field per key (operators/trend). A row gets the trend of its
 * own window: the key's latest window from the tracker, an older one from what was computed when
 * it was the latest. A correction of the window before the latest changes the latest window's
 * trend: its row is emitted again with the new figures.
 */
class TrendStage {
  private readonly trackers = new Map<string, TrendTracker>();
  /** Per window name and key: the trends of the windows that can still be corrected, and the latest row. */
  private readonly memo = new Map<string, Map<string, { trends: Map<number, Trend>; latest: Row | undefined }>>();

  constructor(
    private readonly field: string,
    private readonly periodMs: number,
    private readonly threshold: number,
  ) {}

  tracker(window: string): TrendTracker | undefined {
    return this.trackers.get(window);
  }

  apply(r: Row, again: (r: Row) => void): void {
    const v = r.columns[this.field];
    let tracker = this.trackers.get(r.window);
    if (!tracker) this.trackers.set(r.window, (tracker = new TrendTracker({ periodMs: this.periodMs, threshold: this.threshold })));
    let keys = this.memo.get(r.window);
    if (!keys) this.memo.set(r.window, (keys = new Map()));
    let m = keys.get(r.key);
    if (!m) keys.set(r.key, (m = { trends: new Map(), latest: undefined }));
    const own = typeof v === 'number' && Number.isFinite(v) ? tracker.update(r.key, r.start, v) : null;
    if (own && own.start === r.start) {
      m.trends.set(r.start, own);
      for (const s of m.trends.keys()) if (s < r.start - this.periodMs) m.trends.delete(s);
      m.latest = r;
    }
    setTrend(r, m.trends.get(r.start));
    if (own && own.start !== r.start && m.latest) {
      // an older window changed: the latest window's trend may have moved with it
      const before = m.trends.get(own.start);
      m.trends.set(own.start, own);
      if (!before || before.pct !== own.pct || before.direction !== own.direction) {
        const latest: Row = { ...m.latest, columns: { ...m.latest.columns } };
        setTrend(latest, own);
        m.latest = latest;
        again(latest);
      }
    }
  }
}

function setTrend(r: Row, t: Trend | undefined): void {
  r.columns.trend_pct = t?.pct ?? null;
  r.columns.trend_dir = t?.direction ? DIRECTION[t.direction] : null;
}

export class PipelineRuntime {
  readonly columns: string[];
  readonly windows: string[];
  /** Columns top-K may rank by. */
  readonly rankable: string[];
  /** Score profiles (their top-K comes from the score board, exact under running normalisers). */
  readonly profiles: string[];
  readonly skipped: Record<string, number> = {};
  private readonly stage: WindowStage;
  private readonly debounce: DebounceStage | undefined;
  private readonly score: ScoreStage | undefined;
  private readonly trend: TrendStage | undefined;
  /** One evaluator per window name: a key's 7d and 30d rows are different series, each with its own alert state. */
  private readonly alerts = new Map<string, AlertEvaluator>();
  private readonly alertRules: ConstructorParameters<typeof AlertEvaluator>[0];
  /** Alerts observe every row of windows that are updated rather than closed (rolling, global); otherwise final rows. */
  private readonly alertEveryRow: boolean;
  private readonly tagWhere: [string, Set<string>][];
  private readonly perKey: boolean;
  private wm = -Infinity;

  constructor(private readonly spec: PipelineSpec) {
    const where = `pipeline ${spec.name}`;
    const { columns } = compositeAggregator(spec, where);
    const w = spec.window;
    // Debounced rolling and global windows compute a key's rows once per burst, at its release.
    this.perKey = spec.debounce !== undefined && (w.type === 'rolling' || w.type === 'global') && spec.trigger?.count === undefined;
    this.stage = new WindowStage(spec, where, this.perKey);
    this.windows = this.stage.names;
    if (spec.debounce) this.debounce = new DebounceStage(spec.debounce, this.perKey ? (key, into) => this.stage.emitKeys([key], into) : undefined);
    const extra: string[] = [];
    if (spec.score) {
      this.score = new ScoreStage(spec.score);
      extra.push(...this.score.columns);
    }
    if (spec.trend) {
      const period = w.type === 'tumbling' ? w.size : w.type === 'sliding' ? w.slide : w.type === 'rolling' ? w.pane : undefined;
      if (period === undefined) throw new Error(`${where}: trend: a ${w.type} window has no fixed period to compare with the previous window`);
      this.trend = new TrendStage(spec.trend.field, period, spec.trend.threshold);
      extra.push('trend_pct', 'trend_dir');
    }
    this.columns = [...columns, ...extra];
    this.rankable = this.columns;
    this.profiles = this.score?.profiles ?? [];
    this.alertRules = spec.alerts.map((a) => ({ name: a.name, field: a.field, op: a.op, threshold: a.threshold, forMs: a.for, resolve: a.resolve, severity: a.severity }));
    // built once here so a bad rule is refused at start
    for (const w of this.windows) if (this.alertRules.length) this.alerts.set(w, new AlertEvaluator(this.alertRules));
    this.alertEveryRow = w.type === 'rolling' || w.type === 'global';
    this.tagWhere = Object.entries(spec.source.where?.tags ?? {}).map(([t, v]) => [t, new Set(Array.isArray(v) ? v : [v])]);
  }

  get lateCount(): number {
    return this.stage.late;
  }

  /** Debounce counters: rows offered, and recalculations (a key's held rows released together). */
  get debounced(): { offered: number; recalculations: number; waiting: number } | undefined {
    return this.debounce && { offered: this.debounce.offered, recalculations: this.debounce.recalculations, waiting: this.debounce.waiting };
  }

  /** The top `k` keys of a score profile in a window (score descending, ties by key). */
  topProfile(window: string, profile: string, k: number): { key: string; score: number }[] {
    const board = this.score?.board(window);
    if (!board) return [];
    return board.topK(profile, k).map((e) => ({ key: e.id, score: e.score }));
  }

  /** Keys the score board of `window` holds. */
  scoredKeys(window: string): number {
    return this.score?.board(window)?.size ?? 0;
  }

  /** The rising and falling movers of the newest window. */
  movers(window: string, k: number) {
    return this.trend?.tracker(window)?.movers(k);
  }

  stateSize() {
    return this.stage.size;
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
    if (wmAfter > this.wm) this.wm = wmAfter;
    const out: RuntimeOutput = { results: [], alerts: [] };
    const next = this.after(out, now);
    this.debounce?.advance(now, next);
    this.stage.process(keys, items, wmBefore, wmAfter, now, this.windowSink(next, now));
    if (this.perKey) {
      const d = this.debounce!;
      const seen = new Set<string>();
      for (const k of keys)
        if (!seen.has(k)) {
          seen.add(k);
          d.offerKey(k, now, next);
        }
    }
    return out;
  }

  tick(wm: number, now: number): RuntimeOutput {
    if (wm > this.wm) this.wm = wm;
    const out: RuntimeOutput = { results: [], alerts: [] };
    const next = this.after(out, now);
    this.stage.tick(wm, now, this.windowSink(next, now));
    this.debounce?.advance(now, next);
    return out;
  }

  /** Window rows go through debounce (when declared) before the row stages. */
  private windowSink(next: (r: Row) => void, now: number): (r: Row) => void {
    const d = this.debounce;
    return d ? (r) => d.offer(r, now, next) : next;
  }

  /** Score, trend and alerts of one row, then the row out. */
  private after(out: RuntimeOutput, now: number): (r: Row) => void {
    const finish = (r: Row) => {
      const evaluator = this.alerts.get(r.window);
      if (evaluator && !r.superseded && (r.final || this.alertEveryRow)) {
        // Observation time: the window's end (its event-time close); a global row's is the watermark.
        const ts = r.end > 0 ? r.end : Number.isFinite(this.wm) ? this.wm : now;
        evaluator.observe({ key: r.key, ts, values: r.columns }, (t) => out.alerts.push({ pipeline: this.spec.name, window: r.window, ...t }));
      }
      out.results.push(this.toResult(r, now));
    };
    return (r: Row) => {
      if (r.superseded) return finish(r);
      this.score?.apply(r);
      if (this.trend) this.trend.apply(r, finish);
      finish(r);
    };
  }

  private toResult(r: Row, now: number): PipelineResult {
    const name = this.spec.name;
    const res: PipelineResult = { pipeline: name, metric: name, key: r.key, window: r.window, start: r.start, end: r.end, final: r.final, revision: r.revision, emittedAt: now, ...r.columns };
    if (r.superseded) res.superseded = true;
    return res;
  }
}
