/**
 * The gateway's query layer, shared by HTTP and gRPC so both give the same answers and the same
 * errors. It validates every parameter itself (the HTTP JSON schemas are a first line only).
 *
 *   history   QuestDB over PG wire (bound parameters; tables only from config), through a small
 *             cache that the watermark invalidates (see HistoryCache)
 *   live      the engine's in-memory view over NATS request-reply (weir.api.<pipeline>.*)
 *   streams   NATS subscriptions on weir.results.> shared between subscribers (SubscriptionHub)
 *   publish   the engine's own decoder validates, then JetStream publish; acked after JetStream acks
 */
import type pg from 'pg';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { JetStreamClient } from '@nats-io/jetstream';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { WeirConfig } from '../engine/config.js';
import { decodeMessage, METRIC_RE, type DecodeLimits } from '../engine/decode.js';
import { pipelineTable } from '../engine/pipeline/sink.js';
import { apiSubject, keyFromToken, LONE_SURROGATE, RESULT_FIELDS, resultFilterSubject, statusSubject, type EngineStatus, type LiveResult } from '../engine/subjects.js';
import type { TopAnswer } from '../engine/live-view.js';
import { SketchAccumulator, type DDSketch } from '../operators/aggregates/ddsketch.js';
import { clampedQuantiles } from '../operators/aggregates/summary.js';
import { ApiError, BadRequest } from './errors.js';
import { MAX_TIME_MS, parseTime } from './questdb.js';

export const ROW_COLUMNS = ['count', 'sum', 'min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p95', 'p99', 'p999'] as const;
const NAME_RE = /^[A-Za-z0-9_-]+$/;

export interface SeriesPoint {
  ts: number;
  count: number;
  /** count per second of window length, as in live results. */
  rate: number;
  /** null when the window's sum is beyond the double range (±1.8e308). */
  sum: number | null;
  min: number;
  max: number;
  mean: number;
  stddev: number | null;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
}

export interface SeriesAnswer {
  metric: string;
  key: string;
  window: string;
  from: number;
  to: number;
  truncated: boolean;
  points: SeriesPoint[];
}

/**
 * One row of a declared pipeline's table weir_p_<pipeline>: a window of one key. Tombstones of
 * absorbed session windows (superseded) are never returned.
 */
export interface PipelinePoint {
  /** Window start, ms since epoch (0 for a global window). */
  ts: number;
  /** Window end, ms since epoch (0 for a global window). */
  end: number;
  /** Window name ('10s', '7d', 'session', 'global'). */
  window: string;
  /** false: partial figures of a window that has not fired. */
  final: boolean;
  /** Grows with each result of the window (docs/pipelines.md, "How the stages run"). */
  revision: number;
  /** Wall time the engine produced the row. */
  emittedAt: number;
  /** Every output column of the table, null where the window has no value. */
  fields: Record<string, number | null>;
}

export interface PipelineSeriesAnswer {
  pipeline: string;
  /** A declared pipeline's results carry its own name as their metric. */
  metric: string;
  key: string;
  /** The window asked for; null: every window. */
  window: string | null;
  from: number;
  to: number;
  truncated: boolean;
  /** The table's output columns, in table order: the keys of every point's `fields`. */
  fields: string[];
  points: PipelinePoint[];
}

/** What the gateway knows of a declared pipeline's table, read from QuestDB and kept briefly. */
interface PipelineTableInfo {
  table: string;
  fields: string[];
  /** Window names with rows in the table, sorted. */
  windows: string[];
  hasSuperseded: boolean;
}

/** Columns every weir_p_<pipeline> table has (engine/pipeline/sink.ts); the others are output fields. */
const PIPELINE_META_COLUMNS = new Set(['ts', 'key', 'window', 'window_end', 'final', 'revision', 'emitted_at', 'superseded']);
const NUMERIC_TYPES = new Set(['DOUBLE', 'FLOAT', 'LONG', 'INT', 'SHORT', 'BYTE']);
const COLUMN_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The window names the engine gives (windowProp in routes/schemas.ts). */
const WINDOW_RE = /^[0-9a-z]+$/;

export interface PercentilesAnswer {
  metric: string;
  key: string;
  window: string;
  from: number;
  to: number;
  count: number;
  windows: number;
  relativeAccuracy: number;
  quantiles: { q: number; value: number | null }[];
}

export interface SubscribeFilter {
  pipeline?: string;
  metric?: string;
  key?: string;
  keyPrefix?: string;
  window?: string;
  /** Only firings and corrections, no partial updates. */
  finalOnly?: boolean;
}

export interface PublishAnswer {
  accepted: number;
  messages: number;
  /** JetStream sequence of the first and last message written. */
  firstSeq: number;
  lastSeq: number;
  duplicate: boolean;
}

export interface ServiceMetrics {
  cacheHit(): void;
  cacheMiss(): void;
  subscriptionsChanged(n: number): void;
}

export interface ServiceDeps {
  config: WeirConfig;
  pool: pg.Pool;
  nc: NatsConnection;
  js: JetStreamClient;
  log: Logger;
  metrics?: ServiceMetrics;
}

type Q = Record<string, unknown>;

function strParam(q: Q, name: string, opts: { required?: boolean; re?: RegExp; max?: number; what?: string } = {}): string | undefined {
  const v = q[name];
  if (v === undefined || v === null || v === '') {
    if (opts.required) throw new BadRequest(name, `${name} is required`);
    return undefined;
  }
  if (typeof v !== 'string') throw new BadRequest(name, `${name} must be a string`);
  if (opts.max !== undefined && v.length > opts.max) throw new BadRequest(name, `${name} is ${v.length} characters, the limit is ${opts.max}`);
  if (opts.re && !opts.re.test(v)) throw new BadRequest(name, `${name} ${JSON.stringify(v.slice(0, 64))} is not valid: ${opts.what ?? `must match ${opts.re}`}`);
  return v;
}

function intParam(q: Q, name: string, dflt: number, min: number, max: number): number {
  const v = q[name];
  if (v === undefined || v === null || v === '' || v === 0) return dflt;
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw new BadRequest(name, `${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  return n;
}

const metricParam = (q: Q, required = true) =>
  strParam(q, 'metric', { required, re: METRIC_RE, max: 256, what: 'letters, digits, "_", "-" or ":"' });
/** A key as events give it: no control characters, no lone surrogates (no series has one; QuestDB is never asked). */
const keyParam = (q: Q, required = true) => {
  const key = strParam(q, 'key', { required, max: 256 });
  if (key !== undefined && (KEY_CONTROL_RE.test(key) || LONE_SURROGATE.test(key)))
    throw new BadRequest('key', `key ${JSON.stringify(key.slice(0, 64))} contains a control character or a lone UTF-16 surrogate; no event key can (see the event contract)`);
  return key;
};
const KEY_CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

/** Parses "0.5,0.99" (or a number array) into quantiles in [0, 1]. */
export function parseQuantiles(v: unknown, max: number): number[] {
  if (v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0)) return [0.5, 0.9, 0.95, 0.99, 0.999];
  const parts: unknown[] = Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : [v];
  if (parts.length > max) throw new BadRequest('q', `at most ${max} quantiles, got ${parts.length}`);
  return parts.map((p) => {
    // Decimal only: Number() would also read "0x1", "0b1", " ", true and [0.5].
    const n = typeof p === 'number' ? p : typeof p === 'string' && DECIMAL_RE.test(p.trim()) ? Number(p.trim()) : NaN;
    if (!Number.isFinite(n) || n < 0 || n > 1) throw new BadRequest('q', `q must be comma-separated decimal numbers in [0, 1], got ${typeof p === 'string' ? `"${p}"` : JSON.stringify(p) ?? String(p)}`);
    return n;
  });
}

const DECIMAL_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function stringifies(v: unknown): boolean {
  try {
    JSON.stringify(v);
    return true;
  } catch {
    return false;
  }
}

/**
 * History answers keyed by the query. An answer whose whole range is final (every window in it
 * ended more than allowed lateness before the durable watermark, as the engine reported at least
 * `settleMs` ago, so QuestDB has applied the rows) is kept until evicted by size. Any other
 * answer is only valid while the durable watermark has not moved.
 */
class HistoryCache {
  private readonly lru: LRUCache<string, { wm: number; stable: boolean; expires?: number; value: unknown }>;
  constructor(max: number) {
    this.lru = new LRUCache({ max: Math.max(1, max) });
  }
  get(key: string, wm: number): unknown | undefined {
    const e = this.lru.get(key);
    if (!e) return undefined;
    if (e.expires !== undefined ? Date.now() < e.expires : e.stable || e.wm === wm) return e.value;
    this.lru.delete(key);
    return undefined;
  }
  set(key: string, wm: number, stable: boolean, value: unknown) {
    this.lru.set(key, { wm, stable, value });
  }
  /** An entry valid for `ttlMs` whatever the watermark does (declared pipelines: no durable watermark yet). */
  setFor(key: string, ttlMs: number, value: unknown) {
    this.lru.set(key, { wm: -1, stable: false, expires: Date.now() + ttlMs, value });
  }
  get size() {
    return this.lru.size;
  }
}

/** Called with the parsed result and its JSON text (forwarded as is, never re-serialised per subscriber). */
/**
 * A subscriber callback: the result message as published (JSON text), its subject, and a parse
 * that runs at most once per message however many listeners call it. Most subscribers forward the
 * text as it is (SSE, WebSocket), so nothing is parsed for them.
 */
type Listener = (raw: string, subject: string, result: () => LiveResult | null) => void;
/** `result()` is null for a message that is not JSON (logged once). */
export type ResultListener = (raw: string, result: () => LiveResult | null) => void;

/** One NATS subscription per distinct subject, shared by every subscriber of that subject. */
class SubscriptionHub {
  private readonly subs = new Map<string, { sub: Subscription; listeners: Set<Listener> }>();
  count = 0;
  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {}

  add(subject: string, listener: Listener): () => void {
    let e = this.subs.get(subject);
    if (!e) {
      const listeners = new Set<Listener>();
      const sub = this.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err) return;
          const raw = msg.string();
          let parsed: LiveResult | null | undefined;
          const result = () => {
            if (parsed === undefined) {
              try {
                parsed = JSON.parse(raw) as LiveResult;
              } catch {
                parsed = null;
                this.log.warn({ subject: msg.subject }, 'unparsable result message');
              }
            }
            return parsed;
          };
          for (const l of listeners) l(raw, msg.subject, result);
        },
      });
      e = { sub, listeners };
      this.subs.set(subject, e);
    }
    e.listeners.add(listener);
    this.count++;
    const entry = e;
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      this.count--;
      entry.listeners.delete(listener);
      if (entry.listeners.size === 0) {
        entry.sub.unsubscribe();
        this.subs.delete(subject);
      }
    };
  }
}

export class WeirService {
  readonly config: WeirConfig;
  private readonly pool: pg.Pool;
  private readonly nc: NatsConnection;
  private readonly js: JetStreamClient;
  private readonly log: Logger;
  private readonly metrics?: ServiceMetrics;
  private readonly cache: HistoryCache;
  private readonly hub: SubscriptionHub;
  private statusSub: Subscription | null = null;
  /** Recent engine statuses (newest last), to judge which history can no longer change. */
  private statuses: EngineStatus[] = [];
  private readonly decodeLimits: DecodeLimits;
  private readonly settleMs = 5_000;
  /** Declared pipelines: how long a history answer is served from the cache (no watermark to key it on). */
  private readonly pipelineAnswerTtlMs = 1_000;
  /** Declared pipelines: how long their table's columns and windows are kept. */
  private readonly pipelineTableTtlMs = 10_000;
  private readonly pipelineTables = new Map<string, { at: number; info: Promise<PipelineTableInfo> }>();

  constructor(deps: ServiceDeps) {
    this.config = deps.config;
    this.pool = deps.pool;
    this.nc = deps.nc;
    this.js = deps.js;
    this.log = deps.log;
    this.metrics = deps.metrics;
    this.cache = new HistoryCache(deps.config.gateway.cacheEntries);
    this.hub = new SubscriptionHub(deps.nc, deps.log);
    this.decodeLimits = { ...deps.config.limits, maxFutureMs: deps.config.pipeline.maxFuture };
  }

  start(): void {
    this.statusSub = this.nc.subscribe(statusSubject(this.config.pipeline.name), {
      callback: (err, msg) => {
        if (err) return;
        try {
          this.statuses.push(msg.json<EngineStatus>());
          if (this.statuses.length > 30) this.statuses.shift();
        } catch {
          /* ignore a malformed status */
        }
      },
    });
  }

  stop(): void {
    this.statusSub?.unsubscribe();
  }

  /** The newest engine status, or null when none has arrived (engine down or just started). */
  get engineStatus(): EngineStatus | null {
    const s = this.statuses[this.statuses.length - 1];
    return s && Date.now() - s.at < 10_000 ? s : null;
  }

  get activeSubscriptions(): number {
    return this.hub.count;
  }

  // ---- history ---------------------------------------------------------------------------

  private resolveRange(q: Q, defaultWindow: 'smallest' | 'largest') {
    const windows = this.config.pipeline.windows;
    const sorted = [...windows].sort((a, b) => a.size - b.size);
    const wname = strParam(q, 'window', { max: 16 });
    const w = wname ? windows.find((x) => x.name === wname) : defaultWindow === 'smallest' ? sorted[0] : sorted[sorted.length - 1];
    if (!w) throw new BadRequest('window', `window must be one of ${windows.map((x) => x.name).join(', ')}, got "${wname}"`);
    return { window: w.name, table: w.table, size: w.size, ...this.resolveTimes(q) };
  }

  /** [from, to) from the query: defaults to = now, from = to - 1 h; checked against maxRange. */
  private resolveTimes(q: Q) {
    const now = Date.now();
    const to = parseTime(q.to as string | number | undefined, 'to');
    if (to instanceof Error) throw new BadRequest('to', to.message);
    const toMs = to ?? now;
    const from = parseTime(q.from as string | number | undefined, 'from');
    if (from instanceof Error) throw new BadRequest('from', from.message);
    // The default range is the hour before `to`, cut at the earliest time a Date holds.
    if (from === undefined && toMs <= -MAX_TIME_MS) throw new BadRequest('to', `to (${toMs}) is the earliest time there is: with no from, the range before it is empty`);
    const fromMs = from ?? Math.max(toMs - 3_600_000, -MAX_TIME_MS);
    if (fromMs >= toMs) throw new BadRequest('from', `from (${fromMs}) must be before to (${toMs})`);
    const maxRange = this.config.gateway.limits.maxRange;
    if (toMs - fromMs > maxRange) throw new BadRequest('from', `range is ${toMs - fromMs} ms, the limit is ${maxRange} ms`);
    return { from: fromMs, to: toMs, toGiven: to !== undefined };
  }

  /** The durable watermark the engine reported at least settleMs ago (QuestDB has applied those rows). */
  private settledWatermark(): number {
    const cutoff = Date.now() - this.settleMs;
    for (let i = this.statuses.length - 1; i >= 0; i--) if (this.statuses[i].at <= cutoff) return this.statuses[i].durableWatermark;
    return -Infinity;
  }

  private async cached<T>(key: string, range: { to: number; size: number; toGiven: boolean }, run: () => Promise<T>): Promise<T> {
    const wm = this.engineStatus?.durableWatermark ?? -1;
    const hit = this.cache.get(key, wm) as T | undefined;
    if (hit !== undefined) {
      this.metrics?.cacheHit();
      return hit;
    }
    this.metrics?.cacheMiss();
    const value = await run();
    // Only an explicit `to` can be stable: a default `to` means "now" and moves.
    const lateness = this.config.pipeline.allowedLateness;
    const stable = range.toGiven && range.to + range.size + lateness <= this.settledWatermark();
    if (this.config.gateway.cacheEntries > 0 && wm !== -1) this.cache.set(key, wm, stable, value);
    return value;
  }

  /**
   * Window rows of one series. The default pipeline reads weir_agg_<window>; `pipeline` naming a
   * declared pipeline reads its table weir_p_<pipeline> (pipelineSeries).
   */
  async series(q: Q): Promise<SeriesAnswer | PipelineSeriesAnswer> {
    const pipeline = this.pipelineParam(q);
    if (pipeline !== this.config.pipeline.name) return this.pipelineSeries(q, pipeline);
    const metric = metricParam(q)!;
    const key = keyParam(q)!;
    const r = this.resolveRange(q, 'smallest');
    const maxRows = this.config.gateway.limits.maxRows;
    const limit = intParam(q, 'limit', maxRows, 1, maxRows);
    const ck = `s\u0000${metric}\u0000${key}\u0000${r.window}\u0000${r.from}\u0000${r.to}\u0000${limit}`;
    return this.cached(ck, r, async () => {
      const res = await this.query<SeriesPoint>(
        `SELECT ts, ${ROW_COLUMNS.join(', ')} FROM ${r.table} WHERE metric = $1 AND key = $2 AND ts >= $3 AND ts < $4 ORDER BY ts LIMIT ${limit + 1}`,
        [metric, key, new Date(r.from), new Date(r.to)],
      );
      const truncated = res.length > limit;
      const points = truncated ? res.slice(0, limit) : res;
      for (const p of points) p.rate = p.count / (r.size / 1000);
      return { metric, key, window: r.window, from: r.from, to: r.to, truncated, points };
    });
  }

  /**
   * Rows of one key of a declared pipeline, from its table weir_p_<pipeline>: ts in [from, to),
   * one window or every window, tombstones (superseded) left out, ordered by ts then window name.
   * Every parameter is checked before any SQL runs. The pipeline name is an identifier in the SQL:
   * it has passed NAME_RE (pipelineParam) and the table must be listed by tables() (a bound
   * parameter, exact match) before it is interpolated; column names come from the table itself.
   */
  private async pipelineSeries(q: Q, pipeline: string): Promise<PipelineSeriesAnswer> {
    const metric = metricParam(q, false);
    if (metric !== undefined && metric !== pipeline)
      throw new BadRequest('metric', `the results of pipeline ${pipeline} have its own name as their metric; leave metric out or give "${pipeline}", got "${metric}"`);
    const key = keyParam(q)!;
    const window = strParam(q, 'window', { max: 16, re: WINDOW_RE, what: 'a window name such as 10s, 7d, session or global' });
    const r = this.resolveTimes(q);
    const maxRows = this.config.gateway.limits.maxRows;
    const limit = intParam(q, 'limit', maxRows, 1, maxRows);

    let info = await this.pipelineTableInfo(pipeline);
    if (window !== undefined && !info.windows.includes(window)) {
      info = await this.pipelineTableInfo(pipeline, true);
      if (!info.windows.includes(window)) await this.confirmPipelineWindow(pipeline, key, window, info);
    }

    const ck = `sp\u0000${pipeline}\u0000${key}\u0000${window ?? ''}\u0000${r.from}\u0000${r.to}\u0000${limit}`;
    const hit = this.cache.get(ck, -1) as PipelineSeriesAnswer | undefined;
    if (hit !== undefined) {
      this.metrics?.cacheHit();
      return hit;
    }
    this.metrics?.cacheMiss();
    const fields = info.fields;
    const params: unknown[] = [key, new Date(r.from), new Date(r.to)];
    let where = 'key = $1 AND ts >= $2 AND ts < $3';
    if (window !== undefined) {
      params.push(window);
      where += ` AND window = $${params.length}`;
    }
    if (info.hasSuperseded) where += ' AND superseded = false';
    const rows = await this.query<Record<string, unknown>>(
      `SELECT ts, window_end, window, final, revision, emitted_at${fields.map((f) => `, "${f}"`).join('')} FROM "${info.table}" WHERE ${where} ORDER BY ts, window LIMIT ${limit + 1}`,
      params,
    );
    const truncated = rows.length > limit;
    const points: PipelinePoint[] = (truncated ? rows.slice(0, limit) : rows).map((row) => {
      const values: Record<string, number | null> = {};
      for (const f of fields) {
        const v = row[f];
        values[f] = typeof v === 'number' && Number.isFinite(v) ? v : null;
      }
      return {
        ts: row.ts as number,
        end: (row.window_end as number | null) ?? 0,
        window: row.window as string,
        final: row.final === true,
        revision: Number(row.revision ?? 0),
        emittedAt: (row.emitted_at as number | null) ?? 0,
        fields: values,
      };
    });
    const answer: PipelineSeriesAnswer = { pipeline, metric: pipeline, key, window: window ?? null, from: r.from, to: r.to, truncated, fields: [...fields], points };
    // No durable watermark is reported for a declared pipeline yet, so nothing is ever stable:
    // an answer is reused for pipelineAnswerTtlMs only.
    if (this.config.gateway.cacheEntries > 0) this.cache.setFor(ck, this.pipelineAnswerTtlMs, answer);
    return answer;
  }

  /** The table of a declared pipeline: its output columns and the windows it has rows of (kept pipelineTableTtlMs). */
  private pipelineTableInfo(pipeline: string, fresh = false): Promise<PipelineTableInfo> {
    const e = this.pipelineTables.get(pipeline);
    if (e && !fresh && Date.now() - e.at < this.pipelineTableTtlMs) return e.info;
    const info = this.loadPipelineTable(pipeline);
    this.pipelineTables.set(pipeline, { at: Date.now(), info });
    // Failures (no such table, QuestDB down) are not kept: the next request asks again.
    info.catch(() => {
      if (this.pipelineTables.get(pipeline)?.info === info) this.pipelineTables.delete(pipeline);
    });
    return info;
  }

  private async loadPipelineTable(pipeline: string): Promise<PipelineTableInfo> {
    // pipelineParam checked the name already; checked again here because it becomes an identifier.
    if (!NAME_RE.test(pipeline) || pipeline.length > 64) throw new BadRequest('pipeline', `pipeline ${JSON.stringify(pipeline.slice(0, 64))} is not valid`);
    const table = pipelineTable(pipeline);
    const found = await this.query<{ table_name: string }>('SELECT table_name FROM tables() WHERE table_name = $1', [table]);
    if (found.length === 0)
      throw new ApiError(404, 'not_found', 'pipeline', `no pipeline "${pipeline}": QuestDB has no table ${table} (a declared pipeline's table exists once the engine has run it: WEIR_PIPELINES)`);
    const columns = await this.query<{ column: string; type: string }>(`SELECT "column", type FROM table_columns('${table}')`, []);
    const fields = columns.filter((c) => !PIPELINE_META_COLUMNS.has(c.column) && NUMERIC_TYPES.has(c.type) && COLUMN_RE.test(c.column)).map((c) => c.column);
    const windows = (await this.query<{ window: string }>(`SELECT DISTINCT window FROM "${table}"`, [])).map((w) => w.window).filter((w) => typeof w === 'string');
    return { table, fields, windows: windows.sort(), hasSuperseded: columns.some((c) => c.column === 'superseded') };
  }

  /**
   * A window with no rows in the table: fine if the engine runs the pipeline with that window
   * (nothing written yet: the answer is empty); otherwise a BadRequest naming `window` and listing
   * the windows the engine runs, or, when the engine is not answering, the windows with rows.
   */
  private async confirmPipelineWindow(pipeline: string, key: string, window: string, info: PipelineTableInfo): Promise<void> {
    try {
      await this.live(pipeline, 'latest', { metric: pipeline, key, window });
      return;
    } catch (err) {
      if (err instanceof BadRequest && err.param === 'window')
        throw new BadRequest('window', `window "${window}" is not a window of pipeline ${pipeline} (the engine says: ${err.message})`);
      const have = info.windows.length ? info.windows.join(', ') : 'none yet';
      throw new BadRequest('window', `window "${window}" has no rows in ${info.table}; windows with rows: ${have}`);
    }
  }

  async percentiles(q: Q): Promise<PercentilesAnswer> {
    const metric = metricParam(q)!;
    const key = keyParam(q)!;
    const qs = parseQuantiles(q.q, this.config.gateway.limits.maxQuantiles);
    const r = this.resolveRange(q, 'largest');
    const ck = `p\u0000${metric}\u0000${key}\u0000${r.window}\u0000${r.from}\u0000${r.to}`;
    // Cache the merged sketch, not the quantiles: any q list is answered from it.
    const merged = await this.cached(ck, r, async () => {
      const maxRows = this.config.gateway.limits.maxRows;
      const rows = await this.query<{ sketch: string; min: number; max: number; count: number }>(
        `SELECT sketch, min, max, count FROM ${r.table} WHERE metric = $1 AND key = $2 AND ts >= $3 AND ts < $4 LIMIT ${maxRows + 1}`,
        [metric, key, new Date(r.from), new Date(r.to)],
      );
      // Never answer for less than the asked range: refuse instead of merging part of it.
      if (rows.length > maxRows)
        throw new BadRequest('from', `the range holds more than ${maxRows} ${r.window} windows; narrow it or ask a larger window (${this.config.pipeline.windows.map((w) => w.name).join(', ')})`);
      // Decode every stored sketch straight into one dense accumulator (no sketch per row).
      const acc = new SketchAccumulator();
      let min = Infinity;
      let max = -Infinity;
      let count = 0;
      for (const row of rows) {
        acc.addBase64(row.sketch);
        if (row.min < min) min = row.min;
        if (row.max > max) max = row.max;
        count += row.count;
      }
      const sketch: DDSketch | null = acc.result();
      return { sketch, min, max, count, windows: rows.length };
    });
    const values = merged.sketch && merged.count ? clampedQuantiles(merged.sketch, merged.min, merged.max, qs) : qs.map(() => null);
    return {
      metric,
      key,
      window: r.window,
      from: r.from,
      to: r.to,
      count: merged.count,
      windows: merged.windows,
      relativeAccuracy: merged.sketch?.alpha ?? this.config.pipeline.sketchAccuracy,
      quantiles: qs.map((x, i) => ({ q: x, value: values[i] })),
    };
  }

  private async query<T>(sql: string, params: unknown[]): Promise<T[]> {
    try {
      return (await this.pool.query(sql, params)).rows as T[];
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'QuestDB query failed');
      throw new ApiError(503, 'unavailable', '', `QuestDB is not answering: ${(err as Error).message}`);
    }
  }

  // ---- live state ------------------------------------------------------------------------

  private pipelineParam(q: Q): string {
    return strParam(q, 'pipeline', { re: NAME_RE, max: 64, what: 'letters, digits, "_" or "-"' }) ?? this.config.pipeline.name;
  }

  private async live<T>(pipeline: string, op: 'latest' | 'topk' | 'status', body: unknown): Promise<T> {
    let reply;
    try {
      reply = await this.nc.request(apiSubject(pipeline, op), JSON.stringify(body), { timeout: this.config.gateway.liveTimeout });
    } catch (err) {
      const m = (err as Error).message;
      const noEngine = /no responders|503/i.test(m);
      // No engine answers for a declared pipeline: one that has never run (QuestDB has no table
      // weir_p_<name>) does not exist, a 404 naming the parameter; otherwise its engine is down (503).
      if (noEngine && pipeline !== this.config.pipeline.name) await this.pipelineTableInfo(pipeline);
      const why = noEngine ? `no engine is serving pipeline "${pipeline}"` : `the engine of pipeline "${pipeline}" did not answer: ${m}`;
      throw new ApiError(503, 'unavailable', pipeline === this.config.pipeline.name ? '' : 'pipeline', why);
    }
    const out = reply.json<T & { error?: string; param?: string }>();
    if (out && typeof out === 'object' && 'error' in out && out.error) throw new BadRequest(out.param ?? '', out.error);
    return out;
  }

  /**
   * The default pipeline's results are per metric; a declared pipeline's results are per key,
   * under the pipeline's own name as their metric, so `metric` may be left out for one.
   */
  private liveMetric(q: Q, pipeline: string): string {
    const declared = pipeline !== this.config.pipeline.name;
    return metricParam(q, !declared) ?? pipeline;
  }

  async latest(q: Q): Promise<{ results: LiveResult[] }> {
    const pipeline = this.pipelineParam(q);
    const metric = this.liveMetric(q, pipeline);
    const key = keyParam(q)!;
    const window = strParam(q, 'window', { max: 16 });
    const final = q.final === true || q.final === 'true';
    return this.live(pipeline, 'latest', { metric, key, window, final });
  }

  async topK(q: Q): Promise<TopAnswer & { metric: string; by: string; order: string }> {
    const pipeline = this.pipelineParam(q);
    const declared = pipeline !== this.config.pipeline.name;
    const metric = this.liveMetric(q, pipeline);
    const windows = this.config.pipeline.windows;
    // A declared pipeline knows its own windows and fields: the engine side checks them.
    const window = strParam(q, 'window', { max: 16, required: declared }) ?? [...windows].sort((a, b) => a.size - b.size)[0].name;
    const by = strParam(q, 'by', { required: declared }) ?? 'count';
    if (declared) {
      if (!/^[a-z][a-z0-9_]{0,47}$/.test(by)) throw new BadRequest('by', `by must be a field name of pipeline ${pipeline}, got "${by}"`);
    } else if (!(RESULT_FIELDS as readonly string[]).includes(by)) throw new BadRequest('by', `by must be one of ${RESULT_FIELDS.join(', ')}, got "${by}"`);
    const k = intParam(q, 'k', 10, 1, this.config.gateway.limits.maxTopK);
    const order = strParam(q, 'order') ?? 'desc';
    if (order !== 'asc' && order !== 'desc') throw new BadRequest('order', `order must be asc or desc, got "${order}"`);
    const scope = strParam(q, 'scope') ?? 'current';
    if (scope !== 'current' && scope !== 'final') throw new BadRequest('scope', `scope must be current or final, got "${scope}"`);
    const a = await this.live<TopAnswer>(pipeline, 'topk', { metric, window, by, k, order, scope });
    return { ...a, metric, by, order };
  }

  async catalog(q: Q): Promise<{ pipeline: string; windows: { name: string; sizeMs: number }[]; watermark: number; metrics: { metric: string; window: string; keys: number }[] }> {
    const pipeline = this.pipelineParam(q);
    const st = await this.live<EngineStatus & { metrics: { metric: string; window: string; keys: number }[] }>(pipeline, 'status', {});
    const windows = pipeline === this.config.pipeline.name ? this.config.pipeline.windows.map((w) => ({ name: w.name, sizeMs: w.size })) : [];
    return { pipeline, windows, watermark: st.watermark, metrics: st.metrics };
  }

  // ---- subscriptions ---------------------------------------------------------------------

  /** Validates a subscription filter; throws BadRequest naming the bad field. */
  parseFilter(q: Q): Required<Pick<SubscribeFilter, 'pipeline'>> & SubscribeFilter {
    const pipeline = this.pipelineParam(q);
    const metric = metricParam(q, false);
    const key = keyParam(q, false);
    const keyPrefix = strParam(q, 'keyPrefix', { max: 256 });
    if (key !== undefined && keyPrefix !== undefined) throw new BadRequest('keyPrefix', 'give key or keyPrefix, not both');
    const window = strParam(q, 'window', { max: 16 });
    if (window !== undefined && pipeline === this.config.pipeline.name && !this.config.pipeline.windows.some((w) => w.name === window))
      throw new BadRequest('window', `window must be one of ${this.config.pipeline.windows.map((w) => w.name).join(', ')}, got "${window}"`);
    const finalOnly = q.finalOnly === true || q.finalOnly === 'true' || q.final === true || q.final === 'true';
    return { pipeline, metric, key, keyPrefix, window, finalOnly };
  }

  /**
   * Subscribes to live window results. `onResult` is called synchronously per result; the caller
   * buffers (and disconnects a subscriber that falls too far behind). Returns the unsubscribe.
   */
  subscribe(f: SubscribeFilter & { pipeline: string }, onResult: ResultListener): () => void {
    const max = this.config.gateway.limits.maxSubscriptions;
    if (this.hub.count >= max) throw new ApiError(429, 'limit_exceeded', '', `this gateway serves at most ${max} concurrent subscriptions`);
    const subject = resultFilterSubject(f.pipeline, f.metric, f.key);
    // Filters read the subject and the JSON text, so results a subscriber does not want are never
    // parsed. The engine writes the text with JSON.stringify in a fixed field order, and in JSON
    // text a quote inside a string value is always escaped, so '"final":true' can only be the field.
    const windowField = f.window !== undefined ? `"window":${JSON.stringify(f.window)},` : undefined;
    const close = this.hub.add(subject, (raw, subj, result) => {
      if (f.finalOnly && !raw.includes('"final":true')) return;
      if (windowField !== undefined && !raw.includes(windowField)) return;
      if (f.keyPrefix !== undefined && !keyFromToken(subj.slice(subj.lastIndexOf('.') + 1)).startsWith(f.keyPrefix)) return;
      onResult(raw, result);
    });
    this.metrics?.subscriptionsChanged(this.hub.count);
    return () => {
      close();
      this.metrics?.subscriptionsChanged(this.hub.count);
    };
  }

  // ---- publish ---------------------------------------------------------------------------

  /**
   * Validates events with the engine's decoder (all or nothing: one bad event rejects the
   * request, naming its index and what is wrong), then publishes them to weir.events.<metric>
   * in messages of at most maxEventsPerMessage events and maxPayloadBytes bytes, and resolves once
   * JetStream has stored them.
   * `idempotencyKey` becomes the JetStream Msg-Id, so a retried request is stored once.
   */
  async publish(events: unknown, defaultMetric?: string, idempotencyKey?: string): Promise<PublishAnswer> {
    if (idempotencyKey !== undefined && idempotencyKey !== '' && !/^[A-Za-z0-9_.:-]{1,128}$/.test(idempotencyKey))
      throw new BadRequest('idempotencyKey', 'the idempotency key must be 1-128 characters of letters, digits, "_", ".", ":" or "-"');
    if (defaultMetric !== undefined && defaultMetric !== '' && !METRIC_RE.test(defaultMetric))
      throw new BadRequest('metric', `metric ${JSON.stringify(defaultMetric.slice(0, 64))} must be letters, digits, "_", "-" or ":"`);
    if (!Array.isArray(events)) events = [events];
    const list = events as unknown[];
    const maxN = this.config.gateway.limits.maxPublishEvents;
    if (list.length === 0) throw new BadRequest('events', 'no events given');
    if (list.length > maxN) throw new BadRequest('events', `${list.length} events in one request, the limit is ${maxN}`);
    const groups = new Map<string, { idx: number[]; events: unknown[] }>();
    for (let i = 0; i < list.length; i++) {
      const e = list[i];
      const m = e && typeof e === 'object' && !Array.isArray(e) ? (e as Q).metric : undefined;
      const metric = m === undefined ? defaultMetric || undefined : m;
      if (metric === undefined) throw new BadRequest(`events[${i}].metric`, `events[${i}] has no metric (give event.metric or the metric parameter)`);
      if (typeof metric !== 'string' || !METRIC_RE.test(metric))
        throw new BadRequest(`events[${i}].metric`, `events[${i}].metric must be letters, digits, "_", "-" or ":", got ${JSON.stringify(metric)}`);
      let g = groups.get(metric);
      if (!g) groups.set(metric, (g = { idx: [], events: [] }));
      g.idx.push(i);
      g.events.push(e);
    }
    const now = Date.now();
    const chunks: { subject: string; payload: Uint8Array }[] = [];
    const per = this.config.limits.maxEventsPerMessage;
    const maxBytes = this.config.limits.maxPayloadBytes;
    for (const [metric, g] of groups) {
      const subject = `weir.events.${metric}`;
      // Cut into messages of at most maxEventsPerMessage events and maxPayloadBytes bytes, so a
      // valid event is never refused for the size of a message publish itself chose. An event
      // too large on its own goes alone, and the decoder names it.
      const texts = g.events.map((e, j) => {
        // JSON.parse reads 1e400 as Infinity, which JSON.stringify would write as null: say what was sent.
        for (const f of ['value', 'ts'])
          if (e && typeof e === 'object' && typeof (e as Q)[f] === 'number' && !Number.isFinite((e as Q)[f])) {
            const where = `events[${g.idx[j]}]`;
            throw new BadRequest(where, `${where}: event.${f} must be a finite number, got ${(e as Q)[f]} (a number beyond the double range)`);
          }
        try {
          return JSON.stringify(e) ?? 'null';
        } catch {
          // JSON.parse reads any depth; JSON.stringify overflows the stack past ~10^4 levels.
          const where = `events[${g.idx[j]}]`;
          const field = e && typeof e === 'object' ? Object.keys(e).find((k) => !stringifies((e as Q)[k])) : undefined;
          throw new BadRequest(where, `${where}: event${field !== undefined ? `.${field.slice(0, 40)}` : ''} is nested too deeply (JSON of many thousand levels)`);
        }
      });
      const cuts: [number, number][] = [];
      for (let a = 0; a < texts.length; ) {
        let bytes = 2 + Buffer.byteLength(texts[a]);
        let b = a + 1;
        while (b < texts.length && b - a < per) {
          const next = bytes + 1 + Buffer.byteLength(texts[b]);
          if (next > maxBytes) break;
          bytes = next;
          b++;
        }
        cuts.push([a, b]);
        a = b;
      }
      for (const [off, end] of cuts) {
        const payload = Buffer.from(`[${texts.slice(off, end).join(',')}]`);
        let bad: { i: number; reason: string } | null = null;
        decodeMessage(subject, payload, () => now, now, this.decodeLimits, {
          accept() {},
          reject(reason, i) {
            bad ??= { i, reason };
          },
        });
        if (bad) {
          const { i, reason } = bad as { i: number; reason: string };
          const at = i >= 0 ? g.idx[off + i] : g.idx[off];
          const where = i >= 0 ? `events[${at}]` : 'events';
          throw new BadRequest(where, `${where}: ${reason.replace(/ at index \d+ \(subject [^)]*\)$/, '').replace(/ \(subject [^)]*\)$/, '')}`);
        }
        chunks.push({ subject, payload });
      }
    }
    let first = 0;
    let last = 0;
    let duplicate = false;
    for (let c = 0; c < chunks.length; c++) {
      const { subject, payload } = chunks[c];
      let ack;
      try {
        ack = await this.js.publish(subject, payload, idempotencyKey ? { msgID: `${idempotencyKey}:${c}` } : undefined);
      } catch (err) {
        // Validation is all or nothing; storage cannot be (JetStream has no multi-message
        // transaction). Say exactly what was stored; a retry with the same idempotency key
        // stores only what is missing.
        const stored = c === 0 ? 'nothing was stored' : `messages 1-${c} of ${chunks.length} were stored (JetStream seq ${first}-${last}), the rest were not`;
        throw new ApiError(503, 'unavailable', '', `JetStream did not store the events: ${(err as Error).message}; ${stored}. Retry with an idempotency key to store each message once.`);
      }
      if (!first) first = ack.seq;
      last = ack.seq;
      duplicate ||= ack.duplicate;
    }
    return { accepted: list.length, messages: chunks.length, firstSeq: first, lastSeq: last, duplicate };
  }
}
