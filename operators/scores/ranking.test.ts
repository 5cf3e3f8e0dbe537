import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compareRanked, Ranking, type Ranked } from './ranking.js';

type Op = { kind: 'insert'; id: string; score: number } | { kind: 'remove'; pick: number; wrongScore: boolean } | { kind: 'rebuild' };

const ops = fc.array(
  fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('insert' as const), id: fc.stringMatching(/^[a-e]{1,2}$/), score: fc.integer({ min: -5, max: 5 }).map((x) => x / 2) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove' as const), pick: fc.nat(), wrongScore: fc.boolean() }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'rebuild' as const }) },
  ),
  { maxLength: 200 },
);

describe('Ranking', () => {
  it('matches a sorted array under inserts, removes and rebuilds, with tiny blocks so blocks split and vanish', () => {
    fc.assert(
      fc.property(ops, fc.integer({ min: 2, max: 6 }), fc.integer({ min: 0, max: 30 }), (list, maxBlock, k) => {
        const r = new Ranking(maxBlock);
        let model: Ranked[] = [];
        for (const op of list) {
          if (op.kind === 'insert') {
            if (model.some((m) => m.id === op.id)) continue; // one entry per id, as ScoreBoard keeps it
            r.insert(op.id, op.score);
            model.push({ id: op.id, score: op.score });
          } else if (op.kind === 'remove') {
            if (model.length === 0) {
              expect(r.remove('zz', 0)).toBe(false);
              continue;
            }
            const victim = model[op.pick % model.length];
            if (op.wrongScore) {
              expect(r.remove(victim.id, victim.score + 0.25)).toBe(false);
              continue;
            }
            expect(r.remove(victim.id, victim.score)).toBe(true);
            model = model.filter((m) => m !== victim);
          } else {
            r.rebuild(
              model.map((m) => m.id),
              model.map((m) => m.score),
            );
          }
          model.sort(compareRanked);
          expect(r.size).toBe(model.length);
          expect(r.top(k)).toEqual(model.slice(0, k));
        }
        expect([...r.entries()]).toEqual(model);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps order across many default-size blocks', () => {
    const r = new Ranking();
    const model = new Map<string, number>();
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 6000; i++) {
      const id = `e${Math.floor(rand() * 3000)}`;
      const old = model.get(id);
      if (old !== undefined) expect(r.remove(id, old)).toBe(true);
      const s = Math.floor(rand() * 100);
      r.insert(id, s);
      model.set(id, s);
    }
    const expected = [...model].map(([id, score]) => ({ id, score })).sort(compareRanked);
    expect(r.size).toBe(expected.length);
    expect([...r.entries()]).toEqual(expected);
    expect(r.top(50)).toEqual(expected.slice(0, 50));
  });

  it('refuses NaN scores, naming the id', () => {
    expect(() => new Ranking().insert('film-1', NaN)).toThrow(/score of "film-1" is NaN/);
  });
});
