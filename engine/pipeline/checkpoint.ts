/**
 * Checkpoints of declared pipelines (docs/pipelines.md, "Delivery"), in the JetStream KV bucket
 * WEIR_CHECKPOINTS beside the default pipeline's. They are **incremental**: a checkpoint writes
 * only the parts of the state that changed since the one before.
 *
 *   pipeline.<name>          the record: one line of JSON (format, stream position, watermark,
 *                            counters, and the list of the state's chunks), then, for a state
 *                            smaller than one chunk, the gzip of that state itself
 *   pipeline.<name>.c.<i>    chunk i: gzip of a piece of the state (slots, reused)
 *
 * The state (PipelineRuntime snapshot + live view, as text) is cut into chunks by content
 * (engine/pipeline/cdc.ts: cut points depend on the bytes around them, not on offsets), and each
 * chunk is named by its sha256. A chunk whose hash the current record already lists is not written
 * again: a checkpoint after a change to a few keys writes the chunks that hold those keys, and the
 * record. This is the scheme of restic and borg, and the idea of Flink's incremental RocksDB
 * checkpoints (only new SST files are uploaded).
 *
 * Crash safety: new chunks go only to slots the current record does not use, and the record is
 * written last, in one put. A crash at any point leaves the previous record and all its chunks
 * whole. Slots the new record no longer uses are free for the next checkpoint (they are
 * overwritten, never purged: a purge leaves a marker in the stream for ever, and a fixed set of
 * slots bounds the keys to about twice the state's chunks). Every chunk's sha256 is checked on
 * load, so a record whose chunks were lost or overwritten is refused rather than half restored.
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import type { JetStreamClient } from '@nats-io/jetstream';
import { CHECKPOINT_BUCKET } from '../source.js';
import { cdcBoundaries, DEFAULT_CDC, type CdcOptions } from './cdc.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

export const PIPELINE_CHECKPOINT_FORMAT = 'weir.pipeline-checkpoint/2';

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

/** A chunk of the state in the record: slot (-1: inline, after the record's line), sha256 (first 32 hex digits) and size of its bytes, size stored (gzip). */
type ChunkRef = [slot: number, hash: string, raw: number, stored: number];

/** The record at pipeline.<name>: the checkpoint without its state, and where the state is. */
interface Record_ extends Omit<PipelineCheckpoint, 'runtime' | 'view' | 'watermark'> {
  format: string;
  watermark: number | string;
  /** Lengths (UTF-16 units) of the runtime and view texts in the state. */
  runtimeLength: number;
  viewLength: number;
  chunks: ChunkRef[];
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
  /** Bytes the whole state takes in KV (compressed chunks). */
  stored: number;
  /** Bytes written by this save (new chunks and the record). */
  written: number;
  /** Chunks of the state, and how many of them this save wrote (the others were stored already). */
  chunks: number;
  chunksWritten: number;
  /** Chunking, hashing, compression and KV writes, ms. */
  ms: number;
}

const NL = 0x0a;
/** KV puts in flight at once while chunks are written. */
const PUT_CONCURRENCY = 8;

export class CheckpointStore {
  /** The chunks of the current record by hash (undefined: not read yet), and the slots they use. */
  private current: Map<string, ChunkRef> | undefined;
  private legacyPurged = false;
  private readonly cdc: CdcOptions;

  constructor(
    private readonly kv: CheckpointKv,
    readonly pipeline: string,
    /** Largest value the bucket takes, in bytes. */
    private readonly maxValue: number,
    cdc?: CdcOptions,
  ) {
    if (!/^[A-Za-z0-9_-]+$/.test(pipeline)) throw new Error(`pipeline checkpoint: name ${JSON.stringify(pipeline)} cannot be a KV key token`);
    if (!(maxValue >= 1024)) throw new Error(`pipeline checkpoint: a KV value must be allowed at least 1 KiB, got ${maxValue}`);
    // A chunk's gzip must fit in one value: gzip adds at most ~0.03 % + 20 bytes to incompressible data.
    const fit = Math.floor((maxValue - 1024) / 1.01);
    const base = cdc ?? DEFAULT_CDC;
    let avg = base.avg;
    while (avg > 128 && avg * 2 > fit) avg /= 2;
    this.cdc = { min: Math.min(base.min, avg / 2), avg, max: Math.min(base.max, fit) };
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

  private chunkKey(slot: number): string {
    return `${this.key}.c.${slot}`;
  }

  /**
   * Writes the checkpoint: the chunks of its state that are not stored yet, into free slots, then
   * the record. Call it only once the rows the state covers are durable.
   */
  async save(cp: PipelineCheckpoint): Promise<SaveStats> {
    const t0 = performance.now();
    if (cp.pipeline !== this.pipeline) throw new Error(`pipeline checkpoint: a checkpoint of ${cp.pipeline} given to the store of ${this.pipeline}`);
    const current = await this.currentChunks();
    await this.purgeLegacyKeys();
    const raw = Buffer.from(cp.runtime + cp.view, 'utf8');
    const ends = cdcBoundaries(raw, this.cdc);
    const used = new Set<number>();
    for (const ref of current.values()) used.add(ref[0]);
    let nextFree = 0;
    const freeSlot = () => {
      while (used.has(nextFree)) nextFree++;
      used.add(nextFree);
      return nextFree;
    };
    const chunks: ChunkRef[] = [];
    const mine = new Map<string, ChunkRef>();
    const writes: { ref: ChunkRef; gz: Buffer }[] = [];
    let inline: Buffer | null = null;
    let start = 0;
    for (const end of ends) {
      const piece = raw.subarray(start, end);
      start = end;
      const hash = createHash('sha256').update(piece).digest('hex').slice(0, 32);
      const known = mine.get(hash) ?? (current.get(hash)?.[0] !== -1 ? current.get(hash) : undefined);
      if (known) {
        chunks.push(known);
        mine.set(hash, known);
        continue;
      }
      const gz = await gzipAsync(piece, { level: 1 });
      if (ends.length === 1 && gz.length + 4096 <= this.maxValue) {
        // a state smaller than a chunk travels in the record's value: one put per checkpoint
        inline = gz;
        chunks.push([-1, hash, piece.length, gz.length]);
        break;
      }
      const ref: ChunkRef = [freeSlot(), hash, piece.length, gz.length];
      chunks.push(ref);
      mine.set(hash, ref);
      writes.push({ ref, gz });
    }
    for (let i = 0; i < writes.length; i += PUT_CONCURRENCY)
      await Promise.all(writes.slice(i, i + PUT_CONCURRENCY).map(({ ref, gz }) => this.kv.put(this.chunkKey(ref[0]), gz)));
    const record: Record_ = {
      format: PIPELINE_CHECKPOINT_FORMAT,
      pipeline: cp.pipeline,
      seq: cp.seq,
      stream: cp.stream,
      watermark: Number.isFinite(cp.watermark) ? cp.watermark : String(cp.watermark),
      counters: cp.counters,
      at: cp.at,
      runtimeLength: cp.runtime.length,
      viewLength: cp.view.length,
      chunks,
    };
    const line = Buffer.from(JSON.stringify(record) + '\n', 'utf8');
    const value = inline ? Buffer.concat([line, inline]) : line;
    if (value.length > this.maxValue)
      throw new Error(`pipeline checkpoint ${this.key}: the record lists ${chunks.length} chunks and takes ${value.length} bytes, more than a KV value (${this.maxValue}); the state (${raw.length} bytes) is too large for the bucket's value size`);
    await this.kv.put(this.key, value);
    this.current = new Map(chunks.map((c) => [c[1], c]));
    let stored = 0;
    for (const c of chunks) stored += c[3];
    const written = value.length + writes.reduce((n, w) => n + w.gz.length, 0);
    return { raw: raw.length, stored, written, chunks: chunks.length, chunksWritten: writes.length + (inline ? 1 : 0), ms: performance.now() - t0 };
  }

  /**
   * The chunks already stored that a save may point to again: those of the record this store
   * loaded (every one checked) or saved last. A store that has not done either trusts none of
   * the stored record's chunks (one may be lost or overwritten: that is why a load fails), but it
   * does not overwrite them either: until its own record is written, the stored one stays whole.
   */
  private async currentChunks(): Promise<Map<string, ChunkRef>> {
    if (!this.current) {
      this.current = new Map();
      try {
        const r = await this.readRecord();
        // slot-only entries: never matched by hash (the key '#<slot>' is not a sha256)
        if (r) for (const c of r.record.chunks) if (c[0] >= 0) this.current.set(`#${c[0]}`, c);
      } catch {
        /* unreadable: nothing of it is worth keeping, every slot is free */
      }
    }
    return this.current;
  }

  /** Once per store: purges the keys of this pipeline that are not chunk slots (chunks of the older slot-a/b format). */
  private async purgeLegacyKeys(): Promise<void> {
    if (this.legacyPurged) return;
    const prefix = `${this.key}.`;
    for (const k of await this.kv.keys(`${prefix}>`)) if (!/^c\.\d+$/.test(k.slice(prefix.length))) await this.kv.purge(k);
    this.legacyPurged = true;
  }

  private async readRecord(): Promise<{ record: Record_; value: Uint8Array; nl: number } | null> {
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
    if (!Array.isArray(r.chunks)) fail('chunks must be an array');
    let inline = 0;
    r.chunks.forEach((c, i) => {
      if (!Array.isArray(c) || c.length !== 4) fail(`chunks[${i}] must be [slot, sha256, bytes, stored bytes]`);
      if (!Number.isSafeInteger(c[0]) || c[0] < -1) fail(`chunks[${i}]: slot must be a whole number >= -1, got ${JSON.stringify(c[0])}`);
      if (typeof c[1] !== 'string' || !/^[0-9a-f]{32}$/.test(c[1])) fail(`chunks[${i}]: sha256 must be 32 hex digits, got ${JSON.stringify(c[1])}`);
      for (const j of [2, 3]) if (!Number.isSafeInteger(c[j]) || (c[j] as number) < 0) fail(`chunks[${i}][${j}] must be a whole number >= 0, got ${JSON.stringify(c[j])}`);
      if (c[0] === -1) inline++;
    });
    if (inline > 1 || (inline === 1 && r.chunks.length !== 1)) fail('only a state of one chunk can be inline');
    return { record: r, value, nl };
  }

  /**
   * The stored checkpoint, or null when there is none. Throws an Error starting with
   * "pipeline checkpoint" when it is unreadable: not a record, another format or pipeline, a
   * chunk missing, a chunk whose size or sha256 differs.
   */
  async load(): Promise<PipelineCheckpoint | null> {
    this.current = undefined;
    const read = await this.readRecord();
    if (!read) return null;
    const { record: r, value, nl } = read;
    const fail = (why: string): never => {
      throw new Error(`pipeline checkpoint ${this.key}: ${why}`);
    };
    if (!Number.isSafeInteger(r.seq) || r.seq < 0) fail(`seq must be a whole number >= 0, got ${JSON.stringify(r.seq)}`);
    if (typeof r.stream !== 'string') fail(`stream must be a string, got ${JSON.stringify(r.stream)}`);
    const watermark = r.watermark === '-Infinity' ? -Infinity : r.watermark;
    if (typeof watermark !== 'number' || Number.isNaN(watermark) || watermark === Infinity) return fail(`watermark must be a number or "-Infinity", got ${JSON.stringify(r.watermark)}`);
    const c = r.counters as unknown as Record<string, unknown>;
    if (c === null || typeof c !== 'object') fail('counters must be an object');
    for (const k of ['events', 'results', 'alerts', 'rowsWritten', 'flushFailures']) if (!Number.isSafeInteger(c[k]) || (c[k] as number) < 0) fail(`counters.${k} must be a whole number >= 0, got ${JSON.stringify(c[k])}`);
    if (!Number.isFinite(r.at)) fail(`at must be a time, got ${JSON.stringify(r.at)}`);
    for (const k of ['runtimeLength', 'viewLength'] as const) if (!Number.isSafeInteger(r[k]) || r[k] < 0) fail(`${k} must be a whole number >= 0, got ${JSON.stringify(r[k])}`);
    const pieces = await Promise.all(
      r.chunks.map(async ([slot, hash, rawSize, storedSize], i) => {
        const where = slot === -1 ? `the inline chunk` : `chunk ${this.chunkKey(slot)} (chunks[${i}])`;
        let gz: Uint8Array | null;
        if (slot === -1) gz = value.subarray(nl + 1);
        else {
          gz = await this.kv.get(this.chunkKey(slot));
          if (gz === null) fail(`chunk ${this.chunkKey(slot)} is missing`);
        }
        if (gz!.length !== storedSize) fail(`${where} has ${gz!.length} bytes, the record says ${storedSize} (overwritten or lost)`);
        let piece: Buffer;
        try {
          piece = await gunzipAsync(gz!);
        } catch (err) {
          return fail(`${where} does not decompress (${(err as Error).message})`);
        }
        if (piece.length !== rawSize || createHash('sha256').update(piece).digest('hex').slice(0, 32) !== hash) fail(`${where} does not match its sha256 (overwritten or corrupted)`);
        return piece;
      }),
    );
    const text = Buffer.concat(pieces).toString('utf8');
    if (text.length !== r.runtimeLength + r.viewLength) fail(`the state holds ${text.length} characters, the record says ${r.runtimeLength} + ${r.viewLength}`);
    this.current = new Map(r.chunks.map((ch) => [ch[1], ch]));
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
