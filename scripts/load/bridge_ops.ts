/**
 * DSPex operations (USE_CASES.md §2, config/pipelines/bridge_ops.yaml): per bridge instance, one
 * bridge_request per request, bridge_error when it fails, a cache lookup (bridge_cache_hit or
 * bridge_cache_miss) for most requests, and the read or write latency in µs.
 *
 * Three incidents, each aligned to the 10 s windows so that every window is clearly on one side of
 * the alert thresholds:
 * - an error spike on bridge-2 (about 30 % errors for 6 windows): error_rate_high (> 5 % held
 *   20 s) fires, then resolves once the rate is back under 4 %;
 * - slow reads on bridge-4 (15-40 ms for 3 windows): read_p95_slow (> 10 ms) fires and resolves;
 * - a cold cache on bridge-1 (55 % hits for 3 windows, 98.5 % otherwise): cache_hit_low (< 80 %) fires and resolves.
 */
import { MINUTE, SECOND, floorTo, normal, pick, poisson, publishOrder, rng, type LiveGenerator, type LoadEvent, type PipelineLoad, type Rand } from './common.js';

export const BRIDGE_METRICS = ['bridge_request', 'bridge_error', 'bridge_cache_hit', 'bridge_cache_miss', 'bridge_read_us', 'bridge_write_us'] as const;
const WINDOW = 10 * SECOND;

export interface BridgeOptions {
  seed: number;
  /** Instances bridge-1 ... Default 6 (the incidents need at least 4). */
  instances?: number;
  /** 10 s windows of traffic, the last one ending at `end` rounded down to 10 s. Default 18. */
  windows?: number;
  /** Mean requests per instance and window. Default 40. */
  requests?: number;
  end: number;
}

export interface Incidents {
  errorSpike: boolean;
  slowReads: boolean;
  coldCache: boolean;
}

/** Which incidents hit `instance` in window `w` (index from the first window). */
export function incidentsAt(instance: string, w: number): Incidents {
  return {
    errorSpike: instance === 'bridge-2' && w >= 4 && w <= 9,
    slowReads: instance === 'bridge-4' && w >= 8 && w <= 10,
    coldCache: instance === 'bridge-1' && w >= 12 && w <= 14,
  };
}

/** The events of one request of `instance` at `ts`. */
function request(rand: Rand, instance: string, ts: number, inc: Incidents, out: LoadEvent[]): void {
  out.push({ metric: 'bridge_request', key: instance, ts, value: 1 });
  if (rand() < (inc.errorSpike ? 0.3 : 0.005)) out.push({ metric: 'bridge_error', key: instance, ts, value: 1 });
  if (rand() < 0.75) out.push({ metric: rand() < (inc.coldCache ? 0.55 : 0.985) ? 'bridge_cache_hit' : 'bridge_cache_miss', key: instance, ts, value: 1 });
  if (rand() < 0.6) {
    const us = inc.slowReads ? 15_000 + rand() * 25_000 : Math.min(7000, Math.exp(Math.log(1500) + 0.45 * normal(rand)));
    out.push({ metric: 'bridge_read_us', key: instance, ts, value: Math.round(us) });
  } else {
    out.push({ metric: 'bridge_write_us', key: instance, ts, value: Math.round(Math.exp(Math.log(3000) + 0.6 * normal(rand))) });
  }
}

export const instanceName = (i: number): string => `bridge-${i + 1}`;

/** `windows` windows of traffic ending at `end` (rounded down to 10 s), with the incidents, in publish order. */
export function bridgeEvents(o: BridgeOptions): LoadEvent[] {
  const rand = rng(o.seed);
  const instances = Array.from({ length: o.instances ?? 6 }, (_, i) => instanceName(i));
  const windows = o.windows ?? 18;
  const first = floorTo(o.end, WINDOW) - windows * WINDOW;
  const out: LoadEvent[] = [];
  for (let w = 0; w < windows; w++) {
    for (const instance of instances) {
      const inc = incidentsAt(instance, w);
      const n = Math.max(5, poisson(rand, o.requests ?? 40));
      const ts = Array.from({ length: n }, () => first + w * WINDOW + Math.floor(rand() * WINDOW)).sort((a, b) => a - b);
      for (const t of ts) request(rand, instance, t, inc, out);
    }
  }
  return publishOrder(out, WINDOW, BRIDGE_METRICS);
}

/**
 * Live: requests of 6 instances now. The incidents come round every 5 minutes of wall time (error
 * spike from 1:00 to 2:00 of each cycle, slow reads 2:30 to 3:00, cold cache 3:20 to 4:00).
 */
export function bridgeLive(seed: number, instancesCount = 6): LiveGenerator {
  const rand = rng(seed);
  const instances = Array.from({ length: instancesCount }, (_, i) => instanceName(i));
  return {
    next(now, count) {
      const s = (now % (5 * MINUTE)) / SECOND;
      const out: LoadEvent[] = [];
      while (out.length < count) {
        const instance = pick(rand, instances);
        const inc: Incidents = {
          errorSpike: instance === 'bridge-2' && s >= 60 && s < 120,
          slowReads: instance === 'bridge-4' && s >= 150 && s < 180,
          coldCache: instance === 'bridge-1' && s >= 200 && s < 240,
        };
        request(rand, instance, now, inc, out);
      }
      return publishOrder(out, WINDOW, BRIDGE_METRICS);
    },
  };
}

export const bridgeOps: PipelineLoad = {
  pipeline: 'bridge_ops',
  metrics: BRIDGE_METRICS,
  summary: '6 bridge instances: requests, errors, cache, latencies; every 5 min an error spike, slow reads and a cold cache (alerts)',
  history: () => [],
  live: (seed) => bridgeLive(seed),
  examples: () => [
    '/v1/latest?pipeline=bridge_ops&key=bridge-2',
    '/v1/top?pipeline=bridge_ops&window=10s&by=error_rate&k=6',
    '/v1/top?pipeline=bridge_ops&window=10s&by=read_p95&k=6',
  ],
};
