/**
 * Sample variance and standard deviation (n - 1 in the denominator), with Welford's update and
 * Chan et al.'s parallel merge from stats.ts. Both are null below two samples, and null when the
 * figure itself is beyond the double range: the variance from a spread of about 1.3e154 up, the
 * standard deviation only past 1.8e308. Any finite values work: stats.ts scales values past
 * 2^401 or below 2^-400 by a power of two (exactly), so squared deviations never overflow or
 * underflow, and ordinary values are computed exactly as before.
 *
 * Unlike sum and mean these are not bit-identical across arrival orders: Welford's running mean
 * rounds differently in each order. The difference is a few ulps of the spread (the property
 * tests bound it at 1e-9 relative), far below any measurement noise.
 *
 * The state is serialised as [count, mean, m2], or [count, mean, m2, scale] when the values are
 * scaled (mean and m2 are then of the values times 2^-scale). A null mean or m2 is a state written
 * before scaling existed, whose spread overflowed: its result stays null.
 */
import type { Aggregator } from '../aggregate.js';
import type { Sample } from '../sample.js';
import { StateReader } from './codec.js';
import { addMoment, emptyMoments, mergeMoments, momentsResult, type Moments } from './stats.js';

const MAX_SCALE = 700;

function spread(name: 'variance' | 'stddev', pick: 'variance' | 'stddev'): Aggregator<Sample, Moments, number | null> {
  return {
    create: emptyMoments,
    add: (acc, s) => addMoment(acc, s.value),
    merge: mergeMoments,
    result(acc) {
      if (acc.count < 2) return null;
      const v = momentsResult(acc)[pick];
      return v !== null && Number.isFinite(v) ? v : null;
    },
    serialize: (acc) => {
      const fields = [acc.count, finiteOrNull(acc.mean), finiteOrNull(acc.m2)];
      if (acc.scale !== 0) fields.push(acc.scale);
      return JSON.stringify(fields);
    },
    deserialize(text) {
      const r: StateReader = new StateReader(name, text);
      const v = r.json();
      if (!Array.isArray(v)) r.fail('expected a JSON array [count, mean, m2] (or [count, mean, m2, scale])');
      if (v.length !== 3 && v.length !== 4) r.fail(`expected 3 fields [count, mean, m2] (or 4, with scale), got ${v.length}`);
      const [count, mean, m2, scale = 0] = v as unknown[];
      const n = r.count(count, 'field 1 (count)');
      const acc = emptyMoments();
      if (n === 0) {
        if (mean !== 0 || m2 !== 0) r.fail('a count of 0 needs mean 0 and m2 0');
        return acc;
      }
      // Only count, mean, m2 and scale matter here; sum, min and max of the Moments stay unused.
      acc.count = n;
      acc.mean = mean === null ? NaN : r.number(mean, 'field 2 (mean)');
      acc.m2 = m2 === null ? Infinity : r.number(m2, 'field 3 (m2)');
      const s = r.number(scale, 'field 4 (scale)');
      if (!Number.isSafeInteger(s) || Math.abs(s) > MAX_SCALE) r.fail(`field 4 (scale) must be a whole number in [-${MAX_SCALE}, ${MAX_SCALE}], got ${s}`);
      acc.scale = s;
      if (acc.m2 < 0) r.fail(`field 3 (m2), the sum of squared deviations, cannot be negative, got ${acc.m2}`);
      if (n === 1 && acc.m2 !== 0) r.fail('one sample has no spread: m2 must be 0');
      return acc;
    },
  };
}

function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** Sample variance (n - 1); null when fewer than two samples or beyond the double range. */
export const variance = spread('variance', 'variance');
/** Sample standard deviation (n - 1); null when fewer than two samples or beyond the double range. */
export const stddev = spread('stddev', 'stddev');
