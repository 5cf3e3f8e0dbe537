/**
 * Hostile numbers (issue 5) through the normalisers and ScoreBoard: extreme but valid finite
 * values (±1.8e308, 5e-324, -0, 2^53 ± 1, huge and tiny mixed), as raw values and as weights.
 * - A normalised value is always in [0, 1] (identity: the value), in the order of the values,
 *   never NaN; static minmax and zscore agree with exact BigInt oracles.
 * - A huge value changes running normalisers only while it is in the population: once it leaves,
 *   every figure is bit-identical to a board that never saw it (zscore used to keep NaN for good).
 * - Scores are never NaN: a weighted sum that passes 1.8e308 on the way is recomputed with a wide
 *   exponent, equals the exact sum within rounding, and is ±Infinity only when the exact score is
 *   past the range; with static normalisers a hostile entity never changes another's score.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createNormaliser, type NormaliserSpec } from './normalise.js';
import { compareRanked } from './ranking.js';
import { ScoreBoard, type ScoreSpec } from './scoreboard.js';
import { big, exactMoments, EXTREMES, extremeValue, times2, toDouble } from '../testing/exact.js';

const M = Number.MAX_VALUE;
const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);
const exponent = (x: number) => (x === 0 ? 0 : Math.floor(Math.log2(Math.abs(x))));

const STATIC: NormaliserSpec[] = [
  { minmax: { min: 0, max: 100 } },
  { minmax: { min: -M, max: M } },
  { minmax: { min: -1e308, max: 5e-324 } },
  { log: { max: M } },
  { log: { max: 1000 } },
  { capped: { cap: 5e-324 } },
  { capped: { cap: M } },
];
const RUNNING: NormaliserSpec[] = [{ minmax: {} }, { minmax: { min: -M } }, { minmax: { max: 1e308 } }, { zscore: {} }, { zscore: { clip: 0.5 } }, { rank: {} }];
const ALL: (NormaliserSpec | undefined)[] = [undefined, ...STATIC, ...RUNNING];

/** Updates of a population: slot i gets a value (or loses it). */
const updatesArb = fc.array(fc.record({ i: fc.nat({ max: 9 }), v: fc.option(extremeValue, { freq: 6 }) }), { maxLength: 60 });

/** Replays updates on a normaliser; returns the slots' current values. */
function replay(n: ReturnType<typeof createNormaliser>, updates: { i: number; v: number | null }[], slots: (number | undefined)[] = []): (number | undefined)[] {
  for (const u of updates) {
    const before = slots[u.i];
    const after = u.v ?? undefined;
    n.update(before, after);
    slots[u.i] = after;
  }
  return slots;
}

/** The exact z of x, (x − mean) / stddev of the population, rounded at the end (null when the stddev is 0). */
function exactZ(x: number, pop: readonly number[]): number | null {
  const { n, s, q } = exactMoments(pop);
  // In 2^-1074 units: x − mean = (n·x − s) / n and stddev = sqrt(n·q − s²) / n, so z = (n·x − s) / sqrt(n·q − s²).
  const v = n * q - s * s;
  if (v === 0n) return null;
  const t = Math.floor(v.toString(2).length / 2);
  return toDouble(n * big(x) - s, 1n, -t) / Math.sqrt(toDouble(v, 1n, -2 * t));
}

describe('normalisers with extreme values', () => {
  it('every current value normalises into [0, 1] (identity: itself), never NaN, in the order of the values', () =>
    fc.assert(
      fc.property(fc.constantFrom(...ALL), updatesArb, (spec, updates) => {
        const n = createNormaliser(spec);
        const pop = replay(n, updates).filter((v): v is number => v !== undefined).sort((a, b) => a - b);
        const out = pop.map((v) => n.normalise(v));
        for (const [i, y] of out.entries()) {
          if (spec === undefined) expect(y).toBe(pop[i]);
          else if (!(y >= 0 && y <= 1)) throw new Error(`${JSON.stringify(spec)}: ${pop[i]} -> ${y}`);
          if (i > 0 && !(y >= out[i - 1])) throw new Error(`${JSON.stringify(spec)}: ${pop[i - 1]} -> ${out[i - 1]} but ${pop[i]} -> ${y}`);
        }
        // values outside the population too
        for (const x of EXTREMES) if (spec !== undefined && !(n.normalise(x) >= 0 && n.normalise(x) <= 1)) throw new Error(`${JSON.stringify(spec)}: ${x} -> ${n.normalise(x)}`);
      }),
      { numRuns: 400 },
    ));

  it('once the hostile values leave, a running normaliser is bit-identical to one that never saw them', () =>
    fc.assert(
      fc.property(fc.constantFrom(...RUNNING), updatesArb, fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 10 }), (spec, hostile, ordinary) => {
        const n = createNormaliser(spec);
        // ordinary values in slots 10.., the hostile ones come and go in slots 0..9
        const slots: (number | undefined)[] = [];
        ordinary.forEach((v, i) => {
          n.update(undefined, v);
          slots[10 + i] = v;
        });
        replay(n, hostile, slots);
        for (let i = 0; i < 10; i++) if (slots[i] !== undefined) n.update(slots[i], undefined);
        const fresh = createNormaliser(spec);
        for (const v of ordinary) fresh.update(undefined, v);
        for (const x of [...ordinary, ...EXTREMES]) expect(n.normalise(x)).toBe(fresh.normalise(x));
      }),
      { numRuns: 300 },
    ));

  it('static minmax is (x − min) / (max − min) clamped, exactly rounded, even when max − min is past 1.8e308', () =>
    fc.assert(
      fc.property(extremeValue, extremeValue, extremeValue, (a, b, x) => {
        if (a === b) return;
        const [min, max] = a < b ? [a, b] : [b, a];
        const got = createNormaliser({ minmax: { min, max } }).normalise(x);
        const exact = clamp01(toDouble(big(x) - big(min), big(max) - big(min), 0));
        expect(Math.abs(got - exact)).toBeLessThanOrEqual(4 * 2 ** -53);
      }),
      { numRuns: 2000 },
    ));

  it('zscore matches the exact mean and stddev wherever the spread is not lost to cancellation (std ≥ 1e-3 of the largest value)', () =>
    fc.assert(
      fc.property(fc.array(extremeValue, { minLength: 2, maxLength: 30 }), fc.constantFrom(0.5, 3), (pop, clip) => {
        const n = createNormaliser({ zscore: { clip } });
        for (const v of pop) n.update(undefined, v);
        const k = exponent(pop.reduce((m, x) => Math.max(m, Math.abs(x)), 0));
        const scaled = pop.map((v) => times2(v, -k));
        const mean = scaled.reduce((a, b) => a + b, 0) / pop.length;
        const std = Math.sqrt(scaled.reduce((a, b) => a + (b - mean) ** 2, 0) / pop.length);
        if (!(std >= 1e-3)) return;
        for (const x of pop) {
          const z = exactZ(x, pop)!;
          expect(Math.abs(n.normalise(x) - clamp01(z / (2 * clip) + 0.5))).toBeLessThanOrEqual(1e-9);
        }
      }),
      { numRuns: 400 },
    ));

  it('zscore after a value above 1e154 leaves (it used to turn the sum of squares into Infinity, then NaN for good)', () => {
    const n = createNormaliser({ zscore: {} });
    for (const v of [1, 2, 3, 4]) n.update(undefined, v);
    const before = [1, 2, 3, 4].map((v) => n.normalise(v));
    n.update(undefined, 1e200);
    expect(n.normalise(1e200)).toBeGreaterThan(0.5);
    expect(n.normalise(1)).toBeLessThan(0.5);
    n.update(1e200, undefined);
    expect([1, 2, 3, 4].map((v) => n.normalise(v))).toEqual(before);
  });
});

// ---- ScoreBoard --------------------------------------------------------------------------------

const METRICS = ['a', 'b', 'c'];
const WEIGHTS = [1, -1, 0.5, 2, 3, 1e308, -1e308, 5e-324, 0];

const specArb = (normalisers: (NormaliserSpec | undefined)[]): fc.Arbitrary<ScoreSpec> =>
  fc
    .record({
      norms: fc.array(fc.constantFrom(...normalisers), { minLength: 3, maxLength: 3 }),
      comps: fc.array(fc.array(fc.constantFrom(...WEIGHTS), { minLength: 3, maxLength: 3 }), { minLength: 1, maxLength: 2 }),
      profs: fc.array(fc.array(fc.constantFrom(...WEIGHTS), { minLength: 2, maxLength: 2 }), { minLength: 1, maxLength: 2 }),
    })
    .map(({ norms, comps, profs }) => ({
      normalise: Object.fromEntries(norms.flatMap((n, i) => (n ? [[METRICS[i], n]] : []))),
      components: Object.fromEntries(comps.map((ws, i) => [`c${i}`, Object.fromEntries(ws.map((w, m) => [METRICS[m], w]))])),
      profiles: Object.fromEntries(profs.map((ws, i) => [`p${i}`, Object.fromEntries(ws.slice(0, comps.length).map((w, c) => [`c${c}`, w]))])),
    }));

type Row = { e: number; m: number; v: number | null };
const rowsArb = (value: fc.Arbitrary<number>) => fc.array(fc.record({ e: fc.nat({ max: 7 }), m: fc.nat({ max: 2 }), v: fc.option(value, { freq: 8 }) }), { maxLength: 60 });
const id = (e: number) => `e${e}`;

function load(spec: ScoreSpec, rows: readonly Row[], board = new ScoreBoard(spec)): ScoreBoard {
  for (const r of rows) board.set(id(r.e), METRICS[r.m], r.v);
  return board;
}

/** Every score of every entity, and the top-K of every profile. */
function everything(board: ScoreBoard, spec: ScoreSpec, ids: readonly string[]) {
  return { scores: ids.map((e) => board.scores(e)), top: Object.keys(spec.profiles).map((p) => board.topK(p, 100)) };
}

describe('ScoreBoard with extreme values and weights', () => {
  it('never NaN: each top-K is ordered, and holds every entity with the score scores() gives', () =>
    fc.assert(
      fc.property(specArb(ALL), rowsArb(extremeValue), (spec, rows) => {
        const board = load(spec, rows);
        for (const p of Object.keys(spec.profiles)) {
          const top = board.topK(p, 100);
          expect(top.length).toBe(board.size);
          for (const t of top) {
            expect(Number.isNaN(t.score)).toBe(false);
            expect(board.score(t.id, p)).toBe(t.score);
          }
          expect([...top].sort(compareRanked)).toEqual(top);
        }
      }),
      { numRuns: 300 },
    ));

  it('raw values (identity): each score is the exact weighted sum within rounding of its terms, ±Infinity only when the exact score is past 1.8e308', () =>
    fc.assert(
      fc.property(specArb([undefined]), rowsArb(extremeValue), (spec, rows) => {
        const board = load(spec, rows);
        const current = new Map<string, Map<string, number>>();
        for (const r of rows) {
          if (!current.has(id(r.e))) current.set(id(r.e), new Map());
          if (r.v === null) current.get(id(r.e))!.delete(METRICS[r.m]);
          else current.get(id(r.e))!.set(METRICS[r.m], r.v);
        }
        for (const [e, vals] of current) {
          if (!board.has(e)) continue;
          for (const [p, comps] of Object.entries(spec.profiles)) {
            // Components exactly (BigInts of 2^-2148 units), then rounded to the double each one
            // is (kept exact when past the range, where the board keeps a wide one); the profile is
            // their weighted sum (units 2^-3222). Σ|terms| bounds the rounding.
            // Two candidates: the sum of the components as doubles (the plain path), and of the
            // components unrounded (the wide path the board takes when the plain sum is not
            // finite: a component far below the subnormals times a weight of 1e308 counts there).
            let exact = 0n;
            let exactWide = 0n;
            let abs = 0n;
            const UNITS = 2n ** 2148n; // a double's big() in 2^-3222 units
            for (const [c, wc] of Object.entries(comps)) {
              let comp = 0n;
              let compAbs = 0n;
              for (const [m, wm] of Object.entries(spec.components[c])) {
                const t = big(wm) * big(vals.get(m) ?? 0);
                comp += t;
                compAbs += t < 0n ? -t : t;
              }
              const rounded = toDouble(comp, 1n, -2148);
              const got = board.scores(e)!.components[c];
              const cUnits = 2n ** 1074n;
              const cSlack = (d: bigint) => (d < 0n ? -d : d) * 2n ** 52n <= 8n * compAbs || (d < 0n ? -d : d) <= cUnits;
              // Infinity when the exact component is past the range, or within rounding of it
              // (1e308·(2^53 − 1) against 1e308·2^53: the products round by more than the result).
              const cEdge = (got > 0 ? 1n : -1n) * big(M) * cUnits;
              const cNear = Number.isFinite(got) ? cSlack(big(got) * cUnits - comp) : got > 0 ? comp >= cEdge || cSlack(cEdge - comp) : comp <= cEdge || cSlack(cEdge - comp);
              if (!cNear) throw new Error(`${c} of ${e} is ${got}, exact ${rounded}`);
              // The profile is checked against the components the board has (each just checked
              // against the exact one): a subnormal component is one rounding step off at most, and
              // a weight of 1e308 makes that step 5e-16 in the profile.
              const used = Number.isFinite(got) ? big(got) * cUnits : comp;
              const t = big(wc) * used;
              exact += t;
              exactWide += big(wc) * comp;
              abs += (t < 0n ? -t : t) + (wc === 0 ? 0n : (big(Math.abs(wc)) * compAbs));
            }
            const want = toDouble(exact, 1n, -3 * 1074);
            const got = board.score(e, p)!;
            // within a few roundings of the largest term: |got − exact| · 2^52 ≤ 8 · Σ|terms| (or a subnormal step)
            const slack = (d: bigint) => (d < 0n ? -d : d) * 2n ** 52n <= 8n * abs || (d < 0n ? -d : d) <= UNITS;
            const near = (x: bigint) => {
              if (Number.isFinite(got)) return slack(big(got) * UNITS - x);
              const edge = (got > 0 ? 1n : -1n) * big(M) * UNITS;
              return got > 0 ? x >= edge || slack(edge - x) : x <= edge || slack(edge - x);
            };
            if (!near(exact) && !near(exactWide)) throw new Error(`${p} of ${e} is ${got}, exact ${want} (components unrounded: ${toDouble(exactWide, 1n, -3 * 1074)})`);
          }
        }
      }),
      { numRuns: 300 },
    ));

  it('static normalisers: an entity with hostile values never changes another entity\'s scores', () =>
    fc.assert(
      fc.property(specArb([undefined, ...STATIC]), rowsArb(fc.integer({ min: -100, max: 100 })), rowsArb(extremeValue), fc.nat(), (spec, ordinary, hostile, seed) => {
        // hostile rows go to entities h0..h7, interleaved with the ordinary rows
        const tagged = hostile.map((r) => ({ ...r, e: r.e + 100 }));
        const mixed: Row[] = [];
        let j = 0;
        ordinary.forEach((r, i) => {
          mixed.push(r);
          if ((seed + i) % 2 === 0 && j < tagged.length) mixed.push(tagged[j++]);
        });
        mixed.push(...tagged.slice(j));
        const a = load(spec, mixed);
        const b = load(spec, ordinary);
        const ids = [...new Set(ordinary.map((r) => id(r.e)))];
        expect(ids.map((e) => a.scores(e))).toEqual(ids.map((e) => b.scores(e)));
      }),
      { numRuns: 300 },
    ));

  it('any normalisers: once the hostile entities are removed, every score and top-K equals a board that never had them', () =>
    fc.assert(
      fc.property(specArb(ALL), rowsArb(fc.integer({ min: -100, max: 100 })), rowsArb(extremeValue), (spec, ordinary, hostile) => {
        const a = load(spec, [...ordinary.slice(0, 20), ...hostile.map((r) => ({ ...r, e: r.e + 100 })), ...ordinary.slice(20)]);
        for (const r of hostile) a.remove(id(r.e + 100));
        const b = load(spec, ordinary);
        const ids = [...new Set(ordinary.map((r) => id(r.e)))];
        expect(everything(a, spec, ids)).toEqual(everything(b, spec, ids));
        // and a snapshot of it restores to the same
        const c = new ScoreBoard(spec);
        c.restore(a.snapshot());
        expect(everything(c, spec, ids)).toEqual(everything(b, spec, ids));
      }),
      { numRuns: 300 },
    ));

  it('a score past the range is ±Infinity, ranks first or last, and never NaN (1e308·1e308 − 1e308·1e308 used to be NaN and throw in the ranking)', () => {
    const spec: ScoreSpec = { components: { c: { a: 1e308, b: -1e308 } }, profiles: { p: { c: 1 } } };
    const board = new ScoreBoard(spec);
    board.update('x', { a: 1e308, b: 1e308 });
    board.update('y', { a: 1e308, b: 1 });
    board.update('z', { a: 1, b: 2 });
    expect(board.score('x', 'p')).toBe(0);
    expect(board.score('y', 'p')).toBe(Infinity);
    expect(board.score('z', 'p')).toBe(-1e308);
    expect(board.topK('p', 3).map((t) => t.id)).toEqual(['y', 'x', 'z']);
  });
});
