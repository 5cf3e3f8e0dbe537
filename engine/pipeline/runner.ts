/**
 * Runs one declared pipeline against the real stack: reads its metrics from the WEIR_EVENTS
 * stream, feeds the pure PipelineRuntime, writes its rows and alert transitions to QuestDB,
 * publishes live results on weir.results.<pipeline>.<pipeline>.<keyToken> and alerts on
 * weir.alerts.<pipeline>.<rule>, and serves Latest/TopK/status on weir.api.<pipeline>.*.
 *
 * Delivery (docs/pipelines.md, "Delivery"): every `checkpointIntervalMs`, and when it stops, the
 * runner takes a snapshot of its state between two batches (PipelineRuntime.snapshot, the live
 * view, the watermark, the counters) with the stream sequence of the last message it processed,
 * flushes every row and alert transition emitted so far to QuestDB, and only then records the
 * checkpoint in KV (engine/pipeline/checkpoint.ts), and then acks (AckAll) the message at `seq` on
 * its durable consumer `weir-pipeline-<name>`: acks follow checkpoints, so the consumer's ack
 * floor is the position the pipeline would restart from (what `nats consumer report` shows). On
 * start it restores the checkpoint and creates the consumer again at `seq + 1` (the runner owns
 * its position, as the engine does); rows it rewrites are upserts (DEDUP), so the effect is
 * exactly once. Without a usable checkpoint (none, unreadable, or taken with another spec) it
 * reads the stream from its start, as before checkpoints, and says so loudly. A gap in the
 * consumer's delivery sequence (a message lost in a reconnect), a NATS reconnect, or the consumer
 * or stream vanishing positions the consumer again after the last message processed; a
 * redelivery of a message already in the state is skipped by its stream sequence. Until it has
 * caught up with the stream, live results and alert messages are not published (rows still are),
 * so subscribers do not get a flood of history.
 */
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamClient, type JsMsg, type StreamInfo } from '@nats-io/jetstream';
import { isNotFound } from '../source.js';
import type { Logger } from 'pino';
import { decodeMessage, type DecodeLimits } from '../decode.js';
import { serveLiveApi } from '../live-api.js';
import { LiveView, type TopAnswer, type TopQuery } from '../live-view.js';
import { keyToken } from '../subjects.js';
import { Watermark } from '../../operators/windows/watermark.js';
import { PipelineRuntime, type KeyedSample, type PipelineResult, type RuntimeOutput } from './runtime.js';
import { PipelineWriter } from './sink.js';
import { CheckpointStore, type PipelineCheckpoint } from './checkpoint.js';
import type { PipelineSpec } from './spec.js';

export interface RunnerOptions {
  spec: PipelineSpec;
  natsUrl: string;
  questdbHttp: string;
  stream: string;
  limits: DecodeLimits;
  maxOutOfOrdernessMs: number;
  idleTimeoutMs: number;
  flushIntervalMs: number;
  /** Processing-time tick: early triggers, debounce, idle watermark. */
  tickMs: number;
  /** How often the state is checkpointed (and once more on stop). Default 10 s. */
  checkpointIntervalMs?: number;
  /**
   * Back-pressure: at this many rows and alert transitions QuestDB has not taken (sink.maxPendingRows),
   * the runner stops taking messages until flushes bring it below; the messages wait in JetStream. Default 500,000.
   */
  maxPendingRows?: number;
  log: Logger;
}

export interface RunnerStatus {
  pipeline: string;
  watermark: number;
  events: number;
  skipped: Record<string, number>;
  late: number;
  results: number;
  alerts: number;
  pending: number;
  caughtUp: boolean;
  liveKeys: number;
  /** Debounced pipelines: rows offered to the debounce, and recalculations (a key's rows released together). */
  debounced?: number;
  recalculations?: number;
  rowsWritten: number;
  flushFailures: number;
  /** Stream sequence of the last message processed (or restored from). */
  lastSeq: number;
  /** The checkpoint this run started from: its stream sequence; 0 when it read the stream from its start. */
  restoredFrom: number;
  /** Why the stored checkpoint was not used (the run then read the stream from its start). */
  restoreError?: string;
  /** Events processed by this run (since start), as opposed to `events`, which continues across restarts. */
  eventsThisRun: number;
  /** The durable consumer, acks sent (one per checkpoint), and the stream sequence of the last one (its ack floor). */
  consumer: string;
  acks: number;
  ackedSeq: number;
  /** Redelivered messages skipped (already in the state), and times the consumer was positioned again (reconnects, gaps, a vanished consumer). */
  redeliveriesSkipped: number;
  repositions: number;
  /** Rows and alert transitions QuestDB has not taken yet; back-pressure on now, pauses so far and their seconds. */
  pendingRows: number;
  backpressure: boolean;
  backpressurePauses: number;
  backpressureSeconds: number;
  /** The last checkpoint recorded (by this run, or the one restored): its stream sequence and wall time. */
  checkpointSeq: number;
  checkpointAt: number;
  /** Checkpoints recorded by this run, and attempts that failed (rows not flushed, KV not reachable). */
  checkpoints: number;
  checkpointFailures: number;
  /**
   * The last one: bytes of the state before and after compression, bytes it wrote (incremental:
   * only the chunks of the state not stored yet, and the record), its chunks and how many it
   * wrote, and ms to take the snapshot and to write it. `checkpointWrittenTotal`: bytes written
   * by every checkpoint of this run.
   */
  checkpointRawBytes: number;
  checkpointBytes: number;
  checkpointWrittenBytes: number;
  checkpointWrittenTotal: number;
  checkpointChunks: number;
  checkpointChunksWritten: number;
  checkpointSnapshotMs: number;
  checkpointWriteMs: number;
  at: number;
}

export class PipelineRunner {
  private nc!: NatsConnection;
  private messages: ConsumerMessages | null = null;
  private writer!: PipelineWriter;
  private readonly runtime: PipelineRuntime;
  private readonly view: LiveView<PipelineResult, string>;
  private watermark: Watermark;
  private store!: CheckpointStore;
  private js!: JetStreamClient;
  private filter: string[] = [];
  private streamId = '';
  /** Consumer generation (bumped by every creation) and the last delivery sequence seen in it. */
  private generation = 0;
  private lastDelivery = 0;
  /** The last message processed, to ack (AckAll) once a checkpoint covers it; null when its consumer is gone. */
  private lastMsg: { msg: JsMsg; generation: number } | null = null;
  /** Why the source loop should position the consumer again ('' when it should not). */
  private repositionReason = '';
  private readonly delivery = { acks: 0, ackedSeq: 0, redeliveriesSkipped: 0, repositions: 0 };
  /** Health: connected to NATS now; since when flushes to QuestDB fail (0: the last one worked). */
  private natsConnected = true;
  private flushFailingSince = 0;
  private flushStartedAt = 0;
  /** Back-pressure: when the current pause began (0: none), pauses so far, and their total ms. */
  private readonly pause = { since: 0, count: 0, ms: 0 };
  /** Stream sequence of the last message processed. */
  private lastSeq = 0;
  /** Bumped by every batch and every tick that changed something; a checkpoint is written only when it moved. */
  private changes = 0;
  private savedChanges = 0;
  private checkpointing: Promise<void> | null = null;
  private eventsThisRun = 0;
  private readonly ck = { restoredFrom: 0, restoreError: undefined as string | undefined, seq: 0, at: 0, count: 0, failures: 0, raw: 0, stored: 0, written: 0, writtenTotal: 0, chunks: 0, chunksWritten: 0, snapshotMs: 0, writeMs: 0 };
  private apiSubs: Subscription[] = [];
  private timers: NodeJS.Timeout[] = [];
  private loop: Promise<void> | null = null;
  private flushing: Promise<boolean> | null = null;
  private stopping = false;
  private caughtUp = false;
  private readonly counters = { events: 0, results: 0, alerts: 0, rowsWritten: 0, flushFailures: 0, pending: 0 };

  private constructor(private readonly o: RunnerOptions) {
    this.runtime = new PipelineRuntime(o.spec);
    // Rolling rows start where each key's newest pane puts them: rank every key's newest row.
    this.view = new LiveView<PipelineResult, string>(o.spec.window.type === 'rolling');
    this.watermark = new Watermark({ maxOutOfOrdernessMs: o.maxOutOfOrdernessMs, idleTimeoutMs: o.idleTimeoutMs });
  }

  static async start(o: RunnerOptions): Promise<PipelineRunner> {
    const r = new PipelineRunner(o);
    await r.open();
    return r;
  }

  get name(): string {
    return this.o.spec.name;
  }

  private async open(): Promise<void> {
    const { spec, log } = this.o;
    this.nc = await connect({ servers: this.o.natsUrl, name: `weir-pipeline-${spec.name}`, maxReconnectAttempts: -1, noAsyncTraces: true });
    this.writer = await PipelineWriter.open(this.o.questdbHttp, spec.name, this.runtime.columns);
    const js = (this.js = jetstream(this.nc));
    const info = await (await jetstreamManager(this.nc)).streams.info(this.o.stream);
    this.streamId = info.created;
    this.store = await CheckpointStore.open(this.nc, js, spec.name);
    const startSeq = await this.restoreCheckpoint(info);
    this.filter = spec.source.metrics.includes('*') ? ['weir.events.>'] : spec.source.metrics.map((m) => `weir.events.${m}`);
    const pending = await this.createConsumer(startSeq);
    // Restored, with nothing after the checkpoint: caught up now, as the run that wrote it was (its
    // idle watermark waits idleTimeout from here). Without a checkpoint, an empty stream keeps the
    // watermark where it is until the first events arrive, whatever their age.
    this.counters.pending = pending;
    this.watermark.touch(Date.now());
    if (pending === 0 && this.ck.restoredFrom > 0) this.caughtUp = true;
    void this.watchConnection();
    this.apiSubs = serveLiveApi({
      nc: this.nc,
      pipeline: spec.name,
      view: this.view,
      windows: new Set(this.runtime.windows),
      fields: this.runtime.rankable,
      defaultBy: this.runtime.rankable[0],
      status: () => ({ ...this.status(), metrics: this.view.metrics() }),
      top: (q) => this.profileTop(q),
    });
    this.timers.push(setInterval(() => void this.flush(), this.o.flushIntervalMs));
    this.timers.push(setInterval(() => void this.checkpoint(), this.o.checkpointIntervalMs ?? 10_000));
    this.timers.push(setInterval(() => this.tick(), this.o.tickMs));
    this.timers.push(
      setInterval(() => {
        if (!this.nc.isClosed()) this.nc.publish(`weir.status.${spec.name}`, JSON.stringify(this.status()));
      }, 1000),
    );
    this.loop = this.consumeLoop().catch((err) => log.error({ err: (err as Error).message, pipeline: spec.name }, 'pipeline consumer stopped'));
    log.info(
      { pipeline: spec.name, subjects: this.filter, consumer: this.consumerName, columns: this.runtime.columns.length, fromSeq: startSeq, pending, caughtUp: this.caughtUp },
      this.ck.restoredFrom > 0 ? `pipeline started from its checkpoint (stream seq ${this.ck.restoredFrom})` : 'pipeline started (reading the stream from its start)',
    );
  }

  get consumerName(): string {
    return `weir-pipeline-${this.o.spec.name}`;
  }

  /**
   * (Re)creates the durable consumer so that it delivers from `fromSeq`, and starts consuming it.
   * AckAll, acked only after checkpoints: ack_wait is longer than many checkpoint intervals, and a
   * redelivery after it anyway is skipped by sequence. Returns the messages pending.
   */
  private async createConsumer(fromSeq: number): Promise<number> {
    const jsm = await jetstreamManager(this.nc);
    try {
      await jsm.consumers.delete(this.o.stream, this.consumerName);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const interval = this.o.checkpointIntervalMs ?? 10_000;
    await jsm.consumers.add(this.o.stream, {
      durable_name: this.consumerName,
      ack_policy: AckPolicy.All,
      ...(fromSeq > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq } : { deliver_policy: DeliverPolicy.All }),
      ack_wait: Math.max(600_000, 10 * interval) * 1_000_000,
      max_ack_pending: -1,
      max_deliver: -1,
      filter_subjects: this.filter,
    });
    const consumer = await this.js.consumers.get(this.o.stream, this.consumerName);
    const pending = (await consumer.info(true)).num_pending;
    this.generation++;
    this.lastDelivery = 0;
    this.lastMsg = null;
    this.messages = await consumer.consume({ max_messages: 2000 });
    const messages = this.messages;
    void (async () => {
      for await (const st of messages.status())
        if (st.type === 'consumer_deleted' || st.type === 'consumer_not_found' || st.type === 'stream_not_found') this.requestReposition(`JetStream reports ${st.type}`);
    })().catch(() => undefined);
    return pending;
  }

  /** Ends the source loop's current consumer; the loop then positions a new one after the last message processed. */
  private requestReposition(reason: string): void {
    if (this.stopping || this.repositionReason) return;
    this.repositionReason = reason;
    this.messages?.stop();
  }

  /** A NATS reconnect may have lost messages in flight: position the consumer again. */
  private async watchConnection(): Promise<void> {
    for await (const st of this.nc.status()) {
      if (st.type === 'disconnect') this.natsConnected = false;
      else if (st.type === 'reconnect') {
        this.natsConnected = true;
        this.requestReposition('NATS reconnected');
      }
    }
  }

  /**
   * For /readyz and gRPC health: connected to NATS, consuming (not waiting to position its
   * consumer), and QuestDB taking its rows (no flush has failed for longer than 5 s in a row).
   */
  health(): { pipeline: string; ready: boolean; nats: boolean; consuming: boolean; questdbWrites: boolean } {
    const nats = !this.nc.isClosed() && this.natsConnected;
    const consuming = this.repositionReason === '';
    // the ILP client retries a refused connection without end: a flush unanswered for 5 s counts as failing too
    const now = Date.now();
    const questdbWrites = (this.flushFailingSince === 0 || now - this.flushFailingSince < 5000) && (this.flushStartedAt === 0 || now - this.flushStartedAt < 5000);
    return { pipeline: this.o.spec.name, ready: nats && consuming && questdbWrites, nats, consuming, questdbWrites };
  }

  /**
   * Positions the consumer after the last message processed, retrying until NATS and the stream
   * are there. A stream created again (another creation time) is read from its start, on top of
   * the state (its sequences count from 1 again), with an error log line.
   */
  private async reposition(reason: string): Promise<void> {
    const { log, spec } = this.o;
    for (let attempt = 0; !this.stopping; attempt++) {
      try {
        const info = await (await jetstreamManager(this.nc)).streams.info(this.o.stream);
        if (info.created !== this.streamId) {
          log.error(
            { pipeline: spec.name, was: this.streamId, now: info.created, lastSeq: this.lastSeq },
            `stream ${this.o.stream} is not the one pipeline ${spec.name} was reading (deleted and created again): reading the new one from its start, on top of the state`,
          );
          this.streamId = info.created;
          this.lastSeq = 0;
        }
        const pending = await this.createConsumer(this.lastSeq + 1);
        this.delivery.repositions++;
        log.warn({ pipeline: spec.name, reason, fromSeq: this.lastSeq + 1, pending }, `pipeline ${spec.name}: consumer positioned again after the last message processed`);
        return;
      } catch (err) {
        if (attempt % 10 === 0) log.warn({ pipeline: spec.name, reason, err: (err as Error).message }, `pipeline ${spec.name}: cannot position the consumer yet; retrying`);
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** Math.min(attempt, 5))));
      }
    }
  }

  /**
   * Loads and restores the stored checkpoint; returns the stream sequence to read from (1: the
   * start). An unusable checkpoint leaves the runtime, view and watermark as they were built
   * (empty), and the whole stream is read again.
   */
  private async restoreCheckpoint(info: StreamInfo): Promise<number> {
    const { log, spec } = this.o;
    const t0 = performance.now();
    let cp: PipelineCheckpoint | null;
    try {
      cp = await this.store.load();
      if (!cp) {
        log.info({ pipeline: spec.name }, 'no checkpoint for this pipeline: reading the stream from its start');
        return 1;
      }
      // The view is decoded first and applied last: restore() leaves the runtime as it was if it refuses.
      const view = decodeView(cp.view, spec.name, this.runtime.windows);
      this.runtime.restore(cp.runtime);
      for (const [latest, lastFinal] of view) {
        if (lastFinal) this.view.update(lastFinal);
        if (latest !== lastFinal) this.view.update(latest);
      }
    } catch (err) {
      const reason = (err as Error).message;
      this.ck.restoreError = reason;
      log.error(
        { pipeline: spec.name, err: reason, key: this.store.key },
        `PIPELINE ${spec.name}: CHECKPOINT NOT USED, READING THE WHOLE STREAM AGAIN (a full replay: slow, and events the stream no longer retains are lost to this pipeline's state): ${reason}`,
      );
      return 1;
    }
    const restoreMs = performance.now() - t0;
    this.watermark = new Watermark({ maxOutOfOrdernessMs: this.o.maxOutOfOrdernessMs, idleTimeoutMs: this.o.idleTimeoutMs }, cp.watermark);
    Object.assign(this.counters, cp.counters);
    this.lastSeq = cp.seq;
    Object.assign(this.ck, { restoredFrom: cp.seq, seq: cp.seq, at: cp.at });
    log.info({ pipeline: spec.name, seq: cp.seq, at: new Date(cp.at).toISOString(), watermark: cp.watermark, events: cp.counters.events, restoreMs: Math.round(restoreMs), chars: cp.runtime.length + cp.view.length }, 'pipeline state restored from its checkpoint');
    if (cp.stream !== info.created) {
      log.error(
        { pipeline: spec.name, seq: cp.seq, checkpointStream: cp.stream, stream: info.created },
        `the checkpoint of pipeline ${spec.name} (seq ${cp.seq}) belongs to a deleted stream ${this.o.stream}: reading the current stream from its start, on top of the checkpoint's state`,
      );
      this.lastSeq = 0;
      return 1;
    }
    if (cp.seq + 1 < info.state.first_seq)
      log.error(
        { pipeline: spec.name, seq: cp.seq, firstSeq: info.state.first_seq },
        `the stream no longer holds messages ${cp.seq + 1}..${info.state.first_seq - 1} after the checkpoint of pipeline ${spec.name} (max age or purge): their events are missing from its state`,
      );
    return cp.seq + 1;
  }

  /**
   * Writes a checkpoint unless nothing changed since the last one. The snapshot is taken at once,
   * between two batches (processBatch and tick run to completion on this thread), so the state,
   * the stream position and the watermark agree. It is recorded only after a flush has made every
   * row and alert the state emitted durable in QuestDB: rows emitted after it are emitted again
   * on a restart from it, as upserts.
   */
  checkpoint(): Promise<void> {
    if (this.checkpointing) return this.checkpointing;
    this.checkpointing = this.writeCheckpoint()
      .catch((err) => {
        this.ck.failures++;
        this.o.log.warn({ pipeline: this.o.spec.name, err: (err as Error).message }, 'pipeline checkpoint not written, will retry');
      })
      .finally(() => (this.checkpointing = null));
    return this.checkpointing;
  }

  private async writeCheckpoint(): Promise<void> {
    if (this.changes === this.savedChanges || this.lastSeq === 0) return;
    const changes = this.changes;
    const ack = this.lastMsg;
    const t0 = performance.now();
    const { events, results, alerts, rowsWritten, flushFailures } = this.counters;
    const cp: PipelineCheckpoint = {
      pipeline: this.o.spec.name,
      seq: this.lastSeq,
      stream: this.streamId,
      watermark: this.watermark.value,
      counters: { events, results, alerts, rowsWritten, flushFailures },
      at: Date.now(),
      runtime: this.runtime.snapshot(),
      view: encodeView(this.view),
    };
    const snapshotMs = performance.now() - t0;
    // Flush before record: wait for a flush in flight, then flush whatever is buffered now.
    while (this.flushing) await this.flushing;
    if (!(await this.flush())) throw new Error('rows could not be flushed to QuestDB; the checkpoint is not recorded');
    const saved = await this.store.save(cp);
    this.savedChanges = changes;
    // Acks follow checkpoints: AckAll of the last message the checkpoint covers (not when its consumer was replaced since).
    if (ack && ack.generation === this.generation && !this.nc.isClosed()) {
      ack.msg.ack();
      this.delivery.acks++;
      this.delivery.ackedSeq = cp.seq;
    }
    Object.assign(this.ck, {
      seq: cp.seq,
      at: cp.at,
      count: this.ck.count + 1,
      raw: saved.raw,
      stored: saved.stored,
      written: saved.written,
      writtenTotal: this.ck.writtenTotal + saved.written,
      chunks: saved.chunks,
      chunksWritten: saved.chunksWritten,
      snapshotMs,
      writeMs: saved.ms,
    });
    this.o.log.debug(
      { pipeline: this.o.spec.name, seq: cp.seq, raw: saved.raw, stored: saved.stored, written: saved.written, chunks: saved.chunks, chunksWritten: saved.chunksWritten, snapshotMs: Math.round(snapshotMs), writeMs: Math.round(saved.ms) },
      'pipeline checkpoint written',
    );
  }

  /**
   * Top-K by a score profile comes from the score board's ranking, which stays exact when a
   * running normaliser (zscore, rank, open minmax) moves every entity's score; the rows carry
   * each entity's score as of its last update. Ascending order and final scope use the view.
   */
  private profileTop(q: TopQuery<string>): TopAnswer<PipelineResult> | undefined {
    if (q.order !== 'desc' || q.scope !== 'current' || !this.runtime.profiles.includes(q.by)) return undefined;
    const ranked = this.runtime.topProfile(q.window, q.by, q.k);
    const entries: PipelineResult[] = [];
    let start: number | null = null;
    for (const { key, score } of ranked) {
      const [row] = this.view.latest(q.metric, key, q.window);
      if (!row) continue;
      start ??= row.start;
      entries.push(row[q.by] === score ? row : { ...row, [q.by]: score });
    }
    return { window: q.window, start, final: false, candidates: this.runtime.scoredKeys(q.window), entries };
  }

  status(): RunnerStatus {
    const wm = this.watermark.value;
    const d = this.runtime.debounced;
    return {
      pipeline: this.o.spec.name,
      watermark: Number.isFinite(wm) ? wm : 0,
      events: this.counters.events,
      skipped: this.runtime.skipped,
      late: this.runtime.lateCount,
      results: this.counters.results,
      alerts: this.counters.alerts,
      pending: this.counters.pending,
      caughtUp: this.caughtUp,
      liveKeys: this.view.size,
      ...(d ? { debounced: d.offered, recalculations: d.recalculations } : {}),
      rowsWritten: this.counters.rowsWritten,
      flushFailures: this.counters.flushFailures,
      lastSeq: this.lastSeq,
      restoredFrom: this.ck.restoredFrom,
      ...(this.ck.restoreError !== undefined ? { restoreError: this.ck.restoreError } : {}),
      eventsThisRun: this.eventsThisRun,
      consumer: this.consumerName,
      acks: this.delivery.acks,
      ackedSeq: this.delivery.ackedSeq,
      redeliveriesSkipped: this.delivery.redeliveriesSkipped,
      repositions: this.delivery.repositions,
      pendingRows: this.writer.pending,
      backpressure: this.pause.since > 0,
      backpressurePauses: this.pause.count,
      backpressureSeconds: (this.pause.ms + (this.pause.since ? Date.now() - this.pause.since : 0)) / 1000,
      checkpointSeq: this.ck.seq,
      checkpointAt: this.ck.at,
      checkpoints: this.ck.count,
      checkpointFailures: this.ck.failures,
      checkpointRawBytes: this.ck.raw,
      checkpointBytes: this.ck.stored,
      checkpointWrittenBytes: this.ck.written,
      checkpointWrittenTotal: this.ck.writtenTotal,
      checkpointChunks: this.ck.chunks,
      checkpointChunksWritten: this.ck.chunksWritten,
      checkpointSnapshotMs: Math.round(this.ck.snapshotMs * 10) / 10,
      checkpointWriteMs: Math.round(this.ck.writeMs * 10) / 10,
      at: Date.now(),
    };
  }

  private async consumeLoop(): Promise<void> {
    while (!this.stopping) {
      let batch: JsMsg[] = [];
      let timer: NodeJS.Timeout | null = null;
      const run = () => {
        if (timer) clearTimeout(timer);
        timer = null;
        const msgs = batch;
        batch = [];
        if (msgs.length) this.processBatch(msgs);
      };
      for await (const m of this.messages!) {
        // A gap in the delivery sequence: the server delivered messages that never arrived (a
        // disconnect). They are pending on the server until ack_wait; read again from here instead.
        if (this.lastDelivery > 0 && m.info.deliverySequence !== this.lastDelivery + 1) {
          this.requestReposition(`delivery sequence jumped from ${this.lastDelivery} to ${m.info.deliverySequence}`);
          break;
        }
        this.lastDelivery = m.info.deliverySequence;
        if (this.writer.pending >= (this.o.maxPendingRows ?? 500_000)) {
          run();
          await this.waitForRoom();
        }
        batch.push(m);
        if (batch.length >= 1000 || m.info.pending === 0) run();
        else if (!timer) timer = setTimeout(run, 20);
        if (this.stopping || this.repositionReason) break;
      }
      run();
      if (this.stopping) break;
      // the iterator ended: a reposition was asked for, or the consumer ended on its own
      await this.reposition(this.repositionReason || 'the consumer stopped delivering');
      this.repositionReason = '';
    }
  }

  /**
   * Back-pressure: QuestDB holds back maxPendingRows rows (it is down or slow), so stop taking
   * messages (the consumer stops pulling once its buffer is full; the rest wait in JetStream)
   * until the flush timer has brought the buffer below the bound. Nothing is dropped.
   */
  private async waitForRoom(): Promise<void> {
    const bound = this.o.maxPendingRows ?? 500_000;
    this.pause.since = Date.now();
    this.pause.count++;
    this.o.log.warn({ pipeline: this.o.spec.name, pending: this.writer.pending, maxPendingRows: bound }, `pipeline ${this.o.spec.name}: QuestDB is not taking rows; stopped taking events (back-pressure)`);
    while (this.writer.pending >= bound && !this.stopping && !this.repositionReason) await new Promise((r) => setTimeout(r, 100));
    this.pause.ms += Date.now() - this.pause.since;
    this.pause.since = 0;
    this.o.log.info({ pipeline: this.o.spec.name, pending: this.writer.pending }, `pipeline ${this.o.spec.name}: back-pressure lifted`);
  }

  private processBatch(all: JsMsg[]): void {
    // A redelivery (ack_wait expired while checkpoints could not be written) of messages already in the state.
    const msgs = all[0].info.streamSequence > this.lastSeq ? all : all.filter((m) => m.info.streamSequence > this.lastSeq);
    this.delivery.redeliveriesSkipped += all.length - msgs.length;
    if (msgs.length === 0) return;
    const now = Date.now();
    const samples: KeyedSample[] = [];
    let maxTs = -Infinity;
    for (const msg of msgs) {
      decodeMessage(msg.subject, msg.data, () => Math.floor(Number(msg.info.timestampNanos) / 1e6), now, this.o.limits, {
        accept: (metric, key, ts, value, tags) => {
          samples.push({ metric, key, ts, value, tags });
          if (ts > maxTs) maxTs = ts;
        },
        // The default pipeline dead-letters bad events with their reason; here they are only skipped.
        reject: () => undefined,
      });
    }
    this.counters.events += samples.length;
    this.eventsThisRun += samples.length;
    const last = msgs[msgs.length - 1];
    this.counters.pending = last.info.pending;
    this.lastSeq = last.info.streamSequence;
    this.lastMsg = { msg: last, generation: this.generation };
    this.changes++;
    const wmBefore = this.watermark.value;
    const wmAfter = maxTs > -Infinity ? this.watermark.observe(maxTs, now) : (this.watermark.touch(now), wmBefore);
    this.deliver(this.runtime.process(samples, wmBefore, wmAfter, now));
    if (!this.caughtUp && last.info.pending === 0) {
      this.caughtUp = true;
      this.o.log.info({ pipeline: this.o.spec.name, events: this.counters.events }, 'pipeline caught up with the stream');
    }
  }

  private tick(): void {
    if (this.stopping) return;
    const now = Date.now();
    const moved = this.caughtUp && this.watermark.idleAdvance(now);
    const out = this.runtime.tick(this.watermark.value, now);
    if (moved || out.results.length > 0 || out.alerts.length > 0) this.changes++;
    this.deliver(out);
  }

  private deliver(out: RuntimeOutput): void {
    const name = this.o.spec.name;
    const live = this.o.spec.sinks.live;
    for (const r of out.results) {
      this.counters.results++;
      if (this.o.spec.sinks.table)
        this.writer.add({ key: r.key, window: r.window, start: r.start, end: r.end, final: r.final, revision: r.revision, emittedAt: r.emittedAt, superseded: r.superseded, fields: r as unknown as Record<string, number | null> });
      if (!live) continue;
      // A tombstone goes to subscribers (so they drop the absorbed session) but not into the view.
      if (!r.superseded) this.view.update(r);
      if (this.caughtUp && !this.nc.isClosed()) this.nc.publish(`weir.results.${name}.${name}.${keyToken(r.key)}`, JSON.stringify(r));
    }
    for (const a of out.alerts) {
      this.counters.alerts++;
      this.writer.addAlert(a);
      if (this.caughtUp && !this.nc.isClosed()) this.nc.publish(`weir.alerts.${name}.${a.rule}`, JSON.stringify(a));
    }
  }

  /** Writes the buffered rows and alerts; resolves true once QuestDB took them, false if it did not (they stay buffered). */
  private flush(): Promise<boolean> {
    if (this.flushing) return this.flushing;
    this.flushing = (async () => {
      this.flushStartedAt = Date.now();
      try {
        this.counters.rowsWritten += await this.writer.flush();
        this.flushFailingSince = 0;
        return true;
      } catch (err) {
        this.counters.flushFailures++;
        if (this.flushFailingSince === 0) this.flushFailingSince = Date.now();
        this.o.log.warn({ pipeline: this.o.spec.name, err: (err as Error).message }, 'pipeline rows not written yet, will retry');
        return false;
      }
    })().finally(() => {
      this.flushing = null;
      this.flushStartedAt = 0;
    });
    return this.flushing;
  }

  /** Stops reading, flushes what is buffered (bounded), writes a last checkpoint, and closes. */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    for (const s of this.apiSubs) s.unsubscribe();
    this.messages?.stop();
    await this.loop;
    const until = Date.now() + timeoutMs;
    while (this.writer.pending > 0 && Date.now() < until) {
      await this.flush();
      if (this.writer.pending > 0) await new Promise((r) => setTimeout(r, 200));
    }
    await this.checkpointing;
    if (this.writer.pending === 0) await this.checkpoint();
    await this.writer.close().catch(() => undefined);
    await this.nc.drain().catch(() => undefined);
  }
}

/** The live view's entries as JSON: [latest, lastFinal], with lastFinal 1 when it is the latest, or null. */
function encodeView(view: LiveView<PipelineResult, string>): string {
  const out: unknown[] = [];
  for (const { latest, lastFinal } of view.entries()) out.push([latest, lastFinal === latest ? 1 : lastFinal]);
  return JSON.stringify(out);
}

function decodeView(text: string, pipeline: string, windows: readonly string[]): [PipelineResult, PipelineResult | null][] {
  const fail = (why: string): never => {
    throw new Error(`pipeline checkpoint: view: ${why}`);
  };
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch (err) {
    return fail(`not JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(list)) fail('expected an array');
  const row = (v: unknown, where: string): PipelineResult => {
    const r = v as PipelineResult;
    if (r === null || typeof r !== 'object' || Array.isArray(r)) fail(`${where} must be a result object`);
    if (r.pipeline !== pipeline || r.metric !== pipeline) fail(`${where} is not a result of pipeline ${pipeline}`);
    if (typeof r.key !== 'string' || !windows.includes(r.window) || !Number.isFinite(r.start) || !Number.isFinite(r.end) || typeof r.final !== 'boolean') fail(`${where} is malformed`);
    return r;
  };
  return (list as unknown[]).map((entry, i) => {
    if (!Array.isArray(entry) || entry.length !== 2) return fail(`[${i}] must be [latest, lastFinal]`);
    const e = entry as unknown[];
    const latest = row(e[0], `[${i}][0]`);
    const lastFinal = e[1] === 1 ? latest : e[1] === null ? null : row(e[1], `[${i}][1]`);
    if (lastFinal && (lastFinal.key !== latest.key || lastFinal.window !== latest.window || !lastFinal.final)) fail(`[${i}][1] is not a final result of the same key and window`);
    return [latest, lastFinal];
  });
}
