/**
 * Hostile numbers (issue 5) through TrendTracker and the alert evaluator: window values that are
 * extreme but valid finite doubles (±1.8e308, 5e-324, -0, 2^53 ± 1).
 * - pct is the exact (value − previous) / |previous| correctly rounded, or null when previous is
 *   0 or the fraction is past the double range; change is finite or null; the direction is the
 *   sign of the exact change. Never NaN or ±Infinity (a difference 1e308 − (−1e308) used to make
 *   pct Infinity, which JSON turns into null and the movers ranked as the top).
 * - Movers hold only keys with a pct, in order; a hostile key never changes another key's trend.
 * - Alerts: transitions carry finite values, and a hostile key never changes another key's.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TrendTracker } from './trend.js';
import { AlertEvaluator } from '../alerts/evaluator.js';
import type { AlertTransition } from '../alerts/machine.js';
import { big, extremeValue, toDouble } from '../testing/exact.js';

const M = Number.MAX_VALUE;
const P = 1000;

const updatesArb = fc.array(fc.record({ key: fc.constantFrom('a', 'b', 'c'), w: fc.nat({ max: 5 }), v: extremeValue }), { maxLength: 40 });

describe('TrendTracker with extreme values', () => {
  it('pct is the exact relative change, correctly rounded, or null (previous 0 or past the range); never NaN or Infinity', () =>
    fc.assert(
      fc.property(updatesArb, fc.constantFrom(0, 0.05), (updates, threshold) => {
        const t = new TrendTracker({ periodMs: P, threshold });
        for (const u of updates) {
          const tr = t.update(u.key, u.w * P, u.v);
          if (!tr) continue;
          if (tr.previous === null) {
            expect([tr.change, tr.pct, tr.direction]).toEqual([null, null, null]);
            continue;
          }
          const d = big(tr.value) - big(tr.previous);
          const change = toDouble(d, 1n, -1074);
          expect(tr.change).toBe(Number.isFinite(change) ? change : null);
          const exact = tr.previous === 0 ? null : toDouble(d, big(Math.abs(tr.previous)), 0);
          if (exact === null || !Number.isFinite(exact)) expect(tr.pct).toBeNull();
          else if (Math.abs(exact) < M * (1 - 1e-15)) {
            // within an ulp or two of the exact fraction (a difference and a division, each rounded)
            if (tr.pct === null || !(Math.abs(tr.pct - exact) <= 4 * Math.abs(exact) * 2 ** -53 + 2 ** -1074)) throw new Error(`pct ${tr.pct}, exact ${exact} (${tr.value} from ${tr.previous})`);
          }
          const sign = d > 0n ? 'rising' : d < 0n ? 'falling' : 'flat';
          if (tr.direction !== 'flat') expect(tr.direction).toBe(sign);
          else expect(sign === 'flat' || (tr.pct !== null && Math.abs(tr.pct) < threshold)).toBe(true);
        }
        const m = t.movers(10);
        for (const side of [m.rising, m.falling]) for (const tr of side) expect(tr.pct !== null && Number.isFinite(tr.pct)).toBe(true);
        expect(m.rising.map((tr) => tr.pct)).toEqual([...m.rising.map((tr) => tr.pct)].sort((x, y) => y! - x!));
        expect(m.falling.map((tr) => tr.pct)).toEqual([...m.falling.map((tr) => tr.pct)].sort((x, y) => x! - y!));
      }),
      { numRuns: 500 },
    ));

  it('a hostile key never changes the trend of another key', () =>
    fc.assert(
      fc.property(fc.array(fc.record({ key: fc.constantFrom('a', 'b'), w: fc.nat({ max: 5 }), v: fc.integer({ min: -100, max: 100 }) }), { maxLength: 30 }), updatesArb, (ordinary, hostile) => {
        const a = new TrendTracker({ periodMs: P });
        const b = new TrendTracker({ periodMs: P });
        // the hostile key's windows stay at or before the others' latest, so "latest window" is the same
        const last = Math.max(0, ...ordinary.map((u) => u.w));
        ordinary.forEach((u, i) => {
          a.update(u.key, u.w * P, u.v);
          b.update(u.key, u.w * P, u.v);
          const h = hostile[i];
          if (h) a.update('h', Math.min(h.w, last) * P, h.v);
        });
        for (const k of ['a', 'b']) expect(a.get(k)).toEqual(b.get(k));
      }),
      { numRuns: 300 },
    ));

  it('from 1e308 to −1e308 is −200 % (the difference overflows; its halves do not), and from 5e-324 to 1 has no pct', () => {
    const t = new TrendTracker({ periodMs: P });
    t.update('k', 0, 1e308);
    expect(t.update('k', P, -1e308)).toMatchObject({ change: null, pct: -2, direction: 'falling' });
    t.update('j', 0, 5e-324);
    expect(t.update('j', P, 1)).toMatchObject({ change: 1, pct: null, direction: 'rising' });
    expect(t.movers(5).rising.map((tr) => tr.key)).toEqual([]);
  });
});

describe('AlertEvaluator with extreme values', () => {
  it('transitions carry finite values, and a hostile key never changes another key\'s transitions', () =>
    fc.assert(
      fc.property(
        fc.constantFrom('>', '>=', '<', '<=') as fc.Arbitrary<'>' | '>=' | '<' | '<='>,
        fc.constantFrom(0, 1e308, -1e308, 5e-324, 2 ** 53),
        fc.array(fc.record({ key: fc.constantFrom('a', 'h'), v: extremeValue }), { maxLength: 40 }),
        (op, threshold, obs) => {
          const rule = { name: 'r', field: 'x', op, threshold, forMs: 0 };
          const all = new AlertEvaluator([rule]);
          const alone = new AlertEvaluator([rule]);
          const got: AlertTransition[] = [];
          const want: AlertTransition[] = [];
          obs.forEach((o, i) => {
            all.observe({ key: o.key, ts: i, values: { x: o.v } }, (t) => got.push(t));
            if (o.key === 'a') alone.observe({ key: 'a', ts: i, values: { x: o.v } }, (t) => want.push(t));
          });
          for (const t of got) expect(Number.isFinite(t.value)).toBe(true);
          expect(got.filter((t) => t.key === 'a')).toEqual(want);
        },
      ),
      { numRuns: 300 },
    ));
});
