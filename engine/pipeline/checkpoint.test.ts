/**
 * CheckpointStore against an in-memory KV: a checkpoint comes back as it was saved, inline when it
 * fits in one value and in chunks when it does not; chunks alternate between two slots so a crash
 * while they are written leaves the previous checkpoint whole; chunks no record points to are
 * purged; anything unreadable (garbage, another format or pipeline, a chunk lost or overwritten)
 * is refused with an Error that names the key.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CheckpointStore, type CheckpointKv, type PipelineCheckpoint } from './checkpoint.js';

class MemoryKv implements CheckpointKv {
  readonly data = new Map<string, Uint8Array>();
  puts = 0;
  /** Throws on the put after this many (a crash in the middle of a save). */
  failAfter = Infinity;

  async get(key: string) {
    return this.data.get(key) ?? null;
  }
  async put(key: string, value: Uint8Array) {
    if (this.puts >= this.failAfter) throw new Error('crash');
    this.puts++;
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

function checkpoint(seq: number, runtimeChars: number, seed = seq): PipelineCheckpoint {
  // incompressible text, so that its size decides inline or chunked
  const noise = randomBytes(Math.ceil(runtimeChars / 2)).toString('hex').slice(0, runtimeChars);
  return {
    pipeline: 'tutors',
    seq,
    stream: '2026-11-23T10:00:00.000Z',
    watermark: seq === 0 ? -Infinity : 1_795_000_000_000 + seq,
    counters: { events: seq * 3, results: seq, alerts: seed % 7, rowsWritten: seq, flushFailures: 0 },
    at: 1_795_000_000_000 + seed,
    runtime: `{"format":"weir.pipeline/1","x":"${noise}"}`,
    view: `[["v${seed}"]]`,
  };
}

describe('CheckpointStore', () => {
  it('no checkpoint: null', async () => {
    expect(await new CheckpointStore(new MemoryKv(), 'tutors', 4096).load()).toBeNull();
  });

  it('a small checkpoint is one value at pipeline.<name>, and comes back as it was saved (a -Infinity watermark too)', async () => {
    const kv = new MemoryKv();
    const store = new CheckpointStore(kv, 'tutors', 64 * 1024);
    for (const cp of [checkpoint(0, 100), checkpoint(42, 1000)]) {
      const stats = await store.save(cp);
      expect(stats.parts).toBe(0);
      expect([...kv.data.keys()]).toEqual(['pipeline.tutors']);
      expect(await new CheckpointStore(kv, 'tutors', 64 * 1024).load()).toEqual(cp);
    }
  });

  it('a large one goes in chunks to alternating slots; the record comes last; chunks nothing points to are purged', async () => {
    const kv = new MemoryKv();
    const store = new CheckpointStore(kv, 'tutors', 2048);
    const big = checkpoint(1, 9000);
    const s1 = await store.save(big);
    expect(s1.parts).toBeGreaterThan(2);
    expect(kv.data.get('pipeline.tutors.a.0')).toBeDefined();
    expect(await new CheckpointStore(kv, 'tutors', 2048).load()).toEqual(big);
    const bigger = checkpoint(2, 12_000);
    const s2 = await store.save(bigger);
    expect(kv.data.get('pipeline.tutors.b.0')).toBeDefined();
    expect(await new CheckpointStore(kv, 'tutors', 2048).load()).toEqual(bigger);
    // back to slot a, with fewer chunks: a's extra chunks go
    const smaller = checkpoint(3, 5000);
    const s3 = await store.save(smaller);
    expect(s3.parts).toBeLessThan(s1.parts);
    const inA = [...kv.data.keys()].filter((k) => k.startsWith('pipeline.tutors.a.'));
    expect(inA.length).toBe(s3.parts);
    expect(await new CheckpointStore(kv, 'tutors', 2048).load()).toEqual(smaller);
    // small again: inline, and every chunk goes
    const small = checkpoint(4, 100);
    await store.save(small);
    expect([...kv.data.keys()]).toEqual(['pipeline.tutors']);
    expect(await new CheckpointStore(kv, 'tutors', 2048).load()).toEqual(small);
    expect(s2.stored).toBeGreaterThan(s1.stored);
  });

  it('a crash at any put of a save leaves the previous checkpoint readable, and a store opened after it (load, then save) writes the other slot', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 50, max: 9000 }), { minLength: 1, maxLength: 5 }), fc.nat(), async (sizes, crashAt) => {
        const kv = new MemoryKv();
        let store = new CheckpointStore(kv, 'tutors', 2048);
        let last: PipelineCheckpoint | null = null;
        for (let i = 0; i < sizes.length; i++) {
          const cp = checkpoint(i + 1, sizes[i]);
          if (i === sizes.length - 1) {
            kv.failAfter = kv.puts + (crashAt % (Math.ceil(sizes[i] / 1500) + 2));
            try {
              await store.save(cp);
              last = cp;
            } catch {
              /* crashed: the process is gone; a new one opens the store */
            }
            kv.failAfter = Infinity;
            store = new CheckpointStore(kv, 'tutors', 2048);
            expect(await store.load()).toEqual(last);
            // and the restarted store goes on saving
            const next = checkpoint(100, sizes[i]);
            await store.save(next);
            expect(await new CheckpointStore(kv, 'tutors', 2048).load()).toEqual(next);
          } else {
            await store.save(cp);
            last = cp;
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it('refuses what it cannot read, naming the key', async () => {
    const kv = new MemoryKv();
    const store = new CheckpointStore(kv, 'tutors', 2048);
    const garbage = async (bytes: Uint8Array) => {
      kv.data.set('pipeline.tutors', bytes);
      return new CheckpointStore(kv, 'tutors', 2048).load();
    };
    await expect(garbage(Buffer.from('garbage'))).rejects.toThrow(/^pipeline checkpoint pipeline\.tutors: no record line/);
    await expect(garbage(Buffer.from('{nope\n'))).rejects.toThrow(/pipeline checkpoint pipeline\.tutors: the record is not JSON/);
    await expect(garbage(Buffer.from('{"format":"weir.other/1"}\n'))).rejects.toThrow(/format "weir.other\/1"/);

    await store.save(checkpoint(5, 100));
    const inline = kv.data.get('pipeline.tutors')!;
    const flipped = Uint8Array.from(inline);
    flipped[flipped.length - 3] ^= 0xff;
    await expect(garbage(flipped)).rejects.toThrow(/sha256/);
    await expect(garbage(inline.subarray(0, inline.length - 4))).rejects.toThrow(/the payload has \d+ bytes, the record says/);
    kv.data.set('pipeline.tutors', inline);
    await expect(new CheckpointStore(kv, 'films', 2048).load()).resolves.toBeNull();
    kv.data.set('pipeline.films', inline);
    await expect(new CheckpointStore(kv, 'films', 2048).load()).rejects.toThrow(/pipeline\.films: the record is of pipeline "tutors"/);

    const chunked = new CheckpointStore(kv, 'tutors', 2048);
    await chunked.load();
    await chunked.save(checkpoint(6, 9000));
    const chunkKey = [...kv.data.keys()].find((k) => k.startsWith('pipeline.tutors.') && k.endsWith('.1'))!;
    const chunk = kv.data.get(chunkKey)!;
    kv.data.set(chunkKey, Uint8Array.from(chunk).fill(7, 10, 20));
    await expect(new CheckpointStore(kv, 'tutors', 2048).load()).rejects.toThrow(/sha256/);
    kv.data.delete(chunkKey);
    await expect(new CheckpointStore(kv, 'tutors', 2048).load()).rejects.toThrow(new RegExp(`chunk ${chunkKey.replace(/\./g, '\\.')} is missing`));
  });
});
