/**
 * The pure core of a declared pipeline: samples in, results and alert transitions out. No I/O
 * and no clock: the runner passes the watermark and processing time (`now`), so tests drive it
 * with plain arrays.
 *
 *   where -> keyBy -> window stage (KeyedWindows + composite aggregator)
 *         -> trend -> debounce -> score -> alerts -> results
 *
 * (The trend depends on window values only, so it runs before the debounce holds rows.)
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
import { AlertEvaluator } from '../../operators/alerts/evaluator.js';
import { changeDirection, pctChange } from '../../operators/trend/trend.js';
import type { Sample } from '../../operators/sample.js';
import type { ViewResult } from '../live-view.js';
import type { AlertEvent, ResultRow } from './sink.js';
import { compositeAggregator, type Columns } from './composite.js';
import type { PipelineSpec } from './spec.js';
import { encodeNum, jsonDifference, SnapshotReader } from '../../operators/keyed/snapshot.js';

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
type Row = Omit<ResultRow, 'emittedAt' | 'fields' | 'superseded'> & { superseded: boolean; columns: Columns };

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
    // A debounce release can happen in the middle of another emission (a watermark firing whose
    // rows go to the debounce): the rest of that emission must still reach its own sink.
    const outer = this.sink;
    this.sink = sink;
    try {
      this.windows.emitKeys(keys, this.out);
    } finally {
      this.sink = outer;
    }
  }

  tick(wm: number, now: number, sink: (r: Row) => void): void {
    this.sink = sink;
    if (wm > this.windows.watermark) this.windows.advance(wm, now, this.out);
    else this.windows.onTimer(now, this.out);
  }

  get size() {
    return this.windows.size();
  }

  snapshot(): { windows: string; late: number } {
    return { windows: this.windows.snapshot(), late: this.late };
  }

  restore(v: unknown, read: SnapshotReader): void {
    const o = read.object(v, 'windows');
    const late = read.count(o.late, 'windows.late');
    read.within('windows', () => this.windows.restore(read.string(o.windows, 'windows.windows')));
    this.late = late;
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

  snapshot(): unknown {
    const held: unknown[] = [];
    for (const [key, rows] of this.held) held.push([key, [...rows.values()].map(encodeRow)]);
    return { gate: this.gate.snapshot(), held, offered: this.offered, recalculations: this.recalculations };
  }

  restore(v: unknown, read: SnapshotReader, windows: readonly string[]): void {
    const o = read.object(v, 'debounce');
    const offered = read.count(o.offered, 'debounce.offered');
    const recalculations = read.count(o.recalculations, 'debounce.recalculations');
    const held = new Map<string, Map<string, Row>>();
    read.array(o.held, 'debounce.held').forEach((entry, i) => {
      const where = `debounce.held[${i}]`;
      const [key, rows] = read.array(entry, where, { min: 2, max: 2 });
      const k = read.string(key, `${where}[0]`);
      if (held.has(k)) read.fail(`${where}: key ${JSON.stringify(k)} appears twice`);
      const byId = new Map<string, Row>();
      read.array(rows, `${where}[1]`, { min: 1 }).forEach((r, j) => {
        const row = decodeRow(r, read, `${where}[1][${j}]`, windows);
        if (row.key !== k) read.fail(`${where}[1][${j}]: a row of key ${JSON.stringify(row.key)} held under ${JSON.stringify(k)}`);
        if (byId.has(rowId(row))) read.fail(`${where}[1][${j}]: window ${row.window} at ${row.start} appears twice`);
        byId.set(rowId(row), row);
      });
      held.set(k, byId);
    });
    read.within('debounce.gate', () => this.gate.restore(read.string(o.gate, 'debounce.gate')));
    for (const [k, v] of held) this.held.set(k, v);
    this.offered = offered;
    this.recalculations = recalculations;
  }
}

/** A row as JSON: [key, window, start, end, final, revision, superseded, columns]. */
function encodeRow(r: Row): unknown[] {
  const columns: Record<string, number | string | null> = {};
  for (const c in r.columns) {
    const v = r.columns[c];
    columns[c] = v === null ? null : encodeNum(v);
  }
  return [r.key, r.window, encodeNum(r.start), encodeNum(r.end), r.final, r.revision, r.superseded, columns];
}

function decodeRow(v: unknown, read: SnapshotReader, where: string, windows: readonly string[]): Row {
  const a = read.array(v, where, { min: 8, max: 8 });
  const window = read.oneOf(a[1], windows, `${where}[1]`);
  const revision = read.finite(a[5], `${where}[5]`);
  if (!Number.isSafeInteger(revision) || revision < -1) read.fail(`${where}[5] must be a whole number >= -1, got ${revision}`);
  const cols = read.object(a[7], `${where}[7]`);
  const columns: Columns = {};
  for (const c in cols) columns[c] = cols[c] === null ? null : read.number(cols[c], `${where}[7].${c}`);
  return {
    key: read.string(a[0], `${where}[0]`),
    window,
    start: read.finite(a[2], `${where}[2]`),
    end: read.finite(a[3], `${where}[3]`),
    final: read.boolean(a[4], `${where}[4]`),
    revision,
    superseded: read.boolean(a[6], `${where}[6]`),
    columns,
  };
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
    const s = board.scores(r.key);
    if (!s) {
      // none of the score's inputs has a value yet: the key is not scored (nor ranked)
      for (const c of this.columns) r.columns[c] = null;
      return;
    }
    // A score beyond the double range (raw values or weights near 1.8e308) is null in the row, as
    // JSON and QuestDB would carry it anyway; the board still ranks it first (or last).
    for (const c in s.components) r.columns[c] = finite(s.components[c]);
    for (const p in s.profiles) r.columns[p] = finite(s.profiles[p]);
  }

  /** One ScoreBoard snapshot per window name that has a board. */
  snapshot(): Record<string, string> {
    return Object.fromEntries([...this.boards].map(([w, b]) => [w, b.snapshot()]));
  }

  restore(v: unknown, read: SnapshotReader, windows: readonly string[]): void {
    const o = read.object(v, 'score');
    const boards = new Map<string, ScoreBoard>();
    for (const w in o) {
      read.oneOf(w, windows, 'score: window');
      const board = this.create();
      read.within(`score.${w}`, () => board.restore(read.string(o[w], `score.${w}`)));
      boards.set(w, board);
    }
    this.boards.clear();
    for (const [w, b] of boards) this.boards.set(w, b);
  }
}

const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** How long a window of this type spans (the largest size for rolling windows). */
function windowSpan(w: PipelineSpec['window']): number {
  switch (w.type) {
    case 'tumbling':
    case 'sliding':
      return w.size;
    case 'rolling':
      return Math.max(...w.sizes);
    default:
      return 0;
  }
}

/**
 * Window-over-window change of one field per key. A row's trend compares its value with the
 * key's row one period earlier: pct = (v - prev) / |prev| (null without a previous row or when
 * it is 0), direction by `threshold` (from 0, the sign of the change). The stage keeps each
 * key's recent rows, so a late correction gets the right trend whatever window it hits, and
 * when a window's value changes, the row one period later (whose trend depended on it) is emitted
 * again with its new trend (same revision: its window did not change). Rows more than
 * period + window size + allowed lateness behind the watermark are forgotten: no correction can
 * reach them or the row after them. The movers of the newest window are the live view's top-K by
 * trend_pct (descending: rising, ascending: falling).
 */
class TrendStage {
  /** Per window name and key: the key's recent rows by window start. */
  private readonly memo = new Map<string, Map<string, Map<number, Row>>>();

  constructor(
    readonly field: string,
    readonly periodMs: number,
    readonly threshold: number,
    /** How far behind the watermark (rolling: the key's newest row) a row is still needed: a period plus how long a window can be corrected. */
    readonly keepMs: number,
    readonly rolling: boolean,
  ) {}

  private callWm = -Infinity;
  private sweptAt = -Infinity;

  private valueOf(r: Row | undefined): number | null {
    const v = r?.columns[this.field];
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  }

  /** pct and direction of `v` against `prev`, as operators/trend defines them. */
  private trendOf(v: number | null, prev: number | null): { pct: number | null; dir: number | null } {
    if (v === null || prev === null) return { pct: null, dir: null };
    const pct = pctChange(v, prev);
    return { pct, dir: changeDirection(v, prev, pct, this.threshold) };
  }

  apply(r: Row, again: (r: Row) => void): void {
    const v = this.valueOf(r);
    let keys = this.memo.get(r.window);
    if (!keys) this.memo.set(r.window, (keys = new Map()));
    let rows = keys.get(r.key);
    if (!rows) keys.set(r.key, (rows = new Map()));
    const before = rows.get(r.start);
    const t = this.trendOf(v, this.valueOf(rows.get(r.start - this.periodMs)));
    r.columns.trend_pct = t.pct;
    r.columns.trend_dir = t.dir;
    rows.set(r.start, r);
    if (!before || this.valueOf(before) !== v) {
      const next = rows.get(r.start + this.periodMs);
      if (next) {
        const nt = this.trendOf(this.valueOf(next), v);
        if (nt.pct !== next.columns.trend_pct || nt.dir !== next.columns.trend_dir) {
          const copy: Row = { ...next, columns: { ...next.columns, trend_pct: nt.pct, trend_dir: nt.dir } };
          rows.set(copy.start, copy);
          again(copy);
        }
      }
    }
    if (rows.size > 2) this.prune(rows);
  }

  /**
   * The watermark in force before a call (process or tick): rows whose successor was closed for
   * good by then are no longer needed. Not the call's new watermark: a jump can fire a row and its
   * successor in the same call, and the successor needs the row.
   */
  begin(wm: number): void {
    this.callWm = wm;
    if (this.rolling || !(wm - this.sweptAt > this.keepMs)) return;
    // now and then, forget keys that went quiet
    this.sweptAt = wm;
    for (const keys of this.memo.values())
      for (const [key, rows] of keys) {
        this.prune(rows);
        if (rows.size === 0) keys.delete(key);
      }
  }

  /** Forgets a key's rows no correction can reach (rolling windows: those behind its newest row, corrections only reach the newest). */
  private prune(rows: Map<number, Row>): void {
    let from = this.callWm;
    if (this.rolling) {
      from = -Infinity;
      for (const start of rows.keys()) if (start > from) from = start;
    }
    for (const start of rows.keys()) if (start < from - this.keepMs) rows.delete(start);
  }

  /** The memo: [window, [[key, [row, ...]], ...]], and when keys were last swept. (Snapshots before 2026-11-23 also held `trackers`: ignored.) */
  snapshot(): unknown {
    const memo: unknown[] = [];
    for (const [w, keys] of this.memo) {
      const entries: unknown[] = [];
      for (const [key, rows] of keys) entries.push([key, [...rows.values()].map(encodeRow)]);
      memo.push([w, entries]);
    }
    return { memo, sweptAt: encodeNum(this.sweptAt) };
  }

  restore(v: unknown, read: SnapshotReader, windows: readonly string[]): void {
    const o = read.object(v, 'trend');
    const sweptAt = read.number(o.sweptAt, 'trend.sweptAt');
    const memo = new Map<string, Map<string, Map<number, Row>>>();
    read.array(o.memo, 'trend.memo').forEach((entry, i) => {
      const where = `trend.memo[${i}]`;
      const [w, list] = read.array(entry, where, { min: 2, max: 2 });
      const window = read.oneOf(w, windows, `${where}[0]`);
      if (memo.has(window)) read.fail(`${where}: window ${window} appears twice`);
      const keys = new Map<string, Map<number, Row>>();
      read.array(list, `${where}[1]`).forEach((e, j) => {
        const at = `${where}[1][${j}]`;
        const [k, rowList] = read.array(e, at, { min: 2, max: 2 });
        const key = read.string(k, `${at}[0]`);
        if (keys.has(key)) read.fail(`${at}: key ${JSON.stringify(key)} appears twice`);
        const rows = new Map<number, Row>();
        read.array(rowList, `${at}[1]`).forEach((rv, n) => {
          const row = decodeRow(rv, read, `${at}[1][${n}]`, windows);
          if (row.key !== key || row.window !== window) read.fail(`${at}[1][${n}]: the row is of ${row.key} ${row.window}, not ${key} ${window}`);
          if (rows.has(row.start)) read.fail(`${at}[1][${n}]: start ${row.start} appears twice`);
          rows.set(row.start, row);
        });
        keys.set(key, rows);
      });
      memo.set(window, keys);
    });
    this.memo.clear();
    for (const [w, m] of memo) this.memo.set(w, m);
    this.sweptAt = sweptAt;
  }
}

const SNAPSHOT_FORMAT = 'weir.pipeline/1';

/** The spec a snapshot is tied to: all of it but the description, which changes nothing. */
function snapshotSpec(spec: PipelineSpec): Omit<PipelineSpec, 'description'> {
  const { description: _d, ...rest } = spec;
  return rest;
}

export class PipelineRuntime {
  readonly columns: string[];
  readonly windows: string[];
  /** Columns top-K may rank by. */
  readonly rankable: string[];
  /** Score profiles (their top-K comes from the score board, exact under running normalisers). */
  readonly profiles: string[];
  readonly skipped: Record<string, number> = {};
  // Not readonly: restore() swaps in stages restored from a snapshot, all of them or none.
  private stage: WindowStage;
  private debounce: DebounceStage | undefined;
  private score: ScoreStage | undefined;
  private trend: TrendStage | undefined;
  /** One evaluator per window name: a key's 7d and 30d rows are different series, each with its own alert state. */
  private alerts = new Map<string, AlertEvaluator>();
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
    this.debounce = this.newDebounce();
    const extra: string[] = [];
    if (spec.score) {
      this.score = new ScoreStage(spec.score);
      extra.push(...this.score.columns);
    }
    if (spec.trend) {
      const period = w.type === 'tumbling' ? w.size : w.type === 'sliding' ? w.slide : w.type === 'rolling' ? w.pane : undefined;
      if (period === undefined) throw new Error(`${where}: trend: a ${w.type} window has no fixed period to compare with the previous window`);
      this.trend = new TrendStage(spec.trend.field, period, spec.trend.threshold, period + windowSpan(w) + (w.type === 'rolling' ? period : spec.allowedLateness), w.type === 'rolling');
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

  private newDebounce(): DebounceStage | undefined {
    const d = this.spec.debounce;
    return d && new DebounceStage(d, this.perKey ? (key, into) => this.stage.emitKeys([key], this.withTrend(into)) : undefined);
  }

  /**
   * The whole state as JSON text, for checkpoints: format tag, the pipeline spec, the watermark,
   * the skip counters, and each stage's state through its operator's own snapshot (window stage
   * with its late count, debounce gate with the rows it holds and its counters, score boards and
   * the trend memo, alert evaluators per window). Take it between
   * calls; processing time is not part of it (the runner passes `now`).
   */
  snapshot(): string {
    return JSON.stringify({
      format: SNAPSHOT_FORMAT,
      spec: snapshotSpec(this.spec),
      wm: encodeNum(this.wm),
      skipped: this.skipped,
      windows: this.stage.snapshot(),
      debounce: this.debounce?.snapshot() ?? null,
      score: this.score?.snapshot() ?? null,
      trend: this.trend?.snapshot() ?? null,
      alerts: Object.fromEntries([...this.alerts].map(([w, e]) => [w, e.snapshot()])),
    });
  }

  /**
   * Replaces the whole state with a snapshot taken by a runtime of the same pipeline spec (the
   * description aside). Throws an Error starting with "pipeline snapshot:" when the text is not
   * such a snapshot, was taken with another spec (naming the first difference), or holds a state
   * an operator refuses; the runtime is then left as it was.
   */
  restore(text: string): void {
    const read = new SnapshotReader('pipeline');
    if (typeof text !== 'string') read.fail(`expected JSON text, got ${typeof text}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      read.fail(`not JSON (${(err as Error).message})`);
    }
    const top = read.object(parsed, 'the snapshot');
    if (top.format !== SNAPSHOT_FORMAT) read.fail(`format ${JSON.stringify(top.format)} is not ${SNAPSHOT_FORMAT}`);
    const diff = jsonDifference(top.spec, JSON.parse(JSON.stringify(snapshotSpec(this.spec))), 'spec');
    if (diff) read.fail(`taken with another spec of pipeline ${this.spec.name}: ${diff.replace('this operator', 'this pipeline')}`);
    const wm = read.number(top.wm, 'wm');
    const sk = read.object(top.skipped, 'skipped');
    const skipped: Record<string, number> = {};
    for (const r in sk) skipped[r] = read.count(sk[r], `skipped.${r}`);
    // Every stage is restored into a fresh instance, and swapped in only when all of them took their state.
    const where = `pipeline ${this.spec.name}`;
    const stage = new WindowStage(this.spec, where, this.perKey);
    stage.restore(top.windows, read);
    const stageOf = (s: unknown, name: string, present: boolean) => {
      if (present && (s === null || s === undefined)) read.fail(`${name}: missing, and the pipeline has a ${name} stage`);
      if (!present && s !== null && s !== undefined) read.fail(`${name}: present, and the pipeline has no ${name} stage`);
    };
    stageOf(top.debounce, 'debounce', this.debounce !== undefined);
    stageOf(top.score, 'score', this.score !== undefined);
    stageOf(top.trend, 'trend', this.trend !== undefined);
    // The debounce's pull reads this.stage when it runs, so it reads the restored one once swapped in.
    const debounce = this.newDebounce();
    debounce?.restore(top.debounce, read, this.windows);
    const score = this.spec.score && new ScoreStage(this.spec.score);
    score?.restore(top.score, read, this.windows);
    const trend = this.trend && new TrendStage(this.trend.field, this.trend.periodMs, this.trend.threshold, this.trend.keepMs, this.trend.rolling);
    trend?.restore(top.trend, read, this.windows);
    const al = read.object(top.alerts, 'alerts');
    const alerts = new Map<string, AlertEvaluator>();
    for (const w of this.windows) {
      if (!this.alertRules.length) break;
      if (al[w] === undefined) read.fail(`alerts: window ${w} is missing`);
      const e = new AlertEvaluator(this.alertRules);
      read.within(`alerts.${w}`, () => e.restore(read.string(al[w], `alerts.${w}`)));
      alerts.set(w, e);
    }
    for (const w in al) if (!alerts.has(w)) read.fail(`alerts: window ${JSON.stringify(w)} is not one this pipeline alerts on`);
    this.stage = stage;
    this.debounce = debounce;
    this.score = score;
    this.trend = trend;
    this.alerts = alerts;
    this.wm = wm;
    for (const r in this.skipped) delete this.skipped[r];
    Object.assign(this.skipped, skipped);
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
    this.trend?.begin(this.wm);
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
    this.trend?.begin(this.wm);
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
    return this.withTrend(d ? (r) => d.offer(r, now, next) : next);
  }

  /**
   * The trend is computed as rows leave the window stage, before a debounce holds them: it
   * depends only on window values, and the rows it keeps are pruned by the watermark, which moves
   * on while the debounce holds rows (a held row would find its previous window forgotten).
   */
  private withTrend(sink: (r: Row) => void): (r: Row) => void {
    const t = this.trend;
    if (!t) return sink;
    return (r) => {
      if (!r.superseded) t.apply(r, sink);
      sink(r);
    };
  }

  /** Score and alerts of one row (its trend is already in it), then the row out. */
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
