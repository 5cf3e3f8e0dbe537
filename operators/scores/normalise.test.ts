import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createNormaliser, SortedValues, type NormaliserSpec } from './normalise.js';

/** A normaliser fed a whole population, as ScoreBoard feeds it entity by entity. */
function withPopulation(spec: NormaliserSpec, values: number[]) {
  const n = createNormaliser(spec);
  for (const v of values) n.update(undefined, v);
  return n;
}

describe('normalisers: values', () => {
  it('minmax with bounds is linear and clamped', () => {
    const n = createNormaliser({ minmax: { min: 0, max: 10 } });
    expect([n.normalise(8), n.normalise(-1), n.normalise(11), n.normalise(0)]).toEqual([0.8, 0, 1, 0]);
    expect(n.running).toBe(false);
  });

  it('log scale: ln(1 + x) / ln(1 + max), 0 for x <= 0, 1 at and above max', () => {
    const n = createNormaliser({ log: { max: 999 } });
    expect(n.normalise(999)).toBe(1);
    expect(n.normalise(5000)).toBe(1);
    expect(n.normalise(0)).toBe(0);
    expect(n.normalise(-3)).toBe(0);
    expect(n.normalise(Math.sqrt(1000) - 1)).toBeCloseTo(0.5, 12);
  });

  it('capped linear: x / cap clamped', () => {
    const n = createNormaliser({ capped: { cap: 10 } });
    expect([n.normalise(5), n.normalise(12), n.normalise(-2)]).toEqual([0.5, 1, 0]);
  });

  it('no normaliser: the raw value', () => {
    expect(createNormaliser(undefined).normalise(-42.5)).toBe(-42.5);
  });

  it('running minmax: missing bounds are the population\'s min and max; one distinct value maps to 0.5', () => {
    expect(withPopulation({ minmax: {} }, [10, 20, 30]).normalise(25)).toBe(0.75);
    expect(withPopulation({ minmax: { min: 0 } }, [10, 20, 40]).normalise(10)).toBe(0.25);
    expect(withPopulation({ minmax: { max: 100 } }, [20, 60]).normalise(60)).toBe(0.5);
    expect(withPopulation({ minmax: {} }, [7, 7]).normalise(7)).toBe(0.5);
  });

  it('zscore: the mean maps to 0.5, +-clip stddev to 1 and 0 (population stddev)', () => {
    const n = withPopulation({ zscore: {} }, [2, 4, 4, 4, 5, 5, 7, 9]); // mean 5, stddev 2
    expect(n.normalise(5)).toBe(0.5);
    expect(n.normalise(9)).toBeCloseTo(2 / 6 + 0.5, 15);
    expect(n.normalise(11)).toBe(1);
    expect(n.normalise(-100)).toBe(0);
    expect(withPopulation({ zscore: { clip: 1 } }, [2, 4, 4, 4, 5, 5, 7, 9]).normalise(6)).toBe(0.75);
    expect(withPopulation({ zscore: {} }, [3]).normalise(3)).toBe(0.5);
  });

  it('percentile rank: lowest 0, highest 1, ties share their mean rank', () => {
    const n = withPopulation({ rank: {} }, [10, 20, 20, 30]);
    expect([n.normalise(10), n.normalise(20), n.normalise(30)]).toEqual([0, 0.5, 1]);
    expect(withPopulation({ rank: {} }, [1]).normalise(1)).toBe(0.5);
  });

  it('refuses parameters that cannot work', () => {
    expect(() => createNormaliser({ minmax: { min: 3, max: 3 } })).toThrow('minmax: max (3) must be greater than min (3)');
    expect(() => createNormaliser({ log: { max: 0 } })).toThrow('log: max must be a positive finite number, got 0');
    expect(() => createNormaliser({ capped: { cap: -1 } })).toThrow('capped: cap must be a positive finite number, got -1');
    expect(() => createNormaliser({ zscore: { clip: 0 } })).toThrow('zscore: clip must be a positive finite number, got 0');
  });
});

describe('normalisers: the population after updates', () => {
  const RUNNING: NormaliserSpec[] = [{ minmax: {} }, { minmax: { min: 2 } }, { minmax: { max: 6 } }, { zscore: {} }, { zscore: { clip: 0.5 } }, { rank: {} }];
  const value = fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: -100, max: 100 }));

  /** Brute force from the current values alone. */
  function brute(spec: NormaliserSpec, x: number, pop: number[]): number {
    const c = (v: number) => Math.min(1, Math.max(0, v));
    if ('minmax' in spec) {
      const lo = spec.minmax.min ?? Math.min(...pop);
      const hi = spec.minmax.max ?? Math.max(...pop);
      return hi > lo ? c((x - lo) / (hi - lo)) : 0.5;
    }
    if ('zscore' in spec) {
      const mean = pop.reduce((a, b) => a + b, 0) / pop.length;
      const variance = pop.reduce((a, b) => a + b * b, 0) / pop.length - mean * mean;
      return variance > 0 ? c((x - mean) / Math.sqrt(variance) / (2 * (spec.zscore.clip ?? 3)) + 0.5) : 0.5;
    }
    if (pop.length < 2) return 0.5;
    return c((pop.filter((v) => v < x).length + (pop.filter((v) => v === x).length - 1) / 2) / (pop.length - 1));
  }

  it('after random replacements, additions and removals every current value normalises as from scratch, and update() says true whenever another value\'s normalisation moved', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...RUNNING),
        fc.array(value, { minLength: 1, maxLength: 12 }),
        fc.array(fc.record({ i: fc.nat(), v: fc.option(value, { freq: 4 }) }), { maxLength: 30 }),
        (spec, initial, updates) => {
          const n = withPopulation(spec, initial);
          const current: (number | undefined)[] = [...initial];
          for (const u of updates) {
            const i = u.i % (current.length + 1); // == length: a new entity
            const before = current[i];
            const after = u.v ?? undefined;
            const others = current.flatMap((v, j) => (j !== i && v !== undefined ? [v] : []));
            const was = others.map((v) => n.normalise(v));
            const said = n.update(before, after);
            current[i] = after;
            const now = others.map((v) => n.normalise(v));
            if (!said) expect(now).toEqual(was);
            const pop = current.filter((v): v is number => v !== undefined);
            for (const v of pop) expect(n.normalise(v)).toBe(brute(spec, v, pop));
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('normalisers: change detection', () => {
  it('zscore: a shift that keeps the stddev still moves the others', () => {
    const n = withPopulation({ zscore: {} }, [0, 2]); // mean 1, stddev 1
    expect(n.update(0, 4)).toBe(true); // {2, 4}: mean 3, stddev 1
    expect(n.normalise(2)).toBeCloseTo(1 / 3, 15);
  });

  it('rank: moving past exactly one other value moves it; moving within a gap moves nobody', () => {
    const n = withPopulation({ rank: {} }, [1, 5, 9]);
    expect(n.update(1, 3)).toBe(false);
    expect(n.update(3, 6)).toBe(true);
    expect(n.update(6, 5)).toBe(true); // now tied with 5
  });

  it('minmax: only a new min or max changes the others', () => {
    const n = withPopulation({ minmax: {} }, [0, 5, 10]);
    expect(n.update(5, 7)).toBe(false);
    expect(n.update(7, 11)).toBe(true);
    expect(n.update(0, undefined)).toBe(true);
  });
});

describe('SortedValues', () => {
  it('matches a sorted array under inserts and removes', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ add: fc.boolean(), v: fc.integer({ min: -5, max: 5 }) }), { maxLength: 200 }), (ops) => {
        const s = new SortedValues();
        const model: number[] = [];
        for (const op of ops) {
          if (op.add) {
            s.insert(op.v);
            model.push(op.v);
          } else {
            const at = model.indexOf(op.v);
            expect(s.remove(op.v)).toBe(at >= 0);
            if (at >= 0) model.splice(at, 1);
          }
          model.sort((a, b) => a - b);
          expect(s.size).toBe(model.length);
          expect([s.min(), s.max()]).toEqual(model.length ? [model[0], model.at(-1)] : [NaN, NaN]);
          for (const q of [-6, -1, 0, 3, 6]) {
            expect(s.lowerBound(q)).toBe(model.filter((v) => v < q).length);
            expect(s.upperBound(q)).toBe(model.filter((v) => v <= q).length);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
