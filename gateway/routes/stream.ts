/**
 * Live subscriptions over SSE (GET /v1/stream) and WebSocket (GET /v1/ws). Both fan out from the
 * NATS subjects weir.results.<pipeline>.<metric>.<key>, so any number of gateway processes can
 * serve them. A subscriber that falls `subscriberBuffer` messages behind is disconnected with an
 * error event (it is never silently skipped ahead), and the drop is counted.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SubscribeFilter } from '../service.js';
import { errorResponses, keyProp, metricProp, pipelineProp, tokenProp, windowProp } from './schemas.js';

const filterQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    metric: { ...metricProp, description: 'default: every metric' },
    key: { ...keyProp, description: 'exact key' },
    keyPrefix: { type: 'string', maxLength: 256, description: 'every key starting with this' },
    window: windowProp,
    pipeline: pipelineProp,
    finalOnly: { type: 'boolean', description: 'only firings and corrections, no partial updates' },
    access_token: tokenProp,
  },
} as const;

/** Bytes a slow subscriber may have queued before it is cut off (about subscriberBuffer results). */
const BYTES_PER_RESULT = 512;
const HEARTBEAT_MS = 15_000;

declare module 'fastify' {
  interface FastifyRequest {
    weirFilter?: SubscribeFilter & { pipeline: string };
  }
}

export async function streamRoutes(app: FastifyInstance): Promise<void> {
  const { service, auth, metrics, config } = app.weir;
  const maxQueued = config.gateway.limits.subscriberBuffer * BYTES_PER_RESULT;
  // Filter errors are a plain 400 before any stream (or WebSocket upgrade) starts.
  const parseFilter = async (req: FastifyRequest) => {
    req.weirFilter = service.parseFilter(req.query as Record<string, unknown>);
  };

  app.get(
    '/v1/stream',
    {
      config: { scope: 'subscribe' },
      preHandler: parseFilter,
      schema: {
        summary: 'Server-sent events: every window result (event "result") matching the filter, partial updates included unless finalOnly',
        querystring: filterQuery,
        response: { 200: { type: 'string', description: 'text/event-stream' }, ...errorResponses },
      },
    },
    (req, reply) => {
      const release = auth.holdSubscription(req.principal!);
      let unsubscribe: () => void;
      let closed = false;
      const res = reply.raw;
      const close = (why?: string) => {
        if (closed) return;
        closed = true;
        unsubscribe?.();
        release();
        clearInterval(heartbeat);
        metrics.subscriptions.dec({ transport: 'sse' });
        if (why) {
          res.write(`event: error\ndata: ${JSON.stringify({ error: 'too_slow', message: why })}\n\n`);
          res.end();
        }
      };
      try {
        unsubscribe = service.subscribe(req.weirFilter!, (raw) => {
          if (closed) return;
          res.write(`event: result\ndata: ${raw}\n\n`);
          metrics.delivered.inc({ transport: 'sse' });
          if (res.writableLength > maxQueued) {
            metrics.dropped.inc({ transport: 'sse' });
            close(`subscriber fell more than ${config.gateway.limits.subscriberBuffer} results behind; reconnect and read history from /v1/series`);
          }
        });
      } catch (err) {
        release();
        throw err;
      }
      metrics.subscriptions.inc({ transport: 'sse' });
      const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
      reply.hijack();
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      res.write(`event: ready\ndata: ${JSON.stringify(req.weirFilter)}\n\n`);
      req.raw.on('close', () => close());
    },
  );

  app.get(
    '/v1/ws',
    {
      websocket: true,
      config: { scope: 'subscribe' },
      preHandler: parseFilter,
      schema: { summary: 'WebSocket: one JSON window result per message, matching the filter (same query as /v1/stream)', querystring: filterQuery, response: errorResponses },
    },
    (socket, req) => {
      let release: () => void = () => undefined;
      let unsubscribe: () => void = () => undefined;
      let closed = false;
      const close = (code?: number, why?: string) => {
        if (closed) return;
        closed = true;
        unsubscribe();
        release();
        metrics.subscriptions.dec({ transport: 'ws' });
        if (code) {
          socket.send(JSON.stringify({ error: code === 1013 ? 'too_slow' : 'limit_exceeded', message: why }));
          socket.close(code, why?.slice(0, 120));
        }
      };
      metrics.subscriptions.inc({ transport: 'ws' });
      try {
        release = auth.holdSubscription(req.principal!);
        unsubscribe = service.subscribe(req.weirFilter!, (raw) => {
          if (closed) return;
          socket.send(raw);
          metrics.delivered.inc({ transport: 'ws' });
          if (socket.bufferedAmount > maxQueued) {
            metrics.dropped.inc({ transport: 'ws' });
            close(1013, `subscriber fell more than ${config.gateway.limits.subscriberBuffer} results behind`);
          }
        });
      } catch (err) {
        close(1008, (err as Error).message);
        return;
      }
      socket.on('close', () => close());
      socket.on('error', () => close());
    },
  );
}
