/**
 * A partition worker (worker_threads). It owns the keys hashed to its partition and runs the
 * pipeline's RxJS graph over batches handed over by the source:
 *   batches$ -> tumblingWindows(10s, 1m, ...) -> window rows -> QuestDB writer (flushed on a timer)
 * It reports, per batch, what it assigned and dropped as late, and, per flush, the watermark up
 * to which every emitted row is durable in QuestDB (the source acks against that).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Subject } from 'rxjs';
import { summaryAggregator, summaryFigures, type SummaryFigures, type SummaryResult } from '../operators/aggregates/summary.js';
import { tumblingWindows, type EventBatch, type WindowEmission } from '../operators/windows/tumbling.js';
import { tumblingStart } from '../operators/windows/assign.js';
import { WindowRowWriter } from './sink/questdb.js';
import type { MainToWorker, WorkerInit, WorkerResult, WorkerToMain } from './protocol.js';
import { resultSubject } from './subjects.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: WorkerToMain) => port.postMessage(m);

const tableOf = new Map(init.windows.map((w) => [w.name, w.table]));
const seriesCache = new Map<string, [string, string]>();
function splitSeries(series: string): [string, string] {
  let parts = seriesCache.get(series);
  if (!parts) {
    const i = series.indexOf('\u0001');
    parts = [series.slice(0, i), series.slice(i + 1)];
    if (seriesCache.size > 500_000) seriesCache.clear();
    seriesCache.set(series, parts);
  }
  return parts;
}

const writer = await WindowRowWriter.open(init.questdbHttp);
/** Live results are published from here, so the main thread (which serves the live API) never serialises them. */
const nc: NatsConnection | null = init.liveResults
  ? await connect({ servers: init.natsUrl, name: `weir-engine-worker-${init.index}`, maxReconnectAttempts: -1, noAsyncTraces: true })
  : null;
const windowSeconds = new Map(init.windows.map((w) => [w.name, w.sizeMs / 1000]));
const subjectCache = new Map<string, string>();
function subjectOf(series: string, metric: string, key: string): string {
  let s = subjectCache.get(series);
  if (s === undefined) {
    s = resultSubject(init.pipeline, metric, key);
    if (subjectCache.size > 500_000) subjectCache.clear();
    subjectCache.set(series, s);
  }
  return s;
}
/** The watermark of the last batch or advance processed: every row it caused is in `writer`. */
let emittedWm = -Infinity;
let flushing: Promise<void> | null = null;
let lastError = '';

/** Stats of the batch just processed (the pipeline below runs synchronously per batch). */
let lastStats: { assigned: number; late: Record<string, number> } = { assigned: 0, late: {} };
const batches$ = new Subject<EventBatch>();
batches$
  .pipe(
    tumblingWindows(
      {
        specs: init.windows.map((w) => ({ name: w.name, sizeMs: w.sizeMs })),
        allowedLatenessMs: init.allowedLatenessMs,
        trackPartials: init.liveResults && init.partialIntervalMs > 0,
        partialResult: summaryFigures,
      },
      summaryAggregator(init.sketchAccuracy),
    ),
  )
  .subscribe(({ emissions, partials, stats }) => {
    for (const e of emissions) writer.add(toRow(e));
    lastStats = stats;
    if (!init.liveResults || (emissions.length === 0 && partials.length === 0)) return;
    const now = Date.now();
    const results: WorkerResult[] = [];
    for (const e of emissions) results.push(publishResult(e, true, now));
    for (const e of partials) results.push(publishResult(e, false, now));
    post({ t: 'results', results });
  });

/**
 * Builds a live result and publishes it. The field order is fixed: the JSON text is forwarded
 * as it is to subscribers, and gateways filter on it (see WeirService.subscribe).
 */
function publishResult(e: WindowEmission<SummaryFigures>, final: boolean, now: number): WorkerResult {
  const [metric, key] = splitSeries(e.series);
  const r = e.result;
  const out: WorkerResult = {
    pipeline: init.pipeline,
    metric,
    key,
    window: e.window,
    start: e.start,
    end: e.end,
    final,
    revision: e.revision,
    count: r.count,
    rate: r.count / windowSeconds.get(e.window)!,
    sum: r.sum,
    min: r.min,
    max: r.max,
    mean: r.mean,
    stddev: r.stddev,
    p50: r.p50,
    p90: r.p90,
    p95: r.p95,
    p99: r.p99,
    p999: r.p999,
    emittedAt: now,
  };
  // Live results are best effort (the rows in QuestDB are the durable record): while NATS is
  // away, nats.js buffers them and sends them on reconnect.
  if (nc && !nc.isClosed()) nc.publish(subjectOf(e.series, metric, key), JSON.stringify(out));
  return out;
}

/** Per window: events of the batch whose window is final after `wmBefore` but at or before `durable` (complete in QuestDB). */
function durableSkips(ts: Float64Array, wmBefore: number, durable: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const w of init.windows) {
    let n = 0;
    for (let i = 0; i < ts.length; i++) {
      const final = tumblingStart(ts[i], w.sizeMs) + w.sizeMs + init.allowedLatenessMs;
      if (final > wmBefore && final <= durable) n++;
    }
    if (n) out[w.name] = n;
  }
  return out;
}

function toRow(e: WindowEmission<SummaryResult>) {
  const [metric, key] = splitSeries(e.series);
  return { ...e.result, table: tableOf.get(e.window)!, ts: e.start, metric, key };
}

/**
 * A flush QuestDB has not answered for this long is reported as failing (health, /readyz), while
 * it goes on: the ILP client retries a refused connection until QuestDB is back, without end.
 */
const FLUSH_STALL_MS = 5000;

/** Flushes rows to QuestDB; on success reports the watermark the flush covers. */
function flush(): Promise<void> {
  if (flushing) return flushing;
  const covers = emittedWm;
  const fail = (msg: string) => {
    if (msg !== lastError) post({ t: 'log', level: 'warn', msg: `QuestDB write failed, will retry: ${msg}` });
    lastError = msg;
    post({ t: 'flushFailed', pendingRows: writer.pending, error: msg });
  };
  const run = async () => {
    const stall = setTimeout(() => fail(`no answer from QuestDB for ${FLUSH_STALL_MS / 1000} s (rows kept, the write goes on)`), FLUSH_STALL_MS);
    try {
      const n = await writer.flush();
      if (lastError) post({ t: 'log', level: 'info', msg: 'QuestDB writes resumed' });
      lastError = '';
      post({ t: 'flushed', wm: covers, rows: n, pendingRows: writer.pending });
    } catch (err) {
      fail((err as Error).message);
    } finally {
      clearTimeout(stall);
    }
  };
  flushing = run().finally(() => (flushing = null));
  return flushing;
}

const timer = setInterval(() => void flush(), init.flushIntervalMs);
// Live partial results of open windows: an empty batch asking for them (the watermark stays put).
const partialTimer =
  init.liveResults && init.partialIntervalMs > 0
    ? setInterval(() => batches$.next({ series: [], ts: [], values: [], wmBefore: emittedWm, wmAfter: emittedWm, partials: true }), init.partialIntervalMs)
    : null;

port.on('message', async (m: MainToWorker) => {
  switch (m.t) {
    case 'batch': {
      // After a restart, windows final at or before m.durable are complete in QuestDB: judging
      // lateness against it drops the replayed events of those windows (and only of those), which
      // are then not counted late but skipped.
      const skipped = m.durable !== undefined && m.durable > m.wmBefore ? durableSkips(m.ts, m.wmBefore, m.durable) : null;
      const wmBefore = skipped ? m.durable! : m.wmBefore;
      batches$.next({ series: m.series, ts: m.ts, values: m.values, wmBefore, wmAfter: m.wmAfter });
      if (m.wmAfter > emittedWm) emittedWm = m.wmAfter;
      let replaySkipped = 0;
      const late = { ...lastStats.late };
      if (skipped)
        for (const [w, n] of Object.entries(skipped)) {
          replaySkipped += n;
          late[w] = (late[w] ?? 0) - n;
          if (late[w] === 0) delete late[w];
        }
      post({ t: 'done', id: m.id, assigned: lastStats.assigned, late, replaySkipped, pendingRows: writer.pending });
      break;
    }
    case 'advance': {
      batches$.next({ series: [], ts: [], values: [], wmBefore: m.wm, wmAfter: m.wm });
      if (m.wm > emittedWm) emittedWm = m.wm;
      break;
    }
    case 'stop': {
      clearInterval(timer);
      if (partialTimer) clearInterval(partialTimer);
      // Flush until QuestDB takes everything (or the main thread gives up on us).
      for (;;) {
        await flush();
        if (writer.pending === 0) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      await writer.close().catch(() => undefined);
      await nc?.drain().catch(() => undefined);
      post({ t: 'stopped' });
      batches$.complete();
      port.close();
      break;
    }
  }
});

post({ t: 'ready' });
