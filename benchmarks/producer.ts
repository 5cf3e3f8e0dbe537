/**
 * Synthetic event producer: publishes N events over JetStream, one event per message or batched
 * JSON arrays, seeded and optionally rate-limited. Publishes are pipelined: up to `window`
 * un-acked publishes in flight, refilled when half have been acked (burst refill).
 *
 *   npx tsx benchmarks/producer.ts --events 100000 --batch 100 --keys 1000 --metrics 3 --rate 0 --seed 1
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type PubAck } from '@nats-io/jetstream';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

export interface ProducerOptions {
  natsUrl: string;
  events: number;
  /** Events per message (1 = one JSON object per message, otherwise a JSON array). */
  batch: number;
  keys: number;
  metrics: number;
  /** Events per second; 0 = as fast as possible. */
  rate: number;
  seed: number;
  /** Event time of the first event (ms); events advance `spacingMs` each. Default: now. */
  startTs?: number;
  /** Event-time spacing between consecutive events, ms (default: 1000 / rate, or 0.01). */
  spacingMs?: number;
  /** In-flight un-acked publishes. */
  window?: number;
  metricPrefix?: string;
}

/** mulberry32: a tiny seeded PRNG, so runs are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ProducedSummary {
  events: number;
  messages: number;
  seconds: number;
  eventsPerSec: number;
  firstSeq: number;
  lastSeq: number;
  firstTs: number;
  lastTs: number;
}

/** Publishes the events; resolves once JetStream acked every message. */
export async function produce(opts: ProducerOptions, nc?: NatsConnection): Promise<ProducedSummary> {
  const own = !nc;
  nc ??= await connect({ servers: opts.natsUrl, noAsyncTraces: true });
  const js = jetstream(nc);
  const rand = rng(opts.seed);
  const prefix = opts.metricPrefix ?? 'bench';
  const window = opts.window ?? 2000;
  const spacing = opts.spacingMs ?? (opts.rate > 0 ? 1000 / opts.rate : 0.01);
  const t0Ts = opts.startTs ?? Date.now();
  const enc = new TextEncoder();
  const started = performance.now();
  let inflight: Promise<PubAck>[] = [];
  let firstSeq = 0;
  let lastSeq = 0;
  let messages = 0;
  let lastTs = t0Ts;
  const settle = async (keep: number) => {
    const take = inflight.length - keep;
    if (take <= 0) return;
    const done = inflight.slice(0, take);
    inflight = inflight.slice(take);
    for (const ack of await Promise.all(done)) {
      if (!firstSeq || ack.seq < firstSeq) firstSeq = ack.seq;
      if (ack.seq > lastSeq) lastSeq = ack.seq;
    }
  };
  for (let i = 0; i < opts.events; ) {
    const m = Math.floor(rand() * opts.metrics);
    const subject = `weir.events.${prefix}_${m}`;
    const n = Math.min(opts.batch, opts.events - i);
    const evs: string[] = [];
    for (let j = 0; j < n; j++, i++) {
      const key = `k${Math.floor(rand() * opts.keys)}`;
      const value = Math.round(rand() * rand() * 100_000) / 100;
      lastTs = Math.floor(t0Ts + i * spacing);
      evs.push(`{"key":"${key}","value":${value},"ts":${lastTs}}`);
    }
    const body = n === 1 && opts.batch === 1 ? evs[0] : `[${evs.join(',')}]`;
    inflight.push(js.publish(subject, enc.encode(body)));
    messages++;
    if (inflight.length >= window) await settle(window / 2);
    if (opts.rate > 0) {
      const due = (i / opts.rate) * 1000 - (performance.now() - started);
      if (due > 5) await new Promise((r) => setTimeout(r, due));
    }
  }
  await settle(0);
  const seconds = (performance.now() - started) / 1000;
  if (own) await nc.drain();
  return { events: opts.events, messages, seconds, eventsPerSec: opts.events / seconds, firstSeq, lastSeq, firstTs: t0Ts, lastTs };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      nats: { type: 'string', default: process.env.WEIR_NATS_URL ?? 'nats://127.0.0.1:4222' },
      events: { type: 'string', default: '100000' },
      batch: { type: 'string', default: '100' },
      keys: { type: 'string', default: '1000' },
      metrics: { type: 'string', default: '3' },
      rate: { type: 'string', default: '0' },
      seed: { type: 'string', default: '1' },
      'start-ts': { type: 'string' },
      prefix: { type: 'string', default: 'bench' },
    },
  });
  const summary = await produce({
    natsUrl: values.nats!,
    events: Number(values.events),
    batch: Number(values.batch),
    keys: Number(values.keys),
    metrics: Number(values.metrics),
    rate: Number(values.rate),
    seed: Number(values.seed),
    startTs: values['start-ts'] ? Number(values['start-ts']) : undefined,
    metricPrefix: values.prefix,
  });
  process.stdout.write(JSON.stringify(summary) + '\n');
}
