/**
 * QuestDB tables of declared pipelines:
 *   weir_p_<pipeline>: one row per (window start, key, window name), upserted as the window's
 *     result changes (partials, firings, corrections, rolling updates). Columns: the pipeline's
 *     output fields as DOUBLE, plus final, revision, emitted_at and superseded (a session window
 *     that a later one absorbed: its row is rewritten as a tombstone with null fields).
 *   weir_alerts: alert transitions of every pipeline (firing, resolved).
 * Both are WAL tables with DEDUP UPSERT KEYS, so writing a row again (a retry, or a replay after a
 * restart) never duplicates it.
 */
import { Sender } from '@questdb/nodejs-client';
import { ilpConfig, questdbExec, type RowSender } from '../sink/questdb.js';

export interface ResultRow {
  key: string;
  /** Window name: the size for tumbling/sliding ('10s'), 'session', the rolling size ('7d'), 'global'. */
  window: string;
  start: number;
  end: number;
  final: boolean;
  revision: number;
  emittedAt: number;
  /** True on the tombstone of a session window a later one absorbed: its values are null and readers skip it. */
  superseded?: boolean;
  fields: Record<string, number | null>;
}

export interface AlertEvent {
  pipeline: string;
  /** The window whose rows the rule watched ('10s', '7d', ...): each window of a key has its own alert state. */
  window: string;
  rule: string;
  key: string;
  state: 'firing' | 'resolved';
  severity: 'info' | 'warning' | 'critical';
  field: string;
  value: number;
  threshold: number;
  /** Event time the condition started to hold (firing) or stopped (resolved). */
  since: number;
  /** Event time of the transition. */
  at: number;
}

const IDENT = /^[a-z_][a-z0-9_]*$/;


/**
 * Appends one result row of a pipeline (the caller ends it with `at(row.start)`). A field that is
 * null or not finite is left out, which QuestDB stores as null: floatColumn(null) would throw and
 * fail the flush for every other row of it, and ±Infinity would poison sum()/avg() over the column
 * (questdb/questdb#5926). `revision` is a LONG: any whole number up to 2^53.
 */
export function writeResultRow(sender: RowSender, table: string, columns: readonly string[], r: ResultRow): void {
  sender
    .table(table)
    .symbol('key', r.key)
    .symbol('window', r.window)
    .timestampColumn('window_end', r.end, 'ms')
    .booleanColumn('final', r.final)
    .booleanColumn('superseded', r.superseded === true)
    .intColumn('revision', r.revision)
    .timestampColumn('emitted_at', r.emittedAt, 'ms');
  for (const c of columns) {
    const v = r.fields[c];
    if (v !== null && v !== undefined && Number.isFinite(v)) sender.floatColumn(c, v);
  }
}

/** Appends one alert transition (the caller ends it with `at(a.at)`); value and threshold are finite (AlertMachine observes finite values only, rules have finite thresholds). */
export function writeAlertRow(sender: RowSender, a: AlertEvent): void {
  sender
    .table(ALERTS_TABLE)
    .symbol('pipeline', a.pipeline)
    .symbol('window', a.window)
    .symbol('rule', a.rule)
    .symbol('key', a.key)
    .symbol('state', a.state)
    .symbol('severity', a.severity)
    .symbol('field', a.field)
    .floatColumn('value', a.value)
    .floatColumn('threshold', a.threshold)
    .timestampColumn('since', a.since, 'ms');
}

export const pipelineTable = (pipeline: string) => `weir_p_${pipeline}`;
export const ALERTS_TABLE = 'weir_alerts';

export function pipelineTableDdl(pipeline: string, columns: readonly string[]): string {
  const table = pipelineTable(pipeline);
  if (!IDENT.test(table)) throw new Error(`bad pipeline table name ${table}`);
  for (const c of columns) if (!IDENT.test(c)) throw new Error(`bad column name ${c} in pipeline ${pipeline}`);
  const cols = columns.map((c) => `${c} DOUBLE`).join(', ');
  return (
    `CREATE TABLE IF NOT EXISTS ${table} (ts TIMESTAMP, key SYMBOL CAPACITY 65536 CACHE, window SYMBOL CAPACITY 64 CACHE, ` +
    `window_end TIMESTAMP, final BOOLEAN, revision LONG, emitted_at TIMESTAMP, superseded BOOLEAN${cols ? ', ' + cols : ''}) ` +
    `TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, key, window)`
  );
}

export const ALERTS_DDL =
  `CREATE TABLE IF NOT EXISTS ${ALERTS_TABLE} (ts TIMESTAMP, pipeline SYMBOL, window SYMBOL, rule SYMBOL, key SYMBOL CAPACITY 65536 CACHE, ` +
  `state SYMBOL, severity SYMBOL, field SYMBOL, value DOUBLE, threshold DOUBLE, since TIMESTAMP) ` +
  `TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, pipeline, window, rule, key, state)`;

/** Brings a weir_alerts table made before alerts carried their window up to date (no-ops on a new one). */
export const ALERTS_MIGRATION = [
  `ALTER TABLE ${ALERTS_TABLE} ADD COLUMN IF NOT EXISTS window SYMBOL`,
  `ALTER TABLE ${ALERTS_TABLE} DEDUP ENABLE UPSERT KEYS(ts, pipeline, window, rule, key, state)`,
];

/**
 * Buffers the rows of one pipeline and its alert transitions, and writes them in one ILP/HTTP
 * request per flush. Rows stay buffered until QuestDB acknowledges them; the newest result of a
 * (start, key, window) replaces an older buffered one.
 */
export class PipelineWriter {
  private rows = new Map<string, ResultRow>();
  private alerts: AlertEvent[] = [];
  /** Rows and alerts of the flush in flight: not acknowledged yet, so still pending (back-pressure counts them). */
  private inFlight = 0;
  private constructor(
    private readonly sender: Sender,
    private readonly table: string,
    private readonly columns: readonly string[],
  ) {}

  static async open(httpBase: string, pipeline: string, columns: readonly string[]): Promise<PipelineWriter> {
    await questdbExec(httpBase, pipelineTableDdl(pipeline, columns));
    await questdbExec(httpBase, ALERTS_DDL);
    for (const sql of ALERTS_MIGRATION) await questdbExec(httpBase, sql);
    return new PipelineWriter(await Sender.fromConfig(ilpConfig(httpBase)), pipelineTable(pipeline), columns);
  }

  add(row: ResultRow): void {
    this.rows.set(`${row.start}\u0000${row.key}\u0000${row.window}`, row);
  }

  addAlert(a: AlertEvent): void {
    this.alerts.push(a);
  }

  /** Rows and alert transitions QuestDB has not acknowledged: buffered, and in the flush in flight. */
  get pending(): number {
    return this.rows.size + this.alerts.length + this.inFlight;
  }

  async flush(): Promise<number> {
    if (this.rows.size === 0 && this.alerts.length === 0) return 0;
    const rows = this.rows;
    const alerts = this.alerts;
    this.rows = new Map();
    this.alerts = [];
    this.inFlight = rows.size + alerts.length;
    try {
      for (const r of rows.values()) {
        writeResultRow(this.sender, this.table, this.columns, r);
        await this.sender.at(r.start, 'ms');
      }
      for (const a of alerts) {
        writeAlertRow(this.sender, a);
        await this.sender.at(a.at, 'ms');
      }
      await this.sender.flush();
      return rows.size + alerts.length;
    } catch (err) {
      this.sender.reset();
      for (const [id, row] of this.rows) rows.set(id, row);
      this.rows = rows;
      this.alerts = [...alerts, ...this.alerts];
      throw err;
    } finally {
      this.inFlight = 0;
    }
  }

  async close(): Promise<void> {
    await this.sender.close();
  }
}
