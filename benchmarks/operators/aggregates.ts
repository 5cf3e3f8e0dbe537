/**
 * Aggregator micro-benchmark: for each aggregate of operators/aggregates/registry.ts, events/s
 * added to one accumulator on one thread, merge and serialise costs, and the bytes of serialised
 * state per key after 1000 events, against a plain `sum += v` loop over the same samples in the
 * same run. Then percentiles by DDSketch, HDR (JS and WebAssembly) and t-digest side by side, and
 * what many short-lived WebAssembly HDR states cost in memory.
 *
 *   npx tsx benchmarks/operators.ts aggregates
 */
import * as hdrjs from 'hdr-histogram-js';
import { perSecond, type Say } from '../timing.js';
import type { Sample } from '../../operators/sample.js';
import { aggregatorFor, type AnyAggregator } from '../../operators/aggregates/registry.js';
import { hdrQuantiles, releaseHdr } from '../../operators/aggregates/hdr.js';

const N = 200_000;
const PER_KEY = 1000;

/** Latency-like samples: log-normal values in ms with µs resolution, 5000 users, hits and misses. */
function makeSamples(n: number): Sample[] {
  let seed = 42;
  const rand = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return (seed + 0.5) / 2 ** 32;
  };
  const t0 = 1_700_000_000_000;
  const out: Sample[] = [];
  for (let i = 0; i < n; i++) {
    const normal = Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand());
    out.push({
      metric: rand() < 0.8 ? 'hits' : 'misses',
      value: Math.round(Math.exp(3 + normal) * 1000) / 1000,
      ts: t0 + i * 5 + Math.floor(rand() * 2000), // out of order by up to 2 s
      tags: { user: `user-${Math.floor(rand() * 5000)}`, status: rand() < 0.9 ? 'ok' : 'error' },
    });
  }
  return out;
}

const CASES: [label: string, name: string, options: unknown][] = [
  ['count', 'count', {}],
  ['sum (exact)', 'sum', {}],
  ['min', 'min', {}],
  ['max', 'max', {}],
  ['mean (exact sum)', 'mean', {}],
  ['variance', 'variance', {}],
  ['stddev', 'stddev', {}],
  ['rate', 'rate', { window: '10s' }],
  ['ewma (half-life 1m)', 'ewma', { halfLife: '1m' }],
  ['first', 'first', {}],
  ['last', 'last', {}],
  ['distinct value', 'distinct', {}],
  ['distinct tag:user', 'distinct', { of: 'tag:user' }],
  ['distinct tag:user, HLL', 'distinct', { of: 'tag:user', exactUpTo: 0 }],
  ['ratio hits/(hits+misses)', 'ratio', { numerator: { metric: 'hits' }, denominator: { metric: ['hits', 'misses'] } }],
  ['percentiles ddsketch', 'percentiles', {}],
  ['percentiles hdr (JS)', 'percentiles', { impl: 'hdr' }],
  ['percentiles hdr (WASM)', 'percentiles', { impl: 'hdr', wasm: true }],
  ['percentiles tdigest', 'percentiles', { impl: 'tdigest' }],
];

const fmtRate = (r: number) => (r >= 1e6 ? `${(r / 1e6).toFixed(1)} M/s` : `${(r / 1e3).toFixed(0)} k/s`);
const fmtUs = (ms: number) => `${(ms * 1000).toFixed(1)} µs`;

/** Mean time of one call in ms, over enough calls to take ~50 ms; best of 3 such runs. */
function timeOne(fn: () => void): number {
  fn();
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    let calls = 0;
    const t = performance.now();
    while (performance.now() - t < 50) {
      fn();
      calls++;
    }
    best = Math.min(best, (performance.now() - t) / calls);
  }
  return best;
}

/** Time of one merge in ms: `b` into each of `k` fresh copies of a state, best of 3 batches. */
function timeMerge(agg: AnyAggregator, text: string, b: unknown, k = 100): number {
  let best = Infinity;
  for (let r = 0; r < 4; r++) {
    const targets = Array.from({ length: k }, () => agg.deserialize(text));
    const t = performance.now();
    for (const target of targets) agg.merge(target, b);
    if (r > 0) best = Math.min(best, (performance.now() - t) / k);
  }
  return best;
}

/** The plain-loop baseline: `sum += s.value` over the same samples. */
function baselineRate(samples: readonly Sample[], rounds: number): number {
  let sink = 0;
  const rate = perSecond(
    samples.length,
    () => {
      let s = 0;
      for (let i = 0; i < samples.length; i++) s += samples[i].value;
      sink += s;
    },
    rounds,
  );
  return sink === 0.5 ? 0 : rate;
}

export async function run(say: Say): Promise<void> {
  const samples = makeSamples(N);
  let sink = 0;
  // Best of many rounds: on a shared machine one round can be several times slower.
  let baseline = baselineRate(samples, 10);
  say(`${N} latency-like samples, state per key after ${PER_KEY} events; ratio = events/s relative to the baseline`);
  const rows: [label: string, rate: number, mergeMs: number, serdeMs: number, bytes: number][] = [];
  const first = samples.slice(0, PER_KEY);
  const second = samples.slice(PER_KEY, 2 * PER_KEY);
  for (const [label, name, options] of CASES) {
    const agg: AnyAggregator = aggregatorFor(name, options, `bench ${label}`);
    const rounds = name === 'percentiles' && (options as { impl?: string }).impl === 'tdigest' ? 2 : 5;
    const rate = perSecond(
      N,
      () => {
        const acc = agg.create();
        for (let i = 0; i < samples.length; i++) agg.add(acc, samples[i]);
        sink += agg.result(acc) === null ? 0 : 1;
      },
      rounds,
    );
    const a = agg.create();
    const b = agg.create();
    for (const s of first) agg.add(a, s);
    for (const s of second) agg.add(b, s);
    const text = agg.serialize(a);
    const mergeMs = timeMerge(agg, text, b);
    const serdeMs = timeOne(() => {
      agg.deserialize(agg.serialize(a));
    });
    rows.push([label, rate, mergeMs, serdeMs, Buffer.byteLength(text)]);
  }
  baseline = Math.max(baseline, baselineRate(samples, 10));
  say(`baseline: plain \`sum += s.value\` loop       ${fmtRate(baseline).padStart(10)} (best of the runs before and after)`);
  say(`${'aggregate'.padEnd(28)} ${'add'.padStart(10)} ${'ratio'.padStart(7)} ${'merge'.padStart(10)} ${'ser+deser'.padStart(10)} ${'bytes/key'.padStart(9)}`);
  for (const [label, rate, mergeMs, serdeMs, bytes] of rows) {
    say(
      `${label.padEnd(28)} ${fmtRate(rate).padStart(10)} ${(rate / baseline).toFixed(3).padStart(7)} ${fmtUs(mergeMs).padStart(10)} ${fmtUs(serdeMs).padStart(10)} ${String(bytes).padStart(9)}`,
    );
  }
  if (sink === 0.5) say('');

  // HDR footprint: the JS histogram holds its whole counts array, WASM keeps it outside the heap.
  for (const wasm of [false, true]) {
    const h = hdrjs.build({ numberOfSignificantValueDigits: 3, useWebAssembly: wasm, autoResize: true });
    for (const s of first) h.recordValue(Math.round(s.value * 1000));
    say(`hdr ${wasm ? 'WASM' : 'JS  '} 3 digits, resolution 0.001, ${PER_KEY} events: estimated footprint ${h.estimatedFootprintInBytes} B in memory`);
    h.destroy();
  }

  // Many short-lived WASM states: released at once, then dropped for the finalizers (in that
  // order: memory the finalizers free later is reused, but WebAssembly memory never shrinks).
  const sketch = hdrQuantiles({ wasm: true });
  const STATES = 10_000;
  const churn = (release: boolean) => {
    for (let i = 0; i < STATES; i++) {
      const s = sketch.create();
      for (let j = 0; j < 100; j++) sketch.add(s, samples[(i * 100 + j) % N].value);
      if (release) releaseHdr(s);
    }
  };
  const rss0 = process.memoryUsage().rss;
  churn(true);
  await new Promise((r) => setImmediate(r));
  const rss1 = process.memoryUsage().rss;
  churn(false);
  await new Promise((r) => setImmediate(r));
  const rss2 = process.memoryUsage().rss;
  say(
    `hdr WASM, ${STATES} short-lived states of 100 values: RSS +${((rss1 - rss0) / 1e6).toFixed(0)} MB with releaseHdr, +${((rss2 - rss1) / 1e6).toFixed(0)} MB when left to the finalizers`,
  );
}
