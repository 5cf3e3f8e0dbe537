/**
 * A seeded workload for the default pipeline and the brute-force oracle its rows are checked
 * against (the end-to-end test, the fault-injection suite and `npm run soak`). Plain code, no
 * vitest: the soak script imports it too.
 */
import type pg from 'pg';
import { rng } from '../benchmarks/producer.js';

export interface Ev {
  metric: string;
  key: string;
  ts: number;
  value: number;
}

export interface Msg {
  subject: string;
  body: string;
}

export const WINDOWS = [
  { name: '10s', size: 10_000, table: 'weir_agg_10s' },
  { name: '1m', size: 60_000, table: 'weir_agg_1m' },
] as const;
export const QS = [0.5, 0.9, 0.95, 0.99, 0.999] as const;
export const QCOLS = ['p50', 'p90', 'p95', 'p99', 'p999'] as const;

export interface WorkloadOptions {
  seed: number;
  /** Event time of the first event (ms). */
  base: number;
  /** Metric names; values follow the shape of the name's suffix: `_latency` long tail, `_temp` negatives and fractions, else small counts with zeros. */
  metrics: string[];
  keys: string[];
  /** Keys that get 30 % of the events. */
  hot: string[];
  /** Good events. */
  events: number;
  /** Event-time span of the good events (ms). */
  spanMs: number;
  /** Good events per message: 1 to this many (default 60). */
  maxPerMessage?: number;
  /**
   * Events far too late for every window (5 minutes before `base`), placed only after this many
   * messages so that the watermark has certainly moved past their windows whatever the batching,
   * each message having this probability of carrying one. They are not among `good`.
   */
  tooLate?: { afterMessages: number; probability: number };
}

export interface Workload {
  messages: Msg[];
  /** Every event that must be reflected in the rows. */
  good: Ev[];
  /** Bad events or messages (each goes to the dead-letter stream). */
  bad: number;
  /** Events past the allowed lateness (each goes to weir.late.<metric>). */
  tooLate: number;
}

/**
 * Messages holding `events` good events in stream order, out of order in event time (most
 * within the 2 s watermark lag, one in ten up to 20 s behind: late corrections of fired windows,
 * inside the 30 s lateness, so whatever the batching no good event is judged late), with bad
 * events and undecodable messages interleaved. The same seed gives the same messages.
 */
export function workload(o: WorkloadOptions): Workload {
  const rand = rng(o.seed);
  const messages: Msg[] = [];
  const good: Ev[] = [];
  let bad = 0;
  let tooLate = 0;
  let i = 0;
  const valueOf = (metric: string): number => {
    if (metric.endsWith('_latency')) return Math.floor(1 + rand() * rand() * rand() * 50_000); // long tail, integers
    if (metric.endsWith('_temp')) return Math.round((rand() * 200 - 100) * 4) / 4; // negatives, dyadic fractions
    return rand() < 0.3 ? 0 : Math.floor(rand() * 20); // zeros
  };
  while (i < o.events) {
    const metric = o.metrics[Math.floor(rand() * o.metrics.length)];
    const k = Math.min(o.events - i, 1 + Math.floor(rand() * (o.maxPerMessage ?? 60)));
    const items: string[] = [];
    for (let j = 0; j < k; j++, i++) {
      const key = rand() < 0.3 ? o.hot[Math.floor(rand() * o.hot.length)] : o.keys[Math.floor(rand() * o.keys.length)];
      let ts = o.base + Math.floor((i * o.spanMs) / o.events);
      ts += rand() < 0.9 ? Math.floor(rand() * 3000 - 1500) : -Math.floor(rand() * 20_000);
      const value = valueOf(metric);
      good.push({ metric, key, ts, value });
      const tsField = rand() < 0.2 ? `"${new Date(ts).toISOString()}"` : String(ts);
      items.push(`{"key":${JSON.stringify(key)},"value":${value},"ts":${tsField}}`);
      if (rand() < 0.02) {
        bad++;
        const badOnes = [
          `{"key":"${key}","value":"12","ts":${ts}}`,
          `{"value":1,"ts":${ts}}`,
          `{"key":"bell\\u0007","value":1,"ts":${ts}}`,
          `{"key":"${key}","value":1,"ts":"9999-01-01T00:00:00Z"}`,
          `{"key":"${key}","value":null}`,
          `{"key":"${key}","value":1,"metric":"other"}`,
        ];
        items.push(badOnes[Math.floor(rand() * badOnes.length)]);
      }
    }
    if (o.tooLate && messages.length >= o.tooLate.afterMessages && rand() < o.tooLate.probability) {
      tooLate++;
      items.push(`{"key":"late","value":1,"ts":${o.base - 300_000}}`);
    }
    const single = items.length === 1 && rand() < 0.5;
    messages.push({ subject: `weir.events.${metric}`, body: single ? items[0] : `[${items.join(',')}]` });
    if (rand() < 0.005) {
      bad++;
      messages.push({ subject: `weir.events.${metric}`, body: rand() < 0.5 ? '{"key": "x", "value": ' : '"just a string"' });
    }
  }
  return { messages, good, bad, tooLate };
}

export interface Cell {
  table: string;
  metric: string;
  key: string;
  start: number;
  values: number[];
}

/** Brute force: (table|metric|key|start) -> all values of that window. */
export function oracle(events: Ev[]): Map<string, Cell> {
  const out = new Map<string, Cell>();
  for (const e of events)
    for (const w of WINDOWS) {
      const start = e.ts - (((e.ts % w.size) + w.size) % w.size);
      const id = `${w.table}|${e.metric}|${e.key}|${start}`;
      let cell = out.get(id);
      if (!cell) out.set(id, (cell = { table: w.table, metric: e.metric, key: e.key, start, values: [] }));
      cell.values.push(e.value);
    }
  return out;
}

export function exactQuantile(sorted: number[], q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))];
}

export function relClose(actual: number, expected: number, rel: number): boolean {
  if (expected === 0) return Math.abs(actual) <= 1e-12;
  return Math.abs(actual - expected) <= rel * Math.abs(expected);
}

/** Events per table in the oracle: what sum(count) of each table must reach. */
export function eventsPerTable(expected: Map<string, Cell>): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of expected.values()) out.set(c.table, (out.get(c.table) ?? 0) + c.values.length);
  return out;
}

/**
 * What is wrong with one row against its cell, or null: count, sum, min, max exact; mean and
 * stddev within 1e-9 relative; percentiles within 1 % of the exact ones when the window holds
 * at least 100 values (the sketch's bound is 0.5 %).
 */
export function rowProblem(row: Record<string, unknown>, cell: Cell): string | null {
  const v = cell.values;
  const sorted = [...v].sort((a, b) => a - b);
  const n = v.length;
  const sum = v.reduce((a, b) => a + b, 0);
  const mean = sum / n;
  const num = (c: string) => row[c] as number;
  if (num('count') !== n) return `count ${row.count}, expected ${n}`;
  // + 0: the oracle may hold -0, the row 0.
  if (num('sum') !== sum + 0) return `sum ${row.sum}, expected ${sum}`;
  if (num('min') !== sorted[0] + 0) return `min ${row.min}, expected ${sorted[0]}`;
  if (num('max') !== sorted[n - 1] + 0) return `max ${row.max}, expected ${sorted[n - 1]}`;
  if (Math.abs(num('mean') - mean) / Math.max(Math.abs(mean), 1e-300) > 1e-9) return `mean ${row.mean}, expected ${mean}`;
  if (n < 2) {
    if (row.stddev !== null) return `stddev ${row.stddev}, expected null (count 1)`;
  } else {
    const sd = Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
    const ok = sd === 0 ? Math.abs(num('stddev')) <= 1e-9 * Math.max(1, Math.abs(mean)) : Math.abs(num('stddev') - sd) / sd <= 1e-9;
    if (!ok) return `stddev ${row.stddev}, expected ${sd}`;
  }
  if (typeof row.sketch !== 'string') return 'no sketch';
  if (n >= 100)
    for (let i = 0; i < QS.length; i++) {
      const exact = exactQuantile(sorted, QS[i]);
      if (!relClose(num(QCOLS[i]), exact, 0.01)) return `${QCOLS[i]} ${row[QCOLS[i]]}, exact ${exact}`;
    }
  return null;
}

export interface RowDiff {
  /** Rows the oracle expects. */
  expected: number;
  /** Rows read from QuestDB. */
  found: number;
  /** Expected rows missing from QuestDB. */
  lost: string[];
  /** Window identities (ts, metric, key) present more than once. */
  duplicated: string[];
  /** Rows the oracle does not know. */
  extra: string[];
  /** Rows whose figures differ from the oracle's. */
  wrong: string[];
  /** Rows whose percentiles were checked (count >= 100). */
  percentilesChecked: number;
}

/** Reads every row of the oracle's metrics from both tables (PG wire) and compares them with the oracle, row by row. */
export async function diffRows(pool: pg.Pool, expected: Map<string, Cell>, metrics: string[]): Promise<RowDiff> {
  const d: RowDiff = { expected: expected.size, found: 0, lost: [], duplicated: [], extra: [], wrong: [], percentilesChecked: 0 };
  const inList = metrics.map((m) => `'${m.replace(/'/g, "''")}'`).join(',');
  const seen = new Set<string>();
  for (const w of WINDOWS) {
    const res = await pool.query(`SELECT * FROM ${w.table} WHERE metric IN (${inList})`);
    d.found += res.rows.length;
    for (const row of res.rows) {
      const id = `${w.table}|${row.metric}|${row.key}|${row.ts}`;
      const label = `${w.table} ${row.metric} ${row.key} ${new Date(row.ts).toISOString()}`;
      if (seen.has(id)) {
        d.duplicated.push(label);
        continue;
      }
      seen.add(id);
      const cell = expected.get(id);
      if (!cell) {
        d.extra.push(label);
        continue;
      }
      const problem = rowProblem(row, cell);
      if (problem) d.wrong.push(`${label}: ${problem}`);
      else if (cell.values.length >= 100) d.percentilesChecked++;
    }
  }
  for (const [id, c] of expected) if (!seen.has(id)) d.lost.push(`${c.table} ${c.metric} ${c.key} ${new Date(c.start).toISOString()} (${c.values.length} events)`);
  return d;
}

/** Sum of `count` per table over the given metrics, as QuestDB has applied it so far. */
export async function countsPerTable(pool: pg.Pool, metrics: string[]): Promise<Map<string, { events: number; rows: number }>> {
  const inList = metrics.map((m) => `'${m.replace(/'/g, "''")}'`).join(',');
  const out = new Map<string, { events: number; rows: number }>();
  for (const w of WINDOWS) {
    const r = await pool.query(`SELECT sum(count) AS n, count() AS r FROM ${w.table} WHERE metric IN (${inList})`);
    out.set(w.table, { events: Number(r.rows[0].n ?? 0), rows: Number(r.rows[0].r ?? 0) });
  }
  return out;
}
