/**
 * Keyed event-time windows (operators/windows/keyed.ts) on one thread: events/s per assigner
 * and trigger over 10k keys, in batches of 1000 with out-of-order events, against the engine's
 * TumblingWindows on the same events in the same run; and bytes of state per key (serialised
 * snapshot / keys, and JS heap / keys) mid-stream. Each row runs in its own child process: in
 * one process the rows measured later ran up to 40 % slower (JIT feedback from the other
 * assigners), which is not what a worker running one pipeline sees. The ratio of a row is to
 * the baseline timed in the same process, rounds interleaved, so load from other processes
 * on the machine hits both alike.
 *
 * `npx tsx benchmarks/operators.ts windows`
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { rng } from '../producer.js';
import { moments, type Moments, type MomentsResult } from '../../operators/aggregates/stats.js';
import { globalWindow, rolling, session, sliding, tumbling, type WindowAssigner } from '../../operators/windows/assigners.js';
import { KeyedWindows, type KeyedBatch, type WindowOutput } from '../../operators/windows/keyed.js';
import { TumblingWindows, type EventBatch } from '../../operators/windows/tumbling.js';
import type { TriggerSpec } from '../../operators/windows/triggers.js';
import { collectGarbage, perSecond, type Say } from '../timing.js';

const KEYS = 10_000;
const N = 400_000;
const BATCH = 1000;
const DAY = 86_400_000;

interface Stream {
  keyed: KeyedBatch<number>[];
  plain: EventBatch[];
  endWm: number;
}

/**
 * N events over KEYS keys, `spanMs` of event time, each displaced back by up to `jitterMs`; the
 * watermark trails the newest event by `lagMs`; processing time moves 20 ms per batch.
 */
function makeStream(spanMs: number, jitterMs: number, lagMs: number): Stream {
  const rand = rng(7);
  const names = Array.from({ length: KEYS }, (_, i) => `metric\u0001key-${i}`);
  const t0 = 1_700_000_000_000 - (1_700_000_000_000 % DAY);
  const keyed: KeyedBatch<number>[] = [];
  const plain: EventBatch[] = [];
  let wm = -Infinity;
  let maxTs = -Infinity;
  for (let b = 0; b < N / BATCH; b++) {
    const keys: string[] = [];
    const ts = new Float64Array(BATCH);
    const values = new Float64Array(BATCH);
    for (let i = 0; i < BATCH; i++) {
      const n = b * BATCH + i;
      keys.push(names[Math.floor(rand() * KEYS)]);
      ts[i] = Math.floor(t0 + (n / N) * spanMs - rand() * jitterMs);
      values[i] = Math.round(Math.exp(3 + 2 * rand()) * 1000) / 1000;
      if (ts[i] > maxTs) maxTs = ts[i];
    }
    const wmAfter = Math.max(wm, maxTs - lagMs);
    keyed.push({ keys, ts, items: values, wmBefore: wm, wmAfter, now: b * 20 });
    plain.push({ series: keys, ts, values, wmBefore: wm, wmAfter });
    wm = wmAfter;
  }
  return { keyed, plain, endWm: maxTs + 1000 * DAY };
}

interface Case {
  label: string;
  /** The engine's TumblingWindows of this size instead of KeyedWindows (the baseline row). */
  baselineSizeMs?: number;
  assigner?: WindowAssigner;
  trigger?: TriggerSpec;
  allowedLatenessMs: number;
}

interface Group {
  label: string;
  stream: () => Stream;
  cases: Case[];
}

const ROLLING = () => rolling('tutor', DAY, [{ name: '7d', sizeMs: 7 * DAY }, { name: '30d', sizeMs: 30 * DAY }, { name: '90d', sizeMs: 90 * DAY }]);

const GROUPS: Group[] = [
  {
    label: '100 s of event time, 2 s disorder, watermark lag 2 s',
    stream: () => makeStream(100_000, 2_000, 2_000),
    cases: [
      { label: 'TumblingWindows 10s (engine, baseline)', baselineSizeMs: 10_000, allowedLatenessMs: 5_000 },
      { label: 'tumbling 10s', assigner: tumbling('10s', 10_000), allowedLatenessMs: 5_000 },
      { label: 'tumbling 10s + early 1s', assigner: tumbling('10s', 10_000), trigger: { earlyMs: 1_000 }, allowedLatenessMs: 5_000 },
      { label: 'tumbling 10s + count 3', assigner: tumbling('10s', 10_000), trigger: { count: 3 }, allowedLatenessMs: 5_000 },
      { label: 'sliding 30s/10s (3 panes)', assigner: sliding('30s/10s', 30_000, 10_000), allowedLatenessMs: 5_000 },
      { label: 'sliding 60s/5s (12 panes)', assigner: sliding('60s/5s', 60_000, 5_000), allowedLatenessMs: 5_000 },
      { label: 'session gap 5s', assigner: session('5s', 5_000), allowedLatenessMs: 5_000 },
      { label: 'global (a result per changed key per batch)', assigner: globalWindow('all'), allowedLatenessMs: 0 },
      { label: 'global, early 1s instead', assigner: globalWindow('all'), trigger: { earlyMs: 1_000 }, allowedLatenessMs: 0 },
    ],
  },
  {
    label: '200 days of event time, 1 h disorder, watermark lag 1 h',
    stream: () => makeStream(200 * DAY, 3_600_000, 3_600_000),
    cases: [
      { label: 'TumblingWindows 1d (engine, baseline)', baselineSizeMs: DAY, allowedLatenessMs: 2 * DAY },
      { label: 'tumbling 1d', assigner: tumbling('1d', DAY), allowedLatenessMs: 2 * DAY },
      { label: 'rolling 7/30/90d over 1d panes (a result per changed key per batch)', assigner: ROLLING(), allowedLatenessMs: 2 * DAY },
      { label: 'rolling 7/30/90d, early 1s instead', assigner: ROLLING(), trigger: { earlyMs: 1_000 }, allowedLatenessMs: 2 * DAY },
    ],
  },
];

interface Row {
  rate: number;
  /** TumblingWindows (the group's baseline) timed in the same process, rounds interleaved. */
  baseRate: number;
  results: number;
  state?: { snapshot: number; heap: number; keys: number };
}

const fmtRate = (r: number) => (r >= 1e6 ? `${(r / 1e6).toFixed(2)} M/s` : `${(r / 1e3).toFixed(0)} k/s`);
const pad = (s: string, n: number) => s.padEnd(n);

/** Runs every batch through a fresh operator, then the final advance; returns results emitted. */
function runKeyed(c: Case, s: Stream): number {
  let emitted = 0;
  const out: WindowOutput<number, MomentsResult> = { emit: () => emitted++, late: () => {} };
  const w = new KeyedWindows<number, Moments, MomentsResult>({ assigner: c.assigner!, trigger: c.trigger, allowedLatenessMs: c.allowedLatenessMs }, moments);
  for (const b of s.keyed) w.process(b, out);
  w.advance(s.endWm, s.keyed.length * 20, out);
  return emitted;
}

function runBaseline(sizeMs: number, lateness: number, s: Stream): number {
  let emitted = 0;
  const w = new TumblingWindows({ specs: [{ name: 'w', sizeMs }], allowedLatenessMs: lateness }, moments);
  for (const b of s.plain) w.process(b, () => emitted++);
  w.advance(s.endWm, () => emitted++);
  return emitted;
}

/** Snapshot bytes and heap bytes per key of the state after the first half of the stream. */
function statePerKey(c: Case, s: Stream): { snapshot: number; heap: number; keys: number } {
  const sink: WindowOutput<number, MomentsResult> = { emit() {}, late() {} };
  const half = s.keyed.slice(0, s.keyed.length / 2);
  collectGarbage();
  const before = process.memoryUsage().heapUsed;
  const w = new KeyedWindows<number, Moments, MomentsResult>({ assigner: c.assigner!, trigger: c.trigger, allowedLatenessMs: c.allowedLatenessMs }, moments);
  for (const b of half) w.process(b, sink);
  collectGarbage();
  const heap = process.memoryUsage().heapUsed - before;
  const keys = w.size().keys;
  const snapshot = Buffer.byteLength(w.snapshot());
  return { snapshot: snapshot / keys, heap: heap / keys, keys };
}

/** Measures one case (in a child process), interleaving rounds with the group's baseline. */
function measure(g: number, k: number): Row {
  const c = GROUPS[g].cases[k];
  const base = GROUPS[g].cases[0];
  const s = GROUPS[g].stream();
  let results = 0;
  const baseline = () => runBaseline(base.baselineSizeMs!, base.allowedLatenessMs, s);
  if (c.baselineSizeMs !== undefined) {
    const rate = perSecond(N, () => (results = baseline()), 5);
    return { rate, baseRate: rate, results };
  }
  let rate = 0;
  let baseRate = 0;
  for (let round = 0; round < 3; round++) {
    baseRate = Math.max(baseRate, perSecond(N, baseline, 1));
    rate = Math.max(rate, perSecond(N, () => (results = runKeyed(c, s)), 1));
  }
  return { rate, baseRate, results, state: statePerKey(c, s) };
}

function inChild(g: number, k: number): Promise<Row> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, WEIR_WINDOWS_BENCH_CASE: `${g}:${k}` } });
    child.once('message', (row) => resolve(row as Row));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`benchmark case ${GROUPS[g].cases[k].label} exited with ${code}`))));
  });
}

export async function run(say: Say): Promise<void> {
  say(`${N / 1000}k events, ${KEYS / 1000}k keys, batches of ${BATCH}, moments aggregator (count/sum/min/max/mean/variance); each row in its own process, best of 3;`);
  say('the ratio is to the baseline timed in the same process (rounds interleaved)');
  for (let g = 0; g < GROUPS.length; g++) {
    say(`${GROUPS[g].label}:`);
    for (let k = 0; k < GROUPS[g].cases.length; k++) {
      const c = GROUPS[g].cases[k];
      const row = await inChild(g, k);
      if (c.baselineSizeMs !== undefined) {
        say(`  ${pad(c.label, 70)} ${pad(fmtRate(row.rate), 10)} ${pad('', 7)} results ${row.results}`);
        continue;
      }
      const st = row.state!;
      say(
        `  ${pad(c.label, 70)} ${pad(fmtRate(row.rate), 10)} ${pad(`x${(row.rate / row.baseRate).toFixed(2)}`, 7)} results ${pad(String(row.results), 8)} state/key: snapshot ${st.snapshot.toFixed(0)} B, heap ${st.heap.toFixed(0)} B (${st.keys} keys)`,
      );
    }
  }
}

const CASE = process.env.WEIR_WINDOWS_BENCH_CASE;
if (CASE && process.send) {
  const [g, k] = CASE.split(':').map(Number);
  process.send(measure(g, k), () => process.exit(0));
}
