/**
 * The HTTP gateway (fastify): one plugin per concern, JSON schemas on every route.
 * v0.1 serves history (series, percentiles) from QuestDB over PG wire, health and metrics.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type pg from 'pg';
import client from 'prom-client';
import type { Logger } from 'pino';
import type { WeirConfig } from '../engine/config.js';
import type { Engine } from '../engine/engine.js';
import { BadRequest } from './errors.js';
import { seriesRoutes } from './routes/series.js';
import { percentilesRoutes } from './routes/percentiles.js';
import { healthRoutes } from './routes/health.js';

export interface GatewayDeps {
  config: WeirConfig;
  pool: pg.Pool;
  /** The in-process engine, when the gateway runs beside it (health, lag, counters). */
  engine?: Engine;
  logger?: Logger;
  registry?: client.Registry;
}

export { QUERY_LIMITS } from './limits.js';

export async function buildGateway(deps: GatewayDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // Request lines are debug-level noise; errors are still logged.
    loggerInstance: (deps.logger ? deps.logger.child({}, { level: 'warn' }) : undefined) as FastifyBaseLogger | undefined,
    ajv: { customOptions: { coerceTypes: true, removeAdditional: false, allErrors: false } },
  });
  const registry = deps.registry ?? new client.Registry();
  app.decorate('weir', { ...deps, registry });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; param?: string }, _req, reply) => {
    if (err instanceof BadRequest) return reply.code(400).send({ error: 'bad_request', param: err.param, message: err.message });
    if (err.validation) {
      const v = (err.validation as { instancePath?: string; params?: { missingProperty?: string; additionalProperty?: string } }[])[0];
      const param = v?.params?.missingProperty ?? v?.params?.additionalProperty ?? v?.instancePath?.replace(/^\//, '') ?? '';
      return reply.code(400).send({ error: 'bad_request', param, message: err.message });
    }
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (code === 500) app.log.error({ err }, 'request failed');
    return reply.code(code).send({ error: code === 500 ? 'internal' : 'bad_request', message: code === 500 ? 'internal error' : err.message });
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'Weir', version: '1', description: 'Windowed aggregates and percentiles over NATS JetStream and QuestDB (contract v1).' },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(healthRoutes);
  await app.register(seriesRoutes);
  await app.register(percentilesRoutes);
  return app;
}

declare module 'fastify' {
  interface FastifyInstance {
    weir: GatewayDeps & { registry: client.Registry };
  }
}
