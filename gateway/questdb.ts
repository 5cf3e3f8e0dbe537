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
    return Number.isSafeInteger(n) ? n : new Error(`${name} must be ms since the epoch or ISO-8601, got "${v}"`);
  }
  if (!/^\d{4}-\d{2}-\d{2}/.test(v)) return new Error(`${name} must be ms since the epoch or ISO-8601, got "${v}"`);
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : new Error(`${name} is not a valid ISO-8601 time: "${v}"`);
}
