/**
 * Overload on the real stack (issue 5; docs/faults.md "Overload"): a producer faster than the
 * engine. Two thirds of the events are in the stream before the engine starts (a backlog), the rest
 * is published as fast as the producer can while the engine works through it. The engine runs one
 * worker with four windows an event (the two tables the oracle checks plus two more), so that
 * its worker, not only its decoder, is slower than the producer.
 *
 * Checked: the lag metric shows the backlog and goes back to 0; the engine reads ahead of its
 * workers by a bound set by the config (the server's delivered count and the engine's in-flight
 * batches), never the backlog; peak RSS stays below a bound derived from the config; every
 * message is consumed, every bad event dead-lettered, and the rows equal the brute-force oracle
 * exactly (nothing dropped, nothing duplicated).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { MAX_INFLIGHT_BATCHES } from '../engine/engine.js';
import { awaitRowsAndDiff, EngineUnderTest, Publisher } from './faults-kit.js';
import { sleep, waitFor } from './harness.js';
import { workload } from './oracle.js';
import { useRealStack } from './real-stack.js';

const MiB = 2 ** 20;
const METRICS = ['ovl_latency', 'ovl_temp'];
const KEYS = Array.from({ length: 100 }, (_, i) => `k${i}`);
const EVENTS = 1_000_000;
/** Events per message: 1 to this many (50 on average). */
const PER_MESSAGE = 100;

const FETCH_BATCH = 200;
const FETCH_MAX_BYTES = MiB;
const MAX_PENDING_ROWS = 20_000;
const CONFIG = {
  workers: 1,
  pipeline: {
    // The watermark follows event time only: the rows are a function of the stream.
    idleTimeout: '1h',
    windows: [
      { name: '10s', size: '10s', table: 'weir_agg_10s' },
      { name: '1m', size: '1m', table: 'weir_agg_1m' },
      { name: '5s', size: '5s', table: 'ovl_agg_5s' },
      { name: '30s', size: '30s', table: 'ovl_agg_30s' },
    ],
  },
  fetch: { batch: FETCH_BATCH, maxBytes: FETCH_MAX_BYTES },
  sink: { maxPendingRows: MAX_PENDING_ROWS },
};

/**
 * Messages the engine may hold ahead of what its workers have finished:
 * - the client's pull buffer: consume() asks for 4 × fetch.batch messages and pulls again only
 *   as the source takes them, so at most twice that is delivered and not yet taken;
 * - batches handed to the (one) worker: MAX_INFLIGHT_BATCHES, plus the one a full buffer or a
 *   linger timer hands over, each at most fetch.batch messages.
 */
const CLIENT_BUFFER = 2 * 4 * FETCH_BATCH;
const INFLIGHT_BATCHES = MAX_INFLIGHT_BATCHES + 1;
const READ_AHEAD = CLIENT_BUFFER + INFLIGHT_BATCHES * FETCH_BATCH;

/**
 * Peak RSS bound, from the config above, not from the speed of the machine:
 * - an idle engine with one worker (two V8 isolates, fastify, grpc-js, nats.js): 165 MiB
 *   measured, counted as 256 MiB;
 * - rows QuestDB has not acknowledged: at most sink.maxPendingRows, overshot by what one batch
 *   fires (here at most as much again), each ~1 KiB as an object in the worker plus its ILP text
 *   (sketches of 80-750 B measured): 2 × 20k × 2 KiB = 80 MiB;
 * - source batches: READ_AHEAD messages of at most 100 events (~6 KiB of JSON), decoded to
 *   several times that: 4,000 × 6 KiB × 4 ≈ 94 MiB;
 * - garbage V8 has not collected yet: as much again as all of the above (the main thread parses
 *   ~200k events a second).
 * That is ~860 MiB; measured peaks on the 2-core dev machine were 500-600 MiB. It is not what
 * catches a read of the whole backlog (1M events are ~60 MB of JSON): the read-ahead checks are.
 */
const RSS_BOUND = 860 * MiB;

function currentRss(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

interface Sample {
  t: number;
  /** Server side: messages not yet delivered to the engine, and the last delivered sequence. */
  pending: number;
  delivered: number;
  /** Engine side (/metrics). */
  lag: number;
  messages: number;
  inflightBatches: number;
  inflightEvents: number;
  pendingRows: number;
  rss: number;
}

describe('overload on the real stack', () => {
  const ctx = useRealStack();

  it('a producer faster than the engine: the lag shows it and returns to 0, read-ahead and memory stay bounded, rows equal the oracle', async () => {
    const base = Math.floor(Date.now() / 60_000) * 60_000 - 40 * 60_000;
    const SPAN = 20 * 60_000;
    const work = workload({ seed: 21, base, metrics: METRICS, keys: KEYS, hot: KEYS.slice(0, 5), events: EVENTS, spanMs: SPAN, maxPerMessage: PER_MESSAGE });
    const n = work.messages.length;
    const backlog = Math.floor((2 * n) / 3);
    // The backlog must dwarf what the engine may hold, or the read-ahead check proves nothing.
    expect(backlog).toBeGreaterThan(4 * READ_AHEAD);

    // The stream as the engine creates it; the backlog is in it before the engine starts.
    const jsm = await jetstreamManager(ctx.nc);
    await jsm.streams.add({ name: 'WEIR_EVENTS', subjects: ['weir.events.>'], max_age: 7 * 86_400 * 1e9 });
    await new Publisher(ctx.nc, 'ovl').run(work.messages.slice(0, backlog), Infinity, 256);

    const engine = await EngineUnderTest.start(ctx.stack, CONFIG);
    const log: string[] = [];
    try {
      const samples: Sample[] = [];
      let sampling = true;
      const sampler = (async () => {
        // Server first, then engine: the engine's count is then never older than the server's.
        while (sampling) {
          try {
            const ci = await jsm.consumers.info('WEIR_EVENTS', 'weir-engine');
            const m = await engine.metrics();
            samples.push({
              t: Date.now(),
              pending: ci.num_pending,
              delivered: ci.delivered.stream_seq,
              lag: m.weir_consumer_lag_messages,
              messages: m.weir_messages_total,
              inflightBatches: m.weir_worker_inflight_batches,
              inflightEvents: m.weir_worker_inflight_events,
              pendingRows: m.weir_sink_pending_rows,
              rss: currentRss(engine.current.proc.pid),
            });
          } catch (err) {
            log.push(`sample failed: ${(err as Error).message}`);
          }
          await sleep(200);
        }
      })();

      // The rest as fast as the producer can, while the engine works through the backlog.
      const t0 = Date.now();
      await new Publisher(ctx.nc, 'ovl2').run(work.messages.slice(backlog), Infinity, 256);
      const published = Date.now();
      const caughtUp = await waitFor(
        'the engine to catch up (every message consumed, lag 0)',
        async () => {
          const m = await engine.metrics();
          return m.weir_messages_total >= n && m.weir_consumer_lag_messages === 0 ? m : undefined;
        },
        120_000,
        100,
      );
      const done = Date.now();
      sampling = false;
      await sampler;

      const maxLag = Math.max(...samples.map((s) => s.lag));
      const maxAhead = Math.max(...samples.map((s) => s.delivered - s.messages));
      const maxBatches = Math.max(...samples.map((s) => s.inflightBatches));
      const maxEvents = Math.max(...samples.map((s) => s.inflightEvents));
      const maxRows = Math.max(...samples.map((s) => s.pendingRows));
      log.push(
        `${work.good.length} events (+${work.bad} bad) in ${n} messages, ${backlog} before the engine started; rest published in ${published - t0} ms; ` +
          `caught up ${done - published} ms after the producer stopped (${done - t0} ms after it started); ` +
          `max lag ${maxLag} messages (server: ${Math.max(...samples.map((s) => s.pending))}), read-ahead max ${maxAhead} messages in the client + ${maxBatches} batches (${maxEvents} events) with the worker ` +
          `(bounds ${CLIENT_BUFFER} + ${INFLIGHT_BATCHES}), rows pending max ${maxRows}, peak RSS ${(engine.peakRssBytes / MiB).toFixed(0)} MiB (bound ${RSS_BOUND / MiB}), ` +
          `${samples.length} samples`,
      );

      // The lag metric shows the backlog while there is one, and is 0 once the engine caught up.
      const whileBacklog = samples.filter((s) => s.pending > 2 * READ_AHEAD);
      expect(whileBacklog.length).toBeGreaterThan(0);
      expect(whileBacklog.filter((s) => !(s.lag > 0))).toEqual([]);
      expect(maxLag).toBeGreaterThan(READ_AHEAD);
      expect(caughtUp.weir_consumer_lag_messages).toBe(0);

      // Read-ahead: bounded by the config, whatever the backlog.
      expect(samples.filter((s) => s.delivered - s.messages > CLIENT_BUFFER)).toEqual([]);
      expect(samples.filter((s) => !Number.isFinite(s.inflightBatches) || s.inflightBatches > INFLIGHT_BATCHES)).toEqual([]);
      expect(engine.peakRssBytes).toBeGreaterThan(0);
      expect(engine.peakRssBytes).toBeLessThan(RSS_BOUND);

      // Nothing dropped: every message consumed, every bad event dead-lettered, none late.
      expect(caughtUp.weir_messages_total).toBe(n);
      expect(caughtUp.weir_events_dead_lettered_total).toBe(work.bad);
      expect(caughtUp.weir_events_late_total).toBe(0);

      // Rows: a sentinel moves the watermark past every window; then every row against the oracle.
      await new Publisher(ctx.nc, 'ovl3').publishOne({ subject: 'weir.events.ovl_sentinel', body: JSON.stringify({ key: 's', value: 1, ts: base + SPAN + 180_000 }) }, 'ovl:sentinel');
      const diff = await awaitRowsAndDiff(ctx.pool, work.good, METRICS, (l) => log.push(l), 120_000);
      log.push(`rows expected ${diff.expected}, found ${diff.found}, percentiles checked ${diff.percentilesChecked}`);
      expect(diff.lost).toEqual([]);
      expect(diff.duplicated).toEqual([]);
      expect(diff.extra).toEqual([]);
      expect(diff.wrong).toEqual([]);
      expect(diff.percentilesChecked).toBeGreaterThan(100);
      expect(await engine.stop()).toBe(0);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- log ---\n${log.join('\n')}\n--- engine output (tail) ---\n${engine.output().slice(-10_000)}`);
    } finally {
      await engine.stop('SIGKILL');
    }
    console.log(log.join('\n'));
  }, 240_000);
});
