/**
 * The JetStream edge of the engine: the event and dead-letter streams, the engine's durable
 * consumer and the checkpoint that owns its position. The operator graph never sees these.
 */
import {
  AckPolicy,
  DeliverPolicy,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type Consumer,
  type StreamInfo,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';

export interface StreamNames {
  events: string;
  eventSubjects: string[];
  deadLetter: string;
  consumer: string;
  maxAgeMs: number;
}

const NANOS = 1_000_000;
export const CHECKPOINT_BUCKET = 'WEIR_CHECKPOINTS';

export interface StreamsState {
  /** The event stream as it is now. */
  events: StreamInfo;
  /** Names of the streams that were missing and have just been created. */
  created: string[];
}

/**
 * Creates the event and dead-letter streams if they are missing (never changes existing ones).
 * `expected`: the engine knew these streams (it ran on them, or holds a checkpoint of them), so
 * a missing one vanished: it is recreated with a loud (error) log line, since whatever it held
 * is gone.
 */
export async function ensureStreams(jsm: JetStreamManager, names: StreamNames, log: Logger, expected = false): Promise<StreamsState> {
  const want = [
    { name: names.events, subjects: names.eventSubjects, max_age: names.maxAgeMs * NANOS },
    // Dead letters and late events are kept durably (invariant 1), deduplicated on replay by Nats-Msg-Id.
    { name: names.deadLetter, subjects: ['weir.dlq.>', 'weir.late.>'], max_age: names.maxAgeMs * NANOS, duplicate_window: 120_000 * NANOS },
  ];
  const created: string[] = [];
  let events: StreamInfo | null = null;
  for (const cfg of want) {
    let info: StreamInfo;
    try {
      info = await jsm.streams.info(cfg.name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      info = await jsm.streams.add(cfg);
      created.push(cfg.name);
      if (!expected) log.warn({ stream: cfg.name, subjects: cfg.subjects }, 'created JetStream stream');
      else if (cfg.name === names.events)
        log.error(
          { stream: cfg.name, subjects: cfg.subjects },
          `JetStream stream ${cfg.name} vanished: RECREATED IT EMPTY. Events published while it was missing were refused by JetStream and ` +
            'events it held but the engine had not yet committed are lost; the engine now reads the new stream from its start',
        );
      else log.error({ stream: cfg.name, subjects: cfg.subjects }, `JetStream stream ${cfg.name} vanished: RECREATED IT EMPTY. The dead letters and late events it held are gone`);
    }
    if (cfg.name === names.events) events = info;
  }
  return { events: events!, created };
}

export function isNotFound(err: unknown): boolean {
  const e = err as { code?: string | number; api_error?: { code?: number }; message?: string };
  return e?.api_error?.code === 404 || e?.code === '404' || e?.code === 404 || /not found/i.test(e?.message ?? '');
}

/** The durable position of the engine: every event at or below `seq` is reflected in QuestDB. */
export interface Checkpoint {
  /** Last stream sequence whose effects are durable. */
  seq: number;
  /** The watermark in force right before seq + 1 was processed. */
  wm: number;
  /**
   * Every window whose final time (end + allowed lateness) is at or before this is complete in
   * QuestDB: the workers' flushed watermark at the commit. Replayed events of such windows are
   * skipped for them (they are in the row already). Absent in checkpoints written before it.
   */
  durable?: number;
  at: string;
  /**
   * Creation time of the event stream `seq` counts in (StreamInfo.created). A stream deleted and
   * created again counts from 1 again: a checkpoint of another stream says nothing about this one.
   */
  stream?: string;
}

/**
 * Whether a checkpoint's position applies to the event stream as it is now. A checkpoint without
 * the stream's identity (written before it was recorded) applies unless the stream is shorter
 * than its position.
 */
export function checkpointApplies(ck: Checkpoint, events: StreamInfo): boolean {
  if (ck.stream !== undefined) return ck.stream === events.created;
  return ck.seq <= events.state.last_seq;
}

export class CheckpointStore {
  private constructor(
    private readonly kv: KV,
    private readonly key: string,
  ) {}

  static async open(js: JetStreamClient, consumer: string): Promise<CheckpointStore> {
    const kv = await new Kvm(js).create(CHECKPOINT_BUCKET, { history: 1 });
    return new CheckpointStore(kv, `engine.${consumer}`);
  }

  async load(): Promise<Checkpoint | null> {
    const e = await this.kv.get(this.key);
    if (!e || e.operation !== 'PUT' || e.value.length === 0) return null;
    const c = e.json<Checkpoint>();
    if (!Number.isInteger(c.seq) || c.seq < 0 || typeof c.wm !== 'number' || (c.stream !== undefined && typeof c.stream !== 'string') || (c.durable !== undefined && typeof c.durable !== 'number')) throw new Error(`checkpoint ${this.key} is malformed: ${e.string()}`);
    return c;
  }

  async save(c: Checkpoint): Promise<void> {
    const fin = (v: number) => (Number.isFinite(v) ? v : -1e300);
    await this.kv.put(this.key, JSON.stringify({ ...c, wm: fin(c.wm), ...(c.durable !== undefined ? { durable: fin(c.durable) } : {}) }));
  }
}

/**
 * (Re)creates the engine's durable pull consumer so that it starts right after the checkpoint.
 * The engine owns its position (as Flink owns Kafka offsets): acks to JetStream follow the
 * checkpoint, and a restart resumes exactly after it, with no wait for ack_wait to expire.
 */
export async function resetConsumer(
  nc: NatsConnection,
  js: JetStreamClient,
  names: StreamNames,
  fromSeq: number,
  ackWaitMs: number,
  log: Logger,
): Promise<{ consumer: Consumer; pending: number }> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.consumers.delete(names.events, names.consumer);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await jsm.consumers.add(names.events, {
    durable_name: names.consumer,
    ack_policy: AckPolicy.All,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: fromSeq,
    ack_wait: ackWaitMs * NANOS,
    max_ack_pending: -1,
    filter_subjects: names.eventSubjects,
    max_deliver: -1,
  });
  const consumer = await js.consumers.get(names.events, names.consumer);
  const info = await consumer.info(true);
  log.info({ consumer: names.consumer, fromSeq, pending: info.num_pending }, 'consumer positioned after checkpoint');
  return { consumer, pending: info.num_pending };
}
