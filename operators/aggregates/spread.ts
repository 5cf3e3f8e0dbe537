/**
 * Sample variance and standard deviation (n - 1 in the denominator), with Welford's update and
 * Chan et al.'s parallel merge from stats.ts. Both are null below two samples.
 *
 * Unlike sum and mean these are not bit-identical across arrival orders: Welford's running mean
 * rounds differently in each order. The difference is a few ulps of the spread (the property
 * tests bound it at 1e-9 relative), far below any measurement noise.
 */
import type { Aggregator } from '../aggregate.js';
import type { Sample } from '../sample.js';
import { excerpt } from './codec.js';
import { addMoment, emptyMoments, mergeMoments, moments, momentsResult, type Moments } from './stats.js';

function spread(name: 'variance' | 'stddev', read: (m: Moments) => number | null): Aggregator<Sample, Moments, number | null> {
  return {
    create: emptyMoments,
    add: (acc, s) => addMoment(acc, s.value),
    merge: mergeMoments,
    result: read,
    serialize: (acc) => moments.serialize(acc),
    deserialize(text) {
      let acc: Moments;
      try {
        acc = moments.deserialize(text);
      } catch (err) {
        throw new Error(`${name}: cannot deserialize ${excerpt(text)}: ${(err as Error).message}`);
      }
      if (acc.count === 0 && acc.m2 !== 0) throw new Error(`${name}: cannot deserialize ${excerpt(text)}: a count of 0 with a non-zero spread`);
      if (acc.m2 < 0) throw new Error(`${name}: cannot deserialize ${excerpt(text)}: the sum of squared deviations (field 6) is negative`);
      return acc;
    },
  };
}

/** Sample variance (n - 1); null when fewer than two samples. */
export const variance = spread('variance', (m) => momentsResult(m).variance);
/** Sample standard deviation (n - 1); null when fewer than two samples. */
export const stddev = spread('stddev', (m) => momentsResult(m).stddev);
