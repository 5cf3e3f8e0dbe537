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

/** Creates the event and dead-letter streams if they are missing (never changes existing ones). */
export async function ensureStreams(jsm: JetStreamManager, names: StreamNames, log: Logger): Promise<void> {
  const want = [
    { name: names.events, subjects: names.eventSubjects, max_age: names.maxAgeMs * NANOS },
    // Dead letters and late events are kept durably (invariant 1), deduplicated on replay by Nats-Msg-Id.
    { name: names.deadLetter, subjects: ['weir.dlq.>', 'weir.late.>'], max_age: names.maxAgeMs * NANOS, duplicate_window: 120_000 * NANOS },
  ];
  for (const cfg of want) {
    try {
      await jsm.streams.info(cfg.name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.streams.add(cfg);
      log.warn({ stream: cfg.name, subjects: cfg.subjects }, 'created JetStream stream');
    }
  }
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
  at: string;
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
    if (!Number.isInteger(c.seq) || c.seq < 0 || typeof c.wm !== 'number') throw new Error(`checkpoint ${this.key} is malformed: ${e.string()}`);
    return c;
  }

  async save(c: Checkpoint): Promise<void> {
    await this.kv.put(this.key, JSON.stringify({ ...c, wm: Number.isFinite(c.wm) ? c.wm : -1e300 }));
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
