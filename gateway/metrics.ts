/**
 * The gateway's Prometheus metrics (prom-client): requests and latency per HTTP route and per
 * gRPC method, active subscriptions, history cache hits and misses, and the engine's lag as the
 * gateway sees it (from weir.status.<pipeline>), so a gateway in its own process reports it too.
 */
import client from 'prom-client';
import type { ServiceMetrics, WeirService } from './service.js';

const BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class GatewayMetrics implements ServiceMetrics {
  readonly httpDuration: client.Histogram<'route' | 'method' | 'status'>;
  readonly grpcDuration: client.Histogram<'method' | 'code'>;
  readonly subscriptions: client.Gauge<'transport'>;
  readonly cache: client.Counter<'result'>;
  readonly delivered: client.Counter<'transport'>;
  readonly dropped: client.Counter<'transport'>;

  constructor(readonly registry: client.Registry) {
    this.httpDuration = new client.Histogram({
      name: 'weir_http_request_duration_seconds',
      help: 'HTTP request latency by route, method and status (count = requests)',
      labelNames: ['route', 'method', 'status'],
      buckets: BUCKETS,
      registers: [registry],
    });
    this.grpcDuration = new client.Histogram({
      name: 'weir_grpc_request_duration_seconds',
      help: 'gRPC call latency by method and status code (count = calls; streams count at their end)',
      labelNames: ['method', 'code'],
      buckets: BUCKETS,
      registers: [registry],
    });
    this.subscriptions = new client.Gauge({
      name: 'weir_subscriptions_active',
      help: 'Live subscriptions being served, by transport (sse, ws, grpc)',
      labelNames: ['transport'],
      registers: [registry],
    });
    this.cache = new client.Counter({
      name: 'weir_history_cache_requests_total',
      help: 'History queries answered from the cache (hit) or QuestDB (miss)',
      labelNames: ['result'],
      registers: [registry],
    });
    this.delivered = new client.Counter({
      name: 'weir_subscription_messages_total',
      help: 'Window results delivered to subscribers, by transport',
      labelNames: ['transport'],
      registers: [registry],
    });
    this.dropped = new client.Counter({
      name: 'weir_subscriptions_dropped_total',
      help: 'Subscribers disconnected because they fell too far behind, by transport',
      labelNames: ['transport'],
      registers: [registry],
    });
  }

  cacheHit() {
    this.cache.inc({ result: 'hit' });
  }
  cacheMiss() {
    this.cache.inc({ result: 'miss' });
  }
  subscriptionsChanged() {
    /* per-transport gauges are moved by the transports themselves */
  }

  /** Gauges read from the engine status at scrape time. */
  watchEngine(service: WeirService) {
    const r = this.registry;
    new client.Gauge({
      name: 'weir_gateway_engine_lag_messages',
      help: 'Messages in the event stream not yet delivered to the engine (engine status as seen by the gateway; -1 when unknown)',
      registers: [r],
      collect() {
        this.set(service.engineStatus?.lagMessages ?? -1);
      },
    });
    new client.Gauge({
      name: 'weir_gateway_engine_watermark_delay_seconds',
      help: 'Wall clock minus the engine watermark (event-time lag; -1 when unknown)',
      registers: [r],
      collect() {
        const s = service.engineStatus;
        this.set(s && s.watermark > 0 ? (Date.now() - s.watermark) / 1000 : -1);
      },
    });
  }
}
