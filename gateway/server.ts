/**
 * Starts the whole gateway: its own NATS connection (live state, subscriptions, publish), the
 * query service, HTTP (fastify) and gRPC (@grpc/grpc-js). Used by `npm start` (beside the
 * engine) and by `node dist/gateway/main.js` (a gateway in its own process; run several).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import type pg from 'pg';
import client from 'prom-client';
import type { Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { WeirConfig } from '../engine/config.js';
import type { Engine } from '../engine/engine.js';
import { registerPipelineMetrics, type PipelineRunners } from './pipeline-metrics.js';
import { Auth } from './auth.js';
import { GatewayMetrics } from './metrics.js';
import { WeirService } from './service.js';
import { buildGateway } from './app.js';
import { startGrpcServer } from './grpc.js';

export interface GrpcDeps {
  config: WeirConfig;
  service: WeirService;
  auth: Auth;
  metrics: GatewayMetrics;
  log: Logger;
  /** Readiness for grpc.health.v1 (same rule as /readyz). */
  ready: () => Promise<boolean>;
  /** Port to bind on config.httpHost (0 = any free port). */
  port: number;
}

export interface Gateway {
  http: FastifyInstance;
  httpPort: number;
  grpcPort: number;
  service: WeirService;
  close(): Promise<void>;
}

export async function startGateway(opts: { config: WeirConfig; pool: pg.Pool; log: Logger; engine?: Engine; nc?: NatsConnection; pipelines?: PipelineRunners }): Promise<Gateway> {
  const { config, pool, log, engine, pipelines } = opts;
  const ownNc = !opts.nc;
  const nc = opts.nc ?? (await connect({ servers: config.natsUrl, name: 'weir-gateway', maxReconnectAttempts: -1, noAsyncTraces: true }));
  const registry = new client.Registry();
  const metrics = new GatewayMetrics(registry);
  const service = new WeirService({ config, pool, nc, js: jetstream(nc), log, metrics });
  service.start();
  metrics.watchEngine(service);
  const auth = new Auth(config);
  if (pipelines) registerPipelineMetrics(registry, pipelines);
  const http = await buildGateway({ config, pool, engine, pipelines, logger: log, registry, service, auth, metrics, nc });
  await http.listen({ port: config.httpPort, host: config.httpHost });
  const httpPort = (http.server.address() as { port: number }).port;
  let grpc: Awaited<ReturnType<typeof startGrpcServer>>;
  try {
    grpc = await startGrpcServer({ config, service, auth, metrics, log: log.child({ part: 'grpc' }), ready: () => http.weir.ready(), port: config.grpcPort });
  } catch (err) {
    await http.close();
    throw err;
  }
  if (auth.enabled) log.info({ tokens: config.gateway.tokens.map((t) => t.name) }, 'API auth is on');
  else log.warn('API auth is off (no tokens configured): every caller has every scope');
  return {
    http,
    httpPort,
    grpcPort: grpc.port,
    service,
    async close() {
      grpc.setServing(false);
      await Promise.allSettled([http.close(), grpc.close()]);
      service.stop();
      if (ownNc) await nc.drain().catch(() => undefined);
    },
  };
}
