import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { from, lastValueFrom, toArray } from 'rxjs';
import type { NormaliserSpec } from './normalise.js';
import { compareRanked, type Ranked } from './ranking.js';
import { ScoreBoard, scoreEntities, type ScoreSpec } from './scoreboard.js';

// ---- brute force: every score from scratch -------------------------------------------------------

type Values = Map<string, Map<string, number>>;

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

/** The normalised value of x given the metric's current population (every entity's value). */
function bruteNormalise(spec: NormaliserSpec | undefined, x: number, population: number[]): number {
  if (spec === undefined) return x;
  if ('minmax' in spec) {
    const lo = spec.minmax.min ?? Math.min(...population);
    const hi = spec.minmax.max ?? Math.max(...population);
    return hi > lo ? clamp01((x - lo) / (hi - lo)) : 0.5;
  }
  if ('log' in spec) return x > 0 ? clamp01(Math.log1p(x) / Math.log1p(spec.log.max)) : 0;
  if ('capped' in spec) return clamp01(x / spec.capped.cap);
  if ('zscore' in spec) {
    const n = population.length;
    let sum = 0;
    let sumSq = 0;
    for (const v of population) {
      sum += v;
      sumSq += v * v;
    }
    const mean = sum / n;
    const variance = sumSq / n - mean * mean;
    const std = variance > 0 ? Math.sqrt(variance) : 0;
    return std === 0 ? 0.5 : clamp01((x - mean) / std / (2 * (spec.zscore.clip ?? 3)) + 0.5);
  }
  const n = population.length;
  if (n < 2) return 0.5;
  const below = population.filter((v) => v < x).length;
  const equal = population.filter((v) => v === x).length;
  return clamp01((below + (equal - 1) / 2) / (n - 1));
}

function bruteScores(spec: ScoreSpec, values: Values): Map<string, Map<string, number>> {
  const populations = new Map<string, number[]>();
  for (const row of values.values()) for (const [m, v] of row) populations.set(m, [...(populations.get(m) ?? []), v]);
  const out = new Map<string, Map<string, number>>();
  for (const [entity, row] of values) {
    const comps = new Map<string, number>();
    for (const [c, weights] of Object.entries(spec.components)) {
      let s = 0;
      for (const [m, w] of Object.entries(weights)) {
        const x = row.get(m);
        s += w * (x === undefined ? 0 : bruteNormalise(spec.normalise?.[m], x, populations.get(m)!));
      }
      comps.set(c, s);
    }
    const totals = new Map<string, number>();
    for (const [p, weights] of Object.entries(spec.profiles)) {
      let s = 0;
      for (const [c, w] of Object.entries(weights)) s += w * comps.get(c)!;
      totals.set(p, s);
    }
    out.set(entity, totals);
  }
  return out;
}

function bruteTop(spec: ScoreSpec, values: Values, profile: string, k: number): Ranked[] {
  return [...bruteScores(spec, values)]
    .map(([id, totals]) => ({ id, score: totals.get(profile)! }))
    .sort(compareRanked)
    .slice(0, k);
}

// ---- generation ---------------------------------------------------------------------------------

const METRICS = ['imdb', 'rt', 'wins', 'popularity', 'clicks'];
const STATIC: NormaliserSpec[] = [{ minmax: { min: 0, max: 100 } }, { log: { max: 1000 } }, { capped: { cap: 50 } }];
const RUNNING: NormaliserSpec[] = [{ minmax: {} }, { minmax: { min: 0 } }, { minmax: { max: 90 } }, { zscore: {} }, { zscore: { clip: 1 } }, { rank: {} }];
const WEIGHTS = [0.25, 0.5, 1, 2, -1, 0.3];

const specArb = (normalisers: (NormaliserSpec | undefined)[]): fc.Arbitrary<ScoreSpec> =>
  fc
    .record({
      norms: fc.array(fc.constantFrom(...normalisers), { minLength: METRICS.length, maxLength: METRICS.length }),
      comps: fc.array(fc.uniqueArray(fc.record({ m: fc.nat({ max: METRICS.length - 1 }), w: fc.constantFrom(...WEIGHTS) }), { selector: (t) => t.m, minLength: 1, maxLength: 3 }), {
        minLength: 1,
        maxLength: 3,
      }),
      profs: fc.array(fc.uniqueArray(fc.record({ c: fc.nat({ max: 2 }), w: fc.constantFrom(...WEIGHTS) }), { selector: (t) => t.c, minLength: 1, maxLength: 3 }), {
        minLength: 1,
        maxLength: 3,
      }),
    })
    .map(({ norms, comps, profs }) => {
      const normalise: Record<string, NormaliserSpec> = {};
      norms.forEach((n, i) => {
        if (n) normalise[METRICS[i]] = n;
      });
      const components: Record<string, Record<string, number>> = {};
      comps.forEach((terms, i) => (components[`c${i}`] = Object.fromEntries(terms.map((t) => [METRICS[t.m], t.w]))));
      const profiles: Record<string, Record<string, number>> = {};
      profs.forEach((terms, i) => (profiles[`p${i}`] = Object.fromEntries(terms.map((t) => [`c${t.c % comps.length}`, t.w]))));
      return { normalise, components, profiles };
    });

type Op =
  | { kind: 'set'; e: number; m: number; v: number | null }
  | { kind: 'remove'; e: number }
  | { kind: 'top'; p: number }
  | { kind: 'score'; e: number; p: number };

const ENTITIES = 40;
const opsArb = fc.array(
  fc.oneof(
    { weight: 20, arbitrary: fc.record({ kind: fc.constant('set' as const), e: fc.nat({ max: ENTITIES - 1 }), m: fc.nat({ max: METRICS.length - 1 }), v: fc.option(fc.oneof(fc.integer({ min: -20, max: 120 }), fc.integer({ min: 0, max: 6 })), { freq: 12 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove' as const), e: fc.nat({ max: ENTITIES - 1 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('top' as const), p: fc.nat({ max: 2 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('score' as const), e: fc.nat({ max: ENTITIES - 1 }), p: fc.nat({ max: 2 }) }) },
  ),
  { maxLength: 300 },
);

/** Applies the ops to a board and to a plain map, checking queries against brute force as they come. */
function replay(spec: ScoreSpec, ops: Op[], batched = false): { board: ScoreBoard; values: Values } {
  const board = new ScoreBoard(spec);
  const values: Values = new Map();
  const profiles = Object.keys(spec.profiles);
  if (batched) board.batch(() => apply(board, values, profiles));
  else apply(board, values, profiles);
  return { board, values };

  function apply(board: ScoreBoard, values: Values, profiles: string[]) {
    for (const op of ops) {
      const e = `film-${String(op.kind === 'top' ? 0 : op.e).padStart(2, '0')}`;
      if (op.kind === 'set') {
        const metric = METRICS[op.m];
        board.set(e, metric, op.v);
        const used = Object.values(spec.components).some((w) => metric in w);
        if (op.v === null) values.get(e)?.delete(metric);
        else if (used) {
          if (!values.has(e)) values.set(e, new Map());
          values.get(e)!.set(metric, op.v);
        }
      } else if (op.kind === 'remove') {
        board.remove(e);
        values.delete(e);
      } else if (op.kind === 'top') {
        const p = profiles[op.p % profiles.length];
        expect(board.topK(p, 25)).toEqual(bruteTop(spec, values, p, 25));
      } else {
        const p = profiles[op.p % profiles.length];
        expect(board.score(e, p)).toBe(values.has(e) ? bruteScores(spec, values).get(e)!.get(p) : undefined);
      }
    }
  }
}

describe('ScoreBoard against a full recomputation', () => {
  it('static normalisers: after random updates the top-25 of every profile equals brute force, and no profile ever goes stale', () => {
    fc.assert(
      fc.property(specArb([undefined, ...STATIC]), opsArb, (spec, ops) => {
        const { board, values } = replay(spec, ops);
        for (const p of Object.keys(spec.profiles)) {
          expect(board.isStale(p)).toBe(false);
          expect(board.topK(p, 25)).toEqual(bruteTop(spec, values, p, 25));
        }
        expect(board.size).toBe(values.size);
      }),
      { numRuns: 150 },
    );
  });

  it('running normalisers (minmax without bounds, zscore, rank) mixed with static ones, with or without batch(): top-25 and single scores equal brute force', () => {
    fc.assert(
      fc.property(specArb([undefined, ...STATIC, ...RUNNING]), opsArb, fc.boolean(), (spec, ops, batched) => {
        const { board, values } = replay(spec, ops, batched);
        const brute = bruteScores(spec, values);
        for (const [e, totals] of brute) for (const [p, s] of totals) expect(board.score(e, p)).toBe(s);
        for (const p of Object.keys(spec.profiles)) expect(board.topK(p, 25)).toEqual(bruteTop(spec, values, p, 25));
      }),
      { numRuns: 200 },
    );
  });

  it('scores() lists every component and profile of an entity', () => {
    const spec: ScoreSpec = {
      normalise: { imdb: { minmax: { min: 0, max: 10 } }, wins: { capped: { cap: 10 } } },
      components: { opinion: { imdb: 1 }, awards: { wins: 1 } },
      profiles: { balanced: { opinion: 0.5, awards: 0.5 }, critics: { awards: 1 } },
    };
    const board = new ScoreBoard(spec);
    board.update('f1', { imdb: 8, wins: 5, unused: 3 });
    expect(board.scores('f1')).toEqual({ entity: 'f1', components: { opinion: 0.8, awards: 0.5 }, profiles: { balanced: 0.65, critics: 0.5 } });
    expect(board.scores('nope')).toBeUndefined();
  });
});

describe('ScoreBoard behaviour', () => {
  const films: ScoreSpec = {
    normalise: { imdb: { minmax: { min: 0, max: 10 } }, popularity: { log: { max: 1_000_000 } }, rank_me: { rank: {} } },
    components: { opinion: { imdb: 0.6, popularity: 0.4 }, relative: { rank_me: 1 } },
    profiles: { crowd: { opinion: 1 }, relative: { relative: 1 } },
    topK: 2,
  };

  it('a static update moves one entity and leaves the profile fresh; topK defaults to spec.topK', () => {
    const board = new ScoreBoard(films);
    board.set('a', 'imdb', 7);
    board.set('b', 'imdb', 8);
    board.set('c', 'imdb', 6);
    expect(board.topK('crowd').map((r) => r.id)).toEqual(['b', 'a']);
    board.set('c', 'popularity', 999_999);
    expect(board.isStale('crowd')).toBe(false);
    expect(board.topK('crowd').map((r) => r.id)).toEqual(['c', 'b']);
  });

  it('a running normaliser makes only the profiles that use it stale, until their next topK', () => {
    const board = new ScoreBoard(films);
    board.set('a', 'rank_me', 1);
    board.set('b', 'rank_me', 2);
    expect(board.isStale('relative')).toBe(true);
    expect(board.isStale('crowd')).toBe(false);
    expect(board.score('a', 'relative')).toBe(0);
    expect(board.topK('relative')).toEqual([
      { id: 'b', score: 1 },
      { id: 'a', score: 0 },
    ]);
    expect(board.isStale('relative')).toBe(false);
    // a value that crosses no other value leaves every other rank unchanged: stays fresh
    board.set('b', 'rank_me', 5);
    expect(board.isStale('relative')).toBe(false);
  });

  it('batch() rebuilds every ranking once at the end and leaves the profiles fresh', () => {
    const board = new ScoreBoard(films);
    board.batch(() => {
      for (let i = 0; i < 300; i++) board.set(`f${i}`, 'imdb', (i * 7) % 10);
      expect(board.isStale('crowd')).toBe(true);
    });
    expect(board.isStale('crowd')).toBe(false);
    expect(board.topK('crowd', 2).map((r) => r.id)).toEqual(['f107', 'f117']);
    board.set('f0', 'imdb', 10);
    expect(board.isStale('crowd')).toBe(false);
    expect(board.topK('crowd', 1)[0].id).toBe('f0');
  });

  it('set returns whether anything changed; unknown metrics and equal values change nothing', () => {
    const board = new ScoreBoard(films);
    expect(board.set('a', 'imdb', 5)).toBe(true);
    expect(board.set('a', 'imdb', 5)).toBe(false);
    expect(board.set('a', 'budget', 5)).toBe(false);
    expect(board.set('zz', 'imdb', null)).toBe(false);
    expect(board.has('zz')).toBe(false);
  });

  it('refuses non-finite inputs and unknown profiles with actionable messages', () => {
    const board = new ScoreBoard(films);
    expect(() => board.set('f-9', 'imdb', NaN)).toThrow('score input imdb of "f-9" must be a finite number or null, got NaN');
    expect(() => board.topK('critics')).toThrow('unknown profile "critics" (crowd, relative)');
    expect(() => new ScoreBoard({ components: { c: { m: 1 } }, profiles: { p: { d: 1 } } })).toThrow('score.profiles.p.d: "d" is not a component (c)');
    expect(() => new ScoreBoard({ normalise: { m: { minmax: { min: 2, max: 1 } } }, components: { c: { m: 1 } }, profiles: { p: { c: 1 } } })).toThrow(
      'score.normalise.m: minmax: max (1) must be greater than min (2)',
    );
  });

  it('removing an entity renormalises the others of a running metric', () => {
    const board = new ScoreBoard(films);
    board.set('a', 'rank_me', 1);
    board.set('b', 'rank_me', 2);
    board.set('c', 'rank_me', 3);
    expect(board.topK('relative', 3).map((r) => r.score)).toEqual([1, 0.5, 0]);
    board.remove('c');
    expect(board.topK('relative', 3)).toEqual([
      { id: 'b', score: 1 },
      { id: 'a', score: 0 },
    ]);
  });

  it('removed entities leave rankings and populations; their slots are reused', () => {
    const board = new ScoreBoard(films);
    for (let i = 0; i < 100; i++) board.set(`f${i}`, 'imdb', i % 10);
    for (let i = 0; i < 100; i += 2) board.remove(`f${i}`);
    for (let i = 100; i < 150; i++) board.set(`f${i}`, 'imdb', 9.5);
    expect(board.size).toBe(100);
    expect(board.topK('crowd', 3).map((r) => r.id)).toEqual(['f100', 'f101', 'f102']);
    expect(board.remove('f0')).toBe(false);
  });

  it('scoreEntities emits the scores of each changed entity', async () => {
    const board = new ScoreBoard(films);
    const out = await lastValueFrom(
      from([
        { entity: 'a', values: { imdb: 10 } },
        { entity: 'a', values: { imdb: 10 } },
        { entity: 'b', values: { imdb: 5, popularity: null } },
      ]).pipe(scoreEntities(board), toArray()),
    );
    expect(out.map((s) => [s.entity, s.profiles.crowd])).toEqual([
      ['a', 0.6],
      ['b', 0.3],
    ]);
    expect(board.topK('crowd', 1)).toEqual([{ id: 'a', score: 0.6 }]);
  });
});
