/**
 * Reading a running engine for the shipped-pipelines test: rows of weir_p_<pipeline> and
 * weir_alerts over PG wire, the runner's status (weir.api.<pipeline>.status), live subjects
 * collected from NATS, and the gateway's JSON.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type pg from 'pg';
import { publishEvents, type LoadEvent } from '../../scripts/load/index.js';
import { sleep } from '../harness.js';

export type DbRow = Record<string, unknown> & { key: string; window: string; ts: number; window_end: number; final: boolean; revision: number; superseded: boolean | null };

/** Every row of weir_p_<pipeline> (timestamps as ms); [] while the table does not exist. */
export async function tableRows(pool: pg.Pool, pipeline: string): Promise<DbRow[]> {
  try {
    return (await pool.query<DbRow>(`SELECT * FROM weir_p_${pipeline}`)).rows.map((r) => ({ ...r, ts: Number(r.ts), window_end: Number(r.window_end) }));
  } catch (err) {
    if (/does not exist/i.test((err as Error).message)) return [];
    throw err;
  }
}

export interface DbAlert {
  ts: number;
  pipeline: string;
  rule: string;
  key: string;
  state: string;
  severity: string;
  field: string;
  value: number;
  threshold: number;
  since: number;
}

export async function alertRows(pool: pg.Pool, pipeline: string): Promise<DbAlert[]> {
  try {
    return (await pool.query<DbAlert>(`SELECT * FROM weir_alerts WHERE pipeline = $1`, [pipeline])).rows.map((r) => ({ ...r, ts: Number(r.ts), since: Number(r.since) }));
  } catch (err) {
    if (/does not exist/i.test((err as Error).message)) return [];
    throw err;
  }
}

/** True once QuestDB applied every WAL transaction of the table (what is read is what was written). */
export async function walApplied(pool: pg.Pool, table: string): Promise<boolean> {
  const t = (await pool.query<{ writerTxn: number; sequencerTxn: number }>(`SELECT writerTxn, sequencerTxn FROM wal_tables() WHERE name = $1`, [table])).rows[0];
  return t !== undefined && Number(t.writerTxn) === Number(t.sequencerTxn);
}

export interface RunnerStatus {
  pipeline: string;
  watermark: number;
  events: number;
  caughtUp: boolean;
  late: number;
  results: number;
  alerts: number;
  rowsWritten: number;
  skipped: Record<string, number>;
  recalculations?: number;
  debounced?: number;
}

/** The runner's status (weir.api.<pipeline>.status); asks again for up to 15 s while it does not answer (a loaded machine). */
export async function status(nc: NatsConnection, pipeline: string): Promise<RunnerStatus> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return (await nc.request(`weir.api.${pipeline}.status`, '{}', { timeout: 3000 })).json<RunnerStatus>();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${pipeline} status: ${(err as Error).message}`);
      await sleep(200);
    }
  }
}

/** Polls the runner's status until `ok` holds; throws naming `what` with the last status. */
export async function untilStatus(nc: NatsConnection, pipeline: string, what: string, ok: (s: RunnerStatus) => boolean, timeoutMs = 30_000, everyMs = 25): Promise<RunnerStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: RunnerStatus | undefined;
  for (;;) {
    try {
      last = await status(nc, pipeline);
      if (ok(last)) return last;
    } catch {
      /* not serving yet */
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pipeline}: ${what}; last status ${JSON.stringify(last)}`);
    await sleep(everyMs);
  }
}

/**
 * Publishes a pipeline's events so that the runner publishes live results for all of them: the
 * first event alone, then, once the runner says it caught up with the stream (it publishes live
 * results only from then on), the rest at once, before its idle watermark could move on.
 */
export async function publishCaughtUp(nc: NatsConnection, pipeline: string, events: readonly LoadEvent[]): Promise<void> {
  const before = (await status(nc, pipeline)).events;
  await publishEvents(nc, events.slice(0, 1));
  await untilStatus(nc, pipeline, 'caught up with its first event', (s) => s.caughtUp && s.events > before);
  await publishEvents(nc, events.slice(1));
}

/** Collects the JSON messages of a subject (wildcards allowed) with their subject. */
export class Collector<T = Record<string, unknown>> {
  readonly messages: { subject: string; data: T; at: number }[] = [];
  private readonly sub: Subscription;
  constructor(nc: NatsConnection, subject: string) {
    this.sub = nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        this.messages.push({ subject: msg.subject, data: msg.json<T>(), at: Date.now() });
      },
    });
  }
  /** Time of the newest message (0 before any). */
  get lastAt(): number {
    return this.messages.length ? this.messages[this.messages.length - 1].at : 0;
  }
  stop(): void {
    this.sub.unsubscribe();
  }
}

export async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url);
  const body = await r.text();
  if (r.status !== 200) throw new Error(`GET ${url}: ${r.status} ${body}`);
  return JSON.parse(body) as T;
}

/**
 * Polls `diff` (the list of mismatches, empty when everything matches) until it is empty; on time
 * out returns the last list, so the test can show it.
 */
export async function untilNoDiff(diff: () => Promise<string[]>, timeoutMs: number, everyMs = 500): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let last: string[] = [];
  for (;;) {
    try {
      last = await diff();
    } catch (err) {
      last = [`(check failed: ${(err as Error).message})`];
    }
    if (last.length === 0 || Date.now() > deadline) return last;
    await sleep(everyMs);
  }
}

/** At most `n` lines of a diff, with a count of the rest. */
export const firstLines = (lines: string[], n = 25): string => (lines.length <= n ? lines.join('\n') : `${lines.slice(0, n).join('\n')}\n... and ${lines.length - n} more`);
