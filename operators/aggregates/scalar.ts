/**
 * count, sum, min, max and mean over the values of a window's samples.
 *
 * sum and mean keep an exact sum (exact-sum.ts), so both are the correctly rounded exact result,
 * bit-identical whatever the arrival order and however partial states were merged. min, max and
 * mean are null for an empty window; sum is null only if the exact sum is beyond the double range
 * (whatever the order: partial sums never overflow, see exact-sum.ts).
 *
 *   const acc = mean.create();
 *   mean.add(acc, { metric: 'latency', value: 12.5, ts: 1_700_000_000_000 });
 *   mean.result(acc); // 12.5
 */
import type { Aggregator } from '../aggregate.js';
import type { Sample } from '../sample.js';
import { StateReader } from './codec.js';
import { emptySum, sumAdd, sumDivide, sumFromJson, sumMerge, sumToJson, sumValue, type ExactSum } from './exact-sum.js';

export interface Count {
  n: number;
}

/** How many samples the window received. */
export const count: Aggregator<Sample, Count, number> = {
  create: () => ({ n: 0 }),
  add(acc) {
    acc.n++;
    return acc;
  },
  merge(a, b) {
    a.n += b.n;
    return a;
  },
  result: (acc) => acc.n,
  serialize: (acc) => String(acc.n),
  deserialize(text) {
    const r: StateReader = new StateReader('count', text);
    if (!/^\d+$/.test(text)) r.fail('expected a non-negative integer');
    return { n: r.count(Number(text), 'count') };
  },
};

/** The exact sum of the values, correctly rounded; 0 when empty, null when it is beyond the double range (±1.8e308). */
export const sum: Aggregator<Sample, ExactSum, number | null> = {
  create: emptySum,
  add: (acc, s) => sumAdd(acc, s.value),
  merge: sumMerge,
  result: (acc) => finiteOrNull(sumValue(acc)),
  serialize: (acc) => JSON.stringify(sumToJson(acc)),
  deserialize(text) {
    const r: StateReader = new StateReader('sum', text);
    return sumFromJson(r.json(), (what) => r.fail(what));
  },
};

export interface Extreme {
  /** null until the first sample. */
  value: number | null;
}

function extreme(name: 'min' | 'max', pick: (a: number, b: number) => number): Aggregator<Sample, Extreme, number | null> {
  return {
    create: () => ({ value: null }),
    add(acc, s) {
      const v = s.value + 0; // -0 becomes 0: JSON has no -0, so states round-trip exactly
      acc.value = acc.value === null ? v : pick(acc.value, v);
      return acc;
    },
    merge(a, b) {
      if (b.value !== null) a.value = a.value === null ? b.value : pick(a.value, b.value);
      return a;
    },
    result: (acc) => acc.value,
    serialize: (acc) => JSON.stringify(acc.value),
    deserialize(text) {
      const r: StateReader = new StateReader(name, text);
      const v = r.numberOrNull(r.json(), name);
      return { value: v === null ? null : v + 0 };
    },
  };
}

/** The smallest value; null when empty. */
export const min = extreme('min', Math.min);
/** The largest value; null when empty. */
export const max = extreme('max', Math.max);

export interface Mean {
  sum: ExactSum;
  n: number;
}

/**
 * The exact sum divided by the count (correctly rounded sum, one division); null when empty. A
 * sum past the double range is divided in scaled form, so the mean of finite values is never null.
 */
export const mean: Aggregator<Sample, Mean, number | null> = {
  create: () => ({ sum: emptySum(), n: 0 }),
  add(acc, s) {
    sumAdd(acc.sum, s.value);
    acc.n++;
    return acc;
  },
  merge(a, b) {
    sumMerge(a.sum, b.sum);
    a.n += b.n;
    return a;
  },
  result: (acc) => (acc.n === 0 ? null : finiteOrNull(sumDivide(acc.sum, acc.n))),
  serialize: (acc) => JSON.stringify([sumToJson(acc.sum), acc.n]),
  deserialize(text) {
    const r: StateReader = new StateReader('mean', text);
    const [partials, n] = r.tuple(['sum', 'count']);
    const acc = { sum: sumFromJson(partials, (what) => r.fail(`field 1 (sum): ${what}`)), n: r.count(n, 'field 2 (count)') };
    if (acc.n === 0 && (acc.sum.overflow || acc.sum.carry !== 0 || sumValue(acc.sum) !== 0)) r.fail('a count of 0 with a non-zero sum');
    return acc;
  },
};

/** v when finite (−0 as 0: JSON has no −0), else null. */
export function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v + 0 : null;
}
