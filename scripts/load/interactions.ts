/**
 * GoodBooks recommendation analytics (USE_CASES.md §3, config/pipelines/interactions.yaml): each
 * recommendation shown (rec_shown), clicked (rec_clicked, a few seconds later) and converted
 * (rec_converted, later still), keyed by the book, tagged with the model variant, the
 * recommendation source, the user and the position.
 *
 * - Variant B clicks a little better than A.
 * - For six minutes variant B on the home page breaks: its click-through rate drops to ~0.2 %,
 *   which ctr_drop (< 2 % held 3 min) reports, and resolves once it recovers.
 * - About 2 % of events lack the source tag (an old client): the pipeline skips them.
 */
import { MINUTE, SECOND, floorTo, int, pick, poisson, publishOrder, rng, type LiveGenerator, type LoadEvent, type PipelineLoad, type Rand } from './common.js';

export const INTERACTION_METRICS = ['rec_shown', 'rec_clicked', 'rec_converted'] as const;
export const VARIANTS = ['A', 'B'] as const;
export const SOURCES = ['home', 'search', 'similar'] as const;

export interface InteractionsOptions {
  seed: number;
  /** Whole minutes of traffic, the last one ending at `end` rounded down to the minute. Default 12. */
  minutes?: number;
  /** Mean recommendations shown per (variant, source) and minute. Default 80. */
  shown?: number;
  /** Distinct users. Default 400. */
  users?: number;
  end: number;
}

/** Click probability of a recommendation shown; `broken` is B|home during the drop. */
const clickRate = (variant: string, broken: boolean) => (broken ? 0.002 : variant === 'B' ? 0.1 : 0.08);

/** Minutes (index from the first one) in which B|home is broken. */
export const dropMinutes = (m: number): boolean => m >= 3 && m <= 8;

function shownEvents(rand: Rand, variant: string, source: string, ts: number, users: number, broken: boolean, until: number, out: LoadEvent[]): void {
  const user = `u${String(int(rand, 1, users)).padStart(4, '0')}`;
  const book = `book-${int(rand, 1, 500)}`;
  const tags = (): Record<string, string> => {
    const t: Record<string, string> = { variant, user, position: String(int(rand, 1, 10)) };
    if (rand() >= 0.02) t.source = source;
    return t;
  };
  out.push({ metric: 'rec_shown', key: book, ts, value: 1, tags: tags() });
  if (rand() >= clickRate(variant, broken)) return;
  const clickTs = ts + int(rand, 1, 20) * SECOND;
  if (clickTs >= until) return;
  out.push({ metric: 'rec_clicked', key: book, ts: clickTs, value: 1, tags: tags() });
  if (rand() >= 0.2) return;
  const convTs = clickTs + int(rand, 5, 60) * SECOND;
  if (convTs >= until) return;
  out.push({ metric: 'rec_converted', key: book, ts: convTs, value: 1, tags: tags() });
}

/** `minutes` minutes of interactions ending at `end` (rounded down to the minute), in publish order. */
export function interactionsEvents(o: InteractionsOptions): LoadEvent[] {
  const rand = rng(o.seed);
  const minutes = o.minutes ?? 12;
  const until = floorTo(o.end, MINUTE);
  const first = until - minutes * MINUTE;
  const out: LoadEvent[] = [];
  for (let m = 0; m < minutes; m++) {
    for (const variant of VARIANTS)
      for (const source of SOURCES) {
        const n = poisson(rand, o.shown ?? 80);
        const broken = variant === 'B' && source === 'home' && dropMinutes(m);
        for (let i = 0; i < n; i++) shownEvents(rand, variant, source, first + m * MINUTE + Math.floor(rand() * MINUTE), o.users ?? 400, broken, until, out);
      }
  }
  out.sort((a, b) => a.ts - b.ts);
  return publishOrder(out, MINUTE, INTERACTION_METRICS);
}

/** Live: recommendations shown now (with their clicks and conversions a little later, never in the future); B|home breaks from 4:00 to 10:00 of every 12 minutes. */
export function interactionsLive(seed: number): LiveGenerator {
  const rand = rng(seed);
  const pending: LoadEvent[] = [];
  return {
    next(now, count) {
      const broken = floorTo(now, 12 * MINUTE) + 4 * MINUTE <= now && now < floorTo(now, 12 * MINUTE) + 10 * MINUTE;
      const made: LoadEvent[] = [];
      for (let i = 0; made.length < count && i < count; i++) {
        const variant = pick(rand, VARIANTS);
        const source = pick(rand, SOURCES);
        shownEvents(rand, variant, source, now, 2000, broken && variant === 'B' && source === 'home', Infinity, made);
      }
      // clicks and conversions lie in the future: hold them until their time comes
      const out: LoadEvent[] = [];
      for (const e of made) (e.ts <= now ? out : pending).push(e);
      pending.sort((a, b) => a.ts - b.ts);
      while (pending.length && pending[0].ts <= now) out.push(pending.shift()!);
      return publishOrder(out, MINUTE, INTERACTION_METRICS);
    },
  };
}

export const interactions: PipelineLoad = {
  pipeline: 'interactions',
  metrics: INTERACTION_METRICS,
  summary: 'recommendations shown/clicked/converted per variant (A, B) and source; B|home CTR drops 4:00-10:00 of every 12 min (ctr_drop alert)',
  history: () => [],
  live: (seed) => interactionsLive(seed),
  examples: () => [
    '/v1/latest?pipeline=interactions&key=B%7Chome',
    '/v1/top?pipeline=interactions&window=1m&by=ctr&k=6&scope=final',
  ],
};
