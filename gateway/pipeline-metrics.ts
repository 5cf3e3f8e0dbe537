/**
 * Prometheus metrics of the declared pipelines running in this process (engine/pipeline/runner.ts),
 * one series per pipeline (label `pipeline`), read from each runner's status at scrape time.
 */
import client from 'prom-client';
import type { PipelineRunner } from '../engine/pipeline/runner.js';

/** What the gateway needs of the runners: their status and health (the engine process passes its runners). */
export type PipelineRunners = () => readonly Pick<PipelineRunner, 'status' | 'health'>[];

export function registerPipelineMetrics(registry: client.Registry, runners: PipelineRunners): void {
  type Status = ReturnType<PipelineRunner['status']>;
  type Runner = ReturnType<PipelineRunners>[number];
  // One series per running pipeline, set from its status at scrape time; counters are set the same way (reset, then inc by the total).
  const metric = <M extends client.Gauge | client.Counter>(make: (c: { name: string; help: string; labelNames: readonly string[]; registers: client.Registry[]; collect: (this: M) => void }) => M) =>
    (name: string, help: string, read: (s: Status, r: Runner) => number) =>
      make({
        name,
        help,
        labelNames: ['pipeline'],
        registers: [registry],
        collect(this: M) {
          this.reset();
          for (const r of runners()) {
            const s = r.status();
            if (this instanceof client.Gauge) this.set({ pipeline: s.pipeline }, read(s, r));
            else (this as client.Counter).inc({ pipeline: s.pipeline }, read(s, r));
          }
        },
      });
  const gauge = metric<client.Gauge>((c) => new client.Gauge(c));
  const counter = metric<client.Counter>((c) => new client.Counter(c));
  counter('weir_pipeline_events_total', 'Events a declared pipeline has processed (continues across restarts)', (s) => s.events);
  counter('weir_pipeline_results_total', 'Rows a declared pipeline has emitted', (s) => s.results);
  counter('weir_pipeline_alerts_total', 'Alert transitions a declared pipeline has emitted', (s) => s.alerts);
  counter('weir_pipeline_rows_written_total', 'Rows QuestDB has taken from a declared pipeline', (s) => s.rowsWritten);
  counter('weir_pipeline_flush_failures_total', 'Failed QuestDB flushes of a declared pipeline (retried)', (s) => s.flushFailures);
  gauge('weir_pipeline_lag_messages', 'Messages of the stream not yet delivered to a declared pipeline', (s) => s.pending);
  gauge('weir_pipeline_last_sequence', 'Stream sequence of the last message a declared pipeline processed', (s) => s.lastSeq);
  gauge('weir_pipeline_checkpoint_sequence', 'Stream sequence the last checkpoint covers (the ack floor of weir-pipeline-<name>)', (s) => s.checkpointSeq);
  gauge('weir_pipeline_checkpoint_age_seconds', 'Seconds since the last checkpoint was recorded', (s) => (s.checkpointAt > 0 ? (Date.now() - s.checkpointAt) / 1000 : 0));
  counter('weir_pipeline_checkpoints_total', 'Checkpoints recorded by this run', (s) => s.checkpoints);
  counter('weir_pipeline_checkpoint_failures_total', 'Checkpoint attempts that failed (rows not flushed, KV not reachable)', (s) => s.checkpointFailures);
  counter('weir_pipeline_checkpoint_written_bytes_total', 'Bytes written by the checkpoints of this run (incremental: new chunks and records)', (s) => s.checkpointWrittenTotal);
  gauge('weir_pipeline_checkpoint_state_bytes', 'Bytes the whole state takes in KV (compressed chunks)', (s) => s.checkpointBytes);
  gauge('weir_pipeline_pending_rows', 'Rows and alert transitions QuestDB has not taken yet (bounded by sink.maxPendingRows)', (s) => s.pendingRows);
  gauge('weir_pipeline_backpressure_active', '1 while a declared pipeline has stopped taking events because QuestDB holds back sink.maxPendingRows rows', (s) => (s.backpressure ? 1 : 0));
  counter('weir_pipeline_redeliveries_skipped_total', 'Redelivered messages a declared pipeline skipped (already in its state)', (s) => s.redeliveriesSkipped);
  counter('weir_pipeline_consumer_repositions_total', 'Times a declared pipeline positioned its consumer again (reconnects, delivery gaps, a vanished consumer)', (s) => s.repositions);
  gauge('weir_pipeline_ready', '1 when a declared pipeline is connected, consuming and writing', (_s, r) => (r.health().ready ? 1 : 0));
}
