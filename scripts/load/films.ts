/**
 * Cinegraph film scores (USE_CASES.md §1, config/pipelines/films.yaml): external metrics per film
 * from several sources, then a random sequence of updates.
 *
 * - Each film first gets its ratings (imdb 0..10, metacritic and rotten tomatoes 0..100), some
 *   festival wins and nominations (one event of value 1 each) and a popularity index
 *   (log-normal, heavy-tailed up to ~1e6). Some films lack a source (no metacritic, no rt, ...).
 * - Then updates in random order: rating revisions, popularity moves, new awards, user clicks
 *   (value 1, more for popular films).
 * - A few updates carry an older timestamp than the film's current value of that metric (a
 *   source re-sending a stale snapshot), and a few share the timestamp of the current value with
 *   another value: `last` keeps the value of the largest ts, ties to the larger value.
 */
import { DAY, MINUTE, int, normal, pick, publishOrder, rng, round, type LiveGenerator, type LoadEvent, type PipelineLoad, type Rand } from './common.js';

export const FILM_METRICS = ['film_imdb_rating', 'film_metacritic', 'film_rt_score', 'film_award_win', 'film_award_nom', 'film_popularity', 'film_click'] as const;

export interface FilmsOptions {
  seed: number;
  /** Number of films (ids film-0001 ...). Default 300. */
  films?: number;
  /** Updates after the initial values. Default 3000. */
  updates?: number;
  /** Clicks (value 1 each). Default 4000. */
  clicks?: number;
  /** Event times lie in [start, end). */
  start: number;
  end: number;
}

export const filmId = (i: number): string => `film-${String(i + 1).padStart(4, '0')}`;

interface Film {
  id: string;
  quality: number;
  popularity: number;
}

function makeFilms(rand: Rand, n: number): Film[] {
  return Array.from({ length: n }, (_, i) => ({
    id: filmId(i),
    quality: Math.min(1, Math.max(0, 0.55 + 0.2 * normal(rand))),
    popularity: Math.min(2_000_000, Math.exp(7 + 2.2 * normal(rand))),
  }));
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

function ratingEvent(rand: Rand, f: Film, metric: string, ts: number): LoadEvent {
  const q = clamp(f.quality + 0.08 * normal(rand), 0, 1);
  const value = metric === 'film_imdb_rating' ? round(q * 10, 1) : Math.round(q * 100);
  return { metric, key: f.id, ts, value };
}

function popularityEvent(rand: Rand, f: Film, ts: number): LoadEvent {
  f.popularity = clamp(f.popularity * Math.exp(0.3 * normal(rand)), 1, 5_000_000);
  return { metric: 'film_popularity', key: f.id, ts, value: round(f.popularity, 1) };
}

/** The initial values and `updates` + `clicks` further events, in publish order. */
export function filmsEvents(o: FilmsOptions): LoadEvent[] {
  const rand = rng(o.seed);
  const films = makeFilms(rand, o.films ?? 300);
  const updates = o.updates ?? 3000;
  const clicks = o.clicks ?? 4000;
  const span = o.end - o.start;
  if (!(span > 0)) throw new Error(`films: end (${o.end}) must be after start (${o.start})`);
  const out: LoadEvent[] = [];
  // newest ts per (film, metric), for stale and tied updates
  const newest = new Map<string, number>();
  const at = (frac: number) => o.start + Math.floor(frac * span);
  const push = (e: LoadEvent) => {
    out.push(e);
    const id = `${e.key}|${e.metric}`;
    if ((newest.get(id) ?? -Infinity) < e.ts) newest.set(id, e.ts);
  };
  // Initial values within the first 10 % of the span.
  for (const f of films) {
    for (const m of ['film_imdb_rating', 'film_metacritic', 'film_rt_score']) if (rand() < 0.9) push(ratingEvent(rand, f, m, at(rand() * 0.1)));
    push(popularityEvent(rand, f, at(rand() * 0.1)));
    const wins = f.quality > 0.7 ? int(rand, 0, 6) : rand() < 0.1 ? 1 : 0;
    for (let i = 0; i < wins; i++) push({ metric: 'film_award_win', key: f.id, ts: at(rand() * 0.1), value: 1 });
    const noms = f.quality > 0.6 ? int(rand, 0, 12) : int(rand, 0, 1);
    for (let i = 0; i < noms; i++) push({ metric: 'film_award_nom', key: f.id, ts: at(rand() * 0.1), value: 1 });
  }
  for (let i = 0; i < updates; i++) {
    const f = pick(rand, films);
    const r = rand();
    let e: LoadEvent;
    if (r < 0.3) e = ratingEvent(rand, f, pick(rand, ['film_imdb_rating', 'film_metacritic', 'film_rt_score']), 0);
    else if (r < 0.8) e = popularityEvent(rand, f, 0);
    else e = { metric: rand() < 0.3 ? 'film_award_win' : 'film_award_nom', key: f.id, ts: 0, value: 1 };
    e.ts = at(0.1 + 0.9 * ((i + rand()) / updates));
    const prev = newest.get(`${e.key}|${e.metric}`);
    const oddity = rand();
    if (prev !== undefined && e.metric !== 'film_award_win' && e.metric !== 'film_award_nom') {
      if (oddity < 0.04) e.ts = Math.max(o.start, prev - int(rand, 1, 60_000)); // stale snapshot
      else if (oddity < 0.07) e.ts = prev; // same timestamp, another value
    }
    push(e);
  }
  // Clicks follow popularity (a few films get most of them).
  const weights = films.map((f) => Math.sqrt(f.popularity));
  const total = weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < clicks; i++) {
    let x = rand() * total;
    let j = 0;
    while (j < films.length - 1 && x >= weights[j]) x -= weights[j++];
    push({ metric: 'film_click', key: films[j].id, ts: at(rand()), value: 1 });
  }
  // One run per metric and UTC day (film_click also feeds film_trending's daily windows).
  return publishOrder(out, DAY, FILM_METRICS);
}

/** Live: random updates and clicks of `films` films, now. */
export function filmsLive(seed: number, filmsCount = 300): LiveGenerator {
  const rand = rng(seed);
  const films = makeFilms(rand, filmsCount);
  return {
    next(now, count) {
      const out: LoadEvent[] = [];
      for (let i = 0; i < count; i++) {
        const f = pick(rand, films);
        const r = rand();
        if (r < 0.6) out.push({ metric: 'film_click', key: f.id, ts: now, value: 1 });
        else if (r < 0.8) out.push(popularityEvent(rand, f, now));
        else if (r < 0.95) out.push(ratingEvent(rand, f, pick(rand, ['film_imdb_rating', 'film_metacritic', 'film_rt_score']), now));
        else out.push({ metric: rand() < 0.3 ? 'film_award_win' : 'film_award_nom', key: f.id, ts: now, value: 1 });
      }
      return publishOrder(out, DAY, FILM_METRICS);
    },
  };
}

export const films: PipelineLoad = {
  pipeline: 'films',
  metrics: FILM_METRICS,
  summary: '300 films: ratings, awards, popularity, then live updates and clicks (top-K per profile)',
  history: (seed, end) => filmsEvents({ seed, start: end - 10 * MINUTE, end }),
  live: (seed) => filmsLive(seed),
  examples: () => [
    '/v1/top?pipeline=films&window=global&by=balanced&k=25',
    '/v1/top?pipeline=films&window=global&by=critics&k=25',
    '/v1/latest?pipeline=films&key=film-0001',
  ],
};
