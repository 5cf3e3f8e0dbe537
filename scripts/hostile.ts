/**
 * A cardinality burst on a real stack of its own (issue 5, "Bad input"): `--keys` distinct keys of
 * one metric in one burst, published in messages of `--per-message` events, with a steady trickle
 * of good events of other series around them. Prints the engine's peak RSS, how many events were
 * accepted and dead-lettered, and whether the good series' rows equal the brute-force oracle.
 *
 *   npx tsx scripts/hostile.ts                                  # 10^6 keys, the engine's defaults
 *   npx tsx scripts/hostile.ts --keys 1000000 --max-series 20000  # with limits.maxSeriesPerWindow
 *   npx tsx scripts/hostile.ts --max-series off                 # no bound (to see what it costs)
 *
 * Run `npm run build` first (the engine runs from dist/, as `npm start` runs it). Exit code 1 if a
 * good row was lost, duplicated or wrong, or dead-lettered + accepted != published.
 */
import { parseArgs } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { awaitRowsAndDiff, EngineUnderTest, Publisher } from '../test/faults-kit.js';
import { pgPool, sleep, waitFor } from '../test/harness.js';
import type { Ev, Msg } from '../test/oracle.js';
import { startStack, type Stack } from './stack.js';

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    'per-message': { type: 'string', default: '10000' },
    'max-series': { type: 'string' },
    workers: { type: 'string', default: '2' },
  },
});
const KEYS = Number(values.keys);
const PER = Number(values['per-message']);
const WORKERS = Number(values.workers);
const maxSeries = values['max-series'];
if (!(KEYS > 0) || !(PER > 0) || PER > 10_000 || !(WORKERS > 0) || (maxSeries !== undefined && maxSeries !== 'off' && !(Number(maxSeries) > 0))) {
  process.stderr.write('usage: npx tsx scripts/hostile.ts [--keys N] [--per-message N<=10000] [--max-series N|off] [--workers N]\n');
  process.exit(2);
}

const t0 = Date.now();
const say = (line: string) => process.stdout.write(`[hostile ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);

export interface BurstPlan {
  messages: Msg[];
  good: Ev[];
  /** Events of the burst metric (every one a new key). */
  burst: number;
}

/**
 * The burst: KEYS events of metric `burst_card`, key `k<i>`, all in one 10-s window (so in one
 * 1-min window too), PER to a message; between every two burst messages, one message of good
 * events (metric `burst_good`, 20 keys that exist before the burst starts) in the same window.
 */
export function burstPlan(keys: number, per: number, base: number): BurstPlan {
  const messages: Msg[] = [];
  const good: Ev[] = [];
  const goodKeys = Array.from({ length: 20 }, (_, i) => `g${i}`);
  const goodMsg = (j: number) => {
    const evs = goodKeys.map((key, i) => ({ metric: 'burst_good', key, ts: base + ((j * 7 + i * 13) % 9_000), value: (j * 31 + i) % 97 }));
    good.push(...evs);
    messages.push({ subject: 'weir.events.burst_good', body: JSON.stringify(evs.map(({ key, ts, value }) => ({ key, ts, value }))) });
  };
  goodMsg(0);
  let j = 1;
  for (let a = 0; a < keys; a += per) {
    const items: string[] = [];
    for (let i = a; i < Math.min(keys, a + per); i++) items.push(`{"key":"k${i}","value":${i % 1000},"ts":${base + (i % 9_000)}}`);
    messages.push({ subject: 'weir.events.burst_card', body: `[${items.join(',')}]` });
    goodMsg(j++);
  }
  return { messages, good, burst: keys };
}

let stack: Stack | undefined;
let engine: EngineUnderTest | undefined;
let ok = false;
try {
  say('starting nats-server and QuestDB');
  stack = await startStack();
  const nc = await connect({ servers: stack.natsUrl, noAsyncTraces: true });
  const pool = pgPool(stack);
  const limits = maxSeries === undefined ? {} : maxSeries === 'off' ? { maxSeriesPerWindow: 0 } : { maxSeriesPerWindow: Number(maxSeries) };
  // The watermark follows event time only (no idle advance): every window stays open until the
  // sentinel, the worst case for memory, and the rows are a function of the stream.
  const config = { workers: WORKERS, limits, pipeline: { idleTimeout: '1h' } };
  engine = await EngineUnderTest.start(stack, config);
  await sleep(1500);
  const idleRss = engine.peakRssBytes;
  say(`engine up with ${JSON.stringify(config)}; RSS ${(idleRss / 2 ** 20).toFixed(0)} MiB`);
  const base = Math.floor(Date.now() / 60_000) * 60_000 - 60_000;
  const plan = burstPlan(KEYS, PER, base);
  say(`publishing ${plan.burst} burst events (${KEYS} distinct keys) and ${plan.good.length} good events in ${plan.messages.length} messages`);
  const tp = Date.now();
  const pub = new Publisher(nc, 'burst');
  await pub.run(plan.messages, Infinity, 4);
  say(`published in ${((Date.now() - tp) / 1000).toFixed(1)} s`);
  await waitFor(
    'the engine to consume every message',
    async () => {
      const x = await engine!.metrics();
      return x.weir_messages_total >= plan.messages.length && x.weir_consumer_lag_messages === 0 ? true : undefined;
    },
    600_000,
    500,
  );
  const consumedS = (Date.now() - tp) / 1000;
  say(`consumed in ${consumedS.toFixed(1)} s; peak RSS so far ${(engine.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
  // The sentinel (its own metric) moves the watermark past every window of the burst.
  await pub.publishOne({ subject: 'weir.events.burst_sentinel', body: JSON.stringify({ key: 's', value: 1, ts: base + 300_000 }) }, 'burst:sentinel');
  const total = plan.burst + plan.good.length + 1;
  const diff = await awaitRowsAndDiff(pool, plan.good, ['burst_good'], say, 300_000);
  const m = await engine.metrics();
  const accepted = m.weir_events_accepted_total;
  const dead = m.weir_events_dead_lettered_total;
  // Counted from the stream's state (reading 10^6 dead letters back one by one takes too long);
  // each is stored once (Nats-Msg-Id dedup), and a sample is read back for its reason.
  const jsm = await jetstreamManager(nc);
  const stored = async () => Object.values((await jsm.streams.info('WEIR_DEADLETTER', { subjects_filter: 'weir.dlq.burst_card' })).state.subjects ?? {}).reduce((a, b) => a + b, 0);
  const dlqStored = await waitFor('dead letters stored', async () => ((await stored()) >= dead ? stored() : undefined), 120_000, 1000).catch(stored);
  const sample = await jetstream(nc).consumers.get('WEIR_DEADLETTER', { filter_subjects: ['weir.dlq.burst_card'] });
  const first = await sample.next({ expires: 5000 });
  await sample.delete().catch(() => undefined);
  const rows1m = Number((await pool.query(`SELECT count() n FROM weir_agg_1m WHERE metric = 'burst_card'`)).rows[0].n);
  await sleep(1000);
  const ready = await engine.readyz();
  const alive = engine.current.proc.exitCode === null && engine.current.proc.signalCode === null;
  const ev = await jsm.streams.info('WEIR_EVENTS');
  const rows: [string, string][] = [
    ['events published', `${total.toLocaleString('en-US')} (${plan.burst.toLocaleString('en-US')} burst keys + ${plan.good.length} good) in ${plan.messages.length} messages (${ev.state.messages} in the stream)`],
    ['accepted / dead-lettered', `${accepted} / ${dead} (sum ${accepted + dead})`],
    ['dead letters stored in WEIR_DEADLETTER', String(dlqStored)],
    ['a dead letter', `${first?.headers?.get('Weir-Reason') ?? '(none)'} | ${first?.string() ?? ''}`],
    ['1m rows of the burst metric', String(rows1m)],
    ['good rows expected / found / lost / duplicated / wrong', `${diff.expected} / ${diff.found} / ${diff.lost.length} / ${diff.duplicated.length} / ${diff.wrong.length}`],
    ['peak engine RSS', `${(engine.peakRssBytes / 2 ** 20).toFixed(0)} MiB (idle after start ${(idleRss / 2 ** 20).toFixed(0)} MiB)`],
    ['consumed in', `${consumedS.toFixed(1)} s`],
    ['engine alive, /readyz', `${alive}, ${ready.status}`],
  ];
  process.stdout.write('\n');
  for (const [k, v] of rows) process.stdout.write(`| ${k} | ${v} |\n`);
  ok = alive && ready.status === 200 && accepted + dead === total && dlqStored === dead && diff.lost.length + diff.duplicated.length + diff.wrong.length + diff.extra.length === 0;
  await nc.close();
  await pool.end();
} catch (err) {
  say(`ABORTED: ${(err as Error).stack ?? err}`);
  if (engine) process.stdout.write(`--- engine output (tail) ---\n${engine.output().slice(-6000)}\n`);
} finally {
  await engine?.stop('SIGKILL').catch(() => undefined);
  await stack?.stop().catch(() => undefined);
}
process.exit(ok ? 0 : 1);
