import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { from, lastValueFrom, toArray } from 'rxjs';
import type { NormaliserSpec } from './normalise.js';
import { compareRanked, type Ranked } from './ranking.js';
import { ScoreBoard, scoreEntities, type ScoreSpec } from './scoreboard.js';
import { corrupt, corruptionArb, restoresCleanly } from '../keyed/testing/snapshots.js';

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

// ---- snapshots ----------------------------------------------------------------------------------

type SnapOp =
  | { kind: 'set'; e: number; m: number; v: number | null }
  | { kind: 'remove'; e: number }
  | { kind: 'top'; p: number; k: number }
  | { kind: 'score'; e: number; p: number }
  | { kind: 'scores'; e: number }
  | { kind: 'stale' }
  | { kind: 'batch'; sets: { e: number; m: number; v: number | null }[] };

// Ties; zeros of both signs (a running min of -0 is not one of 0, and removing a zero takes the
// first in the sorted population, whatever its sign); values whose sums round (zscore keeps the
// rounding of the order they came and went in).
const snapValue = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -20, max: 120 }) },
  { weight: 3, arbitrary: fc.constantFrom(0, -0) },
  { weight: 2, arbitrary: fc.constantFrom(0.1, 0.2, 0.3, 1e15, -1e15, 1e-9) },
  { weight: 1, arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true }) },
);
const snapSet = fc.record({ e: fc.nat({ max: 11 }), m: fc.nat({ max: METRICS.length - 1 }), v: fc.option(snapValue, { freq: 8 }) });
const snapOpsArb: fc.Arbitrary<SnapOp[]> = fc.array(
  fc.oneof(
    { weight: 20, arbitrary: snapSet.map((s) => ({ kind: 'set' as const, ...s })) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), e: fc.nat({ max: 11 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('top' as const), p: fc.nat({ max: 2 }), k: fc.integer({ min: 1, max: 30 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('score' as const), e: fc.nat({ max: 11 }), p: fc.nat({ max: 2 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('scores' as const), e: fc.nat({ max: 11 }) }) },
    { weight: 2, arbitrary: fc.constant({ kind: 'stale' as const }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('batch' as const), sets: fc.array(snapSet, { maxLength: 10 }) }) },
  ),
  { maxLength: 150 },
);

/** Runs the ops and returns every output: set/remove results, top-K lists, scores, stale flags, sizes. */
function runOps(board: ScoreBoard, spec: ScoreSpec, ops: SnapOp[]): unknown[] {
  const out: unknown[] = [];
  const profiles = Object.keys(spec.profiles);
  const id = (e: number) => `film-${e}`;
  for (const op of ops) {
    if (op.kind === 'set') out.push(board.set(id(op.e), METRICS[op.m], op.v));
    else if (op.kind === 'remove') out.push(board.remove(id(op.e)));
    else if (op.kind === 'top') out.push(board.topK(profiles[op.p % profiles.length], op.k));
    else if (op.kind === 'score') out.push(board.score(id(op.e), profiles[op.p % profiles.length]));
    else if (op.kind === 'scores') out.push(board.scores(id(op.e)));
    else if (op.kind === 'stale') out.push(profiles.map((p) => board.isStale(p)), board.size);
    else board.batch(() => op.sets.forEach((s) => out.push(board.set(id(s.e), METRICS[s.m], s.v))));
  }
  return out;
}

const ALL_NORMALISERS = [undefined, ...STATIC, ...RUNNING];

describe('ScoreBoard snapshots', () => {
  it('cut a random run anywhere, snapshot, restore into another board (fresh or used): the rest of the run gives the same outputs on both, and snapshot -> restore -> snapshot is the same text', () => {
    fc.assert(
      fc.property(specArb(ALL_NORMALISERS), snapOpsArb, fc.nat(), snapOpsArb, (spec, ops, cutAt, prior) => {
        const cut = cutAt % (ops.length + 1);
        const original = new ScoreBoard(spec);
        runOps(original, spec, ops.slice(0, cut));
        const text = original.snapshot();
        const restored = new ScoreBoard(spec);
        runOps(restored, spec, prior);
        restored.restore(text);
        expect(restored.snapshot()).toBe(text);
        const rest = ops.slice(cut);
        expect(runOps(restored, spec, rest)).toEqual(runOps(original, spec, rest));
        expect(restored.snapshot()).toBe(original.snapshot());
        for (const p of Object.keys(spec.profiles)) expect(restored.topK(p, 100)).toEqual(original.topK(p, 100));
      }),
      { numRuns: 300 },
    );
  });

  it('a corrupted snapshot (mutated node, changed character, truncation) is refused with a "score board snapshot:" Error that leaves the board as it was, or restores a state that snapshots and behaves consistently', () => {
    fc.assert(
      fc.property(specArb(ALL_NORMALISERS), snapOpsArb, fc.array(corruptionArb, { minLength: 1, maxLength: 3 }), snapOpsArb, (spec, ops, corruptions, after) => {
        const original = new ScoreBoard(spec);
        runOps(original, spec, ops);
        let text = original.snapshot();
        for (const c of corruptions) text = corrupt(text, c);
        const target = new ScoreBoard(spec);
        runOps(target, spec, ops.slice(0, 5));
        const before = target.snapshot();
        if (!restoresCleanly('score board', text, (t) => target.restore(t))) {
          expect(target.snapshot()).toBe(before);
          return;
        }
        const again = target.snapshot();
        const copy = new ScoreBoard(spec);
        copy.restore(again);
        expect(copy.snapshot()).toBe(again);
        expect(runOps(copy, spec, after)).toEqual(runOps(target, spec, after));
      }),
      { numRuns: 400 },
    );
  });

  it('a snapshot restores into a board of another random spec only when the two specs are the same once defaults are filled in; otherwise the Error names a difference', () => {
    fc.assert(
      fc.property(specArb(ALL_NORMALISERS), specArb(ALL_NORMALISERS), snapOpsArb, (specA, specB, ops) => {
        const a = new ScoreBoard(specA);
        runOps(a, specA, ops);
        const b = new ScoreBoard(specB);
        const same = JSON.stringify(JSON.parse(a.snapshot()).spec) === JSON.stringify(JSON.parse(b.snapshot()).spec);
        if (same) b.restore(a.snapshot());
        else expect(() => b.restore(a.snapshot())).toThrow(/^score board snapshot: taken by an operator built with another spec: spec\./);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses another format, another spec (saying what differs) and inconsistent state', () => {
    const spec: ScoreSpec = {
      normalise: { imdb: { minmax: { min: 0, max: 10 } }, rt: { rank: {} }, clicks: { zscore: {} } },
      components: { opinion: { imdb: 0.5, rt: 0.5 }, buzz: { clicks: 1 } },
      profiles: { crowd: { opinion: 1, buzz: 1 }, critics: { opinion: 1 } },
    };
    const board = new ScoreBoard(spec);
    board.update('a', { imdb: 7, rt: 80, clicks: 10 });
    board.update('b', { imdb: 9, rt: 60, clicks: 30 });
    const text = board.snapshot();
    const parsed = JSON.parse(text);
    const edit = (f: (s: typeof parsed) => void) => {
      const s = structuredClone(parsed);
      f(s);
      return JSON.stringify(s);
    };
    const fresh = () => new ScoreBoard(spec);
    expect(() => fresh().restore(edit((s) => (s.format = 'weir.windows/1')))).toThrow('score board snapshot: format "weir.windows/1" is not weir.scores/1');
    expect(() => fresh().restore('{"format":')).toThrow(/^score board snapshot: not JSON/);
    expect(() => new ScoreBoard({ ...spec, profiles: { crowd: { opinion: 1, buzz: 2 }, critics: { opinion: 1 } } }).restore(text)).toThrow(
      'score board snapshot: taken by an operator built with another spec: spec.profiles.crowd.buzz: snapshot has 1, this operator has 2',
    );
    expect(() => new ScoreBoard({ ...spec, normalise: { ...spec.normalise, clicks: { zscore: { clip: 2 } } } }).restore(text)).toThrow(
      'spec.normalise.clicks.zscore.clip: snapshot has 3, this operator has 2',
    );
    // defaults filled in: { zscore: {} } is { zscore: { clip: 3 } }
    new ScoreBoard({ ...spec, normalise: { ...spec.normalise, clicks: { zscore: { clip: 3 } } } }).restore(text);
    expect(() => fresh().restore(edit((s) => (s.entities[1][0] = 'a')))).toThrow('score board snapshot: entities: key "a" appears twice');
    expect(() => fresh().restore(edit((s) => (s.entities[0][1] = 'NaN')))).toThrow('score board snapshot: entities[0] ("a") imdb must be a finite number, got NaN');
    expect(() => fresh().restore(edit((s) => (s.entities[0][2] = 81)))).toThrow('score board snapshot: populations.rt[1] is 80, but the entities\' values sorted give 81 there');
    expect(() => fresh().restore(edit((s) => s.entities[0].pop()))).toThrow('score board snapshot: entities[0] must have at least 4 entries, got 3');
    expect(() => fresh().restore(edit((s) => (s.populations.imdb = [7, 9])))).toThrow('score board snapshot: populations.imdb must be null (a static normaliser keeps no state)');
    expect(() => fresh().restore(edit((s) => (s.populations.budget = null)))).toThrow('score board snapshot: populations.budget: not a metric of this board');
    expect(() => fresh().restore(edit((s) => delete s.populations.clicks))).toThrow('score board snapshot: populations.clicks is missing');
    expect(() => fresh().restore(edit((s) => (s.stale.profiles = ['nope'])))).toThrow('score board snapshot: stale.profiles[0]: "nope" is not one of crowd, critics');
    expect(() => fresh().restore(edit((s) => (s.stale = { metrics: ['rt'], components: [], profiles: [] })))).toThrow(
      'score board snapshot: stale: metric rt is stale but component opinion, which uses it, is not',
    );
    expect(() => fresh().restore(edit((s) => (s.stale = { metrics: ['imdb'], components: ['opinion'], profiles: ['crowd', 'critics'] })))).toThrow(
      'score board snapshot: stale.metrics: imdb has a static normaliser, it cannot be stale',
    );
  });

  it('keeps the running normalisers exact: sorted populations with the sign of their zeros, zscore sums with their rounding', () => {
    const spec: ScoreSpec = { normalise: { a: { minmax: {} }, z: { zscore: {} } }, components: { c: { a: 1, z: 1 } }, profiles: { p: { c: 1 } } };
    const board = new ScoreBoard(spec);
    // a's population becomes [-0, 0, 0] (removing a zero takes the first): sorted afresh from the
    // entities' values it would be [0, 0, -0], and removing a zero would then leave a min of -0,
    // a change of min that makes the profile stale
    board.set('x', 'a', 0);
    board.set('y', 'a', -0);
    board.set('x', 'a', 5);
    board.set('x', 'a', 0);
    board.set('w', 'a', 0);
    board.topK('p');
    // z's sums carry the rounding of 1e15 + 0.1 - 1e15: summed afresh they would not
    board.set('e0', 'z', 1e15);
    board.set('e1', 'z', 0.1);
    board.set('e2', 'z', 0.7);
    board.set('e0', 'z', 3);
    const copy = new ScoreBoard(spec);
    copy.restore(board.snapshot());
    expect(copy.snapshot()).toBe(board.snapshot());
    for (const e of ['e0', 'e1', 'e2']) expect(copy.score(e, 'p')).toBe(board.score(e, 'p'));
    board.topK('p');
    copy.topK('p');
    expect(copy.set('x', 'a', 1)).toBe(board.set('x', 'a', 1));
    expect(copy.isStale('p')).toBe(board.isStale('p'));
    expect(copy.snapshot()).toBe(board.snapshot());
  });
});
