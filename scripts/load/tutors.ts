/**
 * TutorMax (USE_CASES.md §4, config/pipelines/tutors.yaml): one session-completed event per
 * tutoring session, published as one event per measured field keyed by the tutor id:
 * tutor_session_rating (1-5, absent for a no-show), tutor_session_minutes (0 for a no-show) and
 * tutor_session_attended (1 or 0).
 *
 * - History: about 1.2 sessions per tutor and day over 100 days. tutor-07 has a bad spell (days
 *   40-59 rated 2.0-3.2, which low_rating reports); tutor-13 takes two weeks off.
 * - Bursts: many sessions of one tutor within a second (an enrichment pipeline catching up),
 *   which the debounce turns into one recalculation per tutor.
 */
import { DAY, SECOND, floorTo, int, iso, pick, poisson, publishOrder, rng, round, type LiveGenerator, type LoadEvent, type PipelineLoad, type Rand } from './common.js';

export const TUTOR_METRICS = ['tutor_session_rating', 'tutor_session_minutes', 'tutor_session_attended'] as const;

export const tutorId = (i: number): string => `tutor-${String(i + 1).padStart(2, '0')}`;

export interface TutorsHistoryOptions {
  seed: number;
  /** Tutors tutor-01 ... Default 20. */
  tutors?: number;
  /** Whole UTC days of sessions, the last one ending at the start of the UTC day of `end`. Default 100. */
  days?: number;
  /** Mean sessions per tutor and day. Default 1.2. */
  sessionsPerDay?: number;
  end: number;
}

/** Whether `tutor` is in a bad spell on day `d` (index from the first day). */
export const badSpell = (tutor: string, d: number): boolean => tutor === 'tutor-07' && d >= 40 && d < 60;

/** The events of one session at `ts`. */
function session(rand: Rand, tutor: string, ts: number, bad: boolean, out: LoadEvent[]): void {
  const attended = rand() < 0.9;
  if (attended) {
    const rating = bad ? 2 + rand() * 1.2 : tutor === 'tutor-07' ? 4.2 + rand() * 0.8 : 3.9 + rand() * 1.1;
    out.push({ metric: 'tutor_session_rating', key: tutor, ts, value: round(rating, 1) });
  }
  out.push({ metric: 'tutor_session_minutes', key: tutor, ts, value: attended ? int(rand, 25, 90) : 0 });
  out.push({ metric: 'tutor_session_attended', key: tutor, ts, value: attended ? 1 : 0 });
}

/**
 * `days` days of sessions before the UTC day of `end`, in publish order: day by day, and within
 * a day the ratings, then the minutes, then the attendance.
 */
export function tutorsHistory(o: TutorsHistoryOptions): LoadEvent[] {
  const rand = rng(o.seed);
  const days = o.days ?? 100;
  const first = floorTo(o.end, DAY) - days * DAY;
  const tutors = Array.from({ length: o.tutors ?? 20 }, (_, i) => tutorId(i));
  const out: LoadEvent[] = [];
  for (let d = 0; d < days; d++) {
    for (const tutor of tutors) {
      if (tutor === 'tutor-13' && d >= 60 && d < 74) continue;
      const n = poisson(rand, o.sessionsPerDay ?? 1.2);
      for (let i = 0; i < n; i++) session(rand, tutor, first + d * DAY + Math.floor(rand() * DAY), badSpell(tutor, d), out);
    }
  }
  return publishOrder(out, DAY, TUTOR_METRICS);
}

export interface TutorsBurstOptions {
  seed: number;
  tutors: readonly string[];
  /** Sessions per tutor. */
  sessions: number;
  /** The burst's sessions have event times in [at - 1 s, at) (at itself just after midnight), within the UTC day of `at`. */
  at: number;
}

/** A burst: `sessions` sessions of each tutor within one second before `at` (all in the UTC day of `at`). */
export function tutorsBurst(o: TutorsBurstOptions): LoadEvent[] {
  const rand = rng(o.seed);
  const lo = Math.max(floorTo(o.at, DAY), o.at - SECOND);
  const out: LoadEvent[] = [];
  for (const tutor of o.tutors) for (let i = 0; i < o.sessions; i++) session(rand, tutor, lo + Math.floor(rand() * Math.max(1, o.at - lo)), false, out);
  return publishOrder(out, DAY, TUTOR_METRICS);
}

/** Live: sessions of 50 tutors now; one in five ticks a random tutor has a burst of 5-15 sessions. */
export function tutorsLive(seed: number, tutorsCount = 50): LiveGenerator {
  const rand = rng(seed);
  const tutors = Array.from({ length: tutorsCount }, (_, i) => tutorId(i));
  return {
    next(now, count) {
      const out: LoadEvent[] = [];
      if (rand() < 0.2) {
        const tutor = pick(rand, tutors);
        for (let i = int(rand, 5, 15); i > 0; i--) session(rand, tutor, now, false, out);
      }
      while (out.length < count) session(rand, pick(rand, tutors), now, false, out);
      return publishOrder(out, DAY, TUTOR_METRICS);
    },
  };
}

export const tutors: PipelineLoad = {
  pipeline: 'tutors',
  metrics: TUTOR_METRICS,
  summary: '20 tutors: 100 days of sessions, then live sessions of 50 tutors with bursts (rolling 7/30/90 d, debounce)',
  history: (seed, end) => tutorsHistory({ seed, end }),
  live: (seed) => tutorsLive(seed),
  examples: (now) => [
    '/v1/latest?pipeline=tutors&key=tutor-07',
    '/v1/top?pipeline=tutors&window=7d&by=rating&order=asc&k=10',
    `/v1/series?pipeline=tutors&key=tutor-07&window=7d&from=${iso(now - 30 * DAY)}&to=${iso(now)}`,
  ],
};
