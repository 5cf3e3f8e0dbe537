/**
 * PipelineRuntime's score stage on a global pipeline against a recomputation written from the
 * normaliser definitions (operators/scores/normalise.ts header, docs/pipelines.md "Score"):
 * every row's component and profile columns, and `topProfile` against the full sorted
 * recomputation over every key (score descending, ties by key ascending, 1e-9 tolerance).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PipelineRuntime, type KeyedSample, type PipelineResult } from './runtime.js';
import { parsePipeline } from './spec.js';

const TOL = 1e-9;
const KEYS = ['f1', 'f2', 'f3', 'f4', 'f5', 'f6'];

interface Ev {
  metric: 'rating' | 'vote' | 'pop';
  key: string;
  ts: number;
  value: number;
}

const evArb: fc.Arbitrary<Ev> = fc.oneof(
  fc.record({ metric: fc.constant('rating' as const), key: fc.constantFrom(...KEYS), ts: fc.integer({ min: 0, max: 1000 }), value: fc.integer({ min: 0, max: 10 }) }),
  fc.record({ metric: fc.constant('vote' as const), key: fc.constantFrom(...KEYS), ts: fc.integer({ min: 0, max: 1000 }), value: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ metric: fc.constant('pop' as const), key: fc.constantFrom(...KEYS), ts: fc.integer({ min: 0, max: 1000 }), value: fc.integer({ min: 0, max: 5000 }) }),
);
const batchesArb = fc.array(fc.array(evArb, { maxLength: 8 }), { minLength: 1, maxLength: 12, size: 'max' });

const AGGREGATES = { rating: { fn: 'last', metric: 'rating' }, votes: { fn: 'sum', metric: 'vote' }, pop: { fn: 'max', metric: 'pop' }, n: { fn: 'count' } } as const;
type Field = keyof typeof AGGREGATES;
type Values = Record<Field, number | null>;

/** The aggregates of a key, brute force: last by event time (ties: the larger value), sum (0 when none), max, count. */
function valuesOf(events: Ev[]): Values {
  let last: Ev | null = null;
  for (const e of events) if (e.metric === 'rating' && (!last || e.ts > last.ts || (e.ts === last.ts && e.value > last.value))) last = e;
  const pops = events.filter((e) => e.metric === 'pop').map((e) => e.value);
  return { rating: last?.value ?? null, votes: events.filter((e) => e.metric === 'vote').reduce((s, e) => s + e.value, 0), pop: pops.length ? Math.max(...pops) : null, n: events.length };
}

type Norm = { minmax: { min?: number; max?: number } } | { log: { max: number } } | { capped: { cap: number } } | { zscore: { clip?: number } } | { rank: Record<string, never> };

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

/** One normalised value, from the definitions; `population` is every key's current value of the field. */
function normalise(spec: Norm | undefined, x: number, population: number[]): number {
  if (!spec) return x;
  if ('log' in spec) return x > 0 ? clamp01(Math.log1p(x) / Math.log1p(spec.log.max)) : 0;
  if ('capped' in spec) return clamp01(x / spec.capped.cap);
  if ('minmax' in spec) {
    const lo = spec.minmax.min ?? Math.min(...population);
    const hi = spec.minmax.max ?? Math.max(...population);
    return hi > lo ? clamp01((x - lo) / (hi - lo)) : 0.5;
  }
  if ('zscore' in spec) {
    const n = population.length;
    const mean = population.reduce((s, v) => s + v, 0) / n;
    const std = Math.sqrt(population.reduce((s, v) => s + (v - mean) ** 2, 0) / n);
    const clip = spec.zscore.clip ?? 3;
    return std === 0 ? 0.5 : clamp01((x - mean) / std / (2 * clip) + 0.5);
  }
  const n = population.length;
  if (n < 2) return 0.5;
  const below = population.filter((v) => v < x).length;
  const equal = population.filter((v) => v === x).length;
  return clamp01((below + (equal - 1) / 2) / (n - 1));
}

interface ScoreDecl {
  normalise: Partial<Record<Field, Norm>>;
  components: Record<string, Partial<Record<Field, number>>>;
  profiles: Record<string, Record<string, number>>;
}

/** Components and profiles of every key from the current values of all keys (a missing value adds 0). */
function recompute(decl: ScoreDecl, values: Map<string, Values>): Map<string, Record<string, number>> {
  const population = (f: Field) => [...values.values()].map((v) => v[f]).filter((v): v is number => v !== null);
  const out = new Map<string, Record<string, number>>();
  for (const [key, v] of values) {
    const cols: Record<string, number> = {};
    for (const [c, weights] of Object.entries(decl.components)) {
      let s = 0;
      for (const [f, w] of Object.entries(weights) as [Field, number][]) {
        const x = v[f];
        s += w * (x === null ? 0 : normalise(decl.normalise[f], x, population(f)));
      }
      cols[c] = s;
    }
    for (const [p, weights] of Object.entries(decl.profiles)) {
      let s = 0;
      for (const [c, w] of Object.entries(weights)) s += w * cols[c];
      cols[p] = s;
    }
    out.set(key, cols);
  }
  return out;
}

/** Throws `what` unless `ok` (cheaper than expect() in the hot loops of these properties). */
function check(ok: boolean, what: () => string): void {
  if (!ok) throw new Error(what());
}

/** `got` is the top k of `scores` (key -> score): ranked by score desc then key asc, equal to the recomputation within TOL. */
function expectTopK(got: { key: string; score: number }[], scores: Map<string, number>, k: number, what: string): void {
  const want = [...scores].map(([key, score]) => ({ key, score })).sort((a, b) => b.score - a.score || (a.key < b.key ? -1 : 1));
  const show = () => `${what}: got ${JSON.stringify(got)}, recomputed ${JSON.stringify(want)}`;
  check(got.length === Math.min(k, want.length), show);
  got.forEach((g, i) => {
    check(Math.abs(g.score - scores.get(g.key)!) <= TOL, show);
    // the i-th score is the i-th best; a different key there is a tie within the tolerance
    check(Math.abs(g.score - want[i].score) <= TOL, show);
    if (i > 0) check(got[i - 1].score > g.score || (got[i - 1].score === g.score && got[i - 1].key < g.key), show);
  });
  // a key left out is no better than the last one in (within the tolerance)
  const inside = new Set(got.map((g) => g.key));
  if (got.length) for (const w of want) if (!inside.has(w.key)) check(w.score <= got.at(-1)!.score + TOL, show);
}

/** The row's component and profile columns equal `want` within TOL. */
function expectScores(r: PipelineResult, want: Record<string, number>): void {
  for (const [c, v] of Object.entries(want)) check(Math.abs((r[c] as number) - v) <= TOL, () => `${r.key}.${c}: row has ${r[c]}, recomputed ${v} (row ${JSON.stringify(r)})`);
}

const weight = fc.integer({ min: -4, max: 8 }).map((w) => w / 4);

function pipeline(decl: ScoreDecl) {
  return parsePipeline({ name: 'sc', source: { metrics: ['rating', 'vote', 'pop'] }, window: { type: 'global' }, aggregates: AGGREGATES, score: { ...decl, topK: 3 } });
}

/** Runs the batches; after each, `onBatch` checks its rows, then topProfile is checked against the recomputation. */
function run(decl: ScoreDecl, batches: Ev[][], onBatch: (results: PipelineResult[], valuesBefore: Map<string, Values>) => void): void {
  const rt = new PipelineRuntime(pipeline(decl));
  expect(rt.profiles).toEqual(Object.keys(decl.profiles));
  const events = new Map<string, Ev[]>();
  let values = new Map<string, Values>();
  batches.forEach((b, i) => {
    const results = rt.process(b as KeyedSample[], 0, 0, i).results;
    const before = values;
    for (const e of b) events.set(e.key, [...(events.get(e.key) ?? []), e]);
    values = new Map([...events].map(([key, evs]) => [key, valuesOf(evs)]));
    // one row per key that changed, with its aggregates (brute force)
    expect(results.map((r) => r.key).sort()).toEqual([...new Set(b.map((e) => e.key))].sort());
    for (const r of results) expect(rowValues(r), r.key).toEqual(values.get(r.key));
    onBatch(results, before);
    const all = recompute(decl, values);
    for (const p of Object.keys(decl.profiles))
      for (const k of [1, 3, KEYS.length])
        expectTopK(rt.topProfile('global', p, k), new Map([...all].map(([key, cols]) => [key, cols[p]])), k, `batch ${i} top ${k} of ${p}`);
  });
}

const rowValues = (r: PipelineResult): Values => ({ rating: r.rating as number | null, votes: r.votes as number, pop: r.pop as number | null, n: r.n as number });

describe('PipelineRuntime score vs recomputation', () => {
  it('static normalisers (minmax, log, capped, none): every row carries the scores of its own values; topProfile is the sorted recomputation', () => {
    const declArb = fc.record({ w: fc.array(weight, { minLength: 9, maxLength: 9 }) }).map(
      ({ w }): ScoreDecl => ({
        normalise: { rating: { minmax: { min: 0, max: 10 } }, votes: { capped: { cap: 12 } }, pop: { log: { max: 1000 } } },
        components: { quality: { rating: w[0], votes: w[1] }, reach: { pop: w[2], n: w[3] }, buzz: { votes: w[4], pop: w[5] } },
        profiles: { balanced: { quality: w[6], reach: w[7], buzz: 0.5 }, critics: { quality: 1, buzz: w[8] } },
      }),
    );
    fc.assert(
      fc.property(declArb, batchesArb, (decl, batches) =>
        run(decl, batches, (results) => {
          for (const r of results) {
            expectScores(r, recompute(decl, new Map([[r.key, rowValues(r)]])).get(r.key)!);
          }
        }),
      ),
      { numRuns: 200 },
    );
  });

  it('running normalisers (zscore, rank, open minmax): each row has the scores as of its own update; topProfile is exact over every key at all times', () => {
    const declArb = fc
      .record({
        w: fc.array(weight, { minLength: 6, maxLength: 6 }),
        clip: fc.constantFrom(undefined, 1, 2),
        pop: fc.constantFrom<Norm>({ minmax: {} }, { minmax: { min: 0 } }, { minmax: { max: 4000 } }, { log: { max: 1000 } }),
      })
      .map(
        ({ w, clip, pop }): ScoreDecl => ({
          normalise: { rating: { zscore: clip === undefined ? {} : { clip } }, votes: { rank: {} }, pop },
          components: { quality: { rating: w[0], votes: w[1] }, reach: { pop: w[2], n: w[3] } },
          profiles: { balanced: { quality: w[4], reach: w[5] }, critics: { quality: 1 } },
        }),
      );
    fc.assert(
      fc.property(declArb, batchesArb, (decl, batches) =>
        run(decl, batches, (results, before) => {
          // Rows go through the board one by one: each is scored against the values of every
          // key as they stand after that row's update.
          const current = new Map(before);
          for (const r of results) {
            current.set(r.key, rowValues(r));
            expectScores(r, recompute(decl, current).get(r.key)!);
          }
        }),
      ),
      { numRuns: 200 },
    );
  });
});

describe('PipelineRuntime score of a row without inputs', () => {
  it('a key none of whose score inputs has a value gets null scores and is not ranked, until one arrives', () => {
    const rt = new PipelineRuntime(
      parsePipeline({
        name: 'films',
        source: { metrics: ['rating', 'click'] },
        window: { type: 'global' },
        aggregates: { rating: { fn: 'last', metric: 'rating' }, clicks: { fn: 'sum', metric: 'click' } },
        score: { components: { quality: { rating: 1 } }, profiles: { best: { quality: 1 } } },
      }),
    );
    const [first] = rt.process([{ metric: 'click', key: 'f1', ts: 1, value: 1 }], 0, 0, 0).results;
    expect({ quality: first.quality, best: first.best, clicks: first.clicks }).toEqual({ quality: null, best: null, clicks: 1 });
    expect(rt.topProfile('global', 'best', 5)).toEqual([]);
    const [second] = rt.process([{ metric: 'rating', key: 'f1', ts: 2, value: 7 }], 0, 0, 1).results;
    expect({ quality: second.quality, best: second.best }).toEqual({ quality: 7, best: 7 });
    expect(rt.topProfile('global', 'best', 5)).toEqual([{ key: 'f1', score: 7 }]);
  });
});
