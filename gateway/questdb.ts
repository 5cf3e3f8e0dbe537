import pg from 'pg';

// QuestDB TIMESTAMP has no zone and means UTC; node-postgres would read it in the local zone.
pg.types.setTypeParser(1114, (s: string) => Date.parse(s.replace(' ', 'T') + 'Z'));
pg.types.setTypeParser(20, (s: string) => Number(s));

/** A PG-wire pool to QuestDB. Queries take bound parameters only; identifiers come from config. */
export function questdbPool(connectionString: string): pg.Pool {
  const pool = new pg.Pool({ connectionString, max: 8, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 5_000 });
  // An idle client whose connection drops (QuestDB restarted) is emitted as an 'error' on the
  // pool; unhandled, it would kill the process. The pool discards that client, the next query
  // connects anew, and /readyz reports QuestDB meanwhile.
  pool.on('error', () => undefined);
  return pool;
}

/** Parses a time given as ms since epoch or ISO-8601; returns an Error naming the parameter. */
export function parseTime(v: string | number | undefined, name: string): number | Error | undefined {
  if (v === undefined || v === '') return undefined;
  if (typeof v === 'number' || /^-?\d+$/.test(v)) {
    const n = Number(v);
    // Beyond ±8.64e15 ms a time is no Date: node-postgres would send QuestDB "NaN-NaN-NaN".
    if (!Number.isSafeInteger(n) || Math.abs(n) > MAX_TIME_MS) return new Error(`${name} must be ms since the epoch within ±${MAX_TIME_MS} (years -271821 to 275760) or ISO-8601, got "${String(v).slice(0, 40)}"`);
    return n;
  }
  if (!/^\d{4}-\d{2}-\d{2}/.test(v)) return new Error(`${name} must be ms since the epoch or ISO-8601, got ${JSON.stringify(v.slice(0, 40))}`);
  const t = Date.parse(v);
  // Date.parse takes 2026-02-30 for 2026-03-02: a day that does not exist is refused.
  const [y, m, d] = [Number(v.slice(0, 4)), Number(v.slice(5, 7)), Number(v.slice(8, 10))];
  const dayOk = m >= 1 && m <= 12 && d >= 1 && d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
  return Number.isFinite(t) && dayOk ? t : new Error(`${name} is not a valid ISO-8601 time: ${JSON.stringify(v.slice(0, 40))}`);
}

/** The Date range (ECMAScript: ±10^8 days around the epoch). */
export const MAX_TIME_MS = 8.64e15;
