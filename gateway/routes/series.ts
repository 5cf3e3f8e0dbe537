import type { FastifyInstance } from 'fastify';
import { errorResponses, errorSchema, keyProp, metricProp, pipelineProp, pointSchema, tokenProp, windowProp } from './schemas.js';

export const seriesQuerySchema = {
  type: 'object',
  required: ['key'],
  additionalProperties: false,
  properties: {
    pipeline: { ...pipelineProp, description: 'a declared pipeline (table weir_p_<pipeline>); default: the default pipeline' },
    metric: { ...metricProp, description: 'required for the default pipeline; a declared pipeline has one metric, its own name' },
    key: keyProp,
    window: { ...windowProp, description: 'default pipeline: default the smallest window; a declared pipeline: default every window' },
    from: { type: 'string', description: 'ms since epoch or ISO-8601 (inclusive); default to - 1h' },
    to: { type: 'string', description: 'ms since epoch or ISO-8601 (exclusive); default now' },
    limit: { type: 'integer', minimum: 1 },
    access_token: tokenProp,
  },
} as const;

/**
 * A row of a declared pipeline (?pipeline=): the window's metadata, and its output columns under
 * `fields`, so that no field name can collide with them.
 */
const pipelinePointProps = {
  end: { type: 'integer', description: 'declared pipeline: window end, ms since epoch (0 for a global window)' },
  window: { type: 'string', description: 'declared pipeline: window name (10s, 7d, session, global)' },
  final: { type: 'boolean', description: 'declared pipeline: false while the window has not fired (partial figures)' },
  revision: { type: 'integer', description: 'declared pipeline: grows with each result of the window' },
  emittedAt: { type: 'integer', description: 'declared pipeline: wall time the engine produced the row' },
  fields: {
    type: 'object',
    description: "declared pipeline: every output column of the pipeline's table, null where the window has no value",
    additionalProperties: { type: ['number', 'null'] },
  },
} as const;

/**
 * GET /v1/series: window rows of one series from QuestDB. Default pipeline: cached until the
 * watermark moves past them; a declared pipeline (?pipeline=): its table weir_p_<pipeline>, cached 1 s.
 */
export async function seriesRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/v1/series',
    {
      config: { scope: 'read' },
      schema: {
        summary:
          'Window aggregates of one (metric, key) over a time range, from QuestDB. With pipeline=<declared pipeline>: the rows of one key in its table ' +
          'weir_p_<pipeline> (one window, or every window), ordered by ts then window, tombstones of absorbed sessions left out',
        querystring: seriesQuerySchema,
        response: {
          200: {
            type: 'object',
            properties: {
              pipeline: { type: 'string', description: 'declared pipeline only' },
              metric: { type: 'string' },
              key: { type: 'string' },
              window: { type: ['string', 'null'], description: 'null: every window (declared pipeline without window)' },
              from: { type: 'integer' },
              to: { type: 'integer' },
              truncated: { type: 'boolean' },
              fields: { type: 'array', items: { type: 'string' }, description: "declared pipeline only: the table's output columns, the keys of each point's fields" },
              points: {
                type: 'array',
                description: 'default pipeline: the aggregates of each window; declared pipeline: ts, end, window, final, revision, emittedAt and fields',
                items: { ...pointSchema, properties: { ...pointSchema.properties, ...pipelinePointProps } },
              },
            },
          },
          ...errorResponses,
          404: { ...errorSchema, description: 'pipeline: no table weir_p_<pipeline> (param "pipeline")' },
        },
      },
    },
    async (req) => app.weir.service.series(req.query as Record<string, unknown>),
  );
}
