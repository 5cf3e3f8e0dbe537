/**
 * Incremental checkpoints (engine/pipeline/checkpoint.ts): for each shipped pipeline, the state
 * after 200,000 events over 10,000 keys is checkpointed whole into an in-memory KV; then batches
 * touching 1 % of the keys (100 keys) are processed and a checkpoint is taken after each. Prints
 * the state's size, what a whole checkpoint writes (the baseline: what every checkpoint wrote
 * before they were incremental), what an incremental one writes, the ratio, and the time to take
 * the snapshot and to chunk, hash, compress and write it.
 *
 * `npx tsx benchmarks/operators.ts checkpoints`
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rng } from '../producer.js';
import { loadPipelineDir } from '../../engine/pipeline/load.js';
import type { KeyedSample } from '../../engine/pipeline/runtime.js';
import { CheckpointStore, type CheckpointKv, type PipelineCheckpoint } from '../../engine/pipeline/checkpoint.js';
import { eventsFor, KEYS, runPipeline } from './pipelines.js';

type Say = (line: string) => void;

class MemoryKv implements CheckpointKv {
  readonly data = new Map<string, Uint8Array>();
  async get(key: string) {
    return this.data.get(key) ?? null;
  }
  async put(key: string, value: Uint8Array) {
    this.data.set(key, value);
  }
  async purge(key: string) {
    this.data.delete(key);
  }
  async keys() {
    return [...this.data.keys()];
  }
}

const kb = (b: number) => (b >= 10 * 1024 * 1024 ? `${(b / 1024 / 1024).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`);

export async function run(say: Say): Promise<void> {
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'config', 'pipelines');
  say(`state after 200,000 events over ${KEYS.toLocaleString('en-US')} keys; then 5 rounds of 100 events on 100 keys (1 %), a checkpoint after each`);
  for (const spec of loadPipelineDir(dir)) {
    const { batches } = eventsFor(spec, 7);
    const { rt } = runPipeline(spec, batches, false);
    const kv = new MemoryKv();
    const store = new CheckpointStore(kv, spec.name, 1024 * 1024 - 4096);
    const take = (seq: number): { cp: PipelineCheckpoint; ms: number } => {
      const t0 = performance.now();
      const runtime = rt.snapshot();
      return { cp: { pipeline: spec.name, seq, stream: 's', watermark: 0, counters: { events: 0, results: 0, alerts: 0, rowsWritten: 0, flushFailures: 0 }, at: 0, runtime, view: '[]' }, ms: performance.now() - t0 };
    };
    const first = take(1);
    const whole = await store.save(first.cp);
    const rand = rng(11);
    const last = batches[batches.length - 1];
    let maxTs = -Infinity;
    for (const s of last) if (s.ts > maxTs) maxTs = s.ts;
    let written = 0;
    let chunks = 0;
    let snapMs = 0;
    let saveMs = 0;
    const rounds = 5;
    for (let r = 0; r < rounds; r++) {
      // 100 events of 100 keys, in event time just after the stream's end (no window closes)
      const batch: KeyedSample[] = [];
      for (let i = 0; i < 100; i++) {
        const s = last[Math.floor(rand() * last.length)];
        batch.push({ ...s, key: `k${Math.floor(rand() * KEYS)}`, ts: maxTs + r });
      }
      rt.process(batch, maxTs - 5000, maxTs - 5000, 1e9 + r);
      const t = take(2 + r);
      const s = await store.save(t.cp);
      written += s.written;
      chunks += s.chunksWritten;
      snapMs += t.ms;
      saveMs += s.ms;
    }
    const inc = written / rounds;
    say(
      `${spec.name.padEnd(14)} state ${kb(whole.raw).padStart(10)} (${kb(whole.stored)} gzip, ${whole.chunks} chunks): whole checkpoint writes ${kb(whole.written)}, ` +
        `incremental ${kb(inc)} (${(chunks / rounds).toFixed(1)} chunks) = x${(whole.written / inc).toFixed(1)} less; snapshot ${(snapMs / rounds).toFixed(0)} ms, save ${(saveMs / rounds).toFixed(0)} ms (whole: ${whole.ms.toFixed(0)} ms)`,
    );
  }
}
