/**
 * The fault soak of DECLARED pipelines: the rounds of test/faults-pipelines.test.ts in a loop, with
 * outages, on a real stack of its own.
 *
 *   npx tsx scripts/soak-pipelines.ts --minutes 5            # rounds until 5 minutes have passed (at least one)
 *   npx tsx scripts/soak-pipelines.ts --minutes 30 --rate 40 --seed 3 --verbose
 *
 * The engine runs the shipped tutors (rolling 7/30/90 d, debounce, low_rating), bridge_ops (10 s
 * windows, early partials, percentiles, three alerts), films (global window, scores), film_trending
 * (1 d windows, trend against the day before) and interactions (1 m windows keyed by two tags,
 * ratios, distinct users, ctr_drop). Each round publishes a fresh seeded workload of its own keys
 * and its own stretch of event time (100 days of tutor sessions, 3 minutes of bridge traffic, film
 * updates, 8 days of film clicks, 12 minutes of recommendations), out of order and with late
 * corrections (test/pipeline-faults-kit.ts), while it kills the engine (-9) eight times: at a random
 * moment, right after a checkpoint, with a checkpoint blocked on its flush (QuestDB SIGSTOP) and on
 * its KV record (nats-server SIGSTOP), after a QuestDB outage, after a nats-server outage (stopped
 * and started on its data dir; every second round both are killed with SIGKILL instead), and
 * twice while it catches up. Before each kill every pipeline must have read exactly the events
 * after the checkpoint it started from; after the round every row of weir_p_<name> and weir_alerts
 * of the round's keys is compared with the brute-force oracle. At the end it prints a table:
 * events, crashes, outages, rows lost / duplicated / wrong, peak engine RSS. Exit code 1 if a row or
 * an alert was lost, duplicated or wrong, or a check failed. Run `npm run build` first (the engine
 * runs from dist/, as `npm start` runs it).
 */
import { connect } from '@nats-io/transport-node';
import { EngineUnderTest } from '../test/faults-kit.js';
import { pgPool } from '../test/harness.js';
import { diffClean, FAULT_PIPELINES, Ledger, pipelineFaultRound, pipelineFaultsConfig, pipelinesWorkload, type PRoundReport } from '../test/pipeline-faults-kit.js';
import { DAY, floorTo } from './load/common.js';
import { startStack, type Stack } from './stack.js';
import { printTable, soakArgs, soakLog } from './soak-common.js';

const { minutes, rate, seed0, verbose } = soakArgs({ minutes: 5, rate: 40 }, 'npx tsx scripts/soak-pipelines.ts');
const { t0, say } = soakLog('soak-pipelines');

// Each round takes the next 101 days of event time (the tutors need 90 days of history): allow
// events that far ahead of the clock.
const config = pipelineFaultsConfig({ maxFuture: '3650d' });

let stack: Stack | undefined;
let engine: EngineUnderTest | undefined;
const rounds: PRoundReport[] = [];
let failure = '';
try {
  say('starting nats-server and QuestDB');
  stack = await startStack();
  const nc = await connect({ servers: stack.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 250, noAsyncTraces: true });
  const pool = pgPool(stack);
  engine = await EngineUnderTest.start(stack, config);
  const ledger = new Ledger();
  let end = Date.now();
  for (let r = 1; rounds.length === 0 || Date.now() - t0 < minutes * 60_000; r++) {
    const prefix = `s${r}-`;
    const work = pipelinesWorkload({ seed: seed0 * 1000 + r, prefix, end, tutors: 14, days: 100, requests: 15 });
    const hard = r % 2 === 0;
    const events = [...work.messages, ...work.closers].reduce((a, m) => a + m.events, 0);
    say(`round ${r}: ${work.messages.length + work.closers.length} messages, ${events} events (late corrections: ${Object.entries(work.corrections).map(([p, n]) => `${p} ${n}`).join(', ')}); servers ${hard ? 'killed (SIGKILL)' : 'stopped (SIGTERM)'}`);
    const report = await pipelineFaultRound({
      stack,
      nc,
      pool,
      engine,
      work,
      ledger,
      seed: seed0 * 7919 + r,
      perSecond: rate,
      outages: true,
      hardStops: hard,
      idPrefix: `sp${r}`,
      log: (line) => {
        if (verbose || line.startsWith('FAIL')) say(`  ${line}`);
      },
    });
    rounds.push(report);
    const bad = report.checks.filter((c) => !c.ok);
    const rowsOf = (f: (d: PRoundReport['diffs'][keyof PRoundReport['diffs']]) => number) => FAULT_PIPELINES.reduce((a, p) => a + f(report.diffs[p]), 0);
    say(
      `round ${r} done in ${report.seconds.toFixed(0)} s: ${report.crashes.length} kill -9, rows ${rowsOf((d) => d.rows.found)}/${rowsOf((d) => d.rows.expected)}, ` +
        `lost ${rowsOf((d) => d.rows.lost.length)}, duplicated ${rowsOf((d) => d.rows.duplicated.length)}, wrong ${rowsOf((d) => d.rows.wrong.length)}, extra ${rowsOf((d) => d.rows.extra.length)}; ` +
        `alerts ${rowsOf((d) => d.alerts.found)}/${rowsOf((d) => d.alerts.expected)}; engine peak RSS so far ${(engine.peakRssBytes / 2 ** 20).toFixed(0)} MiB` +
        (bad.length ? `; FAILED: ${bad.map((c) => `${c.what}: ${c.detail}`).join('; ')}` : ''),
    );
    // the next round's stretch of event time starts after this one's
    end = floorTo(end, DAY) + 101 * DAY;
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

const sum = (f: (r: PRoundReport) => number) => rounds.reduce((a, r) => a + f(r), 0);
const perPipeline = (f: (d: PRoundReport['diffs'][keyof PRoundReport['diffs']]) => number) => sum((r) => FAULT_PIPELINES.reduce((a, p) => a + f(r.diffs[p]), 0));
const failedChecks = rounds.flatMap((r) => r.checks.filter((c) => !c.ok));
const resumes = rounds.flatMap((r) => r.checks.filter((c) => / resumed from its checkpoint/.test(c.what)));
const survived = rounds.filter((r) => r.checks.every((c) => c.ok));
const kinds = new Map<string, number>();
for (const r of rounds) for (const c of r.crashes) kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
const fmt = (n: number) => n.toLocaleString('en-US');
const rows: [string, string][] = [
  ['duration', `${((Date.now() - t0) / 60_000).toFixed(1)} min (${(((Date.now() - t0) / 1000) | 0)} s), ${rounds.length} rounds${failure ? ' (aborted)' : ''}`],
  ['events published', `${fmt(sum((r) => r.published))} in ${fmt(sum((r) => r.messages))} messages; read by ${FAULT_PIPELINES.map((p) => `${p} ${fmt(sum((r) => r.events[p]))}`).join(', ')} (film_click feeds films and film_trending)`],
  ['late corrections (out of order past the watermark)', (['tutors', 'bridge_ops', 'film_trending', 'interactions'] as const).map((p) => `${fmt(sum((r) => r.corrections[p]))} ${p}`).join(', ')],
  ['crashes injected (engine kill -9)', `${fmt(sum((r) => r.crashes.length))} (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')})`],
  ['outages survived (QuestDB + nats-server)', `${fmt(sum((r) => (survived.includes(r) ? r.questdbOutages + r.natsOutages : 0)))} of ${fmt(sum((r) => r.questdbOutages + r.natsOutages))}`],
  ['resumes checked (read exactly the events after the checkpoint)', `${fmt(resumes.filter((c) => c.ok).length)} of ${fmt(resumes.length)}`],
  ['rows expected / found', `${fmt(perPipeline((d) => d.rows.expected))} / ${fmt(perPipeline((d) => d.rows.found))}`],
  ['rows lost', fmt(perPipeline((d) => d.rows.lost.length))],
  ['rows duplicated', fmt(perPipeline((d) => d.rows.duplicated.length))],
  ['rows wrong / unknown', `${fmt(perPipeline((d) => d.rows.wrong.length))} / ${fmt(perPipeline((d) => d.rows.extra.length))}`],
  ['alert transitions expected / found', `${fmt(perPipeline((d) => d.alerts.expected))} / ${fmt(perPipeline((d) => d.alerts.found))}`],
  ['alerts lost / duplicated / wrong / unknown', [perPipeline((d) => d.alerts.lost.length), perPipeline((d) => d.alerts.duplicated.length), perPipeline((d) => d.alerts.wrong.length), perPipeline((d) => d.alerts.extra.length)].map(fmt).join(' / ')],
  ['publishes retried (through outages)', fmt(sum((r) => r.publishRetries))],
  ['peak engine RSS', `${((engine?.peakRssBytes ?? 0) / 2 ** 20).toFixed(0)} MiB`],
  ['failed checks', failedChecks.length ? failedChecks.map((c) => `${c.what}: ${c.detail}`).join('; ') : 'none'],
];
printTable(rows);
const clean = !failure && rounds.length > 0 && failedChecks.length === 0 && rounds.every((r) => FAULT_PIPELINES.every((p) => diffClean(r.diffs[p].rows) && diffClean(r.diffs[p].alerts)));
process.exit(clean ? 0 : 1);
