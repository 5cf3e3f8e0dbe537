import type { FastifyInstance } from 'fastify';
import { errorResponses, keyProp, metricProp, pointSchema, tokenProp, windowProp } from './schemas.js';

export const seriesQuerySchema = {
  type: 'object',
  required: ['metric', 'key'],
  additionalProperties: false,
  properties: {
    metric: metricProp,
    key: keyProp,
    window: windowProp,
    from: { type: 'string', description: 'ms since epoch or ISO-8601 (inclusive); default to - 1h' },
    to: { type: 'string', description: 'ms since epoch or ISO-8601 (exclusive); default now' },
    limit: { type: 'integer', minimum: 1 },
    access_token: tokenProp,
  },
} as const;

/** GET /v1/series: window rows of one series from QuestDB (cached until the watermark moves past them). */
export async function seriesRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/v1/series',
    {
      config: { scope: 'read' },
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
          ...errorResponses,
        },
      },
    },
    async (req) => app.weir.service.series(req.query as Record<string, unknown>),
  );
}
