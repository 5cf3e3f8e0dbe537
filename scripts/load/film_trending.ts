/**
 * Cinegraph trending (USE_CASES.md §1, config/pipelines/film_trending.yaml): clicks per film per
 * UTC day. Each film has a base popularity and a daily trajectory: most drift a little, some rise
 * or fall steeply (the movers), some have days without a click (no previous day to compare with),
 * and a few new films only appear on the last day.
 */
import { DAY, floorTo, iso, normal, poisson, publishOrder, rng, type LiveGenerator, type LoadEvent, type PipelineLoad, type Rand } from './common.js';
import { filmId } from './films.js';

export const TRENDING_METRICS = ['film_click'] as const;

export interface TrendingOptions {
  seed: number;
  /** Films (ids film-0001 ..., the same ids as the films pipeline). Default 60. */
  films?: number;
  /** Whole UTC days of clicks, the last one ending at the start of the UTC day of `end`. Default 8. */
  days?: number;
  /** Mean clicks per film and day. Default 20. */
  meanClicks?: number;
  end: number;
}

interface Trajectory {
  id: string;
  level: number;
  /** Log-growth per day. */
  drift: number;
  /** First day (index) with clicks. */
  born: number;
}

function trajectories(rand: Rand, n: number, days: number, mean: number): Trajectory[] {
  return Array.from({ length: n }, (_, i) => {
    const kind = rand();
    const drift = kind < 0.15 ? 0.2 + rand() * 0.3 : kind < 0.3 ? -(0.2 + rand() * 0.3) : 0.1 * normal(rand);
    return { id: filmId(i), level: Math.min(4 * mean, mean * Math.exp(0.6 * normal(rand))), drift, born: rand() < 0.08 ? days - 1 : 0 };
  });
}

/** Clicks (value 1) per film over `days` whole days before the day of `end`, in time order. */
export function trendingEvents(o: TrendingOptions): LoadEvent[] {
  const rand = rng(o.seed);
  const days = o.days ?? 8;
  const first = floorTo(o.end, DAY) - days * DAY;
  const films = trajectories(rand, o.films ?? 60, days, o.meanClicks ?? 20);
  const out: LoadEvent[] = [];
  for (let d = 0; d < days; d++) {
    const day: LoadEvent[] = [];
    for (const f of films) {
      if (d < f.born) continue;
      // a film now and then has a day without clicks
      if (rand() < 0.05) continue;
      const n = poisson(rand, f.level * Math.exp(f.drift * (d - days / 2)));
      for (let i = 0; i < n; i++) day.push({ metric: 'film_click', key: f.id, ts: first + d * DAY + Math.floor(rand() * DAY), value: 1 });
    }
    day.sort((a, b) => a.ts - b.ts);
    out.push(...day);
  }
  return out;
}

/** Live: clicks now, films weighted by a level that drifts over the hours. */
export function trendingLive(seed: number, filmsCount = 60): LiveGenerator {
  const rand = rng(seed);
  const films = trajectories(rand, filmsCount, 8, 20);
  return {
    next(now, count) {
      const hours = now / 3_600_000;
      const weights = films.map((f) => f.level * Math.exp(f.drift * Math.sin(hours / 6 + f.level)));
      const total = weights.reduce((a, b) => a + b, 0);
      const out: LoadEvent[] = [];
      for (let i = 0; i < count; i++) {
        let x = rand() * total;
        let j = 0;
        while (j < films.length - 1 && x >= weights[j]) x -= weights[j++];
        out.push({ metric: 'film_click', key: films[j].id, ts: now, value: 1 });
      }
      return out;
    },
  };
}

export const filmTrending: PipelineLoad = {
  pipeline: 'film_trending',
  metrics: TRENDING_METRICS,
  summary: '60 films: 7 days of clicks before today, then live clicks (daily change, top movers)',
  history: (seed, end) => publishOrder(trendingEvents({ seed, end, days: 7 }), DAY, TRENDING_METRICS),
  live: (seed) => trendingLive(seed),
  examples: (now) => [
    '/v1/top?pipeline=film_trending&window=1d&by=trend_pct&order=desc&k=10',
    '/v1/top?pipeline=film_trending&window=1d&by=trend_pct&order=asc&k=10',
    `/v1/series?pipeline=film_trending&key=film-0001&window=1d&from=${iso(now - 8 * DAY)}&to=${iso(now)}`,
  ],
};
