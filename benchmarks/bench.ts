/**
 * `npm run bench`: Weir's throughput and latency on the real stack (nats-server + QuestDB started
 * by scripts/stack.ts, the engine as a child process exactly as `npm start` runs it).
 *
 *  1. drain, batched: a stream pre-loaded with events in JSON arrays of 100; events/s consumed.
 *  2. drain, single: one event per message.
 *  3. sustained end to end: publish while the engine runs; events/s from first publish to all
 *     rows in QuestDB; events lost (published - counted in weir_agg_10s; must be 0).
 *  4. window close -> row visible in QuestDB, p50/p99, with 1 s windows in real time.
 * Each drain is compared with a peer measured in the same run: a bare JetStream consumer that
 * only parses the JSON (the ceiling for any engine on this machine).
 *
 *  5. the gateway suite (benchmarks/gateway.ts): live query latency at 100k keys, window close ->
 *     subscriber, fan-out, and 24 h percentiles from stored sketches vs QuestDB approx_percentile.
 *
 * Sizes: BENCH_SCALE=0.1 for a quick run; the defaults take about 3 minutes (plus about 4 for 5).
 *  6. operators (benchmarks/operators.ts): events/s on one thread and bytes of state per key, per
 *     operator family, no stack.
 * BENCH_ONLY=gateway runs only the gateway suite; BENCH_ONLY=engine only 1-4; BENCH_ONLY=operators only 6.
 */
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import { startStack, type Stack } from '../scripts/stack.js';
import { startEngine, waitFor, pgPool, sleep, type EngineProcess } from '../test/harness.js';
import { produce } from './producer.js';
import { gatewayBench, printRows, type GatewayBenchRow } from './gateway.js';
import { operatorBench } from './operators.js';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const ONLY = process.env.BENCH_ONLY ?? '';
const out: Record<string, string | number> = {};
const say = (line: string) => process.stdout.write(line + '\n');

async function withStack<T>(fn: (stack: Stack) => Promise<T>): Promise<T> {
  const stack = await startStack({ questdbHeap: '2g' });
  try {
    return await fn(stack);
  } finally {
    await stack.stop();
  }
}

/** Peer: a bare JetStream consumer that parses every message and acks per batch (no windows, no writes). */
async function bareConsumeRate(stack: Stack, events: number, perMessage: number): Promise<number> {
  const nc = await connect({ servers: stack.natsUrl, noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  const name = `peer_${perMessage}`;
  await jsm.consumers.add('WEIR_EVENTS', { durable_name: name, ack_policy: AckPolicy.All, deliver_policy: DeliverPolicy.All, max_ack_pending: -1 });
  const c = await jetstream(nc).consumers.get('WEIR_EVENTS', name);
  const msgs = await c.consume({ max_messages: 4000 });
  const dec = new TextDecoder();
  let seen = 0;
  let n = 0;
  const t0 = performance.now();
  for await (const m of msgs) {
    const body = JSON.parse(dec.decode(m.data));
    seen += Array.isArray(body) ? body.length : 1;
    if (++n % 1000 === 0) m.ack();
    if (seen >= events) {
      m.ack();
      break;
    }
  }
  const rate = events / ((performance.now() - t0) / 1000);
  await jsm.consumers.delete('WEIR_EVENTS', name);
  await nc.close();
  return rate;
}

async function engineDrain(stack: Stack, events: number, perMessage: number): Promise<{ rate: number; peer: number }> {
  // Pre-load with event times in the past so windows close as the watermark moves.
  const startTs = Date.now() - 3_600_000;
  const nc = await connect({ servers: stack.natsUrl, noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'WEIR_EVENTS', subjects: ['weir.events.>'] }).catch(() => undefined);
  const p = await produce({ natsUrl: stack.natsUrl, events, batch: perMessage, keys: 1000, metrics: 4, rate: 0, seed: 7, startTs, spacingMs: 60_000 / events, window: 4000 }, nc);
  say(`    pre-loaded ${events} events in ${p.messages} messages (${Math.round(p.eventsPerSec)} events/s publish)`);
  const peer = await bareConsumeRate(stack, events, perMessage);
  await nc.close();
  const engine = await startEngine(stack, { pipeline: { idleTimeout: '1h' } }, { WEIR_LOG_LEVEL: 'warn' });
  try {
    // Timed by the engine itself: first message processed -> last batch finished by the workers.
    const m = await waitFor(
      'the engine to drain the stream',
      async () => {
        const m = await engine.metrics();
        return (m.weir_events_accepted_total ?? 0) >= events ? m : undefined;
      },
      600_000,
      50,
    );
    await sleep(200);
    const last = (await engine.metrics()).weir_last_batch_done_timestamp_ms;
    return { rate: events / ((last - m.weir_first_message_timestamp_ms) / 1000), peer };
  } finally {
    await engine.stop();
  }
}

async function sustained(stack: Stack, events: number): Promise<void> {
  const engine = await startEngine(stack, { pipeline: { idleTimeout: '1h' } }, { WEIR_LOG_LEVEL: 'warn' });
  const pool = pgPool(stack);
  try {
    const startTs = Date.now() - 3_600_000;
    const t0 = performance.now();
    // 1,000 keys x 4 metrics over 60 s of event time: ~40 events per 10 s window row.
    const p = await produce({ natsUrl: stack.natsUrl, events, batch: 100, keys: 1000, metrics: 4, rate: 0, seed: 9, startTs, spacingMs: 60_000 / events, window: 4000, metricPrefix: 'sus' });
    // A sentinel ahead in event time closes every window of the run.
    const nc = await connect({ servers: stack.natsUrl });
    await jetstream(nc).publish('weir.events.sentinel', JSON.stringify({ key: 's', value: 0, ts: p.lastTs + 600_000 }));
    await nc.close();
    const counted = await waitFor(
      'all events in weir_agg_10s',
      async () => {
        const r = await pool.query(`SELECT sum(count) n FROM weir_agg_10s WHERE metric LIKE 'sus_%'`);
        return r.rows[0].n >= events ? r.rows[0].n : undefined;
      },
      600_000,
      100,
    ).catch(async () => (await pool.query(`SELECT sum(count) n FROM weir_agg_10s WHERE metric LIKE 'sus_%'`)).rows[0].n);
    const secs = (performance.now() - t0) / 1000;
    out['sustained end-to-end events/s'] = Math.round(events / secs);
    out['sustained publish events/s'] = Math.round(p.eventsPerSec);
    out['events lost'] = events - counted;
    say(`    ${events} events: publish ${Math.round(p.eventsPerSec)}/s, all rows in QuestDB after ${secs.toFixed(1)} s -> ${Math.round(events / secs)} events/s end to end, lost ${events - counted}`);
  } finally {
    await pool.end();
    await engine.stop();
  }
}

async function closeToVisible(stack: Stack, seconds: number): Promise<void> {
  const lagMs = 100;
  const engine: EngineProcess = await startEngine(
    stack,
    { pipeline: { windows: [{ name: '1s', size: '1s', table: 'weir_agg_1s' }], maxOutOfOrderness: `${lagMs}ms`, idleTimeout: '1h' }, flushInterval: '50ms' },
    { WEIR_LOG_LEVEL: 'warn' },
  );
  const pool = pgPool(stack);
  const seen = new Map<number, number>();
  let stop = false;
  const poller = (async () => {
    while (!stop) {
      const r = await pool.query(`SELECT ts FROM weir_agg_1s WHERE metric = 'lat' LATEST ON ts PARTITION BY key`).catch(() => ({ rows: [] as { ts: number }[] }));
      const now = Date.now();
      for (const row of r.rows) if (!seen.has(row.ts)) seen.set(row.ts, now);
      await sleep(10);
    }
  })();
  const nc = await connect({ servers: stack.natsUrl, noAsyncTraces: true });
  const js = jetstream(nc);
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    const ts = Date.now();
    await js.publish('weir.events.lat', JSON.stringify(Array.from({ length: 50 }, (_, i) => ({ key: 'k', value: i, ts }))));
    await sleep(5);
  }
  await sleep(1500);
  stop = true;
  await poller;
  await nc.close();
  await pool.end();
  await engine.stop();
  // The window [s, s+1s) closes when an event with ts >= s + 1s + lag arrives (published in real time).
  const lat = [...seen.entries()].map(([start, visible]) => visible - (start + 1000 + lagMs)).filter((x) => x > -50).sort((a, b) => a - b);
  lat.shift(); // the first window was partial and may predate the poller
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * (lat.length - 1)))];
  out['window close -> row visible p50 ms'] = q(0.5);
  out['window close -> row visible p99 ms'] = q(0.99);
  say(`    ${lat.length} windows: close -> visible p50 ${q(0.5)} ms, p99 ${q(0.99)} ms (poll every 10 ms, flush every 50 ms)`);
}

const batchedN = Math.round(2_000_000 * SCALE);
const singleN = Math.round(300_000 * SCALE);
say(`Weir benchmark (scale ${SCALE}), ${new Date().toISOString()}`);
if (ONLY === '' || ONLY === 'engine') {
  say('1. drain, JSON arrays of 100 events');
  await withStack(async (s) => {
    const r = await engineDrain(s, batchedN, 100);
    out['drain batched events/s'] = Math.round(r.rate);
    out['peer bare consume+parse batched events/s'] = Math.round(r.peer);
    say(`    engine ${Math.round(r.rate)} events/s; peer (bare consume + JSON.parse, no windows) ${Math.round(r.peer)}/s; ratio ${(r.rate / r.peer).toFixed(2)}`);
  });
  say('2. drain, one event per message');
  await withStack(async (s) => {
    const r = await engineDrain(s, singleN, 1);
    out['drain single events/s'] = Math.round(r.rate);
    out['peer bare consume+parse single events/s'] = Math.round(r.peer);
    say(`    engine ${Math.round(r.rate)} events/s; peer ${Math.round(r.peer)}/s; ratio ${(r.rate / r.peer).toFixed(2)}`);
  });
  say('3. sustained end to end (publish while consuming)');
  await withStack((s) => sustained(s, Math.round(1_000_000 * SCALE)));
  say('4. window close -> row visible');
  await withStack((s) => closeToVisible(s, Math.max(10, Math.round(30 * SCALE))));
}
let gatewayRows: GatewayBenchRow[] = [];
if (ONLY === '' || ONLY === 'gateway') {
  say('5. gateway');
  gatewayRows = await gatewayBench({ scale: SCALE, say: (l) => say(`  ${l}`) });
}
if (ONLY === '' || ONLY === 'operators') {
  say('6. operators');
  await operatorBench((l) => say(`  ${l}`));
}
say('\nsummary');
for (const [k, v] of Object.entries(out)) say(`  ${k.padEnd(44)} ${v}`);
if (gatewayRows.length) printRows(gatewayRows, say);
process.exit(0);
