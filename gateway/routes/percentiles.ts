import type { FastifyInstance } from 'fastify';
import { sketchFromBase64, sketchMerge, type DDSketch } from '../../operators/aggregates/ddsketch.js';
import { clampedQuantiles } from '../../operators/aggregates/summary.js';
import { BadRequest } from '../errors.js';
import { QUERY_LIMITS } from '../limits.js';
import { resolveRange } from './series.js';

/** Parses "0.5,0.99" into quantiles in [0, 1]. */
export function parseQuantiles(text: string | undefined): number[] {
  if (text === undefined || text === '') return [0.5, 0.9, 0.95, 0.99, 0.999];
  const parts = text.split(',');
  if (parts.length > QUERY_LIMITS.maxQuantiles) throw new BadRequest('q', `at most ${QUERY_LIMITS.maxQuantiles} quantiles, got ${parts.length}`);
  return parts.map((p) => {
    const v = Number(p.trim());
    if (p.trim() === '' || !Number.isFinite(v) || v < 0 || v > 1) throw new BadRequest('q', `q must be comma-separated numbers in [0, 1], got "${p}"`);
    return v;
  });
}

/** GET /v1/percentiles: quantiles over a range, merged from the stored window sketches (exact merge, no raw data). */
export async function percentilesRoutes(app: FastifyInstance): Promise<void> {
  app.get<{ Querystring: { metric: string; key: string; window?: string; from?: string; to?: string; q?: string } }>(
    '/v1/percentiles',
    {
      schema: {
        summary: 'Percentiles of one (metric, key) over a time range, merged from stored sketches',
        querystring: {
          type: 'object',
          required: ['metric', 'key'],
          additionalProperties: false,
          properties: {
            metric: { type: 'string', pattern: '^[A-Za-z0-9_:-]+$', maxLength: 256 },
            key: { type: 'string', minLength: 1, maxLength: 256 },
            window: { type: 'string', pattern: '^[0-9a-z]+$', maxLength: 16, description: 'which window table to merge (default: the largest)' },
            from: { type: 'string' },
            to: { type: 'string' },
            q: { type: 'string', description: 'comma-separated quantiles in [0, 1]', maxLength: 512 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              metric: { type: 'string' },
              key: { type: 'string' },
              window: { type: 'string' },
              from: { type: 'integer' },
              to: { type: 'integer' },
              count: { type: 'integer' },
              windows: { type: 'integer' },
              relativeAccuracy: { type: 'number' },
              quantiles: { type: 'array', items: { type: 'object', properties: { q: { type: 'number' }, value: { type: ['number', 'null'] } } } },
            },
          },
        },
      },
    },
    async (req) => {
      const qs = parseQuantiles(req.query.q);
      const r = resolveRange(app, req.query, 'largest');
      const res = await app.weir.pool.query<{ sketch: string; min: number; max: number; count: number }>(
        `SELECT sketch, min, max, count FROM ${r.table} WHERE metric = $1 AND key = $2 AND ts >= $3 AND ts < $4 LIMIT ${QUERY_LIMITS.maxRows}`,
        [req.query.metric, req.query.key, new Date(r.from), new Date(r.to)],
      );
      const alpha = app.weir.config.pipeline.sketchAccuracy;
      let merged: DDSketch | null = null;
      let min = Infinity;
      let max = -Infinity;
      let count = 0;
      for (const row of res.rows) {
        const s = sketchFromBase64(row.sketch);
        merged = merged ? sketchMerge(merged, s) : s;
        if (row.min < min) min = row.min;
        if (row.max > max) max = row.max;
        count += row.count;
      }
      const values = merged && count ? clampedQuantiles(merged, min, max, qs) : qs.map(() => null);
      return {
        metric: req.query.metric,
        key: req.query.key,
        window: r.window,
        from: r.from,
        to: r.to,
        count,
        windows: res.rows.length,
        relativeAccuracy: merged?.alpha ?? alpha,
        quantiles: qs.map((q, i) => ({ q, value: values[i] })),
      };
    },
  );
}
