/**
 * Crash recovery of DECLARED pipelines on the real stack (issue 5; docs/pipelines.md "Delivery").
 * The shipped tutors (rolling 7/30/90 d, debounce, low_rating), bridge_ops (10 s windows, early
 * partials, percentiles, three alerts), films (global window, scores), film_trending (1 d windows,
 * trend against the day before) and interactions (1 m windows keyed by two tags, ratios, distinct
 * users, ctr_drop) run in the engine while a
 * seeded workload, out of order and with late corrections (test/pipeline-faults-kit.ts), is
 * published and the engine is killed (-9) six times: at a random moment, right after a
 * checkpoint, with a checkpoint blocked on its flush (QuestDB paused), with one blocked on its KV
 * record (nats-server paused), and twice while it catches up after a restart. Each
 * incarnation must have resumed from its checkpoint and read exactly the events after it; in the
 * end every row of weir_p_<pipeline> and of weir_alerts equals the brute-force oracle: none lost,
 * duplicated or different.
 *
 * Then the rolling state is shown to come back from the checkpoint and not from a replay: once
 * every runner has checkpointed its last message, a kill and a restart read no event at all; a new
 * day of sessions then gives 7/30/90-day rows that equal a recomputation over the 100 days of
 * history, which the new process never read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DAY, floorTo } from '../scripts/load/common.js';
import { EngineUnderTest } from './faults-kit.js';
import { waitFor } from './harness.js';
import {
  awaitDiffs,
  diffClean,
  eventsOf,
  expected,
  FAULT_PIPELINES,
  Ledger,
  nextDaySessions,
  pipelineFaultRound,
  pipelineFaultsConfig,
  pipelinesWorkload,
  pstatus,
  SeqPublisher,
  statuses,
  type PRoundReport,
} from './pipeline-faults-kit.js';
import { useRealStack } from './real-stack.js';

const TUTORS = 14;

describe('declared pipelines under kill -9', () => {
  const ctx = useRealStack();
  let nc: NatsConnection;
  let engine: EngineUnderTest | undefined;
  const lines: string[] = [];
  const log = (line: string) => lines.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
  const fail = (err: unknown): never => {
    throw new Error(`${(err as Error).message}\n--- fault log ---\n${lines.join('\n')}\n--- engine output (tail) ---\n${engine?.output().slice(-15_000)}`);
  };

  beforeAll(async () => {
    nc = await connect({ servers: ctx.stack.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 250, noAsyncTraces: true });
  });
  afterAll(async () => {
    await engine?.stop('SIGKILL');
    await nc?.close();
  });

  it('kill -9 at any moment (mid-checkpoint included): every row and alert equals the brute force; rolling state comes back from the checkpoint', async () => {
    const now = Date.now();
    const prefix = 'fp-';
    const work = pipelinesWorkload({ seed: 11, prefix, end: now, tutors: TUTORS, days: 100, requests: 15 });
    // the workload is what it claims: corrections for each, alerts that fire and resolve
    const want = expected(work.events, prefix);
    expect(work.corrections.tutors).toBeGreaterThan(300);
    expect(work.corrections.bridge_ops).toBeGreaterThan(100);
    expect(work.corrections.film_trending).toBeGreaterThan(200);
    expect(work.corrections.interactions).toBeGreaterThan(150);
    expect(want.interactions.alerts.map((a) => `${a.rule} ${a.key} ${a.state}`)).toEqual([`ctr_drop ${prefix}B|home firing`, `ctr_drop ${prefix}B|home resolved`]);
    // late clicks create day rows after the next day's row, and change the next day's trend (which the engine must emit again)
    const onTime = new Map(expected(eventsOf([...work.messages.filter((m) => !m.late), ...work.closers]), prefix).film_trending.rows.map((x) => [`${x.key} ${x.start}`, x]));
    expect(want.film_trending.rows.filter((x) => !onTime.has(`${x.key} ${x.start}`)).length).toBeGreaterThan(10);
    expect(want.film_trending.rows.filter((x) => onTime.has(`${x.key} ${x.start}`) && onTime.get(`${x.key} ${x.start}`)!.fields.trend_pct !== x.fields.trend_pct).length).toBeGreaterThan(30);
    for (const [rule, key] of [
      ['error_rate_high', `${prefix}bridge-2`],
      ['read_p95_slow', `${prefix}bridge-4`],
      ['cache_hit_low', `${prefix}bridge-1`],
    ])
      expect(want.bridge_ops.alerts.filter((a) => a.rule === rule && a.key === key).map((a) => a.state)).toEqual(['firing', 'resolved']);
    expect(new Set(want.tutors.alerts.map((a) => a.key))).toEqual(new Set([`${prefix}tutor-07`]));
    expect(want.tutors.alerts.map((a) => a.state)).toContain('resolved');
    // corrections reach rows a newer pane already replaced: the stream order matters, not only the events
    const inOrder = new Map(expected({ ...work.events, tutors: [...work.events.tutors].sort((a, b) => a.ts - b.ts) }, prefix).tutors.rows.map((x) => [`${x.key} ${x.window} ${x.start}`, x]));
    expect(inOrder.size).toBeGreaterThan(want.tutors.rows.length);
    expect(want.tutors.rows.filter((x) => JSON.stringify(inOrder.get(`${x.key} ${x.window} ${x.start}`)?.fields) !== JSON.stringify(x.fields)).length).toBeGreaterThan(100);

    const ledger = new Ledger();
    engine = await EngineUnderTest.start(ctx.stack, pipelineFaultsConfig());
    let r: PRoundReport;
    try {
      r = await pipelineFaultRound({ stack: ctx.stack, nc, pool: ctx.pool, engine, work, ledger, seed: 3, perSecond: 40, idPrefix: "fp", log, settleMs: 60_000 });
      log(
        `round: ${r.messages} messages, ${r.published} events (corrections: ${Object.entries(r.corrections).map(([p, n]) => `${n} ${p}`).join(', ')}), ` +
          `${r.crashes.length} kill -9, rows ${FAULT_PIPELINES.map((p) => `${p} ${r.diffs[p].rows.found}/${r.diffs[p].rows.expected}`).join(', ')}, ` +
          `alerts ${FAULT_PIPELINES.map((p) => `${p} ${r.diffs[p].alerts.found}/${r.diffs[p].alerts.expected}`).join(', ')}, peak RSS ${(engine.peakRssBytes / 2 ** 20).toFixed(0)} MiB, ${r.seconds.toFixed(0)} s`,
      );
      expect(r.checks.filter((c) => !c.ok)).toEqual([]);
      expect(r.crashes.map((c) => c.kind)).toEqual(['random', 'after-checkpoint', 'flush-stuck', 'record-stuck', 'catching-up', 'catching-up']);
      for (const p of FAULT_PIPELINES) {
        expect(diffClean(r.diffs[p].rows), `${p} rows`).toBe(true);
        expect(diffClean(r.diffs[p].alerts), `${p} alerts`).toBe(true);
        // the last incarnation started from a checkpoint and read a small part of the stream
        expect(r.last[p].restoredFrom, p).toBeGreaterThan(0);
        expect(r.last[p].eventsThisRun, p).toBeLessThan(r.events[p] / 4);
        expect(r.last[p].events, `${p} events over all incarnations`).toBe(r.events[p]);
      }
      expect(r.diffs.tutors.alerts.expected + r.diffs.bridge_ops.alerts.expected).toBeGreaterThan(6);
    } catch (err) {
      fail(err);
    }

    // ---- 90-day windows come back from state: a restart reads nothing, then one new day ----------
    try {
      const done = await waitFor('every runner to checkpoint its last message', async () => {
        const st = await statuses(nc);
        return FAULT_PIPELINES.every((p) => st[p].checkpointSeq === ledger.lastSeq(p) && st[p].lastSeq === ledger.lastSeq(p)) ? st : undefined;
      }, 30_000, 100);
      await engine.crashAndRestart();
      const back = await statuses(nc);
      for (const p of FAULT_PIPELINES) {
        expect(back[p].restoredFrom, p).toBe(done[p].checkpointSeq);
        expect(back[p].eventsThisRun, p).toBe(0);
        expect(back[p].caughtUp, p).toBe(true);
      }
      const ts = Math.max(floorTo(Date.now(), DAY), Date.now() - 60_000);
      const day = nextDaySessions(prefix, TUTORS, ts);
      const pub = new SeqPublisher(nc, 'fp-day', ledger);
      await pub.run(day, 1000);
      const lastSeq = ledger.lastSeq('tutors');
      const st = await waitFor('tutors to read the new day', async () => {
        const s = await pstatus(nc, 'tutors');
        return s.lastSeq >= lastSeq ? s : undefined;
      }, 30_000, 100);
      expect(st.eventsThisRun).toBe(3 * TUTORS);
      const all = eventsOf([...work.messages, ...work.closers, ...day]);
      const wantAll = expected(all, prefix);
      const newDayEnd = floorTo(ts, DAY) + DAY;
      const fresh = wantAll.tutors.rows.filter((x) => x.end >= newDayEnd);
      expect(fresh.length).toBe(3 * TUTORS);
      // a 90-day row of the new day holds about 90 days of sessions
      expect(Math.min(...fresh.filter((x) => x.window === '90d').map((x) => x.fields.sessions as number))).toBeGreaterThan(50);
      const diffs = await awaitDiffs(ctx.pool, prefix, wantAll, 60_000);
      for (const p of FAULT_PIPELINES) {
        const d = diffs[p];
        expect([...d.rows.lost, ...d.rows.duplicated, ...d.rows.wrong, ...d.rows.extra], `${p} rows after the new day`).toEqual([]);
        expect([...d.alerts.lost, ...d.alerts.duplicated, ...d.alerts.wrong, ...d.alerts.extra], `${p} alerts after the new day`).toEqual([]);
      }
    } catch (err) {
      fail(err);
    }
    console.log(lines.join('\n'));
  }, 240_000);
});
