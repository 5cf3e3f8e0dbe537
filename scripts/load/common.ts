/**
 * What every load generator of a shipped pipeline shares: the event shape, the seeded rng
 * (benchmarks/producer.ts, so runs are reproducible), time helpers and small samplers.
 *
 * Generators are pure: the same options (seed, end time, sizes) give the same events. They return
 * events in publish order: grouped so that consecutive events mostly share a metric (one JSON
 * array per run of a metric, see publishEvents in index.ts) and so that an event never follows
 * events of a later window than its own by more than the window, which keeps them on time for
 * the pipeline's watermark (max event time minus maxOutOfOrderness).
 */
import { rng } from '../../benchmarks/producer.js';

export { rng };

/** One event as published on weir.events.<metric> (the metric goes in the subject). */
export interface LoadEvent {
  metric: string;
  key: string;
  /** Event time, ms since the epoch. */
  ts: number;
  value: number;
  tags?: Record<string, string>;
}

/** Live mode: called once per tick; returns `count` events with event times around `now`. */
export interface LiveGenerator {
  next(now: number, count: number): LoadEvent[];
}

/** A shipped pipeline's workload: its history (deterministic) and its live generator. */
export interface PipelineLoad {
  pipeline: string;
  /** The metrics its events use (subjects weir.events.<metric>). */
  metrics: readonly string[];
  /** One line for the CLI: what the load looks like. */
  summary: string;
  /**
   * Events leading up to `end` (ms), e.g. days of tutor sessions or of film clicks, so that the
   * pipeline has something to show at once. Empty for pipelines whose windows are short.
   */
  history(seed: number, end: number): LoadEvent[];
  live(seed: number): LiveGenerator;
  /** Gateway paths worth a look while it runs, at `now` (the dev command prints them as curl commands). */
  examples(now: number): string[];
}

export const SECOND = 1000;
export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

/** Start of the epoch-aligned bucket of `size` ms holding `ts`. */
export const floorTo = (ts: number, size: number): number => ts - (((ts % size) + size) % size);

export type Rand = () => number;

/** An integer in [lo, hi]. */
export const int = (rand: Rand, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));

/** One of the items. */
export const pick = <T>(rand: Rand, items: readonly T[]): T => items[Math.floor(rand() * items.length)];

/** A Poisson-distributed count with mean `mean` (Knuth; fine for the small means used here). */
export function poisson(rand: Rand, mean: number): number {
  if (mean <= 0) return 0;
  if (mean > 50) return Math.max(0, Math.round(mean + Math.sqrt(mean) * normal(rand)));
  const l = Math.exp(-mean);
  let k = 0;
  let p = 1;
  for (;;) {
    p *= rand();
    if (p <= l) return k;
    k++;
  }
}

/** A standard normal deviate (Box-Muller). */
export function normal(rand: Rand): number {
  const u = 1 - rand();
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Rounds to `digits` decimals (keeps values short in JSON and sums exact enough to read). */
export const round = (x: number, digits = 0): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/**
 * Puts events in publish order: by bucket of `bucketMs` (event time), then by metric in the given
 * order, keeping the generator's order within them (so a stale update stays where it was made).
 * Within a bucket events are out of order by at most the bucket, which the shipped pipelines
 * tolerate because none of their windows ends inside a bucket.
 */
export function publishOrder(events: LoadEvent[], bucketMs: number, metrics: readonly string[]): LoadEvent[] {
  const rank = new Map(metrics.map((m, i) => [m, i]));
  return events
    .map((e, i) => ({ e, i, b: floorTo(e.ts, bucketMs), m: rank.get(e.metric) ?? metrics.length }))
    .sort((a, b) => a.b - b.b || a.m - b.m || a.i - b.i)
    .map((x) => x.e);
}

/** An ISO-8601 time for a query string. */
export const iso = (ms: number): string => new Date(ms).toISOString();

/** Sizes or rates given on the command line must be positive numbers. */
export function positive(name: string, v: number): number {
  if (!(Number.isFinite(v) && v > 0)) throw new Error(`${name} must be a positive number, got ${v}`);
  return v;
}
