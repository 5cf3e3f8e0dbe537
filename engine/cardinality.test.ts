import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { refusalReason, SeriesBudget, type DecisionWindow } from './cardinality.js';

interface Ev {
  metric: string;
  key: string;
  w: DecisionWindow;
}

const win = fc.integer({ min: 0, max: 5 }).map<DecisionWindow>((i) => ({ name: i % 2 ? '1m' : '10s', start: i * 60_000, final: i * 60_000 + 90_000 }));
const ev = fc.record({ metric: fc.constantFrom('a', 'b'), key: fc.constantFrom('k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'ä', '😀'), w: win });

/**
 * Brute force: per (metric, window name, start), the keys admitted; a new key past `max` is
 * refused, and so is one past `maxTotal` (metric, key) pairs of all metrics in (window name, start).
 */
function model(events: Ev[], max: number, maxTotal = 0): boolean[] {
  const sets = new Map<string, Set<string>>();
  return events.map((e) => {
    const id = `${e.metric}|${e.w.name}|${e.w.start}`;
    let s = sets.get(id);
    if (!s) sets.set(id, (s = new Set()));
    if (s.has(e.key)) return true;
    if (max > 0 && s.size >= max) return false;
    let total = 0;
    for (const [k, v] of sets) if (k.endsWith(`|${e.w.name}|${e.w.start}`)) total += v.size;
    if (maxTotal > 0 && total >= maxTotal) return false;
    s.add(e.key);
    return true;
  });
}

describe('SeriesBudget (limits.maxSeriesPerWindow)', () => {
  it('admits exactly what the brute-force model admits; the reason names metric, count, window, limit and key', () => {
    fc.assert(
      fc.property(fc.array(ev, { maxLength: 80 }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 7 }), (events, max, maxTotal) => {
        const b = new SeriesBudget(max, maxTotal);
        const got = events.map((e) => {
          const refused = b.admit(e.metric, e.key, e.w);
          if (refused !== null) {
            const r = refusalReason(refused, e.key, e.metric);
            if (refused.bound === 'metric') {
              expect(r).toContain(`metric "${e.metric}" already has ${max} open series in window ${e.w.name} starting ${new Date(e.w.start).toISOString()}`);
              expect(r).toContain(`limits.maxSeriesPerWindow ${max}`);
            } else {
              expect(r).toContain(`window ${e.w.name} starting ${new Date(e.w.start).toISOString()} already has ${maxTotal} open series over all metrics`);
              expect(r).toContain(`limits.maxSeriesTotal ${maxTotal}); metric "${e.metric}"`);
            }
            expect(r).toContain(`key ${JSON.stringify(e.key)}`);
          }
          return refused === null;
        });
        expect(got).toEqual(model(events, max, maxTotal));
        expect(b.rejected).toBe(got.filter((x) => !x).length);
      }),
      { numRuns: 500 },
    );
  });

  it('dropping the windows the watermark made final changes no decision (their later events are late, never judged)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(ev, fc.integer({ min: 0, max: 30_000 })), { maxLength: 80 }), fc.integer({ min: 1, max: 3 }), (steps, max) => {
        const b = new SeriesBudget(max);
        let wm = 0;
        const judged: Ev[] = [];
        const got: boolean[] = [];
        for (const [e, dt] of steps) {
          wm += dt;
          b.evict(wm);
          if (e.w.final <= wm) continue; // late: the engine never asks
          judged.push(e);
          got.push(b.admit(e.metric, e.key, e.w) === null);
        }
        expect(got).toEqual(model(judged, max));
        b.evict(Infinity);
        expect(b.size).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('a replay from a checkpoint decides every event it does not skip as the first run did', () => {
    // The checkpoint after message c makes durable every window final at or before D, and D is at
    // least the final time of every event admitted before c (those messages' windows are final and
    // flushed). The replay reads from c, skips events whose decision window is final at D (their
    // rows are complete; refusals among them had their dead letters stored before the checkpoint).
    fc.assert(
      fc.property(fc.array(ev, { minLength: 1, maxLength: 80 }), fc.nat(), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 5 }), (events, cut, extra, max, maxTotal) => {
        const c = cut % (events.length + 1);
        const first = new SeriesBudget(max, maxTotal);
        const decisions = events.map((e) => first.admit(e.metric, e.key, e.w));
        const admittedBefore = events.slice(0, c).filter((_, i) => decisions[i] === null);
        const D = Math.max(-Infinity, ...admittedBefore.map((e) => e.w.final)) + extra * 60_000;
        const replay = new SeriesBudget(max, maxTotal);
        for (let i = c; i < events.length; i++) {
          const e = events[i];
          if (e.w.final <= D) continue;
          const again = replay.admit(e.metric, e.key, e.w);
          expect(again && refusalReason(again, e.key, e.metric), `event ${i}`).toBe(decisions[i] && refusalReason(decisions[i]!, e.key, e.metric));
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('the total bound: 10^5 metrics of one key each stop at limits.maxSeriesTotal; keys already open, and other windows, go on', () => {
    const w: DecisionWindow = { name: '1m', start: 0, final: 90_000 };
    const b = new SeriesBudget(100_000, 1_000);
    let refused = 0;
    for (let i = 0; i < 100_000; i++) if (b.admit(`m${i}`, 'k', w) !== null) refused++;
    expect(refused).toBe(99_000);
    expect(b.size).toBe(1_000);
    expect(b.admit('m5', 'k', w)).toBeNull();
    const r = b.admit('m5', 'k2', w)!;
    expect(refusalReason(r, 'k2', 'm5')).toBe(
      'cardinality: window 1m starting 1970-01-01T00:00:00.000Z already has 1000 open series over all metrics (limits.maxSeriesTotal 1000); metric "m5" key "k2" would be a new one',
    );
    expect(b.admit('m5', 'k2', { name: '10s', start: 0, final: 90_000 })).toBeNull();
    expect(b.size).toBe(1_001);
    b.evict(90_000);
    expect(b.size).toBe(0);
    expect(b.admit('m99999', 'k', w)).toBeNull(); // the engine never asks again (late), but the count is gone
    expect(b.admit('m99999', 'k', { name: '1m', start: 60_000, final: 150_000 })).toBeNull();
  });

  it('0 turns the bound off; a key already open is always admitted; metrics and windows are counted apart', () => {
    const off = new SeriesBudget(0);
    const w: DecisionWindow = { name: '1m', start: 0, final: 90_000 };
    for (let i = 0; i < 1000; i++) expect(off.admit('m', `k${i}`, w)).toBeNull();
    const b = new SeriesBudget(2);
    expect(b.admit('m', 'a', w)).toBeNull();
    expect(b.admit('m', 'b', w)).toBeNull();
    expect(refusalReason(b.admit('m', 'c', w)!, 'c')).toMatch(/^cardinality: metric "m" already has 2 open series in window 1m starting 1970-01-01T00:00:00.000Z \(limits.maxSeriesPerWindow 2\); key "c" would be a new one$/);
    expect(b.admit('m', 'a', w)).toBeNull();
    expect(b.admit('other', 'c', w)).toBeNull();
    expect(b.admit('m', 'c', { ...w, name: '10s' })).toBeNull();
    expect(b.admit('m', 'c', { name: '1m', start: 60_000, final: 150_000 })).toBeNull();
    expect(b.size).toBe(5);
    b.evict(90_000);
    expect(b.size).toBe(1);
    expect(b.admit('m', 'x'.repeat(300), { name: '1m', start: 60_000, final: 150_000 })).toBeNull();
    expect(refusalReason(b.admit('m', 'y'.repeat(300), { name: '1m', start: 60_000, final: 150_000 })!, 'y'.repeat(300))).toMatch(/key "y{64}…" would be a new one$/);
  });
});
