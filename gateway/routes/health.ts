import type { FastifyInstance } from 'fastify';
import client from 'prom-client';

/**
 * /healthz (process up), /readyz (NATS, QuestDB, and the engine: its workers and declared
 * pipelines when in-process, its status messages otherwise), /metrics (Prometheus text; admin scope when auth is on).
 */
export async function healthRoutes(app: FastifyInstance): Promise<void> {
  const { registry, engine, nc, service, pipelines } = app.weir;
  client.collectDefaultMetrics({ register: registry, prefix: 'weir_process_' });
  if (engine) registerEngineMetrics(registry, engine);

  const check = async () => {
    let questdb = false;
    try {
      await app.weir.pool.query('SELECT 1');
      questdb = true;
    } catch {
      questdb = false;
    }
    const nats = !nc.isClosed() && nc.status !== undefined;
    const h = engine?.health();
    const engineOk = h ? h.nats && h.workers && h.questdbWrites : service.engineStatus !== null;
    // declared pipelines running in this process: each connected, consuming and writing
    const declared = pipelines ? pipelines().map((r) => r.health()) : [];
    const pipelinesOk = declared.every((p) => p.ready);
    return {
      ready: questdb && nats && engineOk && pipelinesOk,
      questdb,
      gatewayNats: nats,
      engine: engineOk,
      ...(h ?? {}),
      ...(pipelines ? { pipelines: declared } : {}),
      engineStatus: service.engineStatus,
    };
  };
  app.weir.ready = async () => (await check()).ready;

  app.get('/healthz', { schema: { summary: 'Liveness' } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { summary: 'Readiness: NATS, QuestDB and the engine' } }, async (_req, reply) => {
    const c = await check();
    return reply.code(c.ready ? 200 : 503).send(c);
  });

  app.get('/metrics', { config: { scope: 'admin' }, schema: { summary: 'Prometheus metrics (admin scope when auth is on)' } }, async (_req, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
}

/** Exposes the engine's counters (invariant 1: counts add up) as Prometheus metrics, read at scrape time. */
function registerEngineMetrics(registry: client.Registry, engine: import('../../engine/engine.js').Engine) {
  const c = engine.counters;
  const gauge = (name: string, help: string, read: () => number) =>
    new client.Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  const counter = (name: string, help: string, read: () => number) =>
    new client.Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(read()); } });
  counter('weir_messages_total', 'NATS messages consumed from the event stream', () => c.messages);
  counter('weir_events_accepted_total', 'Events that passed validation', () => c.eventsAccepted);
  counter('weir_events_dead_lettered_total', 'Events or messages sent to weir.dlq.<metric>', () => c.deadLettered);
  counter('weir_events_cardinality_rejected_total', 'Events dead-lettered because their metric had limits.maxSeriesPerWindow series open in their window (in weir_events_dead_lettered_total too)', () => c.seriesRejected);
  gauge('weir_open_series', 'Distinct (metric, key) series open in the windows the cardinality bound watches', () => engine.series.size);
  counter('weir_events_late_total', 'Accepted events too late for every window (weir.late.<metric>)', () => c.lateDropped);
  counter('weir_window_assignments_total', '(event, window) pairs aggregated', () => c.assigned);
  counter('weir_rows_written_total', 'Window rows written to QuestDB', () => c.rowsWritten);
  counter('weir_questdb_flush_failures_total', 'Failed QuestDB flushes (retried)', () => c.flushFailures);
  counter('weir_redeliveries_skipped_total', 'Redelivered messages skipped within one run', () => c.duplicatesSkipped);
  counter('weir_replay_skipped_total', '(event, window) pairs replayed after a restart for windows already complete in QuestDB, skipped', () => c.replaySkipped);
  gauge('weir_watermark_ms', 'Current event-time watermark', () => (Number.isFinite(c.watermark) ? c.watermark : 0));
  gauge('weir_committed_sequence', 'Last stream sequence whose effects are durable', () => c.committedSeq);
  gauge('weir_first_message_timestamp_ms', 'Wall time the first message of this run was processed', () => c.firstMessageAt);
  gauge('weir_last_batch_done_timestamp_ms', 'Wall time the workers finished the latest batch', () => c.lastBatchDoneAt);
  gauge('weir_consumer_lag_messages', 'Messages in the stream not yet delivered to the engine', () => engine.health().lagMessages);
  gauge('weir_sink_pending_rows', 'Window rows QuestDB has not acknowledged yet (bounded by sink.maxPendingRows)', () => engine.pendingRows());
  gauge('weir_worker_inflight_batches', 'Source batches handed to the workers and not processed yet (bounded per worker, docs/faults.md "Overload")', () => engine.inflight().batches);
  gauge('weir_worker_inflight_events', 'Events handed to the workers and not processed yet', () => engine.inflight().events);
  gauge('weir_backpressure_active', '1 while the engine has stopped fetching because QuestDB holds back sink.maxPendingRows rows', () => (engine.health().backpressure ? 1 : 0));
  counter('weir_backpressure_seconds_total', 'Time the engine spent stopped by back-pressure', () => engine.backpressureSeconds());
  counter('weir_consumer_repositions_total', 'Consumer recreated after the last processed message (NATS reconnect, vanished stream)', () => c.repositions);
  counter('weir_streams_recreated_total', 'Event stream found deleted or replaced (recreated, read from its start)', () => c.streamsRecreated);
  const lateByWindow = new client.Counter({
    name: 'weir_window_late_total',
    help: '(event, window) pairs dropped as too late for that window',
    labelNames: ['window'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [w, n] of Object.entries(c.lateByWindow)) this.inc({ window: w }, n);
    },
  });
  void lateByWindow;
}
