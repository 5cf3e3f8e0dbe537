/**
 * Checkpoints of declared pipelines (docs/pipelines.md, "Delivery"), in the JetStream KV bucket
 * WEIR_CHECKPOINTS beside the default pipeline's:
 *
 *   pipeline.<name>              the record: one line of JSON (format, stream position, watermark,
 *                                counters, payload size and sha256, where the payload is), then
 *                                the payload itself when it fits in the same value
 *   pipeline.<name>.<slot>.<i>   the payload in chunks, when it does not (slot a or b)
 *
 * The payload is gzip of the PipelineRuntime snapshot and the live view's entries. A KV value is
 * one NATS message, so it is bounded by the server's max_payload (1 MB by default in
 * nats-server 2.15, at most 64 MB) and by the bucket's max value size when one is set; a
 * larger payload is cut into chunks of that size. Chunks go to the slot the current record does
 * not point to, and the record is written last, in one put: a crash while chunks are written
 * leaves the previous checkpoint whole. The sha256 of the payload is checked on load, so a record
 * whose chunks were overwritten or lost is refused rather than half restored.
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import type { JetStreamClient } from '@nats-io/jetstream';
import { CHECKPOINT_BUCKET } from '../source.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

export const PIPELINE_CHECKPOINT_FORMAT = 'weir.pipeline-checkpoint/1';

/** Counters of a runner that continue across restarts. */
export interface CheckpointCounters {
  events: number;
  results: number;
  alerts: number;
  rowsWritten: number;
  flushFailures: number;
}

/** What a checkpoint holds. */
export interface PipelineCheckpoint {
  pipeline: string;
  /** Stream sequence of the last message whose effects are in `runtime`: the runner resumes at seq + 1. */
  seq: number;
  /** The stream's creation time when the checkpoint was taken: another value means the stream was deleted and made again. */
  stream: string;
  /** The runner's watermark (operators/windows/watermark.ts) after `seq`; -Infinity before any event. */
  watermark: number;
  counters: CheckpointCounters;
  /** Wall-clock time it was taken. */
  at: number;
  /** PipelineRuntime.snapshot(). */
  runtime: string;
  /** The live view's entries as JSON text (the runner's format). */
  view: string;
}

/** The record at pipeline.<name>: the checkpoint without its payload, and where the payload is. */
interface Record_ extends Omit<PipelineCheckpoint, 'runtime' | 'view' | 'watermark'> {
  format: string;
  watermark: number | string;
  /** Lengths (UTF-16 units) of the runtime and view texts in the payload. */
  runtimeLength: number;
  viewLength: number;
  /** gzip payload: size in bytes and sha256 (hex). */
  size: number;
  sha256: string;
  /** 0: the payload follows the record's line in the same value; otherwise the number of chunks in `slot`. */
  parts: number;
  slot: 'a' | 'b';
}

/** The few KV operations a checkpoint store needs (a JetStream KV bucket, or a Map in tests). */
export interface CheckpointKv {
  get(key: string): Promise<Uint8Array | null>;
  put(key: string, value: Uint8Array): Promise<void>;
  /** Removes a key and its history. */
  purge(key: string): Promise<void>;
  keys(filter: string): Promise<string[]>;
}

/** What save() did: for the status and the log. */
export interface SaveStats {
  /** Bytes of runtime snapshot + view, before compression. */
  raw: number;
  /** Bytes stored (compressed payload). */
  stored: number;
  parts: number;
  /** Compression and KV writes, ms. */
  ms: number;
}

const NL = 0x0a;

export class CheckpointStore {
  /** The slot the current record points to, and the chunks known in each slot (undefined: not known). */
  private slot: 'a' | 'b' | undefined;
  private readonly partsIn: { a?: number; b?: number } = {};

  constructor(
    private readonly kv: CheckpointKv,
    readonly pipeline: string,
    /** Largest value the bucket takes, in bytes. */
    private readonly maxValue: number,
  ) {
    if (!/^[A-Za-z0-9_-]+$/.test(pipeline)) throw new Error(`pipeline checkpoint: name ${JSON.stringify(pipeline)} cannot be a KV key token`);
    if (!(maxValue >= 1024)) throw new Error(`pipeline checkpoint: a KV value must be allowed at least 1 KiB, got ${maxValue}`);
  }

  /** The store of one pipeline in the WEIR_CHECKPOINTS bucket (created as the engine creates it, if missing). */
  static async open(nc: NatsConnection, js: JetStreamClient, pipeline: string): Promise<CheckpointStore> {
    const kv = await new Kvm(js).create(CHECKPOINT_BUCKET, { history: 1 });
    const status = await kv.status();
    // A value travels as one message: the server's max_payload bounds it, less room for the subject and headers.
    let max = nc.info?.max_payload ?? 1024 * 1024;
    if (status.maxValueSize > 0) max = Math.min(max, status.maxValueSize);
    return new CheckpointStore(natsKv(kv), pipeline, max - 4096);
  }

  get key(): string {
    return `pipeline.${this.pipeline}`;
  }

  private chunkKey(slot: 'a' | 'b', i: number): string {
    return `${this.key}.${slot}.${i}`;
  }

  /**
   * Writes the checkpoint: chunks (if any) first, into the slot the current record does not use,
   * then the record. Call it only once the rows the state covers are durable.
   */
  async save(cp: PipelineCheckpoint): Promise<SaveStats> {
    const t0 = performance.now();
    if (cp.pipeline !== this.pipeline) throw new Error(`pipeline checkpoint: a checkpoint of ${cp.pipeline} given to the store of ${this.pipeline}`);
    const text = cp.runtime + cp.view;
    const payload = await gzipAsync(Buffer.from(text, 'utf8'), { level: 1 });
    const sha256 = createHash('sha256').update(payload).digest('hex');
    const base: Omit<Record_, 'parts' | 'slot'> = {
      format: PIPELINE_CHECKPOINT_FORMAT,
      pipeline: cp.pipeline,
      seq: cp.seq,
      stream: cp.stream,
      watermark: Number.isFinite(cp.watermark) ? cp.watermark : String(cp.watermark),
      counters: cp.counters,
      at: cp.at,
      runtimeLength: cp.runtime.length,
      viewLength: cp.view.length,
      size: payload.length,
      sha256,
    };
    const inlineRecord = Buffer.from(JSON.stringify({ ...base, parts: 0, slot: this.slot ?? 'a' }) + '\n', 'utf8');
    let parts = 0;
    if (inlineRecord.length + payload.length <= this.maxValue) {
      await this.kv.put(this.key, Buffer.concat([inlineRecord, payload]));
      // chunks of an earlier, larger checkpoint are no longer referenced
      for (const slot of ['a', 'b'] as const) await this.dropChunks(slot, 0);
    } else {
      const slot = this.slot === 'a' ? 'b' : 'a';
      parts = Math.ceil(payload.length / this.maxValue);
      for (let i = 0; i < parts; i++) await this.kv.put(this.chunkKey(slot, i), payload.subarray(i * this.maxValue, (i + 1) * this.maxValue));
      await this.kv.put(this.key, Buffer.from(JSON.stringify({ ...base, parts, slot }) + '\n', 'utf8'));
      this.slot = slot;
      await this.dropChunks(slot, parts);
    }
    return { raw: Buffer.byteLength(text, 'utf8'), stored: payload.length, parts, ms: performance.now() - t0 };
  }

  /** Purges the chunks of `slot` from index `from` on (they belong to no record). */
  private async dropChunks(slot: 'a' | 'b', from: number): Promise<void> {
    let known = this.partsIn[slot];
    if (known === undefined) {
      const prefix = `${this.key}.${slot}.`;
      known = 0;
      for (const k of await this.kv.keys(`${prefix}*`)) {
        const i = Number(k.slice(prefix.length));
        if (Number.isSafeInteger(i) && i + 1 > known) known = i + 1;
      }
    }
    for (let i = from; i < known; i++) await this.kv.purge(this.chunkKey(slot, i));
    this.partsIn[slot] = from;
  }

  /**
   * The stored checkpoint, or null when there is none. Throws an Error starting with
   * "pipeline checkpoint" when it is unreadable: not a record, another format or pipeline, a
   * chunk missing, a payload whose size or sha256 differs.
   */
  async load(): Promise<PipelineCheckpoint | null> {
    const value = await this.kv.get(this.key);
    if (value === null || value.length === 0) return null;
    const fail = (why: string): never => {
      throw new Error(`pipeline checkpoint ${this.key}: ${why}`);
    };
    const nl = value.indexOf(NL);
    if (nl < 0) fail('no record line');
    let r: Record_;
    try {
      r = JSON.parse(Buffer.from(value.subarray(0, nl)).toString('utf8')) as Record_;
    } catch (err) {
      return fail(`the record is not JSON (${(err as Error).message})`);
    }
    if (r === null || typeof r !== 'object') fail('the record is not an object');
    if (r.format !== PIPELINE_CHECKPOINT_FORMAT) fail(`format ${JSON.stringify(r.format)} is not ${PIPELINE_CHECKPOINT_FORMAT}`);
    if (r.pipeline !== this.pipeline) fail(`the record is of pipeline ${JSON.stringify(r.pipeline)}`);
    if (!Number.isSafeInteger(r.seq) || r.seq < 0) fail(`seq must be a whole number >= 0, got ${JSON.stringify(r.seq)}`);
    if (typeof r.stream !== 'string') fail(`stream must be a string, got ${JSON.stringify(r.stream)}`);
    const watermark = r.watermark === '-Infinity' ? -Infinity : r.watermark;
    if (typeof watermark !== 'number' || Number.isNaN(watermark) || watermark === Infinity) return fail(`watermark must be a number or "-Infinity", got ${JSON.stringify(r.watermark)}`);
    const c = r.counters as unknown as Record<string, unknown>;
    if (c === null || typeof c !== 'object') fail('counters must be an object');
    for (const k of ['events', 'results', 'alerts', 'rowsWritten', 'flushFailures']) if (!Number.isSafeInteger(c[k]) || (c[k] as number) < 0) fail(`counters.${k} must be a whole number >= 0, got ${JSON.stringify(c[k])}`);
    if (!Number.isFinite(r.at)) fail(`at must be a time, got ${JSON.stringify(r.at)}`);
    for (const k of ['runtimeLength', 'viewLength', 'size', 'parts'] as const) if (!Number.isSafeInteger(r[k]) || r[k] < 0) fail(`${k} must be a whole number >= 0, got ${JSON.stringify(r[k])}`);
    if (r.slot !== 'a' && r.slot !== 'b') fail(`slot must be a or b, got ${JSON.stringify(r.slot)}`);
    let payload: Buffer;
    if (r.parts === 0) payload = Buffer.from(value.subarray(nl + 1));
    else {
      const chunks: Buffer[] = [];
      for (let i = 0; i < r.parts; i++) {
        const chunk = await this.kv.get(this.chunkKey(r.slot, i));
        if (chunk === null) fail(`chunk ${this.chunkKey(r.slot, i)} is missing`);
        chunks.push(Buffer.from(chunk!));
      }
      payload = Buffer.concat(chunks);
    }
    if (payload.length !== r.size) fail(`the payload has ${payload.length} bytes, the record says ${r.size}`);
    if (createHash('sha256').update(payload).digest('hex') !== r.sha256) fail('the payload does not match its sha256 (a chunk was overwritten or corrupted)');
    let text: string;
    try {
      text = (await gunzipAsync(payload)).toString('utf8');
    } catch (err) {
      return fail(`the payload does not decompress (${(err as Error).message})`);
    }
    if (text.length !== r.runtimeLength + r.viewLength) fail(`the payload holds ${text.length} characters, the record says ${r.runtimeLength} + ${r.viewLength}`);
    this.slot = r.slot;
    return {
      pipeline: r.pipeline,
      seq: r.seq,
      stream: r.stream,
      watermark,
      counters: { events: c.events as number, results: c.results as number, alerts: c.alerts as number, rowsWritten: c.rowsWritten as number, flushFailures: c.flushFailures as number },
      at: r.at,
      runtime: text.slice(0, r.runtimeLength),
      view: text.slice(r.runtimeLength),
    };
  }
}

/** The CheckpointKv of a JetStream KV bucket. */
export function natsKv(kv: KV): CheckpointKv {
  return {
    async get(key) {
      const e = await kv.get(key);
      return e && e.operation === 'PUT' ? e.value : null;
    },
    async put(key, value) {
      await kv.put(key, value);
    },
    async purge(key) {
      await kv.purge(key);
    },
    async keys(filter) {
      const out: string[] = [];
      for await (const k of await kv.keys(filter)) out.push(k);
      return out;
    },
  };
}
