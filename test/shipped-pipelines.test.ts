/**
 * Every shipped pipeline (config/pipelines/*.yaml) end to end on the real stack: one engine runs
 * them all (WEIR_PIPELINES=all), each pipeline's load generator (scripts/load/) publishes its
 * workload, and the QuestDB tables, the alert table, the live subjects and the gateway's answers
 * equal a brute-force computation from the same event arrays (test/shipped/oracle.ts, written
 * from the declarations and the documented semantics, not from the engine's code).
 *
 * - films: every film's row (last values, sums, components, profiles) and the top 25 of each
 *   profile through the gateway, after a random sequence of metric updates;
 * - film_trending: clicks per film and day with trend_pct/trend_dir against the day before, and
 *   the top movers rising and falling through the gateway;
 * - bridge_ops: every 10 s window of every instance, the alert transitions of its three rules (an
 *   error spike fires error_rate_high and resolves), in weir_alerts and live;
 * - interactions: CTR and conversion per variant|source and minute, distinct users, the events
 *   without a source skipped, the ctr_drop alert;
 * - tutors: the 7/30/90-day rows of every day of 100 days of history, then a burst of sessions
 *   per tutor: one debounced recalculation per tutor (3 live messages), rows equal to a
 *   recomputation.
 */
import { describe, expect, it } from 'vitest';
import { bridgeEvents } from '../scripts/load/bridge_ops.js';
import { DAY, MINUTE, floorTo } from '../scripts/load/common.js';
import { trendingEvents } from '../scripts/load/film_trending.js';
import { filmsEvents } from '../scripts/load/films.js';
import { publishEvents, type LoadEvent } from '../scripts/load/index.js';
import { interactionsEvents } from '../scripts/load/interactions.js';
import { tutorId, tutorsBurst, tutorsHistory } from '../scripts/load/tutors.js';
import { sleep, startEngine } from './harness.js';
import { useRealStack } from './real-stack.js';
import { alertDiff, newestRows, tableDiff, topDiff } from './shipped/compare.js';
import { Collector, alertRows, firstLines, getJson, publishCaughtUp, status, tableRows, untilNoDiff, untilStatus, walApplied, type DbAlert } from './shipped/live.js';
import {
  aggregateColumns,
  alertTransitions,
  globalRows,
  keyed,
  loadDecl,
  rollingRows,
  rowDiff,
  scores,
  tumblingRows,
  withTrend,
  type Decl,
} from './shipped/oracle.js';

type Live = Record<string, unknown> & { pipeline: string; key: string; window: string; start: number; end: number; final: boolean };
type TopAnswer = { start: number | null; candidates: number; entries: Live[] };

const PIPELINES = ['films', 'film_trending', 'bridge_ops', 'interactions', 'tutors'] as const;
/**
 * maxOutOfOrderness and idleTimeout apply to the declared pipelines too: windows of past events
 * close on the idle watermark. A runner's idle watermark moves only once it has caught up and then
 * seen no event for idleTimeout; 6 s leaves room, on a loaded machine, between a runner catching
 * up with its first event and reading the rest (see publishCaughtUp).
 *
 * allowedLateness is the default pipeline's only. It reads every weir.events.> subject too, its
 * idle watermark follows the clock from the start, and with its 30 s it would find the backfilled
 * history (100 days of tutor sessions) late and republish each late event with its own JetStream
 * publish (weir.late.<metric>): thousands of those in flight time out and stop the engine
 * ("dead-letter publish failed: timeout"). 120 days keeps every backfilled event on time for it.
 */
const CONFIG = { pipeline: { maxOutOfOrderness: '1s', idleTimeout: '6s', allowedLateness: '120d' } };

describe('shipped pipelines on the real stack', () => {
  const ctx = useRealStack();

  it('each shipped pipeline: tables, alerts, live subjects and gateway equal brute force over its load', async () => {
    const t0 = Date.now();
    const log = (s: string) => process.stdout.write(`[shipped ${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}\n`);
    ctx.engine = await startEngine(ctx.stack, CONFIG, { WEIR_PIPELINES: 'all' });
    const { nc, pool } = ctx;
    const http = ctx.engine.http;
    const decl = Object.fromEntries(PIPELINES.map((p) => [p, loadDecl(p)])) as Record<(typeof PIPELINES)[number], Decl>;
    const liveResults = new Collector<Live>(nc, 'weir.results.>');
    const liveAlerts = new Collector<DbAlert & { at: number }>(nc, 'weir.alerts.>');
    log('engine up');
    try {
      await runAll();
    } catch (err) {
      process.stdout.write(`[shipped] engine log (end):\n${ctx.engine.output().split('\n').slice(-40).join('\n')}\n`);
      throw err;
    }

    async function runAll() {
      /** What a failure message adds: the runner's status (the engine's log is printed on failure). */
      const why = async (p: string) => `status of ${p}: ${JSON.stringify(await status(nc, p).catch((e: Error) => e.message))}`;

      // ---- the workloads: pure functions of a seed and the current time --------------------------
      const T0 = Date.now();
      const today = floorTo(T0, DAY);
      const ev = {
        film_trending: trendingEvents({ seed: 21, end: T0 }),
        films: filmsEvents({ seed: 22, start: Math.max(today, T0 - 10 * MINUTE), end: T0 }),
        bridge_ops: bridgeEvents({ seed: 23, end: T0 - 15_000 }),
        interactions: interactionsEvents({ seed: 24, end: T0 - 15_000 }),
        tutors: tutorsHistory({ seed: 25, end: T0 }),
      };
      const clicks = [...ev.film_trending, ...ev.films];

      // ---- publish -----------------------------------------------------------------------------------
      // Oldest first (see CONFIG). Tutors: day by day, each day once the runner has read the one
      // before, so every day of history is a batch of its own and gets its own rolling rows.
      // Then the tumbling pipelines: the first event, then (runner caught up: live from then on)
      // the rest at once, in time order. film_click feeds both films and film_trending: the
      // trending history goes first, the films' updates (today) after it.
      const tutorDays = new Map<number, LoadEvent[]>();
      for (const e of ev.tutors) {
        const day = floorTo(e.ts, DAY);
        tutorDays.set(day, [...(tutorDays.get(day) ?? []), e]);
      }
      let sent = (await status(nc, 'tutors')).events;
      for (const day of [...tutorDays.keys()].sort((a, b) => a - b)) {
        const events = tutorDays.get(day)!;
        await publishEvents(nc, events);
        sent += events.length;
        await untilStatus(nc, 'tutors', `to read the day ${new Date(day).toISOString()}`, (s) => s.events >= sent, 30_000, 5);
      }
      // One pipeline at a time: a runner stalled by the others for idleTimeout between its first
      // event and the rest would find the rest late.
      await publishCaughtUp(nc, 'film_trending', ev.film_trending);
      await publishEvents(nc, ev.films);
      await publishCaughtUp(nc, 'bridge_ops', ev.bridge_ops);
      await publishCaughtUp(nc, 'interactions', ev.interactions);
      log(`published ${Object.values(ev).reduce((n, l) => n + l.length, 0)} events`);

      // ---- bridge_ops and interactions: tumbling windows with alerts -------------------------------
      for (const p of ['bridge_ops', 'interactions'] as const) {
        const d = decl[p];
        const want = tumblingRows(d, ev[p]);
        const columns = aggregateColumns(d);
        const diffs = await untilNoDiff(async () => ((await walApplied(pool, `weir_p_${p}`)) ? tableDiff(d, await tableRows(pool, p), want, columns, { final: () => true }) : ['WAL not applied yet']), 60_000);
        expect(diffs, `${p} rows:\n${firstLines(diffs)}\n${await why(p)}`).toEqual([]);

        // Alerts observe the final rows at their window end.
        const wantAlerts = alertTransitions(d.alerts, want);
        const alertsDiff = await untilNoDiff(async () => alertDiff(d, await alertRows(pool, p), wantAlerts), 15_000);
        expect(alertsDiff, `${p} weir_alerts:\n${firstLines(alertsDiff)}`).toEqual([]);
        const live = liveAlerts.messages.filter((m) => m.subject.startsWith(`weir.alerts.${p}.`)).map((m) => ({ ...m.data, ts: m.data.at }));
        const liveDiff = alertDiff(d, live, wantAlerts);
        expect(liveDiff, `${p} live alerts:\n${firstLines(liveDiff)}`).toEqual([]);
        for (const m of liveAlerts.messages.filter((x) => x.subject.startsWith(`weir.alerts.${p}.`))) expect(m.subject).toBe(`weir.alerts.${p}.${m.data.rule}`);

        // Live results: the last final result of each window is the row.
        const lastFinal = new Map<string, Live>();
        for (const m of liveResults.messages) if (m.subject.startsWith(`weir.results.${p}.${p}.`) && m.data.final) lastFinal.set(`${m.data.key}|${m.data.start}`, m.data);
        const liveRows = want.flatMap((w) => {
          const g = lastFinal.get(`${w.key}|${w.start}`);
          return g ? rowDiff(d, `live ${w.key} ${new Date(w.start).toISOString()}`, g, w, columns) : [`live ${w.key} ${new Date(w.start).toISOString()}: no final result`];
        });
        expect(liveRows, `${p} live results:\n${firstLines(liveRows)}`).toEqual([]);
        log(`${p}: ${want.length} rows, ${wantAlerts.length} alert transitions`);
      }
      // The workloads' incidents really trip the rules (so the comparisons above are not vacuous).
      const bridgeAlerts = alertTransitions(decl.bridge_ops.alerts, tumblingRows(decl.bridge_ops, ev.bridge_ops));
      for (const [rule, key] of [
        ['error_rate_high', 'bridge-2'],
        ['read_p95_slow', 'bridge-4'],
        ['cache_hit_low', 'bridge-1'],
      ])
        expect(bridgeAlerts.filter((a) => a.rule === rule && a.key === key).map((a) => a.state)).toEqual(['firing', 'resolved']);
      const ctrAlerts = alertTransitions(decl.interactions.alerts, tumblingRows(decl.interactions, ev.interactions));
      expect(ctrAlerts.map((a) => `${a.key} ${a.state}`)).toEqual(['B|home firing', 'B|home resolved']);
      // interactions: events without a source (or variant) tag are skipped and counted.
      const unkeyed = ev.interactions.length - keyed(decl.interactions, ev.interactions).length;
      expect(unkeyed).toBeGreaterThan(0);
      const interStatus = await status(nc, 'interactions');
      expect(Object.values(interStatus.skipped).reduce((a, b) => a + b, 0)).toBe(unkeyed);
      const latestB = await getJson<{ results: Live[] }>(`${http}/v1/latest?pipeline=interactions&key=${encodeURIComponent('B|home')}&final=true`);
      const wantB = tumblingRows(decl.interactions, ev.interactions)
        .filter((r) => r.key === 'B|home')
        .sort((a, b) => b.start - a.start)[0];
      expect(latestB.results.map((r) => r.start)).toEqual([wantB.start]);
      expect(rowDiff(decl.interactions, 'latest B|home', latestB.results[0], wantB, aggregateColumns(decl.interactions))).toEqual([]);

      // ---- film_trending: daily clicks, trend against the day before, top movers -------------------
      {
        const d = decl.film_trending;
        const want = withTrend(d, tumblingRows(d, clicks));
        const columns = [...aggregateColumns(d), 'trend_pct', 'trend_dir'];
        // Past days are final; today's windows (the films' clicks) are open: early partials.
        const diffs = await untilNoDiff(
          async () => ((await walApplied(pool, 'weir_p_film_trending')) ? tableDiff(d, await tableRows(pool, 'film_trending'), want, columns, { final: (r) => (r.end <= floorTo(Date.now(), DAY) ? true : undefined) }) : ['WAL not applied yet']),
          60_000,
        );
        expect(diffs, `film_trending rows:\n${firstLines(diffs)}\n${await why('film_trending')}`).toEqual([]);
        const newest = Math.max(...want.map((r) => r.start));
        const candidates = want.filter((r) => r.start === newest && r.fields.trend_pct !== null).map((r) => ({ key: r.key, score: r.fields.trend_pct as number }));
        expect(candidates.length).toBeGreaterThan(10);
        for (const order of ['desc', 'asc'] as const) {
          const moversDiff = await untilNoDiff(async () => {
            const a = await getJson<TopAnswer>(`${http}/v1/top?pipeline=film_trending&window=1d&by=trend_pct&order=${order}&k=10`);
            const out = topDiff(`movers ${order}`, a.entries.map((e) => ({ key: e.key, score: e.trend_pct as number | null })), candidates, 10, order);
            if (a.start !== newest) out.push(`movers ${order}: ranked the day ${a.start === null ? null : new Date(a.start).toISOString()}, expected ${new Date(newest).toISOString()}`);
            return out;
          }, 20_000);
          expect(moversDiff, firstLines(moversDiff)).toEqual([]);
        }
        log(`film_trending: ${want.length} rows`);
      }

      // ---- films: global running state, scores, top 25 per profile --------------------------------
      {
        const d = decl.films;
        const want = globalRows(d, clicks).map((r) => ({ ...r, fields: { ...r.fields, ...scores(d, r.fields) } }));
        const components = Object.keys(d.score!.components);
        const profiles = Object.keys(d.score!.profiles);
        const columns = [...aggregateColumns(d), ...components, ...profiles];
        const diffs = await untilNoDiff(async () => ((await walApplied(pool, 'weir_p_films')) ? tableDiff(d, await tableRows(pool, 'films'), want, columns) : ['WAL not applied yet']), 60_000);
        expect(diffs, `films rows:\n${firstLines(diffs)}\n${await why('films')}`).toEqual([]);
        for (const profile of profiles) {
          const all = want.map((r) => ({ key: r.key, score: r.fields[profile] as number }));
          const topDiffs = await untilNoDiff(async () => {
            const a = await getJson<TopAnswer>(`${http}/v1/top?pipeline=films&window=global&by=${profile}&k=25`);
            const out = topDiff(`films top 25 by ${profile}`, a.entries.map((e) => ({ key: e.key, score: e[profile] as number | null })), all, 25);
            if (a.candidates !== all.length) out.push(`films top by ${profile}: ${a.candidates} candidates, expected ${all.length}`);
            return out;
          }, 15_000);
          expect(topDiffs, firstLines(topDiffs)).toEqual([]);
        }
        log(`films: ${want.length} films, top 25 of ${profiles.join(', ')}`);
      }

      // ---- tutors: rolling 7/30/90 d of every day of history ---------------------------------------
      const td = decl.tutors;
      const tutorColumns = aggregateColumns(td);
      {
        const want = rollingRows(td, ev.tutors);
        const diffs = await untilNoDiff(async () => ((await walApplied(pool, 'weir_p_tutors')) ? tableDiff(td, await tableRows(pool, 'tutors'), want, tutorColumns) : ['WAL not applied yet']), 60_000);
        expect(diffs, `tutors rows after the history:\n${firstLines(diffs)}\n${await why('tutors')}`).toEqual([]);
        log(`tutors: ${want.length} rows of history`);
      }

      // ---- tutors: a burst of sessions per tutor gives one recalculation per tutor -----------------
      // Let the history's debounced results go out first: recalculations stop changing.
      let settled = await status(nc, 'tutors');
      for (let quietSince = Date.now(); Date.now() - quietSince < 3000; ) {
        await sleep(250);
        const s = await status(nc, 'tutors');
        if (s.recalculations !== settled.recalculations) quietSince = Date.now();
        settled = s;
      }
      expect(settled.recalculations, 'the runner status carries recalculations').toBeTypeOf('number');
      const burstTutors = Array.from({ length: 10 }, (_, i) => tutorId(i));
      const burstLive = new Collector<Live>(nc, 'weir.results.tutors.tutors.>');
      const burst = tutorsBurst({ seed: 26, tutors: burstTutors, sessions: 8, at: Date.now() });
      const burstStarted = Date.now();
      await publishEvents(nc, burst);
      expect(Date.now() - burstStarted, 'the burst is published within a second').toBeLessThan(1000);
      await untilStatus(nc, 'tutors', 'one recalculation per tutor of the burst', (s) => (s.recalculations ?? 0) >= (settled.recalculations ?? 0) + burstTutors.length, 20_000, 100);
      while (Date.now() - Math.max(burstLive.lastAt, burstStarted) < 3000) await sleep(250);
      burstLive.stop();
      const after = await status(nc, 'tutors');
      const perTutor = new Map<string, Live[]>();
      for (const m of burstLive.messages) perTutor.set(m.data.key, [...(perTutor.get(m.data.key) ?? []), m.data]);
      for (const t of burstTutors) {
        const n = burst.filter((e) => e.key === t).length;
        expect(n, `${t} got many events in the burst`).toBeGreaterThanOrEqual(20);
        expect(
          (perTutor.get(t) ?? []).map((r) => r.window).sort(),
          `${t}: one recalculation (one live message per window) for ${n} events`,
        ).toEqual(['30d', '7d', '90d']);
      }
      expect([...perTutor.keys()].sort()).toEqual([...burstTutors].sort());
      expect((after.recalculations ?? 0) - (settled.recalculations ?? 0), 'recalculations in the status').toBe(burstTutors.length);
      expect((after.debounced ?? 0) - (settled.debounced ?? 0), 'updates offered to the debounce').toBeGreaterThanOrEqual(burstTutors.length);

      // Every tutor's current 7/30/90-day rows equal a recomputation over history and burst, in the
      // table, in the burst's live messages and through the gateway.
      const allTutorEvents = [...ev.tutors, ...burst];
      const current = rollingRows(td, allTutorEvents, true);
      const currentDiff = await untilNoDiff(async () => {
        if (!(await walApplied(pool, 'weir_p_tutors'))) return ['WAL not applied yet'];
        return tableDiff(td, newestRows(await tableRows(pool, 'tutors')), current, tutorColumns);
      }, 30_000);
      expect(currentDiff, `tutors current rows after the burst:\n${firstLines(currentDiff)}\n${await why('tutors')}`).toEqual([]);
      const liveDiff = current
        .filter((r) => burstTutors.includes(r.key))
        .flatMap((w) => {
          const g = perTutor.get(w.key)?.find((x) => x.window === w.window);
          return g ? [...(g.start === w.start ? [] : [`live ${w.key} ${w.window}: start ${g.start}, expected ${w.start}`]), ...rowDiff(td, `live ${w.key} ${w.window}`, g, w, tutorColumns)] : [`live ${w.key} ${w.window}: none`];
        });
      expect(liveDiff, firstLines(liveDiff)).toEqual([]);
      const latest = await getJson<{ results: Live[] }>(`${http}/v1/latest?pipeline=tutors&key=tutor-01`);
      const latestDiff = current
        .filter((r) => r.key === 'tutor-01')
        .flatMap((w) => {
          const g = latest.results.find((x) => x.window === w.window);
          return g ? rowDiff(td, `latest tutor-01 ${w.window}`, g, w, tutorColumns) : [`latest tutor-01 ${w.window}: none`];
        });
      expect(latestDiff, firstLines(latestDiff)).toEqual([]);
      log(`tutors burst: ${burst.length} events, ${burstLive.messages.length} live messages, ${(after.recalculations ?? 0) - (settled.recalculations ?? 0)} recalculations`);

      // No pipeline counted a late event: every window above was computed from all of its events.
      for (const p of PIPELINES) expect((await status(nc, p)).late, `${p} late events`).toBe(0);

      // ---- tutors: low_rating over the rolling rows -------------------------------------------------
      // Every rolling row is an observation at its window end. tutor-07's bad spell takes its 7- and
      // 30-day ratings under 3.5 and back over 3.8; no other tutor's rating ever goes under 3.9.
      const tutorAlerts = alertTransitions(td.alerts, rollingRows(td, allTutorEvents));
      expect(new Set(tutorAlerts.map((a) => a.key))).toEqual(new Set(['tutor-07']));
      expect(tutorAlerts.map((a) => a.state)).toContain('resolved');
      const tutorAlertDiff = await untilNoDiff(async () => alertDiff(td, await alertRows(pool, 'tutors'), tutorAlerts), 10_000);
      expect(
        tutorAlertDiff,
        `tutors weir_alerts: low_rating should follow each rolling window's own rating series (one state per rule, key and window), ` +
          `but transitions differ:\n${firstLines(tutorAlertDiff)}`,
      ).toEqual([]);
      const tutorLive = liveAlerts.messages.filter((m) => m.subject.startsWith('weir.alerts.tutors.')).map((m) => ({ ...m.data, ts: m.data.at }));
      const tutorLiveDiff = alertDiff(td, tutorLive, tutorAlerts);
      expect(tutorLiveDiff, `tutors live alerts:\n${firstLines(tutorLiveDiff)}`).toEqual([]);
      liveResults.stop();
      liveAlerts.stop();
      log('done');
    }
  });
});

