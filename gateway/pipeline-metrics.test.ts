/** The weir_pipeline_* series: one per running pipeline, read from each runner's status at scrape time. */
import { describe, expect, it } from 'vitest';
import client from 'prom-client';
import { registerPipelineMetrics } from './pipeline-metrics.js';

const status = (pipeline: string, over: Record<string, unknown> = {}) => ({
  pipeline,
  events: 5,
  results: 2,
  alerts: 1,
  rowsWritten: 2,
  flushFailures: 0,
  pending: 3,
  lastSeq: 9,
  checkpointSeq: 8,
  checkpointAt: 0,
  checkpoints: 4,
  checkpointFailures: 0,
  checkpointWrittenTotal: 1000,
  checkpointBytes: 500,
  pendingRows: 7,
  backpressure: false,
  redeliveriesSkipped: 0,
  repositions: 1,
  ...over,
});

function scrape(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(weir_pipeline_[a-z_]+\{[^}]*\}) (\S+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

describe('pipeline metrics', () => {
  it('one series per pipeline, following the status at each scrape, counters included', async () => {
    const reg = new client.Registry();
    let runners = [
      { status: () => status('a'), health: () => ({ ready: true }) },
      { status: () => status('b', { backpressure: true, events: 11, pending: 40 }), health: () => ({ ready: false }) },
    ];
    registerPipelineMetrics(reg, () => runners as never);
    const m = scrape(await reg.metrics());
    expect(m['weir_pipeline_events_total{pipeline="a"}']).toBe(5);
    expect(m['weir_pipeline_events_total{pipeline="b"}']).toBe(11);
    expect(m['weir_pipeline_lag_messages{pipeline="b"}']).toBe(40);
    expect(m['weir_pipeline_backpressure_active{pipeline="a"}']).toBe(0);
    expect(m['weir_pipeline_backpressure_active{pipeline="b"}']).toBe(1);
    expect(m['weir_pipeline_ready{pipeline="a"}']).toBe(1);
    expect(m['weir_pipeline_ready{pipeline="b"}']).toBe(0);
    expect(m['weir_pipeline_checkpoint_written_bytes_total{pipeline="a"}']).toBe(1000);
    // a counter is the status's total at each scrape (not added up across scrapes), and a pipeline gone has no series
    runners = [{ status: () => status('a', { events: 6 }), health: () => ({ ready: true }) }];
    const again = scrape(await reg.metrics());
    expect(again['weir_pipeline_events_total{pipeline="a"}']).toBe(6);
    expect(again['weir_pipeline_events_total{pipeline="b"}']).toBeUndefined();
  });
});
