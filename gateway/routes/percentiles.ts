import type { FastifyInstance } from 'fastify';
import { errorResponses, keyProp, metricProp, tokenProp, windowProp } from './schemas.js';

/** GET /v1/percentiles: quantiles over a range, merged from the stored window sketches (exact merge, no raw data). */
export async function percentilesRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/v1/percentiles',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Percentiles of one (metric, key) over a time range, merged from stored sketches',
        querystring: {
          type: 'object',
          required: ['metric', 'key'],
          additionalProperties: false,
          properties: {
            metric: metricProp,
            key: keyProp,
            window: { ...windowProp, description: 'which window table to merge (default: the largest)' },
            from: { type: 'string' },
            to: { type: 'string' },
            q: { type: 'string', description: 'comma-separated quantiles in [0, 1]', maxLength: 512 },
            access_token: tokenProp,
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
          ...errorResponses,
        },
      },
    },
    async (req) => app.weir.service.percentiles(req.query as Record<string, unknown>),
  );
}
