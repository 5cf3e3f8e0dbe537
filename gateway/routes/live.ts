import type { FastifyInstance } from 'fastify';
import { byProp, errorResponses, keyProp, liveResultSchema, metricProp, pipelineProp, tokenProp, windowProp } from './schemas.js';

/** Live state from the engine's in-memory view (NATS request-reply; no QuestDB round trip). */
export async function liveRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/v1/latest',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'The newest window result of (metric, key), per window or for one window, from the engine (partial while the window is open)',
        querystring: {
          type: 'object',
          required: ['key'],
          additionalProperties: false,
          properties: {
            metric: { ...metricProp, description: 'required for the default pipeline; a declared pipeline defaults to its own name' },
            key: keyProp,
            window: windowProp,
            pipeline: pipelineProp,
            final: { type: 'boolean', description: 'only windows that have fired' },
            access_token: tokenProp,
          },
        },
        response: { 200: { type: 'object', properties: { results: { type: 'array', items: liveResultSchema } } }, ...errorResponses },
      },
    },
    async (req) => app.weir.service.latest(req.query as Record<string, unknown>),
  );

  app.get(
    '/v1/top',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Top-K keys of a metric by an aggregate of the newest window (current = open window, partial; final = newest fired window)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            metric: { ...metricProp, description: 'required for the default pipeline; a declared pipeline defaults to its own name' },
            window: { ...windowProp, description: 'default: the smallest window (required for a declared pipeline)' },
            by: { ...byProp, description: 'field to rank by (default count; required for a declared pipeline)' },
            k: { type: 'integer', minimum: 1, description: 'default 10' },
            order: { type: 'string', enum: ['desc', 'asc'] },
            scope: { type: 'string', enum: ['current', 'final'] },
            pipeline: pipelineProp,
            access_token: tokenProp,
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              metric: { type: 'string' },
              window: { type: 'string' },
              by: { type: 'string' },
              order: { type: 'string' },
              start: { type: ['integer', 'null'] },
              final: { type: 'boolean' },
              candidates: { type: 'integer' },
              entries: { type: 'array', items: liveResultSchema },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => app.weir.service.topK(req.query as Record<string, unknown>),
  );

  app.get(
    '/v1/catalog',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Pipeline, windows and the metrics with live results (key counts), for pickers',
        querystring: { type: 'object', additionalProperties: false, properties: { pipeline: pipelineProp, access_token: tokenProp } },
        response: {
          200: {
            type: 'object',
            properties: {
              pipeline: { type: 'string' },
              windows: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, sizeMs: { type: 'integer' } } } },
              watermark: { type: 'integer' },
              metrics: { type: 'array', items: { type: 'object', properties: { metric: { type: 'string' }, window: { type: 'string' }, keys: { type: 'integer' } } } },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => app.weir.service.catalog(req.query as Record<string, unknown>),
  );
}
