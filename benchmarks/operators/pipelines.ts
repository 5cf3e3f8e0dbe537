/**
 * Whole declared pipelines on one thread: each shipped pipeline (config/pipelines/*.yaml) as the
 * pure PipelineRuntime, fed batches of 1,000 synthetic events of its own metrics (and tags) over
 * 10,000 keys, with event time and processing time moving forward. Prints events/s, results
 * emitted, and bytes of state per key. Baseline in the same run: the bare window operator with a
 * count aggregate over the same events (what the stages above it cost).
 *
 * `npx tsx benchmarks/operators.ts pipelines`
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rng } from '../producer.js';
import { collectGarbage, perSecond } from '../timing.js';
import { loadPipelineDir } from '../../engine/pipeline/load.js';
import { PipelineRuntime, type KeyedSample } from '../../engine/pipeline/runtime.js';
import type { PipelineSpec } from '../../engine/pipeline/spec.js';
import { KeyedWindows } from '../../operators/windows/keyed.js';
import { tumbling } from '../../operators/windows/assigners.js';
import type { Sample } from '../../operators/sample.js';

type Say = (line: string) => void;

export const KEYS = 10_000;
const N = 200_000;
const BATCH = 1000;
const fmt = (x: number) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toPrecision(3));

/** Events of a pipeline's metrics: keys uniform, values in a plausible range, tags the pipeline needs. */
export function eventsFor(spec: PipelineSpec, seed: number): { batches: KeyedSample[][]; spanMs: number } {
  const rand = rng(seed);
  const metrics = spec.source.metrics.filter((m) => m !== '*');
  const tags = spec.keyBy.filter((k) => k.startsWith('tag:')).map((k) => k.slice(4));
  const distinctTag = Object.values(spec.aggregates).flatMap((a) => (typeof a.of === 'string' && a.of.startsWith('tag:') ? [a.of] : []));
  // event time: a span of 3 windows (or 3 days for rolling/global), events in order with jitter
  const w = spec.window;
  const spanMs = w.type === 'tumbling' || w.type === 'sliding' ? 3 * w.size : w.type === 'session' ? 10 * w.gap : 3 * 86_400_000;
  const t0 = Date.UTC(2026, 10, 1);
  const batches: KeyedSample[][] = [];
  for (let b = 0; b < N / BATCH; b++) {
    const batch: KeyedSample[] = [];
    for (let i = 0; i < BATCH; i++) {
      const n = b * BATCH + i;
      const metric = metrics[Math.floor(rand() * metrics.length)];
      const s: KeyedSample = { metric, key: `k${Math.floor(rand() * KEYS)}`, ts: t0 + Math.floor((n / N) * spanMs + rand() * 1000), value: Math.floor(rand() * 1000) / 10 };
      if (tags.length || distinctTag.length) {
        const tv: Record<string, string> = {};
        for (const t of tags) tv[t] = `${t}${Math.floor(rand() * 100)}`;
        for (const t of distinctTag) tv[t.replace(/^tag:/, '')] = `u${Math.floor(rand() * 50_000)}`;
        s.tags = tv;
      }
      batch.push(s);
    }
    batches.push(batch);
  }
  return { batches, spanMs };
}

export function runPipeline(spec: PipelineSpec, batches: KeyedSample[][], close = true): { rt: PipelineRuntime; results: number; alerts: number } {
  const rt = new PipelineRuntime(spec);
  let results = 0;
  let alerts = 0;
  let wm = -Infinity;
  let now = 0;
  for (const batch of batches) {
    let max = -Infinity;
    for (const s of batch) if (s.ts > max) max = s.ts;
    const after = Math.max(wm, max - 5000);
    // processing time: 10 ms per batch, so debounce and early triggers have work to do
    now += 10;
    const out = rt.process(batch, wm, after, now);
    wm = after;
    results += out.results.length;
    alerts += out.alerts.length;
  }
  if (!close) return { rt, results, alerts };
  const out = rt.tick(wm + 86_400_000 * 100, now + 3_600_000);
  return { rt, results: results + out.results.length, alerts: alerts + out.alerts.length };
}

function bare(batches: KeyedSample[][]): void {
  const count = { create: () => 0, add: (a: number) => a + 1, merge: (a: number, b: number) => a + b, result: (a: number) => a, serialize: String, deserialize: Number };
  const w = new KeyedWindows<Sample, number, number>({ assigner: tumbling('1m', 60_000) }, count);
  let wm = -Infinity;
  const out = { emit() {}, late() {} };
  for (const batch of batches) {
    const keys = batch.map((s) => s.key);
    const ts = Float64Array.from(batch, (s) => s.ts);
    let max = -Infinity;
    for (const s of batch) if (s.ts > max) max = s.ts;
    const after = Math.max(wm, max - 5000);
    w.process({ keys, ts, items: batch, wmBefore: wm, wmAfter: after, now: 0 }, out);
    wm = after;
  }
}

export function run(say: Say): void {
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'config', 'pipelines');
  const specs = loadPipelineDir(dir);
  say(`${fmt(N)} events in batches of ${BATCH}, ${fmt(KEYS)} keys (tags: 100 values each), best of 3`);
  const first = eventsFor(specs[0], 1);
  const base = perSecond(N, () => bare(first.batches));
  say(`baseline: KeyedWindows tumbling 1m + count, same events: ${fmt(base)} events/s`);
  for (const spec of specs) {
    const { batches } = eventsFor(spec, 7);
    let last = { results: 0, alerts: 0 };
    const rate = perSecond(N, () => {
      const r = runPipeline(spec, batches);
      last = { results: r.results, alerts: r.alerts };
    });
    collectGarbage();
    const before = process.memoryUsage();
    // state while the stream runs (before the closing tick evicts the windows)
    const kept = runPipeline(spec, batches, false);
    collectGarbage();
    const after = process.memoryUsage();
    const keys = Math.max(1, kept.rt.stateSize().keys);
    const bytes = (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / keys;
    say(
      `${spec.name.padEnd(14)} ${spec.window.type.padEnd(8)} ${fmt(rate).padStart(10)} events/s (x${(rate / base).toFixed(2)} of baseline), ` +
        `${fmt(last.results)} rows, ${fmt(last.alerts)} alert transitions, ${bytes > 0 ? `${fmt(bytes)} B` : 'below the heap noise'} per key (${fmt(keys)} keys with state)`,
    );
  }
}
