/**
 * WeirService.series for a declared pipeline (?pipeline=<name>, table weir_p_<name>), against a
 * fake PG pool that records every query and a fake NATS connection for the engine's answers.
 * Every parameter is checked before any SQL runs; the pipeline name reaches SQL as an identifier
 * only after NAME_RE and after tables() (a bound parameter) has listed its table.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { parseConfig, type WeirConfigInput } from '../engine/config.js';
import { ApiError, BadRequest } from './errors.js';
import { WeirService, type PipelineSeriesAnswer, type ServiceDeps } from './service.js';

// ---- fakes -----------------------------------------------------------------------------------

interface Call {
  sql: string;
  params: unknown[];
}

const COLUMNS = [
  { column: 'ts', type: 'TIMESTAMP' },
  { column: 'key', type: 'SYMBOL' },
  { column: 'window', type: 'SYMBOL' },
  { column: 'window_end', type: 'TIMESTAMP' },
  { column: 'final', type: 'BOOLEAN' },
  { column: 'revision', type: 'LONG' },
  { column: 'emitted_at', type: 'TIMESTAMP' },
  { column: 'superseded', type: 'BOOLEAN' },
  { column: 'sessions', type: 'DOUBLE' },
  { column: 'rating', type: 'DOUBLE' },
];

interface FakeDb {
  tables?: string[];
  columns?: { column: string; type: string }[];
  windows?: string[];
  rows?: Record<string, unknown>[];
  fail?: boolean;
}

function fakePool(db: FakeDb) {
  const calls: Call[] = [];
  const pool = {
    query: async (sql: string, params: unknown[] = []) => {
      calls.push({ sql, params });
      if (db.fail) throw new Error('connection refused');
      if (sql.includes('FROM tables()')) return { rows: (db.tables ?? ['weir_p_tutors']).filter((t) => t === params[0]).map((t) => ({ table_name: t })) };
      if (sql.includes('table_columns(')) return { rows: db.columns ?? COLUMNS };
      if (sql.startsWith('SELECT DISTINCT window')) return { rows: (db.windows ?? ['7d', '30d', '90d']).map((window) => ({ window })) };
      return { rows: (db.rows ?? []).map((r) => ({ ...r })) };
    },
  };
  return { pool, calls };
}

/** The engine's request-reply: `answer` gives the reply body, or throws as nc.request would. */
function fakeNc(answer: (subject: string, body: Record<string, unknown>) => unknown = () => {
  throw new Error('503 no responders');
}) {
  const requests: { subject: string; body: Record<string, unknown> }[] = [];
  const nc = {
    request: async (subject: string, body: string) => {
      const b = JSON.parse(body) as Record<string, unknown>;
      requests.push({ subject, body: b });
      const out = answer(subject, b);
      return { json: () => out };
    },
  };
  return { nc, requests };
}

const silentLog = { warn() {}, info() {}, error() {}, debug() {} };

function serviceOf(db: FakeDb = {}, engine?: Parameters<typeof fakeNc>[0], input: WeirConfigInput = {}) {
  const { pool, calls } = fakePool(db);
  const { nc, requests } = fakeNc(engine);
  const deps = { config: parseConfig(input), pool, nc, js: {}, log: silentLog } as unknown as ServiceDeps;
  return { service: new WeirService(deps), calls, requests };
}

async function errorOf(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

function expectBadRequest(err: unknown, param: string, what: string) {
  expect(err, `${what}: expected a BadRequest`).toBeInstanceOf(BadRequest);
  const e = err as BadRequest;
  expect({ status: e.statusCode, code: e.code, param: e.param }, `${what}: ${e.message}`).toEqual({ status: 400, code: 'bad_request', param });
}

const FROM = Date.parse('2026-11-01T00:00:00Z');
const TO = Date.parse('2026-11-08T00:00:00Z');
const DAY = 86_400_000;
const q = (extra: Record<string, unknown> = {}) => ({ pipeline: 'tutors', key: 't1', from: String(FROM), to: String(TO), ...extra });
const series = (service: WeirService, query: Record<string, unknown>) => service.series(query) as Promise<PipelineSeriesAnswer>;

afterEach(() => {
  vi.useRealTimers();
});

// ---- parameters --------------------------------------------------------------------------------

describe('WeirService.series(pipeline=...): parameters', () => {
  it('a pipeline name outside NAME_RE (or too long, or not a string) is refused naming pipeline, before any SQL', async () => {
    const { service, calls, requests } = serviceOf();
    const fixed: unknown[] = ['a b', 'x";DROP TABLE weir_agg_10s;--', "tutors'", 'a.b', '../x', 'é', 'tutors\u0000', 'x'.repeat(65), ['tutors'], 7, { a: 1 }];
    for (const name of fixed) expectBadRequest(await errorOf(() => service.series(q({ pipeline: name }))), 'pipeline', JSON.stringify(name));
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 80, unit: 'binary' }).filter((s) => !/^[A-Za-z0-9_-]{1,64}$/.test(s)),
        async (name) => expectBadRequest(await errorOf(() => service.series(q({ pipeline: name }))), 'pipeline', JSON.stringify(name)),
      ),
      { numRuns: 300 },
    );
    expect(calls).toEqual([]);
    expect(requests).toEqual([]);
  });

  it('an unknown pipeline is a 404 naming pipeline; only the bound tables() lookup ran', async () => {
    for (const name of ['nope', 'Tutors', 'TUTORS', 'tutors-x']) {
      const { service, calls } = serviceOf({ tables: ['weir_p_tutors'] });
      const err = (await errorOf(() => service.series(q({ pipeline: name })))) as ApiError;
      expect(err, name).toBeInstanceOf(ApiError);
      expect({ status: err.statusCode, code: err.code, param: err.param }).toEqual({ status: 404, code: 'not_found', param: 'pipeline' });
      expect(err.message).toContain(`"${name}"`);
      expect(err.message).toContain(`weir_p_${name}`);
      expect(calls).toEqual([{ sql: 'SELECT table_name FROM tables() WHERE table_name = $1', params: [`weir_p_${name}`] }]);
    }
  });

  it('key, metric, window, range and limit are checked before any SQL, each naming its parameter', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ key: undefined }, 'key'],
      [{ key: '' }, 'key'],
      [{ key: 'k'.repeat(257) }, 'key'],
      [{ metric: 'latency' }, 'metric'],
      [{ metric: 'bad metric' }, 'metric'],
      [{ window: '7 d' }, 'window'],
      [{ window: "7d'" }, 'window'],
      [{ window: '7D' }, 'window'],
      [{ window: 'w'.repeat(17) }, 'window'],
      [{ from: String(TO), to: String(FROM) }, 'from'],
      [{ from: String(FROM), to: String(FROM) }, 'from'],
      [{ from: String(FROM - 40 * DAY) }, 'from'],
      [{ from: 'yesterday' }, 'from'],
      [{ to: '2026-13-45T00:00:00Z' }, 'to'],
      [{ limit: -1 }, 'limit'],
      [{ limit: '1.5' }, 'limit'],
      [{ limit: 50_001 }, 'limit'],
    ];
    for (const [extra, param] of cases) {
      const { service, calls, requests } = serviceOf();
      expectBadRequest(await errorOf(() => service.series(q(extra))), param, JSON.stringify(extra));
      expect(calls, JSON.stringify(extra)).toEqual([]);
      expect(requests).toEqual([]);
    }
    // metric may be left out, or be the pipeline's own name
    for (const metric of [undefined, '', 'tutors']) {
      const { service } = serviceOf();
      expect((await series(service, q({ metric }))).metric).toBe('tutors');
    }
  });

  it('the default pipeline named explicitly keeps the default series (metric required)', async () => {
    const { service, calls } = serviceOf();
    expectBadRequest(await errorOf(() => service.series({ pipeline: 'default', key: 't1' })), 'metric', 'default pipeline without metric');
    expect(calls).toEqual([]);
  });
});

// ---- windows -----------------------------------------------------------------------------------

describe('WeirService.series(pipeline=...): an unknown window', () => {
  it('the engine does not run it: 400 naming window, with the windows the engine lists', async () => {
    const { service, calls, requests } = serviceOf({ windows: ['30d', '7d'] }, () => ({ error: 'window must be one of 7d, 30d, 90d, got "5m"', param: 'window' }));
    const err = await errorOf(() => service.series(q({ window: '5m' })));
    expectBadRequest(err, 'window', 'unknown window');
    expect((err as Error).message).toContain('pipeline tutors');
    expect((err as Error).message).toContain('7d, 30d, 90d');
    expect(requests).toEqual([{ subject: 'weir.api.tutors.latest', body: { metric: 'tutors', key: 't1', window: '5m' } }]);
    // the windows were read again (a new window may have just got its first rows), no rows were read
    expect(calls.filter((c) => c.sql.startsWith('SELECT DISTINCT window')).length).toBe(2);
    expect(calls.some((c) => c.sql.startsWith('SELECT ts'))).toBe(false);
  });

  it('the engine is not answering: 400 naming window, listing the windows with rows', async () => {
    const { service, calls } = serviceOf({ windows: ['30d', '7d'] });
    const err = await errorOf(() => service.series(q({ window: '90d' })));
    expectBadRequest(err, 'window', 'unknown window, engine down');
    expect((err as Error).message).toContain('weir_p_tutors');
    expect((err as Error).message).toContain('30d, 7d');
    expect(calls.some((c) => c.sql.startsWith('SELECT ts'))).toBe(false);
    const empty = serviceOf({ windows: [] });
    expect(((await errorOf(() => empty.service.series(q({ window: '7d' })))) as Error).message).toContain('none yet');
  });

  it('the engine runs it but no row was written yet: an empty answer, not an error', async () => {
    const { service, calls } = serviceOf({ windows: ['7d'] }, () => ({ results: [] }));
    const a = await series(service, q({ window: '90d' }));
    expect(a).toMatchObject({ pipeline: 'tutors', window: '90d', points: [], truncated: false });
    expect(calls.at(-1)!.params).toEqual(['t1', new Date(FROM), new Date(TO), '90d']);
  });
});

// ---- the query and the answer ------------------------------------------------------------------

const ROWS = [
  { ts: FROM, window_end: FROM + 7 * DAY, window: '7d', final: true, revision: 2, emitted_at: FROM + 8 * DAY, sessions: 3, rating: 4.5 },
  { ts: FROM, window_end: FROM + 30 * DAY, window: '30d', final: false, revision: 0, emitted_at: FROM + 8 * DAY, sessions: 5, rating: null },
  { ts: FROM + DAY, window_end: FROM + 8 * DAY, window: '7d', final: false, revision: 1, emitted_at: FROM + 9 * DAY, sessions: NaN, rating: 4 },
];

describe('WeirService.series(pipeline=...): the query and the answer', () => {
  it('reads the table with bound values, skips tombstones, orders by ts then window; fields from the table', async () => {
    const key = `t1'; DROP TABLE weir_p_tutors; --"`;
    const { service, calls } = serviceOf({ rows: ROWS });
    const a = await series(service, q({ key, limit: '10' }));
    const sqls = calls.map((c) => c.sql);
    expect(sqls.slice(0, 3)).toEqual([
      'SELECT table_name FROM tables() WHERE table_name = $1',
      `SELECT "column", type FROM table_columns('weir_p_tutors')`,
      'SELECT DISTINCT window FROM "weir_p_tutors"',
    ]);
    const data = calls[3];
    expect(data.sql).toBe(
      'SELECT ts, window_end, window, final, revision, emitted_at, "sessions", "rating" FROM "weir_p_tutors" ' +
        'WHERE key = $1 AND ts >= $2 AND ts < $3 AND superseded = false ORDER BY ts, window LIMIT 11',
    );
    expect(data.params).toEqual([key, new Date(FROM), new Date(TO)]);
    for (const c of calls) expect(c.sql).not.toContain('DROP');
    expect(a).toEqual({
      pipeline: 'tutors',
      metric: 'tutors',
      key,
      window: null,
      from: FROM,
      to: TO,
      truncated: false,
      fields: ['sessions', 'rating'],
      points: [
        { ts: FROM, end: FROM + 7 * DAY, window: '7d', final: true, revision: 2, emittedAt: FROM + 8 * DAY, fields: { sessions: 3, rating: 4.5 } },
        { ts: FROM, end: FROM + 30 * DAY, window: '30d', final: false, revision: 0, emittedAt: FROM + 8 * DAY, fields: { sessions: 5, rating: null } },
        { ts: FROM + DAY, end: FROM + 8 * DAY, window: '7d', final: false, revision: 1, emittedAt: FROM + 9 * DAY, fields: { sessions: null, rating: 4 } },
      ],
    });
  });

  it('one window: bound as a parameter; limit cuts and says truncated', async () => {
    const { service, calls } = serviceOf({ rows: ROWS });
    const a = await series(service, q({ window: '7d', limit: 2 }));
    expect(calls.at(-1)!.sql).toContain('AND window = $4 AND superseded = false ORDER BY ts, window LIMIT 3');
    expect(calls.at(-1)!.params).toEqual(['t1', new Date(FROM), new Date(TO), '7d']);
    expect(a.window).toBe('7d');
    expect(a.truncated).toBe(true);
    expect(a.points.length).toBe(2);
  });

  it('fields are the numeric columns other than the layout; odd column names are left out; no superseded column, no filter', async () => {
    const columns = [
      ...COLUMNS.filter((c) => c.column !== 'superseded'),
      { column: 'label', type: 'VARCHAR' },
      { column: 'n', type: 'LONG' },
      { column: 'bad"name', type: 'DOUBLE' },
    ];
    const { service, calls } = serviceOf({ columns });
    const a = await series(service, q());
    expect(a.fields).toEqual(['sessions', 'rating', 'n']);
    expect(calls.at(-1)!.sql).not.toContain('superseded');
    expect(calls.at(-1)!.sql).not.toContain('bad"name');
  });

  it('answers are cached for 1 s (no durable watermark to key them on); the table layout for 10 s', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(TO + DAY);
    const { service, calls } = serviceOf({ rows: ROWS });
    const reads = () => calls.filter((c) => c.sql.startsWith('SELECT ts')).length;
    const layouts = () => calls.filter((c) => c.sql.includes('tables()')).length;
    const first = await series(service, q());
    expect(await series(service, q())).toEqual(first);
    expect(reads()).toBe(1);
    await series(service, q({ key: 't2' }));
    expect(reads()).toBe(2);
    vi.setSystemTime(TO + DAY + 1_001);
    await series(service, q());
    expect(reads()).toBe(3);
    expect(layouts()).toBe(1);
    vi.setSystemTime(TO + DAY + 10_500);
    await series(service, q());
    expect(layouts()).toBe(2);
    // no cache at all when cacheEntries is 0
    const off = serviceOf({ rows: ROWS }, undefined, { gateway: { cacheEntries: 0 } });
    await series(off.service, q());
    await series(off.service, q());
    expect(off.calls.filter((c) => c.sql.startsWith('SELECT ts')).length).toBe(2);
  });

  it('an unknown pipeline is not remembered: once its table exists, it is served', async () => {
    const db: FakeDb = { tables: [] };
    const { service } = serviceOf(db);
    expect(((await errorOf(() => service.series(q()))) as ApiError).statusCode).toBe(404);
    db.tables = ['weir_p_tutors'];
    expect((await series(service, q())).pipeline).toBe('tutors');
  });

  it('QuestDB not answering is a 503', async () => {
    const { service } = serviceOf({ fail: true });
    const err = (await errorOf(() => service.series(q()))) as ApiError;
    expect({ status: err.statusCode, code: err.code }).toEqual({ status: 503, code: 'unavailable' });
  });
});
