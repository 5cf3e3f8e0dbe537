/**
 * Sample variance and standard deviation (n - 1 in the denominator), with Welford's update and
 * Chan et al.'s parallel merge from stats.ts. Both are null below two samples, and null when the
 * spread leaves the double range (values near ±1e154 and beyond square past 1.8e308).
 *
 * Unlike sum and mean these are not bit-identical across arrival orders: Welford's running mean
 * rounds differently in each order. The difference is a few ulps of the spread (the property
 * tests bound it at 1e-9 relative), far below any measurement noise.
 *
 * The state is serialised as [count, mean, m2] (null for a field that overflowed), not with
 * stats.ts's six-field form, which cannot hold an overflowed m2.
 */
import type { Aggregator } from '../aggregate.js';
import type { Sample } from '../sample.js';
import { StateReader } from './codec.js';
import { addMoment, emptyMoments, mergeMoments, type Moments } from './stats.js';

function spread(name: 'variance' | 'stddev', read: (variance: number) => number): Aggregator<Sample, Moments, number | null> {
  return {
    create: emptyMoments,
    add: (acc, s) => addMoment(acc, s.value),
    merge: mergeMoments,
    result(acc) {
      if (acc.count < 2) return null;
      const v = read(Math.max(0, acc.m2 / (acc.count - 1)));
      return Number.isFinite(v) ? v : null;
    },
    serialize: (acc) => JSON.stringify([acc.count, finiteOrNull(acc.mean), finiteOrNull(acc.m2)]),
    deserialize(text) {
      const r: StateReader = new StateReader(name, text);
      const [count, mean, m2] = r.tuple(['count', 'mean', 'm2']);
      const n = r.count(count, 'field 1 (count)');
      const acc = emptyMoments();
      if (n === 0) {
        if (mean !== 0 || m2 !== 0) r.fail('a count of 0 needs mean 0 and m2 0');
        return acc;
      }
      // Only count, mean and m2 matter here; sum, min and max of the Moments stay unused.
      acc.count = n;
      acc.mean = mean === null ? NaN : r.number(mean, 'field 2 (mean)');
      acc.m2 = m2 === null ? Infinity : r.number(m2, 'field 3 (m2)');
      if (acc.m2 < 0) r.fail(`field 3 (m2), the sum of squared deviations, cannot be negative, got ${acc.m2}`);
      if (n === 1 && acc.m2 !== 0) r.fail('one sample has no spread: m2 must be 0');
      acc.sum = acc.mean * n;
      return acc;
    },
  };
}

function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** Sample variance (n - 1); null when fewer than two samples. */
export const variance = spread('variance', (v) => v);
/** Sample standard deviation (n - 1); null when fewer than two samples. */
export const stddev = spread('stddev', Math.sqrt);
