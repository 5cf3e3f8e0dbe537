/**
 * The HTTP gateway (fastify): one plugin per concern, JSON schemas on every route (query, body
 * and response; the OpenAPI document at /docs is generated from them), one auth gate, one error
 * shape: {"error": code, "param": the parameter at fault, "message": what is wrong}.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import type pg from 'pg';
import type client from 'prom-client';
import type { Logger } from 'pino';
import type { NatsConnection } from '@nats-io/transport-node';
import type { WeirConfig } from '../engine/config.js';
import type { Engine } from '../engine/engine.js';
import { ApiError } from './errors.js';
import { clientErrorHandler } from './client-error.js';
import type { Auth, Principal, Scope } from './auth.js';
import type { GatewayMetrics } from './metrics.js';
import type { WeirService } from './service.js';
import { seriesRoutes } from './routes/series.js';
import { percentilesRoutes } from './routes/percentiles.js';
import { healthRoutes } from './routes/health.js';
import { liveRoutes } from './routes/live.js';
import { streamRoutes } from './routes/stream.js';
import { eventsRoutes } from './routes/events.js';
import { dashboardRoutes } from './routes/dashboard.js';
import type { PipelineRunners } from './pipeline-metrics.js';

export interface GatewayDeps {
  config: WeirConfig;
  pool: pg.Pool;
  /** The in-process engine, when the gateway runs beside it (health, counters). */
  engine?: Engine;
  /** The declared pipelines running in this process (health, metrics). */
  pipelines?: PipelineRunners;
  logger?: Logger;
  registry: client.Registry;
  service: WeirService;
  auth: Auth;
  metrics: GatewayMetrics;
  nc: NatsConnection;
}

declare module 'fastify' {
  interface FastifyInstance {
    weir: GatewayDeps & { ready: () => Promise<boolean> };
  }
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** The scope a caller's token needs for this route; none = open (health, docs, the dashboard page). */
    scope?: Scope;
  }
}

export async function buildGateway(deps: GatewayDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // Request lines are debug-level noise; errors are still logged.
    loggerInstance: (deps.logger ? deps.logger.child({}, { level: 'warn' }) : undefined) as FastifyBaseLogger | undefined,
    ajv: { customOptions: { coerceTypes: true, removeAdditional: false, allErrors: false } },
    bodyLimit: deps.config.limits.maxPayloadBytes,
    // A request Node's parser refuses (over 16 KiB of request line and headers) gets a JSON
    // error the client can read, not a reset connection.
    clientErrorHandler: clientErrorHandler(),
  });
  app.decorate('weir', { ...deps, ready: async () => false });
  app.decorateRequest('principal', undefined);
  // JSON only: any other body type is a 415 that names the content type, never a guess.
  app.removeContentTypeParser('text/plain');
  // JSON in UTF-8 only: Fastify's own parser reads invalid UTF-8 as U+FFFD and so stores an event
  // other than the one sent; the engine's decoder refuses such a message over NATS, so does this.
  const json = app.getDefaultJsonParser('error', 'error');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      return done(new ApiError(400, 'bad_request', 'body', 'the body is not valid UTF-8'), undefined);
    }
    return json(req, text, done);
  });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; validationContext?: string; code?: string }, _req, reply) => {
    if (err instanceof ApiError) {
      if (err.retryAfter) reply.header('retry-after', String(err.retryAfter));
      return reply.code(err.statusCode).send({ error: err.code, param: err.param, message: err.message });
    }
    if (err.validation) {
      const v = (err.validation as { instancePath?: string; params?: { missingProperty?: string; additionalProperty?: string } }[])[0];
      const path = v?.instancePath?.replace(/^\//, '').replace(/\//g, '.') ?? '';
      const ctx = err.validationContext;
      // A body error names "body" (and the path inside it); querystring and header errors the parameter.
      const param = ctx === 'body' ? (path ? `body.${path}` : 'body') : (v?.params?.missingProperty ?? v?.params?.additionalProperty ?? path);
      // ajv says "must NOT have additional properties" without the name: say which.
      const message = v?.params?.additionalProperty !== undefined ? `unknown parameter ${JSON.stringify(param.slice(0, 64))} (${ctx ?? 'request'})` : err.message;
      return reply.code(400).send({ error: 'bad_request', param, message });
    }
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (code === 500) app.log.error({ err }, 'request failed');
    // Body parser errors (bad JSON, wrong content type, too large) carry fastify's clear message.
    const param = code === 415 ? 'content-type' : code === 413 || err.code?.startsWith('FST_ERR_CTP_') ? 'body' : '';
    return reply.code(code).send({ error: code === 500 ? 'internal' : 'bad_request', param, message: code === 500 ? 'internal error' : err.message });
  });

  // The auth gate: token -> scope -> rate limit, before anything else runs.
  app.addHook('onRequest', async (req) => {
    const scope = req.routeOptions.config?.scope;
    if (!scope) return;
    const q = req.query as Record<string, unknown> | undefined;
    const header = req.headers.authorization ?? (typeof q?.access_token === 'string' ? q.access_token : undefined);
    req.principal = await deps.auth.admit(header, scope);
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    deps.metrics.httpDuration.observe({ route, method: req.method, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'Weir', version: '1', description: 'Windowed aggregates, percentiles and live results over NATS JetStream and QuestDB (contract v1).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  await app.register(healthRoutes);
  await app.register(seriesRoutes);
  await app.register(percentilesRoutes);
  await app.register(liveRoutes);
  await app.register(streamRoutes);
  await app.register(eventsRoutes);
  await app.register(dashboardRoutes);
  return app;
}
