/**
 * Runs one declared pipeline against the real stack: reads its metrics from the WEIR_EVENTS
 * stream, feeds the pure PipelineRuntime, writes its rows and alert transitions to QuestDB,
 * publishes live results on weir.results.<pipeline>.<pipeline>.<keyToken> and alerts on
 * weir.alerts.<pipeline>.<rule>, and serves Latest/TopK/status on weir.api.<pipeline>.*.
 *
 * Delivery (v1, before checkpoints): the runner reads with an ordered consumer from the start of
 * the stream on every start, so its state is rebuilt from the events the stream retains, and the
 * rows it writes are upserts (DEDUP), so writing them again after a restart changes nothing.
 * It never acks and never deletes: the default pipeline's consumer owns retention. While the
 * replay catches up, live results and alert messages are not published (rows still are), so
 * subscribers do not get a flood of history. Checkpointed state (issue 5) will replace the full
 * replay. See docs/pipelines.md.
 */
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { decodeMessage, type DecodeLimits } from '../decode.js';
import { serveLiveApi } from '../live-api.js';
import { LiveView, type TopAnswer, type TopQuery } from '../live-view.js';
import { keyToken } from '../subjects.js';
import { Watermark } from '../../operators/windows/watermark.js';
import { PipelineRuntime, type KeyedSample, type PipelineResult, type RuntimeOutput } from './runtime.js';
import { PipelineWriter } from './sink.js';
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
  at: number;
}

export class PipelineRunner {
  private nc!: NatsConnection;
  private messages: ConsumerMessages | null = null;
  private writer!: PipelineWriter;
  private readonly runtime: PipelineRuntime;
  private readonly view: LiveView<PipelineResult, string>;
  private readonly watermark: Watermark;
  private apiSubs: Subscription[] = [];
  private timers: NodeJS.Timeout[] = [];
  private loop: Promise<void> | null = null;
  private flushing: Promise<void> | null = null;
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
    const js = jetstream(this.nc);
    const filter = spec.source.metrics.includes('*') ? ['weir.events.>'] : spec.source.metrics.map((m) => `weir.events.${m}`);
    const consumer = await js.consumers.get(this.o.stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.All });
    this.messages = await consumer.consume({ max_messages: 2000 });
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
    this.timers.push(setInterval(() => this.tick(), this.o.tickMs));
    this.timers.push(
      setInterval(() => {
        if (!this.nc.isClosed()) this.nc.publish(`weir.status.${spec.name}`, JSON.stringify(this.status()));
      }, 1000),
    );
    this.loop = this.consumeLoop().catch((err) => log.error({ err: (err as Error).message, pipeline: spec.name }, 'pipeline consumer stopped'));
    log.info({ pipeline: spec.name, subjects: filter, columns: this.runtime.columns.length }, 'pipeline started (replaying the stream)');
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
      at: Date.now(),
    };
  }

  private async consumeLoop(): Promise<void> {
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
      batch.push(m);
      if (batch.length >= 1000 || m.info.pending === 0) run();
      else if (!timer) timer = setTimeout(run, 20);
      if (this.stopping) break;
    }
    run();
  }

  private processBatch(msgs: JsMsg[]): void {
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
    const last = msgs[msgs.length - 1];
    this.counters.pending = last.info.pending;
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
    if (this.caughtUp) this.watermark.idleAdvance(now);
    this.deliver(this.runtime.tick(this.watermark.value, now));
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

  private flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = (async () => {
      try {
        this.counters.rowsWritten += await this.writer.flush();
      } catch (err) {
        this.counters.flushFailures++;
        this.o.log.warn({ pipeline: this.o.spec.name, err: (err as Error).message }, 'pipeline rows not written yet, will retry');
      }
    })().finally(() => (this.flushing = null));
    return this.flushing;
  }

  /** Stops reading, flushes what is buffered (bounded), and closes. */
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
    await this.writer.close().catch(() => undefined);
    await this.nc.drain().catch(() => undefined);
  }
}
