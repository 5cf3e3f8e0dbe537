/**
 * first and last by event time: the value of the sample with the smallest (first) or largest
 * (last) `ts`. Samples that share that `ts` are told apart by value: the larger value wins, for
 * first and last alike. So the result is a function of the set of samples, whatever the arrival
 * order or the merge order. Null for an empty window.
 *
 *   first.add(acc, { metric: 'price', value: 101.5, ts: 1_700_000_000_000 });
 */
import type { Aggregator } from '../aggregate.js';
import type { Sample } from '../sample.js';
import { StateReader } from './codec.js';

export interface Pick {
  /** Event time of the kept sample; null when empty. */
  ts: number | null;
  value: number;
}

function byTime(name: 'first' | 'last', later: boolean): Aggregator<Sample, Pick, number | null> {
  /** Does (ts, value) beat the kept sample? */
  const beats = (acc: Pick, ts: number, value: number) =>
    acc.ts === null || (later ? ts > acc.ts : ts < acc.ts) || (ts === acc.ts && value > acc.value);
  return {
    create: () => ({ ts: null, value: 0 }),
    add(acc, s) {
      if (beats(acc, s.ts, s.value)) {
        acc.ts = s.ts;
        acc.value = s.value + 0; // -0 becomes 0: JSON has no -0, so states round-trip exactly
      }
      return acc;
    },
    merge(a, b) {
      if (b.ts !== null && beats(a, b.ts, b.value)) {
        a.ts = b.ts;
        a.value = b.value;
      }
      return a;
    },
    result: (acc) => (acc.ts === null ? null : acc.value),
    serialize: (acc) => (acc.ts === null ? 'null' : JSON.stringify([acc.ts, acc.value])),
    deserialize(text) {
      const r: StateReader = new StateReader(name, text);
      const v = r.json();
      if (v === null) return { ts: null, value: 0 };
      if (!Array.isArray(v) || v.length !== 2) r.fail('expected null or [ts, value]');
      return { ts: r.number(v[0], 'field 1 (ts)'), value: r.number(v[1], 'field 2 (value)') + 0 };
    },
  };
}

/** The value of the earliest sample by event time (ties: the larger value); null when empty. */
export const first = byTime('first', false);
/** The value of the latest sample by event time (ties: the larger value); null when empty. */
export const last = byTime('last', true);
