/**
 * The engine's lifecycle and its source loop (main thread):
 *   JetStream consume -> decode + validate (bad -> weir.dlq.<metric>) -> watermark -> route each
 *   event to the worker owning hash(metric, key) in columnar batches -> workers window and write.
 * Acks follow durable output: a message is committed (checkpoint, then AckAll) once every
 * window it touched is final (watermark >= end + allowed lateness) and flushed to QuestDB.
 * See docs/delivery.md for the protocol and why it yields an exactly-once effect.
 */
import { Worker } from 'node:worker_threads';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JsMsg, type ConsumerMessages } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { Watermark } from '../operators/windows/watermark.js';
import { tumblingStart } from '../operators/windows/assign.js';
import type { WeirConfig } from './config.js';
import { decodeMessage, type DecodeLimits, type DecodeSink } from './decode.js';
import { ensureWindowTables } from './sink/questdb.js';
import { CheckpointStore, ensureStreams, resetConsumer, type StreamNames } from './source.js';
import type { MainToWorker, WorkerInit, WorkerToMain } from './protocol.js';
import { partitionOf } from './partition.js';
import { streamSeqOf } from './ackinfo.js';
import { LiveView } from './live-view.js';
import { serveLiveApi } from './live-api.js';
import { RESULT_FIELDS, statusSubject, type EngineStatus, type LiveResult } from './subjects.js';
import type { Subscription } from '@nats-io/transport-node';

/** Counters for invariant 1: every message and event is accounted for. */
export interface EngineCounters {
  messages: number;
  /** Events that passed validation. */
  eventsAccepted: number;
  /** Events (or whole messages that could not be decoded) sent to the DLQ. */
  deadLettered: number;
  /** Accepted events too late for every window (published on weir.late.<metric>). */
  lateDropped: number;
  /** (event, window) pairs too late for that window only, per window name. */
  lateByWindow: Record<string, number>;
  /** (event, window) pairs aggregated. */
  assigned: number;
  rowsWritten: number;
  /** Redeliveries within one run, skipped because the message was already processed. */
  duplicatesSkipped: number;
  commits: number;
  committedSeq: number;
  lastSeq: number;
  watermark: number;
  flushFailures: number;
  /** Wall time (ms) the first message of this run was processed, and the last batch finished by the workers. */
  firstMessageAt: number;
  lastBatchDoneAt: number;
}

interface PendingRecord {
  id: number;
  lastSeq: number;
  lastMsg: JsMsg;
  /** Latest time at which a window this batch touched becomes final. */
  maxFinal: number;
  /** The watermark in force before the next batch (idle advances move it). */
  wmNext: number;
  workersPending: number;
  publishesPending: number;
  failed: boolean;
}

interface WorkerSlot {
  worker: Worker;
  flushedWm: number;
  inflight: number;
  pendingRows: number;
  wake: (() => void) | null;
  stopped: Promise<void>;
}

const MAX_INFLIGHT_BATCHES = 64;
const MAX_PENDING_ROWS = 500_000;

export class Engine {
  readonly counters: EngineCounters = {
    messages: 0,
    eventsAccepted: 0,
    deadLettered: 0,
    lateDropped: 0,
    lateByWindow: {},
    assigned: 0,
    rowsWritten: 0,
    duplicatesSkipped: 0,
    commits: 0,
    committedSeq: 0,
    lastSeq: 0,
    watermark: -Infinity,
    flushFailures: 0,
    firstMessageAt: 0,
    lastBatchDoneAt: 0,
  };
  private nc!: NatsConnection;
  private js!: JetStreamClient;
  private checkpoints!: CheckpointStore;
  private watermark!: Watermark;
  private workers: WorkerSlot[] = [];
  private queue: PendingRecord[] = [];
  private recordById = new Map<number, PendingRecord>();
  private nextRecordId = 1;
  private storedWm = -Infinity;
  private messages: ConsumerMessages | null = null;
  private loopDone: Promise<void> = Promise.resolve();
  private commitTimer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private committing: Promise<void> | null = null;
  private lastMsgAt = 0;
  private lastPending = 0;
  private stopping = false;
  private readonly names: StreamNames;
  private readonly limits: DecodeLimits;
  private readonly maxWindowMs: number;
  private fatal: ((err: Error) => void) | null = null;
  private readonly workerErrors: string[] = [];
  /** Latest window results per (window, metric, key), served over weir.api.<pipeline>.* */
  readonly view = new LiveView();
  private apiSubs: Subscription[] = [];
  private statusTimer: NodeJS.Timeout | null = null;
  readonly liveCounters = { resultsPublished: 0, apiRequests: 0, evicted: 0 };

  constructor(
    readonly config: WeirConfig,
    private readonly log: Logger,
  ) {
    this.names = {
      events: config.stream.name,
      eventSubjects: config.stream.subjects,
      deadLetter: config.stream.deadLetterStream,
      consumer: config.stream.consumer,
      maxAgeMs: config.stream.maxAge,
    };
    this.limits = { ...config.limits, maxFutureMs: config.pipeline.maxFuture };
    this.maxWindowMs = Math.max(...config.pipeline.windows.map((w) => w.size));
  }

  get natsConnection(): NatsConnection {
    return this.nc;
  }

  /** Health of the engine's parts, for /readyz and gRPC health. */
  health(): { nats: boolean; workers: boolean; questdbWrites: boolean; lagMessages: number } {
    return {
      nats: !!this.nc && !this.nc.isClosed(),
      workers: this.workers.length > 0 && this.workerErrors.length === 0,
      questdbWrites: this.counters.flushFailures === 0 || this.workers.every((w) => w.pendingRows === 0),
      lagMessages: this.lastPending,
    };
  }

  /** Connects, creates what is missing, restores the checkpoint and starts consuming. */
  async start(onFatal?: (err: Error) => void): Promise<void> {
    this.fatal = onFatal ?? null;
    const cfg = this.config;
    await ensureWindowTables(cfg.questdbHttp, cfg.pipeline.windows.map((w) => w.table));
    this.nc = await connect({ servers: cfg.natsUrl, name: 'weir-engine', maxReconnectAttempts: -1, noAsyncTraces: true });
    this.js = jetstream(this.nc);
    await ensureStreams(await jetstreamManager(this.nc), this.names, this.log);
    this.checkpoints = await CheckpointStore.open(this.js, this.names.consumer);
    const ck = await this.checkpoints.load();
    const wm0 = ck && ck.wm > -1e299 ? ck.wm : -Infinity;
    this.storedWm = wm0;
    this.counters.committedSeq = ck?.seq ?? 0;
    this.counters.lastSeq = ck?.seq ?? 0;
    this.watermark = new Watermark({ maxOutOfOrdernessMs: cfg.pipeline.maxOutOfOrderness, idleTimeoutMs: cfg.pipeline.idleTimeout }, wm0);
    this.counters.watermark = wm0;
    this.log.info({ checkpoint: ck }, ck ? 'restoring from checkpoint' : 'no checkpoint: starting from the beginning of the stream');

    await this.startWorkers(wm0);

    const holdMs = this.maxWindowMs + cfg.pipeline.allowedLateness + cfg.pipeline.maxOutOfOrderness + cfg.pipeline.idleTimeout;
    const { consumer, pending } = await resetConsumer(this.nc, this.js, this.names, (ck?.seq ?? 0) + 1, Math.max(600_000, 3 * holdMs), this.log);
    this.lastPending = pending;
    this.lastMsgAt = Date.now();
    this.messages = await consumer.consume({ max_messages: cfg.fetch.batch * 4 });
    this.loopDone = this.consumeLoop(this.messages).catch((err) => this.die(err));
    this.commitTimer = setInterval(() => void this.commit(), cfg.flushInterval);
    if (cfg.results.enabled) this.startLiveApi();
    this.idleTimer = setInterval(() => this.idleTick(), Math.min(500, cfg.pipeline.idleTimeout));
  }

  private die(err: Error) {
    this.log.error({ err }, 'engine failed');
    this.fatal?.(err);
  }

  private async startWorkers(wm0: number): Promise<void> {
    const cfg = this.config;
    const url = new URL('./worker.js', import.meta.url);
    const ready: Promise<void>[] = [];
    for (let i = 0; i < cfg.workers; i++) {
      const init: WorkerInit = {
        index: i,
        questdbHttp: cfg.questdbHttp,
        windows: cfg.pipeline.windows.map((w) => ({ name: w.name, sizeMs: w.size, table: w.table })),
        allowedLatenessMs: cfg.pipeline.allowedLateness,
        sketchAccuracy: cfg.pipeline.sketchAccuracy,
        flushIntervalMs: cfg.flushInterval,
        liveResults: cfg.results.enabled,
        partialIntervalMs: cfg.results.partialInterval,
        natsUrl: cfg.natsUrl,
        pipeline: cfg.pipeline.name,
      };
      const worker = new Worker(url, { workerData: init });
      let resolveStopped!: () => void;
      const slot: WorkerSlot = { worker, flushedWm: wm0, inflight: 0, pendingRows: 0, wake: null, stopped: new Promise((r) => (resolveStopped = r)) };
      ready.push(
        new Promise((resolve, reject) => {
          worker.on('message', (m: WorkerToMain) => {
            if (m.t === 'ready') resolve();
            else if (m.t === 'stopped') resolveStopped();
            else this.onWorkerMessage(slot, m);
          });
          worker.once('error', (err) => {
            this.workerErrors.push(err.message);
            reject(err);
            this.die(new Error(`worker ${i} crashed: ${err.message}`));
          });
          worker.once('exit', () => resolveStopped());
        }),
      );
      this.workers.push(slot);
    }
    await Promise.all(ready);
  }

  private onWorkerMessage(slot: WorkerSlot, m: WorkerToMain) {
    switch (m.t) {
      case 'done': {
        slot.inflight--;
        slot.pendingRows = m.pendingRows;
        this.counters.assigned += m.assigned;
        for (const [w, n] of Object.entries(m.late)) this.counters.lateByWindow[w] = (this.counters.lateByWindow[w] ?? 0) + n;
        const rec = this.recordById.get(m.id);
        if (rec) rec.workersPending--;
        this.counters.lastBatchDoneAt = Date.now();
        this.wakeIfRoom(slot);
        break;
      }
      case 'flushed':
        if (m.wm > slot.flushedWm) slot.flushedWm = m.wm;
        slot.pendingRows = 0;
        this.counters.rowsWritten += m.rows;
        this.wakeIfRoom(slot);
        break;
      case 'results':
        this.onResults(m.results);
        break;
      case 'flushFailed':
        this.counters.flushFailures++;
        slot.pendingRows = m.pendingRows;
        break;
      case 'log':
        this.log[m.level]({ worker: this.workers.indexOf(slot) }, m.msg);
        break;
    }
  }

  /**
   * Window results from a worker, which has already published them on
   * weir.results.<pipeline>.<metric>.<key>: into the live view. Serialising and publishing stay
   * off this thread, which serves the live API.
   */
  private onResults(results: import('./protocol.js').WorkerResult[]) {
    for (const r of results) this.view.update(r);
    this.liveCounters.resultsPublished += results.length;
  }

  status(): EngineStatus {
    const flushed = this.workers.length ? Math.min(...this.workers.map((w) => w.flushedWm)) : -Infinity;
    const fin = (v: number) => (Number.isFinite(v) ? v : 0);
    return {
      pipeline: this.config.pipeline.name,
      watermark: fin(this.watermark?.value ?? -Infinity),
      durableWatermark: fin(flushed),
      allowedLatenessMs: this.config.pipeline.allowedLateness,
      lagMessages: this.lastPending,
      committedSeq: this.counters.committedSeq,
      liveKeys: this.view.size,
      at: Date.now(),
    };
  }

  /**
   * The live view over NATS request-reply (queue group "weir-engine", so several engine
   * processes of one pipeline share the load): weir.api.<pipeline>.latest|topk|status, JSON in
   * and out. Errors come back as {"error", "param"}.
   */
  private startLiveApi() {
    const p = this.config.pipeline.name;
    this.apiSubs = serveLiveApi({
      nc: this.nc,
      pipeline: p,
      view: this.view,
      windows: new Set(this.config.pipeline.windows.map((w) => w.name)),
      fields: RESULT_FIELDS,
      defaultBy: 'count',
      status: () => ({ ...this.status(), metrics: this.view.metrics() }),
      onRequest: () => this.liveCounters.apiRequests++,
    });
    this.statusTimer = setInterval(() => {
      const st = this.status();
      if (Number.isFinite(st.watermark) && st.watermark > 0) this.liveCounters.evicted += this.view.evictBefore(st.watermark - this.config.results.retention);
      if (!this.nc.isClosed()) this.nc.publish(statusSubject(p), JSON.stringify(st));
    }, 1000);
  }

  private wakeIfRoom(slot: WorkerSlot) {
    if (slot.wake && slot.inflight < MAX_INFLIGHT_BATCHES && slot.pendingRows < MAX_PENDING_ROWS) {
      const w = slot.wake;
      slot.wake = null;
      w();
    }
  }

  /** Back-pressure: waits while any worker is busy or cannot write (QuestDB down): we stop pulling, we never drop. */
  private async waitForRoom(): Promise<void> {
    for (const slot of this.workers) {
      while (slot.inflight >= MAX_INFLIGHT_BATCHES || slot.pendingRows >= MAX_PENDING_ROWS) {
        await new Promise<void>((r) => (slot.wake = r));
      }
    }
  }

  private async consumeLoop(messages: ConsumerMessages): Promise<void> {
    let batch: JsMsg[] = [];
    let scheduled = false;
    const max = this.config.fetch.batch;
    let flushPromise: Promise<void> = Promise.resolve();
    const flushNow = () => {
      scheduled = false;
      if (batch.length === 0) return;
      const msgs = batch;
      batch = [];
      this.processBatch(msgs);
    };
    for await (const msg of messages) {
      batch.push(msg);
      if (batch.length >= max) {
        flushNow();
        await this.waitForRoom();
      } else if (!scheduled) {
        // Linger briefly so that messages from several socket reads share one hand-off to the
        // workers (one postMessage per worker per batch): throughput for a bounded delay.
        scheduled = true;
        flushPromise = new Promise((r) =>
          setTimeout(() => {
            flushNow();
            r();
          }, this.config.fetch.lingerMs),
        );
      }
      if (this.stopping) break;
    }
    await flushPromise;
    flushNow();
  }

  /** Decodes, validates and routes one batch of messages; records what its commit waits for. */
  private processBatch(msgs: JsMsg[]): void {
    const now = Date.now();
    const cfg = this.config;
    const W = this.workers.length;
    const series: string[][] = Array.from({ length: W }, () => []);
    const tss: number[][] = Array.from({ length: W }, () => []);
    const vals: number[][] = Array.from({ length: W }, () => []);
    const wmBefore = this.watermark.value;
    const windows = cfg.pipeline.windows;
    const lateness = cfg.pipeline.allowedLateness;
    let maxTs = -Infinity;
    let maxFinal = -Infinity;
    const publishes: Promise<unknown>[] = [];
    let current: JsMsg = msgs[0];
    let index = 0;
    const sink: DecodeSink = {
      accept: (metric, key, ts, value) => {
        const i = index++;
        this.counters.eventsAccepted++;
        let final = -Infinity;
        for (const w of windows) {
          const f = tumblingStart(ts, w.size) + w.size + lateness;
          if (f > final) final = f;
        }
        if (final <= wmBefore) {
          this.counters.lateDropped++;
          publishes.push(this.publishLate(metric, current, i, { key, value, ts }, wmBefore));
          return;
        }
        if (final > maxFinal) maxFinal = final;
        if (ts > maxTs) maxTs = ts;
        const s = metric + '\u0001' + key;
        const p = W === 1 ? 0 : partitionOf(s, W);
        series[p].push(s);
        tss[p].push(ts);
        vals[p].push(value);
      },
      reject: (reason, i, raw) => {
        if (i >= 0) index++;
        this.counters.deadLettered++;
        publishes.push(this.publishDeadLetter(current, i, reason, raw));
      },
    };
    let lastMsg: JsMsg | null = null;
    for (const msg of msgs) {
      const seq = streamSeqOf((msg as unknown as { reply: string }).reply);
      if (seq <= this.counters.lastSeq) {
        this.counters.duplicatesSkipped++;
        continue;
      }
      this.counters.lastSeq = seq;
      this.counters.messages++;
      current = msg;
      index = 0;
      lastMsg = msg;
      decodeMessage(msg.subject, msg.data, () => Math.floor(Number(msg.info.timestampNanos) / 1e6), now, this.limits, sink);
    }
    if (!lastMsg) return;
    if (!this.counters.firstMessageAt) this.counters.firstMessageAt = now;
    this.lastMsgAt = now;
    this.lastPending = lastMsg.info.pending;
    // maxTs stays -Infinity when no event of the batch was routed to a window.
    const wmAfter = maxTs > -Infinity ? this.watermark.observe(maxTs, now) : (this.watermark.touch(now), this.watermark.value);
    this.counters.watermark = wmAfter;
    const rec: PendingRecord = {
      id: this.nextRecordId++,
      lastSeq: this.counters.lastSeq,
      lastMsg,
      maxFinal,
      wmNext: wmAfter,
      workersPending: W,
      publishesPending: publishes.length,
      failed: false,
    };
    for (const p of publishes)
      p.then(
        () => rec.publishesPending--,
        (err) => {
          rec.failed = true;
          this.die(new Error(`dead-letter publish failed: ${(err as Error).message}`));
        },
      );
    this.queue.push(rec);
    this.recordById.set(rec.id, rec);
    for (let p = 0; p < W; p++) {
      const ts = Float64Array.from(tss[p]);
      const values = Float64Array.from(vals[p]);
      const m: MainToWorker = { t: 'batch', id: rec.id, series: series[p], ts, values, wmBefore, wmAfter };
      this.workers[p].inflight++;
      this.workers[p].worker.postMessage(m, [ts.buffer, values.buffer]);
    }
  }

  private publishDeadLetter(msg: JsMsg, index: number, reason: string, raw: string): Promise<unknown> {
    const metric = /^weir\.events\.([A-Za-z0-9_:-]+)$/.exec(msg.subject)?.[1] ?? '_invalid';
    const h = headers();
    h.set('Weir-Reason', headerSafe(reason));
    h.set('Weir-Source-Subject', headerSafe(msg.subject));
    h.set('Weir-Source-Seq', String(msg.seq));
    if (index >= 0) h.set('Weir-Index', String(index));
    return this.js.publish(`weir.dlq.${metric}`, raw, { headers: h, msgID: `dlq:${msg.seq}:${index}` });
  }

  private publishLate(metric: string, msg: JsMsg, index: number, event: { key: string; value: number; ts: number }, wm: number): Promise<unknown> {
    const h = headers();
    h.set('Weir-Reason', `event time ${new Date(event.ts).toISOString()} is past allowed lateness (watermark ${new Date(wm).toISOString()})`);
    h.set('Weir-Source-Seq', String(msg.seq));
    h.set('Weir-Index', String(index));
    return this.js.publish(`weir.late.${metric}`, JSON.stringify(event), { headers: h, msgID: `late:${msg.seq}:${index}` });
  }

  /** Advances the watermark with processing time once the stream is drained and quiet. */
  private idleTick(): void {
    if (this.stopping) return;
    if (this.lastPending !== 0) return;
    const now = Date.now();
    if (now - this.lastMsgAt < this.config.pipeline.idleTimeout) return;
    if (!this.watermark.idleAdvance(now)) return;
    const wm = this.watermark.value;
    this.counters.watermark = wm;
    const tail = this.queue[this.queue.length - 1];
    if (tail) tail.wmNext = wm;
    for (const slot of this.workers) slot.worker.postMessage({ t: 'advance', wm } satisfies MainToWorker);
  }

  /** Commits the longest prefix of batches whose windows are final and flushed: checkpoint first, then AckAll. */
  commit(): Promise<void> {
    if (this.committing) return this.committing;
    const run = async () => {
      try {
        const flushed = Math.min(...this.workers.map((w) => w.flushedWm));
        let last: PendingRecord | null = null;
        while (this.queue.length) {
          const r = this.queue[0];
          if (r.workersPending > 0 || r.publishesPending > 0 || r.failed || r.maxFinal > flushed) break;
          last = this.queue.shift()!;
          this.recordById.delete(last.id);
        }
        if (last) {
          await this.checkpoints.save({ seq: last.lastSeq, wm: last.wmNext, at: new Date().toISOString() });
          this.storedWm = last.wmNext;
          this.counters.committedSeq = last.lastSeq;
          this.counters.commits++;
          last.lastMsg.ack();
        } else if (this.queue.length === 0 && this.watermark.value > this.storedWm && this.watermark.value <= flushed) {
          // Everything is committed and the watermark moved with the clock: record it, so a
          // restart judges lateness exactly as this run did.
          const wm = this.watermark.value;
          await this.checkpoints.save({ seq: this.counters.committedSeq, wm, at: new Date().toISOString() });
          this.storedWm = wm;
        }
      } catch (err) {
        this.log.warn({ err }, 'commit failed, will retry');
      }
    };
    // .finally runs after the assignment even when run() never awaits.
    this.committing = run().finally(() => (this.committing = null));
    return this.committing;
  }

  /** Graceful stop: stop pulling, let workers flush everything due, commit, drain. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.idleTimer) clearInterval(this.idleTimer);
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.messages?.stop();
    await this.loopDone;
    for (const slot of this.workers) slot.worker.postMessage({ t: 'stop' } satisfies MainToWorker);
    await Promise.all(this.workers.map((w) => w.stopped));
    if (this.commitTimer) clearInterval(this.commitTimer);
    await this.committing;
    await this.commit();
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
    for (const sub of this.apiSubs) sub.unsubscribe();
    await this.nc?.drain().catch(() => undefined);
    this.log.info({ counters: this.counters }, 'engine stopped');
  }
}


function headerSafe(s: string): string {
  return s.replace(/[\r\n\u0000]/g, ' ').slice(0, 1024);
}
