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
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg, type ConsumerMessages } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { Watermark } from '../operators/windows/watermark.js';
import { tumblingStart } from '../operators/windows/assign.js';
import type { WeirConfig } from './config.js';
import { decodeMessage, type DecodeLimits, type DecodeSink } from './decode.js';
import { ensureWindowTables } from './sink/questdb.js';
import { CheckpointStore, CHECKPOINT_BUCKET, checkpointApplies, ensureStreams, isNotFound, resetConsumer, type StreamNames } from './source.js';
import type { MainToWorker, WorkerInit, WorkerToMain } from './protocol.js';
import { partitionOf } from './partition.js';
import { streamSeqOf } from './ackinfo.js';
import { LiveView } from './live-view.js';
import { refusalReason, SeriesBudget, type SeriesRefusal } from './cardinality.js';
import { allReachable, untilReachable, type StartupOptions } from './startup.js';
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
  /** (event, window) pairs replayed after a restart for windows already complete in QuestDB, skipped (see `durable`). */
  replaySkipped: number;
  commits: number;
  committedSeq: number;
  lastSeq: number;
  watermark: number;
  flushFailures: number;
  /** Times the source stopped fetching because QuestDB held back `sink.maxPendingRows` rows, and for how long in all (ms). */
  backpressurePauses: number;
  backpressureMs: number;
  /** Times the consumer was positioned again after the checkpoint's or the last processed sequence (NATS reconnects, vanished stream). */
  repositions: number;
  /** Times the event stream was found deleted (and recreated). */
  streamsRecreated: number;
  /** Events dead-lettered because their metric had limits.maxSeriesPerWindow series open in their window (also in deadLettered). */
  seriesRejected: number;
  /** Wall time (ms) the first message of this run was processed, and the last batch finished by the workers. */
  firstMessageAt: number;
  lastBatchDoneAt: number;
}

interface PendingRecord {
  id: number;
  lastSeq: number;
  /** The message to AckAll once committed; null when its consumer or stream is gone (a later ack covers it). */
  lastMsg: JsMsg | null;
  /** The consumer generation the message came from: acks go only to the current consumer. */
  gen: number;
  /** Latest time at which a window this batch touched becomes final. */
  maxFinal: number;
  /** The watermark in force before the next batch (idle advances move it). */
  wmNext: number;
  workersPending: number;
  publishesPending: number;
  failed: boolean;
  /**
   * Earliest final time of the decision windows of the batch's events refused by the cardinality
   * bound: no checkpoint may make such a window durable before their dead letters are stored.
   */
  seriesFinal: number;
}

interface WorkerSlot {
  worker: Worker;
  flushedWm: number;
  inflight: number;
  /** Events of the batches in flight (handed over, not yet done), and each batch's share, in order. */
  inflightEvents: number;
  batchEvents: number[];
  /** Rows the worker holds that QuestDB has not acknowledged (as of its latest report). */
  pendingRows: number;
  /** Its latest QuestDB flush failed. */
  writeFailing: boolean;
  stopped: Promise<void>;
}

/**
 * Source batches a worker may have been handed and not finished: one it works on, the rest
 * queued in its message port. The engine reads ahead of its slowest worker by at most this
 * many batches (each at most `fetch.batch` messages or `fetch.maxBytes` bytes, plus the one a
 * linger timer or a full buffer hands over), and the client's pull buffer: never the backlog
 * (docs/faults.md, "Overload").
 */
export const MAX_INFLIGHT_BATCHES = 4;

/** Dead-letter and late-event publishes awaiting JetStream's ack at once; more wait in the queue (and hold the source). */
const MAX_DLQ_INFLIGHT = 1024;

/** The source message of dead letters and late events, shared by all of them. */
interface SourceMsg {
  subject: string;
  seq: number;
  /** The subject's metric, or _invalid. */
  metric: string;
  /** Nats-Msg-Id suffix naming the event stream (epochTag). */
  tag: string;
}

/**
 * A dead letter (weir.dlq.<metric>) or late event (weir.late.<metric>) waiting to be published.
 * Compact: a flood of bad events queues one of these per event; its text, headers and Nats-Msg-Id
 * are built only when its publish starts.
 */
interface DeadLetter {
  rec: PendingRecord | null;
  src: SourceMsg;
  /** Index in the source message (-1: the whole message). */
  index: number;
  /** 0: refused by the decoder (reason, raw); 1: refused by the cardinality bound (refusal, event); 2: late (watermark, event). */
  kind: 0 | 1 | 2;
  reason: string | null;
  raw: string | null;
  refusal: SeriesRefusal | null;
  wm: number;
  key: string;
  value: number;
  ts: number;
  tags: Readonly<Record<string, string>> | undefined;
}

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
    replaySkipped: 0,
    commits: 0,
    committedSeq: 0,
    lastSeq: 0,
    watermark: -Infinity,
    flushFailures: 0,
    backpressurePauses: 0,
    backpressureMs: 0,
    repositions: 0,
    streamsRecreated: 0,
    seriesRejected: 0,
    firstMessageAt: 0,
    lastBatchDoneAt: 0,
  };
  private nc!: NatsConnection;
  private js!: JetStreamClient;
  private jsm!: JetStreamManager;
  /** Connected to NATS right now (false from a disconnect until the reconnect). */
  private natsConnected = false;
  /** Identity (creation time) of the event stream the consumer reads; sequences count in it. */
  private streamId = '';
  /** Consumer generation: bumped each time the consumer is (re)created. */
  private gen = 0;
  private repositioning: Promise<void> | null = null;
  /** Tells the source loop to end (a reposition replaces it). */
  private loopStop = false;
  private repositionAgain = false;
  private streamTimer: NodeJS.Timeout | null = null;
  private checkingStreams = false;
  /** Callers of waitForRoom(), woken by every worker report. */
  private roomWaiters: (() => void)[] = [];
  /** Since when the source has been stopped by back-pressure (0 = fetching). */
  private pausedSince = 0;
  private checkpoints!: CheckpointStore;
  private watermark!: Watermark;
  private workers: WorkerSlot[] = [];
  private queue: PendingRecord[] = [];
  private recordById = new Map<number, PendingRecord>();
  private nextRecordId = 1;
  private storedWm = -Infinity;
  /**
   * Windows whose final time (end + allowed lateness) is at or before this are complete in
   * QuestDB (from the checkpoint, then from every commit). After a restart, a replayed event for
   * such a window was taken into it by the run before: it is skipped for that window, neither
   * added again to a rebuilt, partial window (which would replace the complete row) nor counted
   * late.
   */
  private durable = -Infinity;
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
  /** Distinct keys per metric and window (limits.maxSeriesPerWindow), judged in stream order. */
  readonly series: SeriesBudget;
  /**
   * Dead letters and late events to publish, in order (from dlqHead on), and how many publishes
   * are in flight (at most MAX_DLQ_INFLIGHT). While any waits, the source takes no more messages.
   */
  private dlqQueue: DeadLetter[] = [];
  private dlqHead = 0;
  private dlqActive = 0;

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
    this.series = new SeriesBudget(config.limits.maxSeriesPerWindow, config.limits.maxSeriesTotal);
  }

  get natsConnection(): NatsConnection {
    return this.nc;
  }

  /**
   * Health of the engine's parts, for /readyz and gRPC health: NATS connected (not merely
   * reconnecting), workers alive, QuestDB taking rows (the latest flush of every worker
   * succeeded). Also: rows waiting for QuestDB and whether back-pressure holds the source.
   */
  health(): { nats: boolean; workers: boolean; questdbWrites: boolean; lagMessages: number; pendingRows: number; backpressure: boolean } {
    return {
      nats: !!this.nc && !this.nc.isClosed() && this.natsConnected,
      workers: this.workers.length > 0 && this.workerErrors.length === 0,
      questdbWrites: this.workers.every((w) => !w.writeFailing),
      lagMessages: this.lastPending,
      pendingRows: this.pendingRows(),
      backpressure: this.pausedSince > 0,
    };
  }

  /** Rows QuestDB has not acknowledged yet, over all workers. */
  pendingRows(): number {
    let n = 0;
    for (const w of this.workers) n += w.pendingRows;
    return n;
  }

  /** Batches and events handed to the workers that they have not processed yet, over all workers. */
  inflight(): { batches: number; events: number } {
    let batches = 0;
    let events = 0;
    for (const w of this.workers) {
      batches += w.inflight;
      events += w.inflightEvents;
    }
    return { batches, events };
  }

  /** Seconds the source has spent stopped by back-pressure, the current pause included. */
  backpressureSeconds(): number {
    return (this.counters.backpressureMs + (this.pausedSince ? Date.now() - this.pausedSince : 0)) / 1000;
  }

  /** Connects, creates what is missing, restores the checkpoint and starts consuming. */
  async start(onFatal?: (err: Error) => void): Promise<void> {
    this.fatal = onFatal ?? null;
    const cfg = this.config;
    // NATS or QuestDB may be down or still starting: retry both until startupTimeout, then fail
    // naming what stayed unreachable (engine/startup.ts).
    const wait: StartupOptions = { deadline: Date.now() + cfg.startupTimeout, timeoutMs: cfg.startupTimeout, log: this.log, stopped: () => this.stopping };
    const [nc] = await allReachable<[NatsConnection, void]>([
      untilReachable({ name: 'NATS', url: cfg.natsUrl }, (timeout) => connect({ servers: cfg.natsUrl, name: 'weir-engine', maxReconnectAttempts: -1, noAsyncTraces: true, timeout }), wait),
      untilReachable({ name: 'QuestDB', url: cfg.questdbHttp }, () => ensureWindowTables(cfg.questdbHttp, cfg.pipeline.windows.map((w) => w.table)), wait),
    ]);
    this.nc = nc;
    this.natsConnected = true;
    this.watchConnection();
    this.js = jetstream(this.nc);
    const found = await untilReachable(
      { name: 'NATS JetStream', url: cfg.natsUrl },
      async () => {
        this.jsm = await jetstreamManager(this.nc);
        this.checkpoints = await CheckpointStore.open(this.js, this.names.consumer);
        const ck = await this.checkpoints.load();
        return { ck, streams: await ensureStreams(this.jsm, this.names, this.log, ck !== null) };
      },
      wait,
    );
    let ck = found.ck;
    const streams = found.streams;
    if (streams.created.includes(this.names.events) && ck) this.counters.streamsRecreated++;
    this.streamId = streams.events.created;
    if (ck && !checkpointApplies(ck, streams.events)) {
      this.log.error(
        { checkpoint: ck, stream: this.names.events, created: streams.events.created, lastSeq: streams.events.state.last_seq },
        `the checkpoint (seq ${ck.seq}) belongs to a deleted stream ${this.names.events}: reading the current stream from its start, with the checkpoint's watermark`,
      );
      ck = { ...ck, seq: 0 };
    }
    const wm0 = ck && ck.wm > -1e299 ? ck.wm : -Infinity;
    this.storedWm = wm0;
    this.durable = ck?.durable !== undefined && ck.durable > -1e299 ? ck.durable : -Infinity;
    this.counters.committedSeq = ck?.seq ?? 0;
    this.counters.lastSeq = ck?.seq ?? 0;
    this.watermark = new Watermark({ maxOutOfOrdernessMs: cfg.pipeline.maxOutOfOrderness, idleTimeoutMs: cfg.pipeline.idleTimeout }, wm0);
    this.counters.watermark = wm0;
    this.log.info({ checkpoint: ck }, ck ? 'restoring from checkpoint' : 'no checkpoint: starting from the beginning of the stream');

    await this.startWorkers(wm0);

    await this.openConsumer((ck?.seq ?? 0) + 1);
    this.commitTimer = setInterval(() => void this.commit(), cfg.flushInterval);
    if (cfg.results.enabled) this.startLiveApi();
    this.idleTimer = setInterval(() => this.idleTick(), Math.min(500, cfg.pipeline.idleTimeout));
    this.streamTimer = setInterval(() => void this.checkStreams(), cfg.stream.checkInterval);
  }

  /** ack_wait of the consumer: longer than any message is held before its commit. */
  private ackWaitMs(): number {
    const p = this.config.pipeline;
    return Math.max(600_000, 3 * (this.maxWindowMs + p.allowedLateness + p.maxOutOfOrderness + p.idleTimeout));
  }

  /** (Re)creates the durable consumer at `fromSeq` and starts the source loop on it. */
  private async openConsumer(fromSeq: number): Promise<void> {
    const { consumer, pending } = await resetConsumer(this.nc, this.js, this.names, fromSeq, this.ackWaitMs(), this.log);
    this.gen++;
    this.loopStop = false;
    this.lastPending = pending;
    this.lastMsgAt = Date.now();
    const messages = await consumer.consume({ max_messages: this.config.fetch.batch * 4 });
    this.messages = messages;
    this.loopDone = this.consumeLoop(messages).catch((err) => this.die(err));
    // The client keeps pulling through NATS restarts by itself, but a consumer or stream that
    // was deleted is only reported: position again (recreating what is missing).
    void (async () => {
      for await (const st of messages.status()) {
        if (st.type === 'consumer_deleted' || st.type === 'consumer_not_found' || st.type === 'stream_not_found') {
          void this.reposition(`JetStream reports ${st.type}`);
          break;
        }
      }
    })().catch(() => undefined);
  }

  /** Tracks the NATS connection: readiness follows it, and a reconnect positions the consumer again. */
  private watchConnection(): void {
    void (async () => {
      for await (const st of this.nc.status()) {
        if (st.type === 'disconnect') {
          if (this.natsConnected) this.log.warn({ server: st.server }, 'NATS connection lost; reconnecting (not ready meanwhile)');
          this.natsConnected = false;
        } else if (st.type === 'reconnect') {
          this.natsConnected = true;
          this.log.info({ server: st.server }, 'NATS reconnected');
          void this.reposition('NATS reconnected');
        }
      }
    })().catch(() => undefined);
  }

  /**
   * Stops the source loop and creates the consumer again right after the last message
   * processed (the engine owns its position). After a NATS restart or a network blip this
   * closes any gap of messages the server counted as delivered that never arrived (they would
   * come back only after ack_wait); if the event stream vanished, it is recreated (loudly) and
   * read from its start. Retried with back-off until it works or the engine stops.
   */
  private reposition(reason: string): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (this.repositioning) {
      this.repositionAgain = true;
      return this.repositioning;
    }
    const run = async () => {
      do {
        this.repositionAgain = false;
        this.log.warn({ reason, lastSeq: this.counters.lastSeq }, 'positioning the consumer again after the last message processed');
        this.loopStop = true;
        this.messages?.stop();
        this.wakeRoomWaiters();
        await this.loopDone;
        for (let attempt = 0; !this.stopping; attempt++) {
          try {
            const id = await this.ensureStreamsNow();
            if (id !== this.streamId) this.newEpoch(id);
            if (this.stopping) break;
            await this.openConsumer(this.counters.lastSeq + 1);
            this.counters.repositions++;
            break;
          } catch (err) {
            const wait = Math.min(5000, 250 * 2 ** Math.min(attempt, 5));
            this.log.warn({ err: (err as Error).message, attempt, retryInMs: wait }, 'cannot position the consumer yet; retrying');
            await sleep(wait);
          }
        }
      } while (this.repositionAgain && !this.stopping);
    };
    this.repositioning = run().finally(() => (this.repositioning = null));
    return this.repositioning;
  }

  /**
   * Makes sure the event and dead-letter streams and the checkpoint bucket exist, recreating a
   * missing one loudly. Returns the event stream's identity (creation time).
   */
  private async ensureStreamsNow(): Promise<string> {
    const streams = await ensureStreams(this.jsm, this.names, this.log, true);
    try {
      await this.jsm.streams.info(`KV_${CHECKPOINT_BUCKET}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      this.log.error(`checkpoint bucket ${CHECKPOINT_BUCKET} vanished: recreating it (the next commit writes the checkpoint again)`);
      this.checkpoints = await CheckpointStore.open(this.js, this.names.consumer);
    }
    return streams.events.created;
  }

  /**
   * The event stream was deleted and created again (by us or anyone): a new epoch. Its
   * sequences count from 1, so the position restarts at 0; batches of the old stream still in
   * flight are committed without an ack (their consumer is gone). Only with the source loop
   * stopped.
   */
  private newEpoch(streamId: string): void {
    this.counters.streamsRecreated++;
    this.log.error(
      { stream: this.names.events, was: this.streamId, now: streamId, lastSeq: this.counters.lastSeq },
      `stream ${this.names.events} is not the one the engine was reading (deleted and created again): reading the new one from its start`,
    );
    this.streamId = streamId;
    this.counters.lastSeq = 0;
    this.counters.committedSeq = 0;
    for (const r of this.queue) {
      r.lastSeq = 0;
      r.lastMsg = null;
    }
  }

  /** Periodic check that the streams still exist (a missing one is recreated); a new event stream repositions the consumer. */
  private async checkStreams(): Promise<void> {
    if (this.stopping || this.repositioning || this.checkingStreams || !this.natsConnected) return;
    this.checkingStreams = true;
    try {
      const id = await this.ensureStreamsNow();
      if (id !== this.streamId) void this.reposition(`stream ${this.names.events} vanished or was replaced`);
    } catch (err) {
      // NATS away or slow: the next check, or the reconnect, handles it.
      this.log.warn({ err: (err as Error).message }, 'stream check failed; will retry');
    } finally {
      this.checkingStreams = false;
    }
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
      const slot: WorkerSlot = { worker, flushedWm: wm0, inflight: 0, inflightEvents: 0, batchEvents: [], pendingRows: 0, writeFailing: false, stopped: new Promise((r) => (resolveStopped = r)) };
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
        slot.inflightEvents -= slot.batchEvents.shift() ?? 0;
        slot.pendingRows = m.pendingRows;
        this.counters.assigned += m.assigned;
        this.counters.replaySkipped += m.replaySkipped;
        for (const [w, n] of Object.entries(m.late)) this.counters.lateByWindow[w] = (this.counters.lateByWindow[w] ?? 0) + n;
        const rec = this.recordById.get(m.id);
        if (rec) rec.workersPending--;
        this.counters.lastBatchDoneAt = Date.now();
        this.wakeRoomWaiters();
        break;
      }
      case 'flushed':
        if (m.wm > slot.flushedWm) slot.flushedWm = m.wm;
        slot.pendingRows = m.pendingRows;
        slot.writeFailing = false;
        this.counters.rowsWritten += m.rows;
        this.wakeRoomWaiters();
        break;
      case 'results':
        this.onResults(m.results);
        break;
      case 'flushFailed':
        this.counters.flushFailures++;
        slot.pendingRows = m.pendingRows;
        slot.writeFailing = true;
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

  private wakeRoomWaiters() {
    if (this.roomWaiters.length === 0) return;
    const w = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of w) wake();
  }

  /** Room to hand the workers another batch: none is swamped, and QuestDB holds back fewer rows than the bound. */
  private hasRoom(): boolean {
    for (const slot of this.workers) if (slot.inflight >= MAX_INFLIGHT_BATCHES) return false;
    // Dead letters waiting for a publish slot: take no more messages until they are out.
    if (this.dlqHead < this.dlqQueue.length) return false;
    return this.pendingRows() < this.config.sink.maxPendingRows;
  }

  /**
   * Back-pressure: waits while a worker is swamped or QuestDB holds back `sink.maxPendingRows`
   * rows (it is down or slow). The source then stops iterating, so the client stops pulling (it
   * pulls only as messages are taken): events wait in JetStream, never dropped. A reposition or
   * a stop ends the wait.
   */
  private async waitForRoom(): Promise<void> {
    while (!this.hasRoom() && !this.stopping && !this.loopStop) {
      // A wait that began for a busy worker becomes back-pressure once QuestDB holds the bound.
      if (!this.pausedSince && this.pendingRows() >= this.config.sink.maxPendingRows) {
        this.pausedSince = Date.now();
        this.counters.backpressurePauses++;
        this.log.warn({ pendingRows: this.pendingRows(), maxPendingRows: this.config.sink.maxPendingRows }, 'QuestDB is not taking rows: the buffer is full, stopped fetching events (back-pressure)');
      }
      await new Promise<void>((r) => this.roomWaiters.push(r));
    }
    if (this.pausedSince) {
      const ms = Date.now() - this.pausedSince;
      this.counters.backpressureMs += ms;
      this.pausedSince = 0;
      this.log.info({ pausedMs: ms, pendingRows: this.pendingRows() }, 'fetching events again');
    }
  }

  private async consumeLoop(messages: ConsumerMessages): Promise<void> {
    let batch: JsMsg[] = [];
    let scheduled = false;
    const max = this.config.fetch.batch;
    const maxBytes = this.config.fetch.maxBytes;
    let bytes = 0;
    let flushPromise: Promise<void> = Promise.resolve();
    const flushNow = () => {
      scheduled = false;
      if (batch.length === 0) return;
      const msgs = batch;
      batch = [];
      bytes = 0;
      this.processBatch(msgs);
    };
    for await (const msg of messages) {
      batch.push(msg);
      bytes += msg.data.length;
      if (batch.length >= max || bytes >= maxBytes || !this.hasRoom()) {
        // A full batch, or no room: hand over what we have, then take no more until there is room.
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
      if (this.stopping || this.loopStop) break;
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
    const durable = this.durable;
    const windows = cfg.pipeline.windows;
    const lateness = cfg.pipeline.allowedLateness;
    let maxTs = -Infinity;
    let maxFinal = -Infinity;
    let seriesFinal = Infinity;
    const publishes: DeadLetter[] = [];
    let current: JsMsg = msgs[0];
    let src: SourceMsg | null = null;
    const srcOf = (): SourceMsg => (src ??= this.sourceMsg(current));
    let index = 0;
    const sink: DecodeSink = {
      accept: (metric, key, ts, value, tags) => {
        const i = index++;
        this.counters.eventsAccepted++;
        let final = -Infinity;
        // The decision window of the cardinality bound: the event's window that is final last.
        let decision = windows[0];
        for (const w of windows) {
          const f = tumblingStart(ts, w.size) + w.size + lateness;
          if (f > final) {
            final = f;
            decision = w;
          }
        }
        if (final <= wmBefore) {
          this.counters.lateDropped++;
          publishes.push(this.deadLetter(srcOf(), i, 2, { wm: wmBefore, key, value, ts }));
          return;
        }
        if (ts > maxTs) maxTs = ts;
        if (final <= durable) {
          // Replayed, and every window of it is already complete in QuestDB with it.
          this.counters.replaySkipped += windows.length;
          return;
        }
        const over = this.series.admit(metric, key, { name: decision.name, start: final - lateness - decision.size, final });
        if (over !== null) {
          // Its event time still counts for the watermark (above), as it does on a replay that skips it.
          this.counters.eventsAccepted--;
          this.counters.deadLettered++;
          this.counters.seriesRejected++;
          if (final < seriesFinal) seriesFinal = final;
          publishes.push(this.deadLetter(srcOf(), i, 1, { refusal: over, key, value, ts, tags }));
          return;
        }
        if (final > maxFinal) maxFinal = final;
        const s = metric + '\u0001' + key;
        const p = W === 1 ? 0 : partitionOf(s, W);
        series[p].push(s);
        tss[p].push(ts);
        vals[p].push(value);
      },
      reject: (reason, i, raw) => {
        if (i >= 0) index++;
        this.counters.deadLettered++;
        publishes.push(this.deadLetter(srcOf(), i, 0, { reason, raw }));
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
      src = null;
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
    this.series.evict(wmAfter);
    const rec: PendingRecord = {
      id: this.nextRecordId++,
      lastSeq: this.counters.lastSeq,
      lastMsg,
      gen: this.gen,
      maxFinal,
      wmNext: wmAfter,
      workersPending: W,
      publishesPending: publishes.length,
      failed: false,
      seriesFinal,
    };
    for (const d of publishes) {
      d.rec = rec;
      this.dlqQueue.push(d);
    }
    this.pumpDeadLetters();
    this.queue.push(rec);
    this.recordById.set(rec.id, rec);
    for (let p = 0; p < W; p++) {
      const ts = Float64Array.from(tss[p]);
      const values = Float64Array.from(vals[p]);
      const m: MainToWorker = { t: 'batch', id: rec.id, series: series[p], ts, values, wmBefore, wmAfter, ...(durable > wmBefore ? { durable } : {}) };
      this.workers[p].inflight++;
      this.workers[p].inflightEvents += ts.length;
      this.workers[p].batchEvents.push(ts.length);
      this.workers[p].worker.postMessage(m, [ts.buffer, values.buffer]);
    }
  }

  private sourceMsg(msg: JsMsg): SourceMsg {
    const metric = /^weir\.events\.([A-Za-z0-9_:-]+)$/.exec(msg.subject)?.[1] ?? '_invalid';
    return { subject: msg.subject, seq: msg.seq, metric, tag: this.epochTag() };
  }

  private deadLetter(src: SourceMsg, index: number, kind: DeadLetter['kind'], f: Partial<DeadLetter>): DeadLetter {
    return {
      rec: null,
      src,
      index,
      kind,
      reason: f.reason ?? null,
      raw: f.raw ?? null,
      refusal: f.refusal ?? null,
      wm: f.wm ?? 0,
      key: f.key ?? '',
      value: f.value ?? 0,
      ts: f.ts ?? 0,
      tags: f.tags,
    };
  }

  /**
   * Nats-Msg-Id suffix naming the event stream (its creation time), so that the dead letters of
   * a recreated stream, whose sequences start at 1 again, are not taken for duplicates of the
   * old one's.
   */
  private epochTag(): string {
    const t = Date.parse(this.streamId);
    return Number.isFinite(t) ? `@${t.toString(36)}` : '';
  }

  /**
   * Starts the publishes of queued dead letters and late events, at most MAX_DLQ_INFLIGHT at a
   * time; each one's batch counts it until JetStream has stored it.
   */
  private pumpDeadLetters(): void {
    while (this.dlqActive < MAX_DLQ_INFLIGHT && this.dlqHead < this.dlqQueue.length) {
      const d = this.dlqQueue[this.dlqHead];
      this.dlqQueue[this.dlqHead++] = undefined as unknown as DeadLetter;
      this.dlqActive++;
      this.publishDurably(d)
        .then(
          () => d.rec!.publishesPending--,
          (err) => {
            d.rec!.failed = true;
            this.die(new Error(`dead-letter publish failed: ${(err as Error).message}`));
          },
        )
        .finally(() => {
          this.dlqActive--;
          this.pumpDeadLetters();
          if (this.dlqHead >= this.dlqQueue.length) this.wakeRoomWaiters();
        });
    }
    if (this.dlqHead === this.dlqQueue.length) {
      this.dlqQueue = [];
      this.dlqHead = 0;
    } else if (this.dlqHead > 65_536 && this.dlqHead * 2 > this.dlqQueue.length) {
      this.dlqQueue = this.dlqQueue.slice(this.dlqHead);
      this.dlqHead = 0;
    }
  }

  /**
   * A dead-letter or late-event publish, retried until JetStream stores it (NATS restarting,
   * the dead-letter stream being recreated): the message's batch is not committed before, and
   * Nats-Msg-Id makes a retry of a publish that was in fact stored a no-op. Gives up only when
   * the engine stops (the batch is then uncommitted and replayed on restart).
   */
  private async publishDurably(d: DeadLetter): Promise<unknown> {
    const { src } = d;
    const h = headers();
    let subject: string;
    let data: string;
    let reason: string;
    if (d.kind === 2) {
      subject = `weir.late.${src.metric}`;
      data = JSON.stringify({ key: d.key, value: d.value, ts: d.ts });
      reason = `event time ${new Date(d.ts).toISOString()} is past allowed lateness (watermark ${new Date(d.wm).toISOString()})`;
    } else {
      subject = `weir.dlq.${src.metric}`;
      if (d.kind === 1) {
        data = JSON.stringify(d.tags === undefined ? { key: d.key, value: d.value, ts: d.ts } : { key: d.key, value: d.value, ts: d.ts, tags: d.tags });
        reason = `${refusalReason(d.refusal!, d.key, src.metric)} at index ${d.index} (subject ${src.subject})`;
      } else {
        data = d.raw!;
        reason = d.reason!;
      }
    }
    h.set('Weir-Reason', headerSafe(reason));
    if (d.kind !== 2) h.set('Weir-Source-Subject', headerSafe(src.subject));
    h.set('Weir-Source-Seq', String(src.seq));
    if (d.index >= 0) h.set('Weir-Index', String(d.index));
    const opts = { headers: h, msgID: `${d.kind === 2 ? 'late' : 'dlq'}:${src.seq}:${d.index}${src.tag}` };
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.js.publish(subject, data, opts);
      } catch (err) {
        if (this.stopping) throw err;
        if (attempt % 20 === 0) this.log.warn({ subject, err: (err as Error).message, attempt }, 'dead-letter publish failed; retrying');
        if (isNotFound(err) || /no responders/i.test((err as Error).message)) void this.checkStreams();
        await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)));
      }
    }
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
    this.series.evict(wm);
    const tail = this.queue[this.queue.length - 1];
    if (tail) tail.wmNext = wm;
    for (const slot of this.workers) slot.worker.postMessage({ t: 'advance', wm } satisfies MainToWorker);
  }

  /**
   * Commits the longest prefix of batches whose windows are final and flushed: checkpoint first,
   * then AckAll. The batches leave the queue only once the checkpoint is saved: a failed save
   * (NATS away) leaves them to the next attempt.
   */
  commit(): Promise<void> {
    if (this.committing) return this.committing;
    const run = async () => {
      try {
        const flushed = Math.min(...this.workers.map((w) => w.flushedWm));
        let k = 0;
        while (k < this.queue.length) {
          const r = this.queue[k];
          if (r.workersPending > 0 || r.publishesPending > 0 || r.failed || r.maxFinal > flushed) break;
          k++;
        }
        const stream = this.streamId;
        // Every window final at `flushed` is complete in QuestDB (later events for it are late).
        const durable = Math.max(this.durable, flushed);
        // A replay skips the events of windows final at `durable`, so the dead letters of events
        // the cardinality bound refused in such a window must be stored before the checkpoint
        // says so (they are not refused again): wait for them (a publish takes milliseconds).
        for (const r of this.queue) if (r.publishesPending > 0 && r.seriesFinal <= durable) return;
        if (k > 0) {
          const last = this.queue[k - 1];
          const seq = last.lastSeq;
          const wm = last.wmNext;
          await this.checkpoints.save({ seq, wm, durable, at: new Date().toISOString(), stream });
          for (const r of this.queue.splice(0, k)) this.recordById.delete(r.id);
          this.storedWm = wm;
          this.durable = durable;
          this.counters.commits++;
          if (stream === this.streamId) this.counters.committedSeq = seq;
          if (last.lastMsg && last.gen === this.gen && this.natsConnected) last.lastMsg.ack();
        } else if (this.queue.length === 0 && this.watermark.value > this.storedWm && this.watermark.value <= flushed) {
          // Everything is committed and the watermark moved with the clock: record it, so a
          // restart judges lateness exactly as this run did.
          const wm = this.watermark.value;
          await this.checkpoints.save({ seq: this.counters.committedSeq, wm, durable, at: new Date().toISOString(), stream });
          this.storedWm = wm;
          this.durable = durable;
        }
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'commit failed, will retry');
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
    if (this.streamTimer) clearInterval(this.streamTimer);
    this.wakeRoomWaiters();
    await this.repositioning;
    this.messages?.stop();
    await this.loopDone;
    for (const slot of this.workers) slot.worker.postMessage({ t: 'stop' } satisfies MainToWorker);
    await Promise.all(this.workers.map((w) => w.stopped));
    if (this.commitTimer) clearInterval(this.commitTimer);
    await this.committing;
    // Nothing to commit when the start never got as far as the checkpoint.
    if (this.watermark) await this.commit();
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
    for (const sub of this.apiSubs) sub.unsubscribe();
    await this.nc?.drain().catch(() => undefined);
    this.log.info({ counters: this.counters }, 'engine stopped');
  }
}


function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function headerSafe(s: string): string {
  return s.replace(/[\r\n\u0000]/g, ' ').slice(0, 1024);
}
