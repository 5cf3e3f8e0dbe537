import { Sender } from '@questdb/nodejs-client';
import type { SummaryResult } from '../../operators/aggregates/summary.js';

/** One window row of the default pipeline (table weir_agg_<window>). */
export interface WindowRow extends SummaryResult {
  table: string;
  /** Window start, ms since epoch (the designated timestamp). */
  ts: number;
  metric: string;
  key: string;
}

const DOUBLE_COLS = ['sum', 'min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p95', 'p99', 'p999'] as const;

/** What the row writers need of a Sender: the Sender itself, or a SenderBuffer (tests read what it holds). */
export interface RowSender {
  table(name: string): RowSender;
  symbol(name: string, value: unknown): RowSender;
  stringColumn(name: string, value: string): RowSender;
  booleanColumn(name: string, value: boolean): RowSender;
  floatColumn(name: string, value: number): RowSender;
  intColumn(name: string, value: number): RowSender;
  timestampColumn(name: string, value: number | bigint, unit?: 'ns' | 'us' | 'ms'): RowSender;
}

/**
 * Appends one window row (without its timestamp: the caller ends it with `at`). A figure that is
 * null is left out, which QuestDB stores as null: passing null to floatColumn would throw, fail
 * the flush and keep every other row of it waiting for retries that fail the same way. A
 * non-finite figure is left out too (summaryFigures never gives one; this guards the table):
 * live JSON would carry it as null, and QuestDB shows ±Infinity as null yet lets it poison sum()
 * and avg() over the column (questdb/questdb#5926).
 */
export function writeWindowRow(sender: RowSender, r: WindowRow): void {
  sender.table(r.table).symbol('metric', r.metric).symbol('key', r.key).intColumn('count', r.count);
  for (const c of DOUBLE_COLS) {
    const v = r[c];
    if (v !== null && Number.isFinite(v)) sender.floatColumn(c, v);
  }
  sender.stringColumn('sketch', r.sketch);
}

/** DDL of a default-pipeline table: WAL, deduplicated on the window's identity (invariant 2). */
export function windowTableDdl(table: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`bad table name ${table}`);
  return (
    `CREATE TABLE IF NOT EXISTS ${table} (ts TIMESTAMP, metric SYMBOL CAPACITY 1024 CACHE, key SYMBOL CAPACITY 65536 CACHE, ` +
    `count LONG, ${DOUBLE_COLS.map((c) => `${c} DOUBLE`).join(', ')}, sketch VARCHAR) ` +
    `TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, metric, key)`
  );
}

/** Runs one SQL statement through QuestDB's HTTP /exec endpoint; throws with QuestDB's message. */
export async function questdbExec(httpBase: string, sql: string): Promise<unknown> {
  const url = `${httpBase.replace(/\/$/, '')}/exec?query=${encodeURIComponent(sql)}`;
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok || body.error) throw new Error(`QuestDB rejected "${sql.slice(0, 80)}…": ${body.error ?? res.status}`);
  return body;
}

export async function ensureWindowTables(httpBase: string, tables: readonly string[]): Promise<void> {
  for (const t of tables) await questdbExec(httpBase, windowTableDdl(t));
}

/** ILP-over-HTTP config string for @questdb/nodejs-client from an http:// base URL. */
export function ilpConfig(httpBase: string): string {
  const u = new URL(httpBase);
  // auto_flush off: Weir flushes on its own timer and decides what a flush covers.
  return `http::addr=${u.hostname}:${u.port || 9000};auto_flush=off;retry_timeout=2000;request_timeout=30000`;
}

/**
 * One ILP request (one QuestDB transaction) carries at most about this many bytes or rows. The
 * client refuses to grow its buffer past max_buf_size (100 MiB): a flush of every row at once
 * failed, and was retried whole, forever, once a burst of distinct keys fired a few hundred
 * thousand windows together (docs/faults.md, "Bad input").
 */
export const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
export const MAX_REQUEST_ROWS = 20_000;

/** A generous estimate of a row's ILP size (UTF-8 of the strings, the numbers, the names). */
function rowBytes(r: WindowRow): number {
  return 256 + r.table.length + 3 * (r.metric.length + r.key.length) + r.sketch.length;
}

/** What the writer needs of a Sender. */
export type FlushSender = RowSender & Pick<Sender, 'at' | 'flush' | 'reset' | 'close'>;

/**
 * Buffers window rows and writes them to QuestDB on flush, in ILP/HTTP requests of at most
 * MAX_REQUEST_BYTES / MAX_REQUEST_ROWS. Rows stay in Weir's own list until QuestDB acknowledges
 * them, so what a failed flush did not get through is retried; rows are idempotent upserts, so a
 * retry can never duplicate.
 */
export class WindowRowWriter {
  /** Keyed by the window's identity, so a correction replaces the row it corrects before it is sent. */
  private rows = new Map<string, WindowRow>();
  /** Rows of the flush in progress: still unacknowledged by QuestDB, so still counted as pending. */
  private inFlight = 0;
  private constructor(private readonly sender: FlushSender) {}

  static async open(httpBase: string): Promise<WindowRowWriter> {
    return new WindowRowWriter(await Sender.fromConfig(ilpConfig(httpBase)));
  }

  /** A writer over any sender (tests). */
  static over(sender: FlushSender): WindowRowWriter {
    return new WindowRowWriter(sender);
  }

  add(row: WindowRow): void {
    this.rows.set(`${row.table}\u0000${row.ts}\u0000${row.metric}\u0000${row.key}`, row);
  }

  /** Rows QuestDB has not acknowledged: those waiting for a flush and those of the flush in progress (the back-pressure bound counts them). */
  get pending(): number {
    return this.rows.size + this.inFlight;
  }

  /**
   * Writes every row added so far, a request at a time; resolves once QuestDB has acknowledged
   * all of them. On failure the rows of the requests not acknowledged are kept for the next
   * attempt, and the error is rethrown.
   */
  async flush(): Promise<number> {
    if (this.rows.size === 0) return 0;
    const batch = this.rows;
    this.rows = new Map();
    this.inFlight = batch.size;
    let request: string[] = [];
    let bytes = 0;
    let written = 0;
    try {
      for (const [id, r] of batch) {
        writeWindowRow(this.sender, r);
        await this.sender.at(r.ts, 'ms');
        request.push(id);
        bytes += rowBytes(r);
        if (bytes >= MAX_REQUEST_BYTES || request.length >= MAX_REQUEST_ROWS) {
          await this.sender.flush();
          // Acknowledged: these rows are done (deleting entries already visited is safe mid-iteration).
          for (const x of request) batch.delete(x);
          written += request.length;
          this.inFlight = batch.size;
          request = [];
          bytes = 0;
        }
      }
      await this.sender.flush();
      this.inFlight = 0;
      return written + request.length;
    } catch (err) {
      this.inFlight = 0;
      this.sender.reset();
      // Rows added while the flush ran are newer than the failed ones: keep them.
      for (const [id, row] of this.rows) batch.set(id, row);
      this.rows = batch;
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.sender.close();
  }
}
