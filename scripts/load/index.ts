/**
 * Load generators of the shipped pipelines (config/pipelines/*.yaml), one module per pipeline,
 * and the two ways to publish them:
 *
 * - `publishEvents(nc, events)`: a fixed array of events (a generator's deterministic output), in
 *   order, as JSON arrays of up to 100 events per message (one message per run of a metric),
 *   through JetStream; resolves once every message is acked.
 * - `startLoad(pipeline, nc, { rate, seed })`: live mode. Publishes the pipeline's workload in
 *   real time with current timestamps until `stop()`; optionally its history first.
 *
 * `npm run load -- <pipeline|all>` (scripts/load.ts) runs live mode from the command line, and
 * `WEIR_PIPELINES=<name> npm run dev` runs it beside the dev stack.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, type PubAck } from '@nats-io/jetstream';
import { bridgeOps } from './bridge_ops.js';
import { positive, type LoadEvent, type PipelineLoad } from './common.js';
import { filmTrending } from './film_trending.js';
import { films } from './films.js';
import { interactions } from './interactions.js';
import { tutors } from './tutors.js';

export type { LoadEvent, LiveGenerator, PipelineLoad } from './common.js';

/** The load of each shipped pipeline, by pipeline name. */
export const LOADS: Readonly<Record<string, PipelineLoad>> = {
  films,
  film_trending: filmTrending,
  bridge_ops: bridgeOps,
  interactions,
  tutors,
};

export const PIPELINES = Object.keys(LOADS);

/** The load of `pipeline`; throws naming the known ones. */
export function loadOf(pipeline: string): PipelineLoad {
  const l = LOADS[pipeline];
  if (!l) throw new Error(`no load generator for pipeline "${pipeline}": use one of ${PIPELINES.join(', ')} or all`);
  return l;
}

export interface PublishOptions {
  /** Events per message (default 100). */
  batch?: number;
  /** Messages in flight before waiting for acks (default 256). */
  window?: number;
  /** How long to wait for each ack, ms (default 30 s: a loaded server is slow, not lost). */
  ackTimeoutMs?: number;
}

export interface PublishSummary {
  events: number;
  messages: number;
}

const METRIC_RE = /^[A-Za-z0-9_:-]+$/;

/**
 * Publishes `events` in their order: each run of consecutive events of one metric becomes JSON
 * arrays of at most `batch` events on weir.events.<metric>. Messages from one connection reach
 * the stream in the order sent, so the stream holds the events in array order. Resolves once
 * JetStream acked every message; rejects on the first failed publish.
 */
export async function publishEvents(nc: NatsConnection, events: readonly LoadEvent[], o: PublishOptions = {}): Promise<PublishSummary> {
  const batch = o.batch ?? 100;
  const window = o.window ?? 256;
  const timeout = o.ackTimeoutMs ?? 30_000;
  const js = jetstream(nc, { timeout });
  let inflight: Promise<PubAck>[] = [];
  let messages = 0;
  for (let i = 0; i < events.length; ) {
    const metric = events[i].metric;
    if (!METRIC_RE.test(metric)) throw new Error(`event ${i} has metric ${JSON.stringify(metric)}: a metric is letters, digits, "_", "-" or ":"`);
    const body: Omit<LoadEvent, 'metric'>[] = [];
    for (; i < events.length && events[i].metric === metric && body.length < batch; i++) {
      const { metric: _m, ...rest } = events[i];
      body.push(rest);
    }
    inflight.push(js.publish(`weir.events.${metric}`, JSON.stringify(body), { timeout }));
    messages++;
    if (inflight.length >= window) {
      await Promise.all(inflight);
      inflight = [];
    }
  }
  await Promise.all(inflight);
  return { events: events.length, messages };
}

export interface LoadOptions {
  /** Events per second (default 1000). */
  rate?: number;
  seed?: number;
  /** Publish the pipeline's history (e.g. 100 days of tutor sessions) before going live. */
  history?: boolean;
  /** How often a batch goes out, ms (default 200). */
  tickMs?: number;
  /** Events per message (default 100). */
  batch?: number;
  /** A publish failed (the load goes on). Default: written to stderr. */
  onError?: (err: Error) => void;
}

export interface LoadHandle {
  pipeline: string;
  /** Events and messages published so far. */
  readonly published: PublishSummary;
  /** Stops after the batch in flight; resolves with what was published. */
  stop(): Promise<PublishSummary>;
}

/**
 * Live mode: publishes `pipeline`'s workload in real time, with current timestamps, at `rate`
 * events per second, until stopped. Each tick publishes the events due since the last one.
 */
export function startLoad(pipeline: string, nc: NatsConnection, o: LoadOptions = {}): LoadHandle {
  const load = loadOf(pipeline);
  const rate = positive('rate', o.rate ?? 1000);
  const tickMs = positive('tickMs', o.tickMs ?? 200);
  const seed = o.seed ?? 1;
  const onError = o.onError ?? ((err: Error) => process.stderr.write(`load ${pipeline}: publish failed: ${err.message}\n`));
  const gen = load.live(seed);
  const published: PublishSummary = { events: 0, messages: 0 };
  let stopped = false;
  let wake: (() => void) | null = null;
  const add = (s: PublishSummary) => {
    published.events += s.events;
    published.messages += s.messages;
  };
  const loop = (async () => {
    if (o.history) {
      try {
        add(await publishEvents(nc, load.history(seed, Date.now()), { batch: o.batch }));
      } catch (err) {
        onError(err as Error);
      }
    }
    let last = Date.now();
    let owed = 0;
    while (!stopped) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, tickMs);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
      wake = null;
      if (stopped) break;
      const now = Date.now();
      owed += ((now - last) * rate) / 1000;
      last = now;
      const count = Math.floor(owed);
      if (count === 0) continue;
      owed -= count;
      try {
        add(await publishEvents(nc, gen.next(now, count), { batch: o.batch }));
      } catch (err) {
        if (!stopped) onError(err as Error);
      }
    }
  })();
  return {
    pipeline,
    published,
    async stop() {
      stopped = true;
      (wake as (() => void) | null)?.();
      await loop;
      return { ...published };
    },
  };
}
