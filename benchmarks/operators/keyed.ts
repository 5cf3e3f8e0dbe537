/**
 * Keyed operators on one thread: debounce per key, incremental scores with top-K per profile,
 * window-over-window trends, alert rules; each against a baseline measured in the same run, and
 * bytes of state per key (heap delta after GC).
 *
 * `npx tsx benchmarks/operators.ts keyed`
 */
import { Subject } from 'rxjs';
import { rng } from '../producer.js';
import { collectGarbage, perSecond } from '../timing.js';
import { AlertEvaluator } from '../../operators/alerts/evaluator.js';
import type { AlertRule } from '../../operators/alerts/machine.js';
import { debounceByKey, KeyedDebounce } from '../../operators/keyed/debounceByKey.js';
import { compareRanked } from '../../operators/scores/ranking.js';
import { ScoreBoard, type ScoreSpec } from '../../operators/scores/scoreboard.js';
import { TrendTracker } from '../../operators/trend/trend.js';

type Say = (line: string) => void;

/** Bytes (JS heap plus typed-array buffers) retained by what `build` returns, per unit; `dispose` then releases it (timers). */
function bytesPer<T>(units: number, build: () => T, dispose?: (kept: T) => void): number {
  const used = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  collectGarbage();
  const before = used();
  const kept = build();
  collectGarbage();
  const after = used();
  dispose?.(kept);
  return (after - before) / units;
}

const fmt = (x: number) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toPrecision(3));

const KEYS = 100_000;
const keyNames = Array.from({ length: KEYS }, (_, i) => `key-${i}`);

function debounce(say: Say): void {
  const N = 1_000_000;
  const rand = rng(1);
  const keys = Array.from({ length: N }, () => keyNames[Math.floor(rand() * KEYS)]);
  // event time advances 1 ms per 100 events: each key sees an event about every second, so with
  // wait 2 s its events coalesce into bursts cut by maxWait 30 s
  let t = 0;
  let emitted = 0;
  const gate = new KeyedDebounce<number>({ waitMs: 2_000, maxWaitMs: 30_000 });
  const emit = () => void emitted++;
  const machine = perSecond(N, () => {
    for (let i = 0; i < N; i++) gate.offer((t += 0.01), keys[i], i, emit);
  });
  say(`debounceByKey state machine, ${fmt(KEYS)} keys, wait 2 s, maxWait 30 s: ${fmt(machine)} events/s (${fmt(emitted)} emissions for ${fmt(4 * N)} events)`);

  // the RxJS operator on the async scheduler: timers fire after the synchronous burst
  const src = new Subject<{ key: string; i: number }>();
  const sub = src.pipe(debounceByKey((e) => e.key, { waitMs: 60_000 })).subscribe(() => emitted++);
  const events = keys.map((key, i) => ({ key, i }));
  const operator = perSecond(N, () => {
    for (let i = 0; i < N; i++) src.next(events[i]);
  });
  sub.unsubscribe();

  // baseline: what teams hand-build, one lodash-style timer per key (clearTimeout + setTimeout)
  const timers = new Map<string, NodeJS.Timeout>();
  const fire = () => void emitted++;
  const naive = perSecond(N, () => {
    for (let i = 0; i < N; i++) {
      const k = keys[i];
      const old = timers.get(k);
      if (old) clearTimeout(old);
      timers.set(k, setTimeout(fire, 60_000));
    }
  });
  for (const tm of timers.values()) clearTimeout(tm);
  timers.clear();
  say(`debounceByKey RxJS operator (async scheduler, no deadline due during the run): ${fmt(operator)} events/s; baseline setTimeout per key: ${fmt(naive)} events/s (x${(operator / naive).toFixed(1)})`);

  const perKey = bytesPer(KEYS, () => {
    const g = new KeyedDebounce<number>({ waitMs: 2_000 });
    for (let i = 0; i < KEYS; i++) g.offer(0, keyNames[i], i, emit);
    return g;
  });
  const perTimer = bytesPer(
    KEYS,
    () => {
      const m = new Map<string, NodeJS.Timeout>();
      for (let i = 0; i < KEYS; i++) m.set(keyNames[i], setTimeout(fire, 60_000));
      return m;
    },
    (m) => {
      for (const tm of m.values()) clearTimeout(tm);
    },
  );
  say(`debounce state: ${fmt(perKey)} B per waiting key (setTimeout per key: ${fmt(perTimer)} B); idle keys hold nothing`);
}

const FILMS: ScoreSpec = {
  normalise: {
    imdb: { minmax: { min: 0, max: 10 } },
    metacritic: { minmax: { min: 0, max: 100 } },
    rt: { minmax: { min: 0, max: 100 } },
    wins: { capped: { cap: 10 } },
    noms: { capped: { cap: 25 } },
    popularity: { log: { max: 1_000_000 } },
    clicks: { log: { max: 100_000 } },
  },
  components: {
    popular_opinion: { imdb: 0.6, popularity: 0.4 },
    critical_acclaim: { metacritic: 0.5, rt: 0.5 },
    industry_recognition: { wins: 0.7, noms: 0.3 },
    cultural_impact: { popularity: 0.5, clicks: 0.5 },
  },
  profiles: {
    balanced: { popular_opinion: 0.25, critical_acclaim: 0.25, industry_recognition: 0.25, cultural_impact: 0.25 },
    critics: { critical_acclaim: 0.6, industry_recognition: 0.4 },
    crowd: { popular_opinion: 0.6, cultural_impact: 0.4 },
  },
  topK: 25,
};
const METRICS = ['imdb', 'metacritic', 'rt', 'wins', 'noms', 'popularity', 'clicks'];

function randomMetric(rand: () => number, m: string): number {
  switch (m) {
    case 'imdb':
      return Math.round(rand() * 100) / 10;
    case 'metacritic':
    case 'rt':
      return Math.floor(rand() * 101);
    case 'wins':
      return Math.floor(rand() * rand() * 15);
    case 'noms':
      return Math.floor(rand() * rand() * 40);
    case 'popularity':
      return Math.floor(Math.exp(rand() * 14));
    default:
      return Math.floor(Math.exp(rand() * 11));
  }
}

/** 100k films with every metric, loaded in one batch (rankings built once). */
function fillBoard(spec: ScoreSpec, rand: () => number, batched = true): ScoreBoard {
  const board = new ScoreBoard(spec);
  const load = () => {
    for (let i = 0; i < KEYS; i++) for (const m of METRICS) board.set(keyNames[i], m, randomMetric(rand, m));
  };
  if (batched) board.batch(load);
  else load();
  return board;
}

/** The best k of `scores` (score desc, id asc) by one pass with a sorted buffer of k. */
function topByScan(scores: Float64Array, ids: readonly string[], k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    if (best.length === k) {
      const w = best[k - 1];
      if (s < scores[w] || (s === scores[w] && ids[i] > ids[w])) continue;
      best.pop();
    }
    let j = best.length;
    while (j > 0 && (scores[best[j - 1]] < s || (scores[best[j - 1]] === s && ids[best[j - 1]] > ids[i]))) j--;
    best.splice(j, 0, i);
  }
  return best;
}

function scores(say: Say): void {
  const rand = rng(2);
  let t0 = performance.now();
  const board = fillBoard(FILMS, rand);
  const fillMs = performance.now() - t0;
  t0 = performance.now();
  fillBoard(FILMS, rng(2), false);
  const unbatchedMs = performance.now() - t0;
  const N = 200_000;
  const updates = Array.from({ length: N }, () => {
    const m = METRICS[Math.floor(rand() * METRICS.length)];
    return { e: keyNames[Math.floor(rand() * KEYS)], m, v: randomMetric(rand, m) };
  });
  const profiles = board.profileNames;
  const incremental = perSecond(N, () => {
    for (const u of updates) board.set(u.e, u.m, u.v);
  });
  const Q = 20_000;
  const query = perSecond(Q, () => {
    for (let i = 0; i < Q; i++) board.topK(profiles[i % 3], 25);
  });

  // baseline: the same update, then every profile's top 25 by a full sort of all totals
  const B = 6;
  const ids = keyNames;
  const baseline = perSecond(
    B,
    () => {
      for (let i = 0; i < B; i++) {
        const u = updates[i];
        board.set(u.e, u.m, u.v);
        for (const p of profiles) {
          const all = ids.map((id) => ({ id, score: board.score(id, p)! }));
          all.sort(compareRanked).slice(0, 25);
        }
      }
    },
    1,
  );
  // stronger baseline: totals kept in arrays, top 25 of each profile by one scan with a small buffer
  const totals = profiles.map((p) => Float64Array.from(ids, (id) => board.score(id, p)!));
  const index = new Map(ids.map((id, i) => [id, i]));
  const S = 200;
  const scan = perSecond(S, () => {
    for (let i = 0; i < S; i++) {
      const u = updates[i];
      board.set(u.e, u.m, u.v);
      const at = index.get(u.e)!;
      profiles.forEach((p, pi) => {
        totals[pi][at] = board.score(u.e, p)!;
        topByScan(totals[pi], ids, 25);
      });
    }
  });
  say(
    `ScoreBoard, ${fmt(KEYS)} films x 7 metrics, 3 profiles (static normalisers): ${fmt(incremental)} updates/s with top-K kept for every profile; ` +
      `baselines per update: full sort per profile ${fmt(baseline)} updates/s (x${fmt(incremental / baseline)}), one top-25 scan per profile ${fmt(scan)} updates/s (x${fmt(incremental / scan)})`,
  );
  say(`ScoreBoard load of ${fmt(KEYS * 7)} values: ${fmt(fillMs)} ms in one batch(), ${fmt(unbatchedMs)} ms one set() at a time`);
  say(`ScoreBoard topK(profile, 25): ${fmt(1e6 / query)} us per query (${fmt(query)} queries/s)`);

  // a profile on a running normaliser (zscore): updates mark it stale, the next topK recomputes it
  const running = fillBoard({ ...FILMS, normalise: { ...FILMS.normalise, clicks: { zscore: {} } } }, rng(3));
  running.topK('crowd', 25);
  const R = 5;
  let bump = 0;
  const rebuild = perSecond(
    R,
    () => {
      for (let i = 0; i < R; i++) {
        running.set(updates[i].e, 'clicks', 1_000_000 + bump++);
        if (!running.isStale('crowd')) throw new Error('expected a stale profile');
        running.topK('crowd', 25);
      }
    },
    1,
  );
  const staleUpdates = perSecond(N, () => {
    for (const u of updates) running.set(u.e, u.m, u.v);
  });
  say(`ScoreBoard with a zscore metric: ${fmt(staleUpdates)} updates/s; topK after such an update recomputes the profile: ${fmt(1000 / rebuild)} ms`);

  const perEntity = bytesPer(KEYS, () => fillBoard(FILMS, rng(4)));
  say(`ScoreBoard state: ${fmt(perEntity)} B per film (7 metrics raw + normalised, 4 components, 3 totals, 3 rankings, id map)`);
}

function trend(say: Say): void {
  const DAY = 86_400_000;
  const rand = rng(5);
  const tracker = new TrendTracker({ periodMs: DAY, threshold: 0.05 });
  for (let i = 0; i < KEYS; i++) tracker.update(keyNames[i], 0, 1 + Math.floor(rand() * 1000));
  const N = 500_000;
  const rows = Array.from({ length: N }, () => ({ k: keyNames[Math.floor(rand() * KEYS)], v: Math.floor(rand() * 1000) }));
  let day = 1;
  // each round is one new day: every update is a partial of today's count, ranked among movers
  const rate = perSecond(N, () => {
    const start = day++ * DAY;
    for (const r of rows) tracker.update(r.k, start, r.v);
  });
  const Q = 20_000;
  const movers = perSecond(Q, () => {
    for (let i = 0; i < Q; i++) tracker.movers(25);
  });
  // baseline: recompute every key's change and sort, per query
  const latest = tracker.latestStart;
  const B = 5;
  const naive = perSecond(
    B,
    () => {
      for (let i = 0; i < B; i++) {
        const all = keyNames.map((k) => tracker.get(k)!).filter((t) => t.start === latest && t.pct !== null);
        all.sort((a, b) => b.pct! - a.pct!).slice(0, 25);
        all.sort((a, b) => a.pct! - b.pct!).slice(0, 25);
      }
    },
    1,
  );
  say(`TrendTracker, ${fmt(KEYS)} keys, daily windows: ${fmt(rate)} updates/s with movers kept; movers(25): ${fmt(1e6 / movers)} us vs ${fmt(1000 / naive)} ms by a scan and sort`);
  const perKey = bytesPer(KEYS, () => {
    const t = new TrendTracker({ periodMs: DAY });
    for (let i = 0; i < KEYS; i++) {
      t.update(keyNames[i], 0, i);
      t.update(keyNames[i], DAY, i + (i % 7) - 3);
    }
    return t;
  });
  say(`TrendTracker state: ${fmt(perKey)} B per key (two windows, ranked)`);
}

function alerts(say: Say): void {
  const rules: AlertRule[] = [
    { name: 'error_rate_high', field: 'error_rate', op: '>', threshold: 0.05, resolve: 0.04, forMs: 20_000, severity: 'critical' },
    { name: 'read_p95_slow', field: 'read_p95', op: '>', threshold: 10_000, resolve: 8_000, severity: 'warning' },
    { name: 'cache_hit_low', field: 'cache_hit_rate', op: '<', threshold: 0.8, resolve: 0.85, severity: 'info' },
  ];
  const ev = new AlertEvaluator(rules);
  const rand = rng(6);
  const N = 300_000;
  const rows = Array.from({ length: N }, () => ({
    key: keyNames[Math.floor(rand() * KEYS)],
    ts: 0,
    values: { error_rate: rand() * 0.06, read_p95: 5_000 + rand() * 6_000, cache_hit_rate: 0.75 + rand() * 0.25 },
  }));
  let ts = 0;
  let transitions = 0;
  const emit = () => void transitions++;
  const rate = perSecond(N, () => {
    for (const r of rows) {
      r.ts = ts += 1;
      ev.observe(r, emit);
    }
  });
  say(`AlertEvaluator, 3 rules x ${fmt(KEYS)} keys: ${fmt(rate)} rows/s (${fmt(rate * 3)} rule evaluations/s), ${fmt(ev.size)} alerts pending or firing`);
  const perAlert = bytesPer(KEYS, () => {
    const e = new AlertEvaluator([rules[1]]);
    for (let i = 0; i < KEYS; i++) e.observeValue('read_p95_slow', keyNames[i], 0, 20_000);
    return e;
  });
  say(`alert state: ${fmt(perAlert)} B per firing (rule, key); keys in the ok state hold nothing`);
}

export async function run(say: Say): Promise<void> {
  debounce(say);
  scores(say);
  trend(say);
  alerts(say);
}
