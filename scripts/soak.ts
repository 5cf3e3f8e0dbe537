/**
 * The fault soak: the rounds of test/faults.test.ts in a loop, on a real stack of its own.
 *
 *   npm run soak -- --minutes 30            # rounds until 30 minutes have passed (at least one)
 *   npm run soak -- --minutes 10 --rate 80 --seed 3
 *
 * Each round publishes a fresh seeded event set (40k good events, bad ones, late corrections,
 * events past the lateness) while it kills the engine (SIGKILL) three times, stops QuestDB
 * (the engine must stop fetching at its buffer bound and catch up) and restarts nats-server on
 * its data dir; every second round kills the servers with SIGKILL instead of stopping them. Every
 * row of weir_agg_10s and weir_agg_1m is then compared with the brute-force oracle. At the end it
 * prints a table: events published, crashes injected, outages survived, rows lost, rows
 * duplicated, peak engine RSS. Exit code 1 if any row was lost, duplicated or wrong, or a check
 * failed. Run `npm run build` first (the engine runs from dist/, as `npm start` runs it).
 */
import { connect } from '@nats-io/transport-node';
import { EngineUnderTest, FAULTS_CONFIG, faultRound, ROUND_SPAN_MS, roundWorkload, type RoundReport } from '../test/faults-kit.js';
import { pgPool } from '../test/harness.js';
import { startStack, type Stack } from './stack.js';
import { printTable, soakArgs, soakLog } from './soak-common.js';

const { minutes, rate, seed0, verbose } = soakArgs({ minutes: 10, rate: 50 }, 'npm run soak --');
const { t0, say } = soakLog('soak');

// Event time moves on ~7 minutes a round, faster than the clock: allow events far ahead of it
// (an event in year 9999 is still refused).
const config = { ...FAULTS_CONFIG, pipeline: { ...FAULTS_CONFIG.pipeline, maxFuture: '30d' } };

let stack: Stack | undefined;
let engine: EngineUnderTest | undefined;
const rounds: RoundReport[] = [];
let failure = '';
try {
  say('starting nats-server and QuestDB');
  stack = await startStack();
  const nc = await connect({ servers: stack.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 250, noAsyncTraces: true });
  const pool = pgPool(stack);
  engine = await EngineUnderTest.start(stack, config);
  let base = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
  for (let r = 1; rounds.length === 0 || Date.now() - t0 < minutes * 60_000; r++) {
    const metrics = [`soak${r}_latency`, `soak${r}_temp`, `soak${r}_errors`];
    const work = roundWorkload(seed0 * 1000 + r, base, metrics);
    const hard = r % 2 === 0;
    say(`round ${r}: ${work.messages.length} messages, ${work.good.length} events (+${work.bad} bad, ${work.tooLate} too late); servers ${hard ? 'killed (SIGKILL)' : 'stopped (SIGTERM)'}`);
    const sentinelTs = base + ROUND_SPAN_MS + 120_000;
    const report = await faultRound({
      stack,
      nc,
      pool,
      engine,
      work,
      metrics,
      sentinelTs,
      seed: seed0 * 7919 + r,
      perSecond: rate,
      hardStops: hard,
      idPrefix: `soak${r}`,
      log: (line) => {
        if (verbose || line.startsWith('FAIL')) say(`  ${line}`);
      },
    });
    rounds.push(report);
    const bad = report.checks.filter((c) => !c.ok);
    say(
      `round ${r} done in ${report.seconds.toFixed(0)} s: ${report.diff.found}/${report.diff.expected} rows, lost ${report.diff.lost.length}, ` +
        `duplicated ${report.diff.duplicated.length}, wrong ${report.diff.wrong.length}, extra ${report.diff.extra.length}, ` +
        `peak rows buffered ${report.peakPendingRows}, engine peak RSS so far ${(engine.peakRssBytes / 2 ** 20).toFixed(0)} MiB` +
        (bad.length ? `; FAILED: ${bad.map((c) => c.what).join('; ')}` : ''),
    );
    base = Math.ceil((sentinelTs + 60_000) / 60_000) * 60_000;
  }
  await nc.close();
  await pool.end();
} catch (err) {
  failure = (err as Error).stack ?? String(err);
  say(`ABORTED: ${failure}`);
  if (engine) process.stdout.write(`--- engine output (tail) ---\n${engine.output().slice(-8000)}\n`);
} finally {
  await engine?.stop('SIGKILL').catch(() => undefined);
  await stack?.stop().catch(() => undefined);
}

const sum = (f: (r: RoundReport) => number) => rounds.reduce((a, r) => a + f(r), 0);
const failedChecks = rounds.flatMap((r) => r.checks.filter((c) => !c.ok));
const survived = rounds.filter((r) => r.checks.every((c) => c.ok));
const fmt = (n: number) => n.toLocaleString('en-US');
const rows: [string, string][] = [
  ['duration', `${((Date.now() - t0) / 60_000).toFixed(1)} min, ${rounds.length} rounds${failure ? ' (aborted)' : ''}`],
  ['events published', `${fmt(sum((r) => r.events + r.bad + r.tooLate))} (${fmt(sum((r) => r.events))} good, ${fmt(sum((r) => r.bad))} bad, ${fmt(sum((r) => r.tooLate))} past the lateness) in ${fmt(sum((r) => r.messages))} messages`],
  ['crashes injected (engine kill -9)', fmt(sum((r) => r.crashes))],
  ['outages survived (QuestDB + nats-server)', `${fmt(sum((r) => (survived.includes(r) ? r.questdbOutages + r.natsOutages : 0)))} of ${fmt(sum((r) => r.questdbOutages + r.natsOutages))}`],
  ['rows expected / found', `${fmt(sum((r) => r.diff.expected))} / ${fmt(sum((r) => r.diff.found))}`],
  ['rows lost', fmt(sum((r) => r.diff.lost.length))],
  ['rows duplicated', fmt(sum((r) => r.diff.duplicated.length))],
  ['rows wrong / unknown', `${fmt(sum((r) => r.diff.wrong.length))} / ${fmt(sum((r) => r.diff.extra.length))}`],
  ['bad events dead-lettered (distinct)', `${fmt(sum((r) => r.dlq.distinct))} of ${fmt(sum((r) => r.bad))}`],
  ['too-late events on weir.late (distinct)', `${fmt(sum((r) => r.late.distinct))} of ${fmt(sum((r) => r.tooLate))}`],
  ['peak rows buffered while QuestDB was down', `${fmt(Math.max(0, ...rounds.map((r) => r.peakPendingRows)))} (bound ${config.sink.maxPendingRows})`],
  ['publishes retried (through outages)', fmt(sum((r) => r.publishRetries))],
  ['peak engine RSS', `${((engine?.peakRssBytes ?? 0) / 2 ** 20).toFixed(0)} MiB`],
  ['failed checks', failedChecks.length ? failedChecks.map((c) => `${c.what}: ${c.detail}`).join('; ') : 'none'],
];
printTable(rows);
const clean = !failure && rounds.length > 0 && failedChecks.length === 0 && sum((r) => r.diff.lost.length + r.diff.duplicated.length + r.diff.wrong.length + r.diff.extra.length) === 0;
process.exit(clean ? 0 : 1);
