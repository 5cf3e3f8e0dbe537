/**
 * Fault injection for DECLARED pipelines (issue 5, docs/pipelines.md "Delivery"), shared by
 * test/faults-pipelines.test.ts (CI) and scripts/soak-pipelines.ts (the soak). Plain code, no
 * vitest.
 *
 * The shipped pipelines tutors (rolling 7/30/90 d of daily panes, debounce, an alert), bridge_ops
 * (10 s tumbling windows, early partials, DDSketch percentiles, three alerts), films (a global
 * window with static scores), film_trending (1 d tumbling windows, a trend against the day before)
 * and interactions (1 m tumbling windows keyed by two tags, ratios, distinct users, an alert) run
 * in the engine from config/pipelines. One seeded workload per round,
 * built from their load generators (scripts/load/), is published while the engine is killed (-9)
 * at chosen moments, and the tables weir_p_<name> and weir_alerts are then compared row by row
 * with the brute-force oracle (test/shipped/oracle.ts, which never imports the engine).
 *
 * The workload is out of order and carries late corrections, in a way that keeps the expected
 * rows a function of the stream alone (not of where batches, debounce releases or restarts fall):
 * - tutors: 12 % of the sessions (all three events) of every tutor but tutor-07 (the one whose
 *   bad spell fires low_rating) are published one or two days late, so they reach panes whose windows already
 *   fired (a correction of the row) or that a newer pane of the tutor replaced (they count only in
 *   the current windows); within the 2 d lateness, so none is dropped;
 * - bridge_ops: 30 % of the write latencies of windows whose alert fields are nowhere near a
 *   threshold come one or two windows late (10-30 s behind, within the 30 s lateness): the
 *   window has fired, the correction re-emits it, and the alert rules observe the same values
 *   again (write latencies feed no rule);
 * - film_trending: of 10 % of the (film, day) pairs, 30 % of the clicks, and of 4 %, all of them
 *   (the day's row first appears late, after the next day's row was emitted without a previous
 *   day) are published right after the first half hour of the next day, which fired the day:
 *   within the 1 h lateness, whatever the batches, since nothing later than that half hour came
 *   before them. Each corrects the day's row and, through its trend, the next day's row, which the
 *   engine must emit again. The last day gets none (nothing after it but the closer);
 * - interactions: 30 % of the conversions come one minute late (within the 1 m lateness; they
 *   feed no rule), and 10 % of the shown and clicked recommendations too, but only of keys that
 *   never alert and in windows whose CTR stays at or above the resolve bound of ctr_drop with any
 *   part of the late events in (the rule sees no transition whichever part a restart or a batch
 *   lets in before the window fires, and the oracle sees none either);
 * - films: stale and tied updates of `last` from the generator (out of order by up to a minute).
 *   film_click feeds films and film_trending: the films workload has no clicks of its own (clicks
 *   at its stretch of time would take film_trending's watermark past the days of history); the
 *   trending clicks are its clicks.
 * Everything else keeps the generators' order; the watermark follows event time only (no idle
 * advance), so no event is ever judged late.
 */
import type { DbAlert as LiveAlert } from './shipped/live.js';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type pg from 'pg';
import { rng } from '../benchmarks/producer.js';
import { BRIDGE_METRICS, bridgeEvents } from '../scripts/load/bridge_ops.js';
import { DAY, MINUTE, SECOND, floorTo, type LoadEvent } from '../scripts/load/common.js';
import { trendingEvents } from '../scripts/load/film_trending.js';
import { filmsEvents } from '../scripts/load/films.js';
import { INTERACTION_METRICS, interactionsEvents } from '../scripts/load/interactions.js';
import { TUTOR_METRICS, tutorsHistory } from '../scripts/load/tutors.js';
import type { Stack } from '../scripts/stack.js';
import { checkRecorder, type Check, type EngineUnderTest } from './faults-kit.js';
import { sleep, waitFor } from './harness.js';
import {
  aggregateColumns,
  alertTransitions,
  globalRows,
  keyed,
  loadDecl,
  rollingRowsInStreamOrder,
  rowDiff,
  scores,
  tolerance,
  tumblingRows,
  withTrend,
  type Decl,
  type Ev,
  type Row,
  type Transition,
} from './shipped/oracle.js';

export const FAULT_PIPELINES = ['tutors', 'bridge_ops', 'films', 'film_trending', 'interactions'] as const;
export type FaultPipeline = (typeof FAULT_PIPELINES)[number];

/** A record with one entry per pipeline. */
export const perPipeline = <T>(f: (p: FaultPipeline) => T): Record<FaultPipeline, T> => Object.fromEntries(FAULT_PIPELINES.map((p) => [p, f(p)])) as Record<FaultPipeline, T>;

let declsRead: Record<FaultPipeline, Decl> | undefined;
/** The pipelines' declarations (config/pipelines, read by the oracle's own parser). */
export const decls = (): Record<FaultPipeline, Decl> => (declsRead ??= perPipeline(loadDecl));

/** The pipelines that read a metric (film_click feeds films and film_trending). */
export function readersOf(metric: string): FaultPipeline[] {
  const out = FAULT_PIPELINES.filter((p) => decls()[p].metrics.includes(metric) || decls()[p].metrics.includes('*'));
  if (out.length === 0) throw new Error(`pipeline faults: no pipeline under test reads the metric ${metric}`);
  return out;
}

/** The keys of the closers' own windows (they never fire: their rows are partials, and no rule observes them). */
export const closerKeys = (prefix: string) => ({ bridge_ops: `${prefix}closer`, film_trending: `${prefix}film-closer`, interactions: `${prefix}closer|closer` });

/**
 * The engine's config: the five pipelines from config/pipelines, checkpoints every 500 ms (so
 * that kills land before, after and during them), a watermark that follows event time only. The
 * default pipeline reads every event too; with its default 30 s lateness it would publish each of
 * the tutors' historic events on weir.late one by one, hence 120 days.
 */
export function pipelineFaultsConfig(extra: { maxFuture?: string } = {}): Record<string, unknown> {
  return {
    pipeline: { maxOutOfOrderness: '2s', idleTimeout: '1h', allowedLateness: '120d', ...(extra.maxFuture ? { maxFuture: extra.maxFuture } : {}) },
    pipelines: { run: [...FAULT_PIPELINES], checkpointInterval: `${CHECKPOINT_INTERVAL_MS}ms`, tick: '100ms' },
    workers: 1,
    // the default pipeline's live results are not under test here: spare the two cores
    results: { enabled: false },
  };
}
export const CHECKPOINT_INTERVAL_MS = 500;

// ---- workload ---------------------------------------------------------------------------------

export interface PMsg {
  subject: string;
  body: string;
  /** The workload it belongs to. */
  pipeline: FaultPipeline;
  /** Every pipeline that reads its subject. */
  readers: FaultPipeline[];
  events: number;
  /** Only late events (film_trending, interactions: the messages of the day or minute before). */
  late?: true;
}

export interface PipelinesWorkload {
  prefix: string;
  /** In publish order (the five pipelines interleaved), without the closers. */
  messages: PMsg[];
  /**
   * Last, one event past the last window of each tumbling pipeline, so that every window fires:
   * bridge_ops 40 s past its last window, film_trending 10 s past its last day, interactions 30 s
   * past its last minute.
   */
  closers: PMsg[];
  /** Each pipeline's events in stream order, the closers included (film_click: films and film_trending). */
  events: Record<FaultPipeline, Ev[]>;
  /** Events published out of order past their pipeline's watermark (corrections). */
  corrections: Record<'tutors' | 'bridge_ops' | 'film_trending' | 'interactions', number>;
}

export interface WorkloadOptions {
  seed: number;
  /** Prepended to every key (tutor, instance, film): rounds of the soak do not share keys. */
  prefix: string;
  /** The tutors' history ends at the start of the UTC day of `end`; bridge_ops and films end a minute before it. */
  end: number;
  /** Tutors and days of history (default 20 and 100). */
  tutors?: number;
  days?: number;
  /** bridge_ops: mean requests per instance and 10 s window (default 20). */
  requests?: number;
  /** film_trending: mean clicks per film and day (default 8; 80 films, 8 days). */
  clicks?: number;
  /** interactions: mean recommendations shown per (variant, source) and minute (default 60; 12 minutes). */
  shown?: number;
}

const toMsg = (pipeline: FaultPipeline, metric: string, events: LoadEvent[]): PMsg => ({
  subject: `weir.events.${metric}`,
  body: JSON.stringify(events.map(({ metric: _m, ...e }) => e)),
  pipeline,
  readers: readersOf(metric),
  events: events.length,
});

/**
 * Cuts events into buckets of `bucketMs`, one message per (bucket, metric) of at most `max`
 * events (metrics in `order`). `moved` says how many buckets later an event goes (0: its own);
 * a moved event takes a random place in its message.
 */
function bucketed(pipeline: FaultPipeline, events: LoadEvent[], bucketMs: number, order: readonly string[], rand: () => number, moved: (e: LoadEvent) => number, max = Infinity): PMsg[] {
  const buckets = new Map<number, Map<string, LoadEvent[]>>();
  const list = (b: number, metric: string) => {
    let m = buckets.get(b);
    if (!m) buckets.set(b, (m = new Map()));
    let l = m.get(metric);
    if (!l) m.set(metric, (l = []));
    return l;
  };
  const late: [number, LoadEvent][] = [];
  for (const e of events) {
    const by = moved(e);
    if (by > 0) late.push([floorTo(e.ts, bucketMs) + by * bucketMs, e]);
    else list(floorTo(e.ts, bucketMs), e.metric).push(e);
  }
  for (const [b, e] of late) {
    const l = list(b, e.metric);
    l.splice(Math.floor(rand() * (l.length + 1)), 0, e);
  }
  const out: PMsg[] = [];
  for (const b of [...buckets.keys()].sort((x, y) => x - y))
    for (const metric of order) {
      const l = buckets.get(b)!.get(metric);
      for (let i = 0; l && i < l.length; i += max) out.push(toMsg(pipeline, metric, l.slice(i, i + max)));
    }
  return out;
}

/** Merges message lists, keeping each list's order, so that all of them run from start to end together. */
function interleave(lists: PMsg[][]): PMsg[] {
  return lists
    .flatMap((l, j) => l.map((m, i) => ({ m, at: (i + 0.5) / l.length, j })))
    .sort((a, b) => a.at - b.at || a.j - b.j)
    .map((x) => x.m);
}

const holds = (op: string, v: number, bound: number) => (op === '>' ? v > bound : op === '>=' ? v >= bound : op === '<' ? v < bound : v <= bound);

export function pipelinesWorkload(o: WorkloadOptions): PipelinesWorkload {
  const rand = rng(o.seed * 7 + 1);
  const rename = (e: LoadEvent): LoadEvent => ({ ...e, key: o.prefix + e.key });

  // tutors: one message per day and metric (a tutor's ratings of a day are never split)
  const tutorBad = `${o.prefix}tutor-07`;
  let tutorCorrections = 0;
  // a whole session (its three events) is late or on time: a tutor's only session of a day, late,
  // comes after the next day's, so that day never has rows of its own
  const sessionDelay = new Map<string, number>();
  const tutors = bucketed('tutors', tutorsHistory({ seed: o.seed, end: o.end, tutors: o.tutors, days: o.days }).map(rename), DAY, TUTOR_METRICS, rand, (e) => {
    if (e.key === tutorBad) return 0;
    const id = `${e.key}|${e.ts}`;
    let by = sessionDelay.get(id);
    if (by === undefined) sessionDelay.set(id, (by = rand() >= 0.12 ? 0 : rand() < 0.8 ? 1 : 2));
    if (by > 0) tutorCorrections++;
    return by;
  });

  // bridge_ops: one message per 10 s window and metric (at most 100 events)
  const W = 10 * SECOND;
  const bridgeEnd = floorTo(o.end, W) - MINUTE;
  const bridge = bridgeEvents({ seed: o.seed + 1, end: bridgeEnd, requests: o.requests ?? 20 }).map(rename);
  const bridgeDecl = loadDecl('bridge_ops');
  const quiet = new Set(
    tumblingRows(bridgeDecl, bridge)
      .filter((r) => bridgeDecl.alerts.every((a) => r.fields[a.field] === null || r.fields[a.field] === undefined || !holds(a.op, r.fields[a.field] as number, a.threshold)))
      .map((r) => `${r.key}|${r.start}`),
  );
  let bridgeCorrections = 0;
  const bridgeMsgs = bucketed('bridge_ops', bridge, W, BRIDGE_METRICS, rand, (e) => {
    if (e.metric !== 'bridge_write_us' || !quiet.has(`${e.key}|${floorTo(e.ts, W)}`) || rand() >= 0.3) return 0;
    bridgeCorrections++;
    return rand() < 0.6 ? 1 : 2;
  }, 100);
  const closerEv: LoadEvent = { metric: 'bridge_request', key: closerKeys(o.prefix).bridge_ops, ts: bridgeEnd + 40 * SECOND, value: 1 };
  const closer = toMsg('bridge_ops', 'bridge_request', [closerEv]);

  // films: runs of one metric, at most 50 events a message; no clicks (film_trending's are its clicks)
  const films = filmsEvents({ seed: o.seed + 2, films: 80, updates: 500, clicks: 0, start: bridgeEnd - 10 * MINUTE, end: bridgeEnd }).map(rename);
  const filmMsgs: PMsg[] = [];
  for (let i = 0; i < films.length; ) {
    let j = i + 1;
    while (j < films.length && j - i < 50 && films[j].metric === films[i].metric) j++;
    filmMsgs.push(toMsg('films', films[i].metric, films.slice(i, j)));
    i = j;
  }

  // film_trending: 8 days of clicks of the same 80 films, the last day ending at the start of the
  // UTC day of `end`. Each day: its first half hour, then the late clicks of the day before, then
  // the rest of the day (at most 400 clicks a message).
  const today = floorTo(o.end, DAY);
  const trendingDays = 8;
  const fate = new Map<string, 'none' | 'some' | 'all'>();
  const onTime = new Map<number, LoadEvent[]>();
  const lateIn = new Map<number, LoadEvent[]>();
  const push = (m: Map<number, LoadEvent[]>, day: number, e: LoadEvent, at?: number) => {
    let l = m.get(day);
    if (!l) m.set(day, (l = []));
    l.splice(at ?? l.length, 0, e);
  };
  for (const e of trendingEvents({ seed: o.seed + 3, end: o.end, films: 80, days: trendingDays, meanClicks: o.clicks ?? 8 }).map(rename)) {
    const day = floorTo(e.ts, DAY);
    const id = `${e.key}|${day}`;
    let f = fate.get(id);
    if (f === undefined) {
      const r = rand();
      fate.set(id, (f = day + DAY >= today ? 'none' : r < 0.04 ? 'all' : r < 0.14 ? 'some' : 'none'));
    }
    if (f === 'all' || (f === 'some' && rand() < 0.3)) {
      const l = lateIn.get(day + DAY) ?? [];
      push(lateIn, day + DAY, e, Math.floor(rand() * (l.length + 1)));
    } else push(onTime, day, e);
  }
  let trendingCorrections = 0;
  const trendingMsgs: PMsg[] = [];
  const chunks = (events: LoadEvent[], max: number, late = false) => {
    for (let i = 0; i < events.length; i += max) trendingMsgs.push({ ...toMsg('film_trending', 'film_click', events.slice(i, i + max)), ...(late ? { late: true as const } : {}) });
  };
  for (let day = today - trendingDays * DAY; day < today; day += DAY) {
    const list = onTime.get(day) ?? [];
    const cut = list.findIndex((e) => e.ts >= day + 30 * MINUTE);
    const head = cut < 0 ? list : list.slice(0, cut);
    const late = lateIn.get(day) ?? [];
    chunks(head, 400);
    chunks(late, 400, true);
    chunks(cut < 0 ? [] : list.slice(cut), 400);
    // past the day before's watermark (maxOutOfOrderness 2 s) only if the head reached past it
    if (head.some((e) => e.ts >= day + 2 * SECOND)) trendingCorrections += late.length;
  }
  const trendingCloser = toMsg('film_trending', 'film_click', [{ metric: 'film_click', key: closerKeys(o.prefix).film_trending, ts: today + 10 * SECOND, value: 1 }]);

  // interactions: 12 minutes before bridge_ops's end, the variant tag prefixed (the key is
  // "<variant>|<source>"). Each minute: one message per metric (at most 400 events), then the
  // late events of the minute before, the same way; the last minute has none.
  const interDecl = loadDecl('interactions');
  for (const a of interDecl.alerts) if (a.field !== 'ctr') throw new Error(`pipeline faults: the interactions workload expects rules over ctr only, ${a.name} watches ${a.field}`);
  const inter = interactionsEvents({ seed: o.seed + 4, end: bridgeEnd, shown: o.shown ?? 60 }).map((e) => ({ ...rename(e), tags: { ...e.tags, variant: o.prefix + e.tags!.variant } }));
  const interUntil = floorTo(bridgeEnd, MINUTE);
  const interRows = tumblingRows(interDecl, inter);
  const alerting = new Set(alertTransitions(interDecl.alerts, interRows).map((t) => t.key));
  const ctrFeeds = new Set(['rec_shown', 'rec_clicked']);
  const lateInter = new Set<LoadEvent>();
  const keyOf = new Map(keyed(interDecl, inter).map((x) => [x.e as LoadEvent, x.key]));
  for (const e of inter) {
    const key = keyOf.get(e);
    if (floorTo(e.ts, MINUTE) + MINUTE >= interUntil) continue;
    if (e.metric === 'rec_converted' ? rand() < 0.3 : ctrFeeds.has(e.metric) && (key === undefined || !alerting.has(key)) && rand() < 0.1) lateInter.add(e);
  }
  // A window fires with its on-time events and any part of its late ones: its CTR lies between
  // (on-time clicks / all shown) and (all clicks / on-time shown). Where that range reaches a
  // bound of a rule, its shown and clicked events all come on time.
  const span = new Map<string, { shown: number; shownOn: number; clicks: number; clicksOn: number }>();
  const windowOf = (e: LoadEvent) => `${keyOf.get(e)}|${floorTo(e.ts, MINUTE)}`;
  for (const e of inter) {
    if (!ctrFeeds.has(e.metric) || keyOf.get(e) === undefined) continue;
    const id = windowOf(e);
    let w = span.get(id);
    if (!w) span.set(id, (w = { shown: 0, shownOn: 0, clicks: 0, clicksOn: 0 }));
    const on = lateInter.has(e) ? 0 : 1;
    if (e.metric === 'rec_shown') (w.shown++, (w.shownOn += on));
    else (w.clicks++, (w.clicksOn += on));
  }
  const clear = (v: number | null) => v === null || interDecl.alerts.every((a) => !holds(a.op, v, a.threshold) && !holds(a.op, v, a.resolve));
  for (const e of [...lateInter]) {
    if (!ctrFeeds.has(e.metric) || keyOf.get(e) === undefined) continue;
    const w = span.get(windowOf(e))!;
    if (!(clear(w.shown ? w.clicksOn / w.shown : null) && clear(w.shownOn ? w.clicks / w.shownOn : null))) lateInter.delete(e);
  }
  const minutes = new Map<number, { onTime: LoadEvent[]; late: LoadEvent[] }>();
  for (const e of inter) {
    const late = lateInter.has(e);
    const b = floorTo(e.ts, MINUTE) + (late ? MINUTE : 0);
    let m = minutes.get(b);
    if (!m) minutes.set(b, (m = { onTime: [], late: [] }));
    (late ? m.late : m.onTime).push(e);
  }
  const interMsgs: PMsg[] = [];
  for (const b of [...minutes.keys()].sort((x, y) => x - y))
    for (const part of ['onTime', 'late'] as const)
      for (const metric of INTERACTION_METRICS) {
        const l = minutes.get(b)![part].filter((e) => e.metric === metric);
        for (let i = 0; i < l.length; i += 400) interMsgs.push({ ...toMsg('interactions', metric, l.slice(i, i + 400)), ...(part === 'late' ? { late: true as const } : {}) });
      }
  const interCloser = toMsg('interactions', 'rec_shown', [{ metric: 'rec_shown', key: 'closer', ts: interUntil + 30 * SECOND, value: 1, tags: { variant: `${o.prefix}closer`, source: 'closer', user: 'u0000' } }]);

  const messages = interleave([tutors, bridgeMsgs, filmMsgs, trendingMsgs, interMsgs]);
  const closers = [closer, trendingCloser, interCloser];
  return {
    prefix: o.prefix,
    messages,
    closers,
    events: eventsOf([...messages, ...closers]),
    corrections: { tutors: tutorCorrections, bridge_ops: bridgeCorrections, film_trending: trendingCorrections, interactions: [...lateInter].filter((e) => keyOf.has(e)).length },
  };
}

/** Each pipeline's events in the order of `messages` (a message goes to every pipeline that reads its subject). */
export function eventsOf(messages: readonly PMsg[]): Record<FaultPipeline, Ev[]> {
  const out = perPipeline<Ev[]>(() => []);
  for (const m of messages) {
    const metric = m.subject.slice('weir.events.'.length);
    const events = (JSON.parse(m.body) as Omit<Ev, 'metric'>[]).map((e) => ({ metric, ...e }));
    for (const p of m.readers) out[p].push(...events);
  }
  return out;
}

/** One session of every tutor of the workload at `ts` (a new day for each): one message per metric. */
export function nextDaySessions(prefix: string, tutors: number, ts: number): PMsg[] {
  const ids = Array.from({ length: tutors }, (_, i) => `${prefix}tutor-${String(i + 1).padStart(2, '0')}`);
  return [
    toMsg('tutors', 'tutor_session_rating', ids.map((key, i) => ({ metric: 'tutor_session_rating', key, ts, value: 4 + (i % 10) / 10 }))),
    toMsg('tutors', 'tutor_session_minutes', ids.map((key, i) => ({ metric: 'tutor_session_minutes', key, ts, value: 30 + i }))),
    toMsg('tutors', 'tutor_session_attended', ids.map((key) => ({ metric: 'tutor_session_attended', key, ts, value: 1 }))),
  ];
}

// ---- oracle ----------------------------------------------------------------------------------

export interface Expected {
  decl: Decl;
  rows: Row[];
  alerts: Transition[];
  columns: string[];
  /** Whether a row must be final (undefined: either). */
  final: (r: Row) => boolean | undefined;
}

/** The rows and alert transitions of each pipeline, by brute force over its events in stream order. */
export function expected(events: Record<FaultPipeline, Ev[]>, prefix: string): Record<FaultPipeline, Expected> {
  const tutors = loadDecl('tutors');
  const bridge = loadDecl('bridge_ops');
  const films = loadDecl('films');
  const trending = loadDecl('film_trending');
  const inter = loadDecl('interactions');
  const tutorRows = rollingRowsInStreamOrder(tutors, events.tutors);
  const bridgeRows = tumblingRows(bridge, events.bridge_ops);
  const closers = closerKeys(prefix);
  const closer = closers.bridge_ops;
  const interRows = tumblingRows(inter, events.interactions);
  const filmRows = globalRows(films, events.films).map((r) => ({ ...r, fields: { ...r.fields, ...scores(films, r.fields) } }));
  return {
    tutors: { decl: tutors, rows: tutorRows, alerts: alertTransitions(tutors.alerts, tutorRows), columns: aggregateColumns(tutors), final: () => undefined },
    bridge_ops: {
      decl: bridge,
      rows: bridgeRows,
      // the closer's window never fires, so no rule observes it
      alerts: alertTransitions(bridge.alerts, bridgeRows.filter((r) => r.key !== closer)),
      columns: aggregateColumns(bridge),
      final: (r) => (r.key === closer ? undefined : true),
    },
    films: {
      decl: films,
      rows: filmRows,
      alerts: [],
      columns: [...aggregateColumns(films), ...Object.keys(films.score!.components), ...Object.keys(films.score!.profiles)],
      final: () => true,
    },
    film_trending: {
      decl: trending,
      // each day's trend against the final row of the day before, whatever order they came in
      rows: withTrend(trending, tumblingRows(trending, events.film_trending)),
      alerts: [],
      columns: [...aggregateColumns(trending), 'trend_pct', 'trend_dir'],
      final: (r) => (r.key === closers.film_trending ? undefined : true),
    },
    interactions: {
      decl: inter,
      rows: interRows,
      alerts: alertTransitions(inter.alerts, interRows.filter((r) => r.key !== closers.interactions)),
      columns: aggregateColumns(inter),
      final: (r) => (r.key === closers.interactions ? undefined : true),
    },
  };
}

// ---- reading back ----------------------------------------------------------------------------

export interface Diff {
  expected: number;
  found: number;
  lost: string[];
  duplicated: string[];
  wrong: string[];
  extra: string[];
}

export const diffClean = (d: Diff) => d.lost.length + d.duplicated.length + d.wrong.length + d.extra.length === 0;

type DbRow = Record<string, unknown> & { key: string; window: string; ts: number; window_end: number; final: boolean; superseded: boolean | null };

/**
 * The round's rows are picked by key prefix in JS, not with `key LIKE $1`: QuestDB 9.3.4 caches the
 * compiled PG-wire statement, and a LIKE over a SYMBOL column with a bind variable then keeps the
 * symbol keys that matched when it was first run: a key created later (here, the closer's) is
 * never found by it (a literal pattern is not affected). That made a row look lost that was there.
 */
const ofRound = <T extends { key: string }>(rows: T[], prefix: string): T[] => rows.filter((r) => r.key.startsWith(prefix));

/** True once QuestDB applied every WAL transaction of the tables. */
export async function walApplied(pool: pg.Pool, tables: string[]): Promise<boolean> {
  const r = await pool.query<{ name: string; writerTxn: number; sequencerTxn: number }>('SELECT name, writerTxn, sequencerTxn FROM wal_tables()');
  return tables.every((t) => r.rows.some((x) => x.name === t && Number(x.writerTxn) === Number(x.sequencerTxn)));
}

/** Every row of weir_p_<pipeline> of the round's keys against the expected ones. */
export async function diffRows(pool: pg.Pool, pipeline: FaultPipeline, prefix: string, want: Expected): Promise<Diff> {
  const got = ofRound((await pool.query<DbRow>(`SELECT * FROM weir_p_${pipeline}`)).rows, prefix).map((r) => ({ ...r, ts: Number(r.ts), window_end: Number(r.window_end) }));
  const id = (key: string, window: string, start: number) => `${pipeline} ${key} ${window} ${new Date(start).toISOString()}`;
  const byId = new Map<string, DbRow>();
  const d: Diff = { expected: want.rows.length, found: got.length, lost: [], duplicated: [], wrong: [], extra: [] };
  for (const r of got) {
    const i = id(r.key, r.window, r.ts);
    if (byId.has(i)) d.duplicated.push(i);
    byId.set(i, r);
  }
  for (const w of want.rows) {
    const i = id(w.key, w.window, w.start);
    const g = byId.get(i);
    if (!g) {
      d.lost.push(i);
      continue;
    }
    byId.delete(i);
    const problems: string[] = [];
    if (g.window_end !== w.end) problems.push(`window_end ${g.window_end}, expected ${w.end}`);
    const final = want.final(w);
    if (final !== undefined && g.final !== final) problems.push(`final ${g.final}, expected ${final}`);
    if (g.superseded === true) problems.push('superseded');
    problems.push(...rowDiff(want.decl, '', g, w, want.columns).map((s) => s.trim()));
    if (problems.length) d.wrong.push(`${i}: ${problems.join('; ')}`);
  }
  for (const i of byId.keys()) d.extra.push(i);
  return d;
}

/** A weir_alerts row, with its window (test/shipped/live.ts's row, which has it too since alerts carry their window). */
type DbAlert = LiveAlert & { window: string };

/** The round's rows of weir_alerts for `pipeline` against the expected transitions (identity: rule, key, window, state, time). */
export async function diffAlerts(pool: pg.Pool, pipeline: FaultPipeline, prefix: string, want: Expected): Promise<Diff> {
  let got: DbAlert[] = [];
  try {
    got = ofRound((await pool.query<DbAlert>('SELECT * FROM weir_alerts WHERE pipeline = $1', [pipeline])).rows, prefix).map((r) => ({ ...r, ts: Number(r.ts), since: Number(r.since) }));
  } catch (err) {
    if (!/does not exist/i.test((err as Error).message)) throw err;
  }
  const id = (rule: string, key: string, window: string, state: string, at: number) => `${pipeline} ${rule} ${key} ${window} ${state} at ${new Date(at).toISOString()}`;
  const d: Diff = { expected: want.alerts.length, found: got.length, lost: [], duplicated: [], wrong: [], extra: [] };
  const byId = new Map<string, DbAlert>();
  for (const g of got) {
    const i = id(g.rule, g.key, g.window, g.state, g.ts);
    if (byId.has(i)) d.duplicated.push(i);
    byId.set(i, g);
  }
  for (const w of want.alerts) {
    const i = id(w.rule, w.key, w.window, w.state, w.at);
    const g = byId.get(i);
    if (!g) {
      d.lost.push(`${i} (value ${w.value})`);
      continue;
    }
    byId.delete(i);
    const p: string[] = [];
    if (g.since !== w.since) p.push(`since ${g.since}, expected ${w.since}`);
    if (g.severity !== w.severity || g.field !== w.field || g.threshold !== w.threshold) p.push(`severity/field/threshold ${g.severity}/${g.field}/${g.threshold}, expected ${w.severity}/${w.field}/${w.threshold}`);
    if (!(Math.abs(g.value - w.value) <= tolerance(want.decl, w.field, w.value))) p.push(`value ${g.value}, expected ${w.value}`);
    if (p.length) d.wrong.push(`${i}: ${p.join('; ')}`);
  }
  for (const [i, g] of byId) d.extra.push(`${i} (value ${g.value})`);
  return d;
}

/** Polls until every pipeline's rows and alerts equal the expected ones (WAL applied), or the time is up; returns the last diffs. */
export async function awaitDiffs(pool: pg.Pool, prefix: string, want: Record<FaultPipeline, Expected>, timeoutMs: number): Promise<Record<FaultPipeline, { rows: Diff; alerts: Diff }>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = {} as Record<FaultPipeline, { rows: Diff; alerts: Diff }>;
    let clean = await walApplied(pool, [...FAULT_PIPELINES.map((p) => `weir_p_${p}`), 'weir_alerts']).catch(() => false);
    for (const p of FAULT_PIPELINES) {
      out[p] = { rows: await diffRows(pool, p, prefix, want[p]), alerts: await diffAlerts(pool, p, prefix, want[p]) };
      clean &&= diffClean(out[p].rows) && diffClean(out[p].alerts);
    }
    if (clean || Date.now() > deadline) return out;
    await sleep(500);
  }
}

/** QuestDB's WAL state of the tables (for a failure message: a suspended table never applies its last rows). */
export async function walState(pool: pg.Pool): Promise<string> {
  const r = await pool.query('SELECT * FROM wal_tables()');
  return r.rows
    .filter((x) => /^weir_(p_|alerts)/.test(String(x.name)))
    .map((x) => JSON.stringify(x))
    .join('\n');
}

// ---- the runners' status ---------------------------------------------------------------------

export interface PStatus {
  pipeline: string;
  events: number;
  eventsThisRun: number;
  restoredFrom: number;
  restoreError?: string;
  lastSeq: number;
  caughtUp: boolean;
  late: number;
  /** Events skipped by reason (no_key_tag, where), over every incarnation (they are in the state). */
  skipped: Record<string, number>;
  checkpointSeq: number;
  checkpoints: number;
  checkpointFailures: number;
  checkpointBytes: number;
  redeliveriesSkipped: number;
  repositions: number;
  flushFailures: number;
}

export async function pstatus(nc: NatsConnection, pipeline: string, timeoutMs = 3000): Promise<PStatus> {
  return (await nc.request(`weir.api.${pipeline}.status`, '{}', { timeout: timeoutMs })).json<PStatus>();
}

/** Every pipeline's status, asking again while a runner does not answer (it is starting, or NATS is back only now). */
export async function statuses(nc: NatsConnection, timeoutMs = 30_000): Promise<Record<FaultPipeline, PStatus>> {
  const out = {} as Record<FaultPipeline, PStatus>;
  for (const p of FAULT_PIPELINES) out[p] = await waitFor(`the status of ${p}`, () => pstatus(nc, p), timeoutMs, 100);
  return out;
}

// ---- publishing --------------------------------------------------------------------------------

/** What each stream sequence holds: the pipeline its subject feeds and its events. */
export class Ledger {
  private readonly bySeq = new Map<number, { readers: FaultPipeline[]; events: number }>();
  add(seq: number, m: PMsg): void {
    this.bySeq.set(seq, { readers: m.readers, events: m.events });
  }
  /** Events `pipeline` reads in the stream sequences (from, to]. */
  eventsIn(pipeline: FaultPipeline, from: number, to: number): number {
    let n = 0;
    for (const [seq, m] of this.bySeq) if (seq > from && seq <= to && m.readers.includes(pipeline)) n += m.events;
    return n;
  }
  /** The highest stream sequence recorded. */
  get maxSeq(): number {
    let s = 0;
    for (const seq of this.bySeq.keys()) if (seq > s) s = seq;
    return s;
  }
  /** The last stream sequence of the messages `pipeline` reads (0: none). */
  lastSeq(pipeline: FaultPipeline): number {
    let s = 0;
    for (const [seq, m] of this.bySeq) if (m.readers.includes(pipeline) && seq > s) s = seq;
    return s;
  }
}

/**
 * Publishes messages strictly in order (the next once JetStream stored the previous one), at most
 * `perSecond` a second, each with Nats-Msg-Id `<prefix>:<index>`; a failed publish is retried
 * until stored (a retry of one that was stored is dropped by JetStream and answers its sequence),
 * so the stream holds the messages once each, in this order. Every sequence goes to the ledger.
 */
export class SeqPublisher {
  published = 0;
  retries = 0;
  private stopped = false;
  private readonly js: JetStreamClient;

  constructor(
    nc: NatsConnection,
    private readonly idPrefix: string,
    private readonly ledger: Ledger,
  ) {
    this.js = jetstream(nc, { timeout: 5000 });
  }

  stop(): void {
    this.stopped = true;
  }

  async publishOne(m: PMsg, id: string): Promise<number> {
    for (;;) {
      try {
        const ack = await this.js.publish(m.subject, m.body, { msgID: id });
        this.ledger.add(ack.seq, m);
        return ack.seq;
      } catch (err) {
        if (this.stopped) throw err;
        this.retries++;
        await sleep(250);
      }
    }
  }

  /** Publishes `messages` at most `perSecond` a second; with `gate`, message i waits until gate() > i. */
  async run(messages: readonly PMsg[], perSecond: number, gate: () => number = () => Infinity): Promise<void> {
    let next = Date.now();
    for (let i = 0; i < messages.length && !this.stopped; i++) {
      while (gate() <= i && !this.stopped) await sleep(20);
      const due = next - Date.now();
      if (due > 0) await sleep(due);
      next = Math.max(next, Date.now() - 1000) + 1000 / perSecond;
      await this.publishOne(messages[i], `${this.idPrefix}:${i}`);
      this.published++;
    }
  }
}

// ---- one round of faults -----------------------------------------------------------------------

export type CrashKind = 'random' | 'after-checkpoint' | 'flush-stuck' | 'record-stuck' | 'catching-up' | 'after-questdb-outage' | 'after-nats-outage';

export interface CrashRecord {
  kind: CrashKind;
  /** Per pipeline, before the kill: its last message processed and its last recorded checkpoint. */
  before: Partial<Record<FaultPipeline, { lastSeq: number; checkpointSeq: number }>>;
  /** Per pipeline, the checkpoint the next incarnation started from. */
  restoredFrom?: Record<FaultPipeline, number>;
}

export interface PRoundOptions {
  stack: Stack;
  /** The test's own connection (reconnects forever). */
  nc: NatsConnection;
  pool: pg.Pool;
  engine: EngineUnderTest;
  work: PipelinesWorkload;
  ledger: Ledger;
  seed: number;
  /** Messages per second. */
  perSecond: number;
  /** Also stop QuestDB and nats-server (the soak; SIGKILL instead of SIGTERM with hardStops). */
  outages?: boolean;
  hardStops?: boolean;
  idPrefix: string;
  log: (line: string) => void;
  /** How long to wait for the rows at the end (default 120 s). */
  settleMs?: number;
}

export interface PRoundReport {
  messages: number;
  /** Events published (a film_click once, though two pipelines read it). */
  published: number;
  /** Events each pipeline read. */
  events: Record<FaultPipeline, number>;
  corrections: PipelinesWorkload['corrections'];
  crashes: CrashRecord[];
  questdbOutages: number;
  natsOutages: number;
  publishRetries: number;
  diffs: Record<FaultPipeline, { rows: Diff; alerts: Diff }>;
  /** Per pipeline, the incarnation that finished the round: where it started and what it read. */
  last: Record<FaultPipeline, PStatus>;
  checks: Check[];
  seconds: number;
}

/**
 * One round: publishes the workload at a steady pace while the engine is killed (-9) and
 * restarted at these moments, in turn:
 *   1. at a random moment;
 *   2. right after a checkpoint (tutors' checkpoint count just moved);
 *   3. while a checkpoint waits for its flush: QuestDB is paused (SIGSTOP), the checkpoint then
 *      due takes its snapshot and blocks on the flush; the restart must start from the one before;
 *   4. while a checkpoint waits to be recorded: nats-server is paused (SIGSTOP) after the flush of
 *      the next checkpoint could start, so the KV write blocks (rows flushed, record not written);
 *   5. (outages) QuestDB stopped and started, then a kill 0-2 s after it is back;
 *   6. (outages) nats-server stopped and started on its data dir, then a kill 0-2 s after;
 *   7. 0-1 s after a restart, while the engine catches up.
 * Before each kill, every pipeline's current incarnation must have read exactly the events after
 * the checkpoint it started from (eventsThisRun against the ledger), from a checkpoint no older
 * than the last one recorded before the previous kill. Then the closers, and every row of the
 * five tables and of weir_alerts is compared with the oracle, and each pipeline's skip counter
 * (events without a tag its key needs: interactions) with the count of such events.
 */
export async function pipelineFaultRound(o: PRoundOptions): Promise<PRoundReport> {
  const t0 = Date.now();
  const rand = rng(o.seed);
  const { checks, check } = checkRecorder(o.log);
  const skippedSum = (st: PStatus) => Object.values(st.skipped ?? {}).reduce((a, b) => a + b, 0);
  // the soak's engine runs on from the round before: count this round's skips only
  const start = await statuses(o.nc);
  const skippedBefore = perPipeline((p) => skippedSum(start[p]));
  const { messages } = o.work;
  const n = messages.length;
  const pub = new SeqPublisher(o.nc, o.idPrefix, o.ledger);
  // The publisher stays at most one step ahead of the faults, so that every fault meets events in flight.
  let gate = 0;
  const allow = (fraction: number) => (gate = Math.max(gate, Math.ceil(fraction * n)));
  allow(0.3);
  const publishing = pub.run(messages, o.perSecond, () => gate);
  let publishError: unknown = null;
  publishing.catch((err) => (publishError = err));
  const until = async (fraction: number) =>
    waitFor(`${Math.round(fraction * 100)} % of the messages published`, async () => (publishError ? Promise.reject(publishError) : pub.published >= fraction * n ? true : undefined), 600_000, 50);
  const crashes: CrashRecord[] = [];
  let closerLive: { unsubscribe(): void } | undefined;
  const closerSeen: string[] = [];
  let questdbOutages = 0;
  let natsOutages = 0;
  /** Per pipeline, the last checkpoint known to be recorded: no later incarnation may start before it. */
  const floor = perPipeline(() => 0);

  /** The current incarnation read exactly what followed its checkpoint, which is no older than `floor`. */
  const checkIncarnation = async (st: Record<FaultPipeline, PStatus>, when: string) => {
    // a runner can read a message before its publisher has the ack with its sequence
    const upTo = Math.max(...FAULT_PIPELINES.map((p) => st[p].lastSeq));
    await waitFor(`the ledger to hold seq ${upTo}`, async () => (o.ledger.maxSeq >= upTo ? true : undefined), 30_000, 10);
    for (const p of FAULT_PIPELINES) {
      const s = st[p];
      const want = o.ledger.eventsIn(p, s.restoredFrom, s.lastSeq);
      const ok = s.restoreError === undefined && s.restoredFrom >= floor[p] && s.eventsThisRun === want && s.late === 0;
      check(
          `${p} ${when}: resumed from its checkpoint and read exactly the events after it`,
          ok,
          `restoredFrom ${s.restoredFrom} (last recorded before the kill ${floor[p]}), eventsThisRun ${s.eventsThisRun} (events after it up to seq ${s.lastSeq}: ${want}), late ${s.late}${s.restoreError ? `, restoreError ${s.restoreError}` : ''}`,
        );
    }
  };

  /** Checks the incarnation, kills it (-9) after `arm` (which may pause a server), lets `between` run, starts a new one. */
  const crash = async (kind: CrashKind, arm?: () => Promise<void>, between?: () => Promise<void>) => {
    const st = await statuses(o.nc);
    await checkIncarnation(st, `before the kill (${kind})`);
    const rec: CrashRecord = { kind, before: {} };
    for (const p of FAULT_PIPELINES) rec.before[p] = { lastSeq: st[p].lastSeq, checkpointSeq: st[p].checkpointSeq };
    if (arm) await arm();
    o.log(`kill -9 the engine (${kind}; ${pub.published}/${n} published)`);
    await o.engine.current.stop('SIGKILL');
    if (between) await between();
    for (const p of FAULT_PIPELINES) floor[p] = Math.max(floor[p], rec.before[p]!.checkpointSeq);
    await o.engine.crashAndRestart();
    const after = await statuses(o.nc);
    rec.restoredFrom = perPipeline((p) => after[p].restoredFrom);
    crashes.push(rec);
    return { rec, after };
  };

  const pause = (service: 'nats' | 'questdb', sig: 'SIGSTOP' | 'SIGCONT') => {
    const pid = o.stack.pids()[service];
    if (pid === undefined) throw new Error(`${service} is not running`);
    process.kill(pid, sig);
  };
  const questdbAnswers = () => waitFor('QuestDB to answer', async () => ((await o.pool.query('SELECT 1')).rows.length ? true : undefined), 60_000, 100);

  try {
    // 1. at a random moment
    await until(0.05 + rand() * 0.1);
    await sleep(rand() * 1000);
    await crash('random');
    allow(0.4);

    // 2. right after a checkpoint of tutors
    await until(0.25);
    {
      const c0 = (await pstatus(o.nc, 'tutors')).checkpoints;
      let just = 0;
      const { rec } = await crash('after-checkpoint', async () => {
        const s = await waitFor('a checkpoint of tutors', async () => {
          const x = await pstatus(o.nc, 'tutors');
          return x.checkpoints > c0 ? x : undefined;
        }, 30_000, 5);
        just = s.checkpointSeq;
      });
      allow(0.55);
      check('after-checkpoint: tutors restarts from the checkpoint written just before the kill (or a later one)', rec.restoredFrom!.tutors >= just && just > 0, `checkpoint ${just}, restoredFrom ${rec.restoredFrom!.tutors}`);
    }

    // 3. a checkpoint blocked on its flush (QuestDB paused)
    await until(0.4);
    {
      let s1 = {} as Record<FaultPipeline, PStatus>;
      let s2 = {} as Record<FaultPipeline, PStatus>;
      const { rec } = await crash(
        'flush-stuck',
        async () => {
          pause('questdb', 'SIGSTOP');
          await sleep(CHECKPOINT_INTERVAL_MS);
          s1 = await statuses(o.nc);
          await sleep(2 * CHECKPOINT_INTERVAL_MS);
          s2 = await statuses(o.nc);
        },
        async () => {
          pause('questdb', 'SIGCONT');
          await questdbAnswers();
        },
      );
      // A pipeline that had processed messages past its checkpoint (s1) and still shows that
      // checkpoint two intervals later (s2) has one in progress, blocked on the flush: nothing can
      // be recorded until the kill, so the restart must start from s2's checkpoint.
      let blocked = 0;
      for (const p of FAULT_PIPELINES) {
        if (!(s1[p].lastSeq > s1[p].checkpointSeq && s2[p].checkpointSeq === s1[p].checkpointSeq)) continue;
        blocked++;
        check(`flush-stuck: ${p}, killed with a checkpoint blocked on its flush, restarts from the one before`, rec.restoredFrom![p] === s2[p].checkpointSeq, `recorded ${s2[p].checkpointSeq}, processed up to ${s2[p].lastSeq}, restoredFrom ${rec.restoredFrom![p]}`);
      }
      allow(0.7);
      check('flush-stuck: at least one pipeline was killed with a checkpoint blocked on its flush', blocked > 0, FAULT_PIPELINES.map((p) => `${p} ${s1[p].checkpointSeq}/${s1[p].lastSeq} -> ${s2[p].checkpointSeq}/${s2[p].lastSeq}`).join(', '));
    }

    // 4. a checkpoint blocked on its record (nats-server paused once a runner is past its checkpoint)
    await until(0.55);
    {
      let s0 = {} as Record<FaultPipeline, PStatus>;
      const { rec } = await crash(
        'record-stuck',
        async () => {
          s0 = await waitFor('a runner with messages processed past its checkpoint', async () => {
            const st = await statuses(o.nc);
            return FAULT_PIPELINES.some((p) => st[p].lastSeq > st[p].checkpointSeq) ? st : undefined;
          }, 30_000, 20);
          // the checkpoint then due takes its snapshot, flushes (QuestDB is up) and blocks on the KV write
          pause('nats', 'SIGSTOP');
          await sleep(3 * CHECKPOINT_INTERVAL_MS);
        },
        async () => pause('nats', 'SIGCONT'),
      );
      allow(o.outages ? 0.75 : 0.9);
      for (const p of FAULT_PIPELINES) {
        if (!(s0[p].lastSeq > s0[p].checkpointSeq)) continue;
        const r = rec.restoredFrom![p];
        // the record never landed, or nats-server stored the write it had received before the kill once resumed
        check(`record-stuck: ${p}, killed with a checkpoint blocked on its KV write, restarts from a recorded one`, r >= s0[p].checkpointSeq, `recorded ${s0[p].checkpointSeq}, processed up to ${s0[p].lastSeq}, restoredFrom ${r} (${r === s0[p].checkpointSeq ? 'the blocked record never landed' : 'nats-server stored the blocked record when resumed'})`);
      }
    }

    if (o.outages) {
      const hard = o.hardStops ? 'SIGKILL' : 'SIGTERM';
      // 5. QuestDB away: runners keep reading, flushes and checkpoints fail; back: they catch up
      await until(0.65);
      o.log(`stopping QuestDB (${hard})`);
      await o.stack.stopQuestdb(hard);
      questdbOutages++;
      await sleep(1500 + rand() * 2000);
      const during = await statuses(o.nc);
      await o.stack.startQuestdb();
      o.log('QuestDB is back');
      await waitFor('a checkpoint after the QuestDB outage', async () => {
        const x = await pstatus(o.nc, 'tutors');
        return x.checkpoints > during.tutors.checkpoints ? true : undefined;
      }, 60_000, 100);
      await sleep(rand() * 2000);
      await crash('after-questdb-outage');
      allow(0.85);

      // 6. nats-server away: runners reconnect and position their consumers again
      await until(0.8);
      o.log(`stopping nats-server (${hard})`);
      await o.stack.stopNats(hard);
      natsOutages++;
      await sleep(500 + rand() * 2000);
      await o.stack.startNats();
      o.log('nats-server is back');
      await statuses(o.nc, 60_000);
      await sleep(rand() * 2000);
      await crash('after-nats-outage');
      allow(0.9);
    }

    // 7. twice while it catches up: 0-1 s after a restart
    await until(0.85);
    await crash('catching-up');
    allow(1);
    await sleep(rand() * 1000);
    await crash('catching-up');

    await publishing;
    closerLive = o.nc.subscribe(`weir.results.bridge_ops.bridge_ops.${o.work.prefix.replace(/[^A-Za-z0-9_:-]/g, '_')}closer`, {
      callback: (_e, m) => {
        closerSeen.push(`${new Date().toISOString().slice(11, 23)} ${m.string()}`);
      },
    });
    for (const [i, c] of o.work.closers.entries()) await pub.publishOne(c, `${o.idPrefix}:closer${i === 0 ? '' : i}`);
    o.log(`all ${n} messages and the closers published (${pub.retries} retried publishes); waiting for the rows`);
  } catch (err) {
    pub.stop();
    throw err;
  }

  // every runner has read its last message
  for (const p of FAULT_PIPELINES) {
    const lastSeq = o.ledger.lastSeq(p);
    await waitFor(`${p} to read up to seq ${lastSeq}`, async () => {
      const s = await pstatus(o.nc, p);
      return s.caughtUp && s.lastSeq >= lastSeq ? true : undefined;
    }, 120_000, 100);
  }
  const want = expected(o.work.events, o.work.prefix);
  const diffs = await awaitDiffs(o.pool, o.work.prefix, want, o.settleMs ?? 120_000);
  const last = await statuses(o.nc);
  await checkIncarnation(last, 'at the end');
  if (!FAULT_PIPELINES.every((p) => diffClean(diffs[p].rows) && diffClean(diffs[p].alerts))) {
    o.log(`QuestDB WAL state:\n${await walState(o.pool).catch((e: Error) => e.message)}`);
    for (const p of FAULT_PIPELINES) o.log(`status of ${p}: ${JSON.stringify(last[p])}`);
    o.log(`live results of the closer: ${closerSeen.length ? closerSeen.join('\n') : 'none'}`);
    const out = o.engine.current.output().split('\n');
    o.log(`engine output of the last incarnation (warnings, errors, pipeline lines):\n${out.filter((l) => !/"level":30/.test(l) || /pipeline/.test(l)).slice(-60).join('\n')}`);
  }
  closerLive?.unsubscribe();
  for (const p of FAULT_PIPELINES) {
    const { rows, alerts } = diffs[p];
    check(`${p}: rows equal the oracle`, diffClean(rows), `${rows.found}/${rows.expected} rows; lost ${rows.lost.length}, duplicated ${rows.duplicated.length}, wrong ${rows.wrong.length}, extra ${rows.extra.length}: ${[...rows.lost, ...rows.duplicated, ...rows.wrong, ...rows.extra].slice(0, 5).join('; ')}`);
    check(`${p}: weir_alerts equal the oracle`, diffClean(alerts), `${alerts.found}/${alerts.expected} transitions; lost ${alerts.lost.length}, duplicated ${alerts.duplicated.length}, wrong ${alerts.wrong.length}, extra ${alerts.extra.length}: ${[...alerts.lost, ...alerts.duplicated, ...alerts.wrong, ...alerts.extra].slice(0, 5).join('; ')}`);
    // skip counters live in the state: over all incarnations, each skipped event counted once
    const skipped = skippedSum(last[p]) - skippedBefore[p];
    const unkeyed = o.work.events[p].length - keyed(want[p].decl, o.work.events[p]).length;
    check(`${p}: skipped exactly the events without a key`, skipped === unkeyed, `skipped ${skipped} in this round (${JSON.stringify(last[p].skipped)} in all), events without a key ${unkeyed}`);
  }
  return {
    messages: n + o.work.closers.length,
    published: [...messages, ...o.work.closers].reduce((a, m) => a + m.events, 0),
    events: perPipeline((p) => o.work.events[p].length),
    corrections: o.work.corrections,
    crashes,
    questdbOutages,
    natsOutages,
    publishRetries: pub.retries,
    diffs,
    last,
    checks,
    seconds: (Date.now() - t0) / 1000,
  };
}
