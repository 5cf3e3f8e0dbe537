/**
 * CheckpointStore against an in-memory KV: a checkpoint comes back as it was saved; a state
 * smaller than a chunk is one value; a larger one is cut into content-defined chunks, and a
 * checkpoint after a change to a few keys writes only the chunks that hold them (incremental);
 * a crash at any put leaves the previous checkpoint whole; slots are reused, so the keys stay
 * bounded; anything unreadable (garbage, another format or pipeline, a chunk lost or
 * overwritten) is refused with an Error that names the key.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CheckpointStore, type CheckpointKv, type PipelineCheckpoint } from './checkpoint.js';
import { cdcBoundaries, type CdcOptions } from './cdc.js';

class MemoryKv implements CheckpointKv {
  readonly data = new Map<string, Uint8Array>();
  puts = 0;
  bytesPut = 0;
  /** Throws on the put after this many (a crash in the middle of a save). */
  failAfter = Infinity;

  async get(key: string) {
    return this.data.get(key) ?? null;
  }
  async put(key: string, value: Uint8Array) {
    if (this.puts >= this.failAfter) throw new Error('crash');
    this.puts++;
    this.bytesPut += value.length;
    this.data.set(key, Uint8Array.from(value));
  }
  async purge(key: string) {
    this.data.delete(key);
  }
  async keys(filter: string) {
    const re = new RegExp(`^${filter.replace(/\./g, '\\.').replace(/\*/g, '[^.]+').replace(/>/g, '.+')}$`);
    return [...this.data.keys()].filter((k) => re.test(k));
  }
}

const SMALL_CDC: CdcOptions = { min: 256, avg: 1024, max: 4096 };

/** A keyed state as the operators write it: one entry per key, values random (barely compressible). */
function keyedState(keys: Map<string, string>): string {
  return JSON.stringify({ format: 'weir.pipeline/1', keys: [...keys].map(([k, v]) => [k, v]) });
}

/** Seeded (mulberry32): the incremental figures below do not depend on luck. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function text(rand: () => number, chars: number): string {
  let s = '';
  for (let i = 0; i < chars; i++) s += 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'[Math.floor(rand() * 64)];
  return s;
}

function randomKeys(n: number, rand = rng(n)): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < n; i++) m.set(`tutor-${i}`, text(rand, 32));
  return m;
}

function checkpoint(seq: number, runtime: string, seed = seq): PipelineCheckpoint {
  return {
    pipeline: 'tutors',
    seq,
    stream: '2026-11-23T10:00:00.000Z',
    watermark: seq === 0 ? -Infinity : 1_795_000_000_000 + seq,
    counters: { events: seq * 3, results: seq, alerts: seed % 7, rowsWritten: seq, flushFailures: 0 },
    at: 1_795_000_000_000 + seed,
    runtime,
    view: `[["v${seed}","é✓"]]`,
  };
}

const noise = (chars: number) => randomBytes(Math.ceil(chars / 2)).toString('hex').slice(0, chars);

describe('content-defined chunking', () => {
  it('cuts within [min, max], covers the data, is deterministic, and an edit moves only the cuts near it', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 40_000 }), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 50 }), (data, at, insert) => {
        const ends = cdcBoundaries(data, SMALL_CDC);
        expect(cdcBoundaries(data, SMALL_CDC)).toEqual(ends);
        if (data.length === 0) {
          expect(ends).toEqual([]);
          return;
        }
        expect(ends[ends.length - 1]).toBe(data.length);
        let start = 0;
        ends.forEach((e, i) => {
          expect(e - start).toBeLessThanOrEqual(SMALL_CDC.max);
          if (i < ends.length - 1) expect(e - start).toBeGreaterThan(SMALL_CDC.min);
          start = e;
        });
        // an insertion: every chunk that ends before it, less one, and most after it are the same bytes
        const p = at % data.length;
        const edited = new Uint8Array(data.length + insert.length);
        edited.set(data.subarray(0, p));
        edited.set(insert, p);
        edited.set(data.subarray(p), p + insert.length);
        const after = cdcBoundaries(edited, SMALL_CDC);
        const before = new Set(ends.filter((e) => e < p));
        for (const e of after.filter((x) => x < p)) expect(before.has(e)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('on random data the mean chunk is near avg', () => {
    const data = randomBytes(2_000_000);
    const ends = cdcBoundaries(data, { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 });
    const mean = data.length / ends.length;
    expect(mean).toBeGreaterThan(40 * 1024);
    expect(mean).toBeLessThan(120 * 1024);
  });
});

describe('CheckpointStore', () => {
  it('no checkpoint: null', async () => {
    expect(await new CheckpointStore(new MemoryKv(), 'tutors', 4096).load()).toBeNull();
  });

  it('a state smaller than a chunk is one value at pipeline.<name>, and comes back as it was saved (a -Infinity watermark too)', async () => {
    const kv = new MemoryKv();
    const store = new CheckpointStore(kv, 'tutors', 64 * 1024);
    for (const cp of [checkpoint(0, '{}'), checkpoint(42, `{"x":"${noise(1000)}"}`)]) {
      const stats = await store.save(cp);
      expect(stats.chunks).toBe(1);
      expect([...kv.data.keys()]).toEqual(['pipeline.tutors']);
      expect(await new CheckpointStore(kv, 'tutors', 64 * 1024).load()).toEqual(cp);
    }
  });

  it('incremental: after a change to a few keys, only the chunks that hold them are written', async () => {
    const kv = new MemoryKv();
    const store = new CheckpointStore(kv, 'tutors', 1024 * 1024, SMALL_CDC);
    const rand = rng(7);
    const keys = randomKeys(5000, rand);
    const first = await store.save(checkpoint(1, keyedState(keys)));
    expect(first.chunks).toBeGreaterThan(100);
    expect(first.chunksWritten).toBe(first.chunks);
    for (let round = 2; round <= 6; round++) {
      // 3 keys change, 1 is added at the end, 1 is removed
      const names = [...keys.keys()];
      for (let j = 0; j < 3; j++) keys.set(names[Math.floor(rand() * names.length)], text(rand, 32));
      keys.set(`new-${round}`, 'fresh');
      keys.delete(names[Math.floor(rand() * names.length)]);
      const before = kv.bytesPut;
      const cp = checkpoint(round, keyedState(keys));
      const s = await store.save(cp);
      // each of the 5 edits rewrites its chunk and, when it moves a cut, a few after it (until the
      // cuts fall where they did); the whole state is 100+ chunks
      expect(s.chunksWritten).toBeLessThanOrEqual(5 * 3 + 1);
      expect(s.written).toBe(kv.bytesPut - before);
      expect(s.written).toBeLessThan(s.stored / 5);
      expect(await new CheckpointStore(kv, 'tutors', 1024 * 1024, SMALL_CDC).load()).toEqual(cp);
    }
    // slots are reused: the keys stay within twice the state's chunks
    const last = await store.save(checkpoint(7, keyedState(keys)));
    expect(last.chunksWritten).toBeLessThanOrEqual(1); // the last chunk holds the view, which names the seq
    expect(kv.data.size).toBeLessThanOrEqual(2 * last.chunks + 1);
  });

  it('a crash at any put of a save leaves the previous checkpoint readable, and a store opened after it goes on saving', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ add: fc.integer({ min: 0, max: 300 }), change: fc.integer({ min: 0, max: 20 }) }), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        async (steps, crashAt) => {
          const kv = new MemoryKv();
          let store = new CheckpointStore(kv, 'tutors', 64 * 1024, SMALL_CDC);
          const keys = randomKeys(200);
          let last: PipelineCheckpoint | null = null;
          for (let i = 0; i < steps.length; i++) {
            const names = [...keys.keys()];
            for (let j = 0; j < steps[i].change; j++) keys.set(names[(j * 7919) % names.length], randomBytes(8).toString('hex'));
            for (let j = 0; j < steps[i].add; j++) keys.set(`k${i}-${j}`, randomBytes(12).toString('hex'));
            const cp = checkpoint(i + 1, keyedState(keys));
            if (i < steps.length - 1) {
              await store.save(cp);
              last = cp;
              continue;
            }
            kv.failAfter = kv.puts + (crashAt % 40);
            try {
              await store.save(cp);
              last = cp;
            } catch {
              /* crashed: the process is gone; a new one opens the store */
            }
            kv.failAfter = Infinity;
            store = new CheckpointStore(kv, 'tutors', 64 * 1024, SMALL_CDC);
            expect(await store.load()).toEqual(last);
            const next = checkpoint(100, keyedState(keys));
            await store.save(next);
            expect(await new CheckpointStore(kv, 'tutors', 64 * 1024, SMALL_CDC).load()).toEqual(next);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('chunks of the older slot-a/b format are purged by the first save', async () => {
    const kv = new MemoryKv();
    kv.data.set('pipeline.tutors.a.0', Buffer.from('old'));
    kv.data.set('pipeline.tutors.b.3', Buffer.from('old'));
    kv.data.set('pipeline.films.a.0', Buffer.from('not mine'));
    await new CheckpointStore(kv, 'tutors', 64 * 1024, SMALL_CDC).save(checkpoint(1, keyedState(randomKeys(300))));
    expect([...kv.data.keys()].filter((k) => /\.[ab]\.\d+$/.test(k))).toEqual(['pipeline.films.a.0']);
  });

  it('refuses what it cannot read, naming the key', async () => {
    const kv = new MemoryKv();
    const store = new CheckpointStore(kv, 'tutors', 64 * 1024, SMALL_CDC);
    const garbage = async (bytes: Uint8Array) => {
      kv.data.set('pipeline.tutors', bytes);
      return new CheckpointStore(kv, 'tutors', 64 * 1024, SMALL_CDC).load();
    };
    await expect(garbage(Buffer.from('garbage'))).rejects.toThrow(/^pipeline checkpoint pipeline\.tutors: no record line/);
    await expect(garbage(Buffer.from('{nope\n'))).rejects.toThrow(/pipeline checkpoint pipeline\.tutors: the record is not JSON/);
    await expect(garbage(Buffer.from('{"format":"weir.pipeline-checkpoint/1"}\n'))).rejects.toThrow(/format "weir.pipeline-checkpoint\/1" is not weir.pipeline-checkpoint\/2/);

    await store.save(checkpoint(5, '{"small":1}'));
    const inline = kv.data.get('pipeline.tutors')!;
    const flipped = Uint8Array.from(inline);
    flipped[flipped.length - 9] ^= 0xff;
    await expect(garbage(flipped)).rejects.toThrow(/inline chunk (does not match its sha256|does not decompress)/);
    await expect(garbage(inline.subarray(0, inline.length - 4))).rejects.toThrow(/the inline chunk has \d+ bytes, the record says \d+/);
    kv.data.set('pipeline.tutors', inline);
    await expect(new CheckpointStore(kv, 'films', 2048).load()).resolves.toBeNull();
    kv.data.set('pipeline.films', inline);
    await expect(new CheckpointStore(kv, 'films', 2048).load()).rejects.toThrow(/pipeline\.films: the record is of pipeline "tutors"/);

    const chunked = new CheckpointStore(kv, 'tutors', 64 * 1024, SMALL_CDC);
    await chunked.load();
    await chunked.save(checkpoint(6, keyedState(randomKeys(300))));
    const chunkKey = [...kv.data.keys()].find((k) => k === 'pipeline.tutors.c.1')!;
    const chunk = kv.data.get(chunkKey)!;
    kv.data.set(chunkKey, Uint8Array.from(chunk).fill(7, 10, 20));
    await expect(new CheckpointStore(kv, 'tutors', 2048).load()).rejects.toThrow(/chunk pipeline\.tutors\.c\.1 \(chunks\[\d+\]\) (does not match its sha256|does not decompress)/);
    kv.data.delete(chunkKey);
    await expect(new CheckpointStore(kv, 'tutors', 2048).load()).rejects.toThrow(/chunk pipeline\.tutors\.c\.1 is missing/);
    // a store that cannot read the record treats every slot as free, and its save makes a whole checkpoint again
    const fresh = new CheckpointStore(kv, 'tutors', 64 * 1024, SMALL_CDC);
    const cp = checkpoint(7, keyedState(randomKeys(300)));
    await fresh.save(cp);
    expect(await new CheckpointStore(kv, 'tutors', 2048).load()).toEqual(cp);
  });
});
