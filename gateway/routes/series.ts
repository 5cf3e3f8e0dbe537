import type { FastifyInstance } from 'fastify';
import { BadRequest } from '../errors.js';
import { parseTime } from '../questdb.js';
import { QUERY_LIMITS } from '../limits.js';

export const ROW_COLUMNS = ['count', 'sum', 'min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p95', 'p99', 'p999'] as const;

const num = { type: 'number' } as const;
const nullableNum = { type: ['number', 'null'] } as const;

export const pointSchema = {
  type: 'object',
  properties: {
    ts: { type: 'integer', description: 'window start, ms since epoch' },
    count: { type: 'integer' },
    sum: num,
    min: num,
    max: num,
    mean: num,
    stddev: nullableNum,
    p50: num,
    p90: num,
    p95: num,
    p99: num,
    p999: num,
  },
} as const;

export const seriesQuerySchema = {
  type: 'object',
  required: ['metric', 'key'],
  additionalProperties: false,
  properties: {
    metric: { type: 'string', pattern: '^[A-Za-z0-9_:-]+$', maxLength: 256 },
    key: { type: 'string', minLength: 1, maxLength: 256 },
    window: { type: 'string', pattern: '^[0-9a-z]+$', maxLength: 16 },
    from: { type: 'string', description: 'ms since epoch or ISO-8601 (inclusive); default to - 1h' },
    to: { type: 'string', description: 'ms since epoch or ISO-8601 (exclusive); default now' },
    limit: { type: 'integer', minimum: 1, maximum: QUERY_LIMITS.maxRows },
  },
} as const;

/** Resolves `window` to a configured table (identifiers never come from user input) and the time range. */
export function resolveRange(
  app: FastifyInstance,
  q: { window?: string; from?: string; to?: string },
  defaultWindow: 'smallest' | 'largest',
): { window: string; table: string; from: number; to: number } {
  const windows = app.weir.config.pipeline.windows;
  const sorted = [...windows].sort((a, b) => a.size - b.size);
  const w = q.window ? windows.find((x) => x.name === q.window) : defaultWindow === 'smallest' ? sorted[0] : sorted[sorted.length - 1];
  if (!w) throw new BadRequest('window', `window must be one of ${windows.map((x) => x.name).join(', ')}, got "${q.window}"`);
  const now = Date.now();
  const to = parseTime(q.to, 'to');
  if (to instanceof Error) throw new BadRequest('to', to.message);
  const toMs = to ?? now;
  const from = parseTime(q.from, 'from');
  if (from instanceof Error) throw new BadRequest('from', from.message);
  const fromMs = from ?? toMs - 3_600_000;
  if (fromMs >= toMs) throw new BadRequest('from', `from (${fromMs}) must be before to (${toMs})`);
  if (toMs - fromMs > QUERY_LIMITS.maxRangeMs) throw new BadRequest('from', `range is ${toMs - fromMs} ms, the limit is ${QUERY_LIMITS.maxRangeMs} ms (31 days)`);
  return { window: w.name, table: w.table, from: fromMs, to: toMs };
}

/** GET /v1/series: window rows of one series from QuestDB. */
export async function seriesRoutes(app: FastifyInstance): Promise<void> {
  app.get<{ Querystring: { metric: string; key: string; window?: string; from?: string; to?: string; limit?: number } }>(
    '/v1/series',
    {
      schema: {
        summary: 'Window aggregates of one (metric, key) over a time range, from QuestDB',
        querystring: seriesQuerySchema,
        response: {
          200: {
            type: 'object',
            properties: {
              metric: { type: 'string' },
              key: { type: 'string' },
              window: { type: 'string' },
              from: { type: 'integer' },
              to: { type: 'integer' },
              truncated: { type: 'boolean' },
              points: { type: 'array', items: pointSchema },
            },
          },
        },
      },
    },
    async (req) => {
      const q = req.query;
      const r = resolveRange(app, q, 'smallest');
      const limit = q.limit ?? QUERY_LIMITS.maxRows;
      const res = await app.weir.pool.query(
        `SELECT ts, ${ROW_COLUMNS.join(', ')} FROM ${r.table} WHERE metric = $1 AND key = $2 AND ts >= $3 AND ts < $4 ORDER BY ts LIMIT ${limit + 1}`,
        [q.metric, q.key, new Date(r.from), new Date(r.to)],
      );
      const truncated = res.rows.length > limit;
      return { metric: q.metric, key: q.key, window: r.window, from: r.from, to: r.to, truncated, points: truncated ? res.rows.slice(0, limit) : res.rows };
    },
  );
}
