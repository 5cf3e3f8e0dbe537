/**
 * Events (or summed values) per unit of time over a window of known length.
 *
 * `result()` gets no window context in the Aggregator contract, so the window length is fixed
 * when the aggregator is made: `rate({ windowMs: 10_000 })` divides the count by 10 s. Pipelines
 * with tumbling or sliding windows have one length per pipeline, so the pipeline builder passes
 * it. Session and global windows have no fixed length: aggregate `count` there and divide by the
 * window's own [start, end) downstream.
 *
 *   const r = rate({ windowMs: 60_000 });             // events per second over 1-minute windows
 *   const bytes = rate({ windowMs: 60_000, of: 'sum' }); // summed values per second
 */
import type { Aggregator } from '../aggregate.js';
import type { Sample } from '../sample.js';
import { count, finiteOrNull, sum, type Count } from './scalar.js';
import { sumValue, sumValueScaled, type ExactSum } from './exact-sum.js';

export interface RateOptions {
  /** The window length in ms (> 0). */
  windowMs: number;
  /** The unit of the rate in ms: 1000 for per second (default), 60_000 for per minute. */
  perMs?: number;
  /** 'count' (default): samples per unit; 'sum': summed values per unit (bytes/s from byte counts). */
  of?: 'count' | 'sum';
}

export type RateState = Count | ExactSum;

/** Count (or sum) per `perMs` over a window of `windowMs`. */
export function rate(options: RateOptions): Aggregator<Sample, RateState, number | null> {
  const { windowMs, perMs = 1000, of = 'count' } = options;
  if (!(windowMs > 0 && Number.isFinite(windowMs))) throw new Error(`rate: windowMs must be a positive number of ms, got ${windowMs}`);
  if (!(perMs > 0 && Number.isFinite(perMs))) throw new Error(`rate: perMs must be a positive number of ms, got ${perMs}`);
  const inner = (of === 'sum' ? sum : count) as Aggregator<Sample, RateState, number | null>;
  return {
    create: inner.create,
    add: inner.add,
    merge: inner.merge,
    result:
      of === 'sum'
        ? (acc) => {
            const s = acc as ExactSum;
            const r = (sumValue(s) * perMs) / windowMs;
            if (Number.isFinite(r) || s.overflow) return finiteOrNull(r);
            // The sum (or sum × per) is past the double range: the rate may still fit.
            return finiteOrNull(((sumValueScaled(s, -64) * perMs) / windowMs) * 2 ** 64);
          }
        : (acc) => ((acc as Count).n * perMs) / windowMs,
    serialize: inner.serialize,
    deserialize(text) {
      try {
        return inner.deserialize(text);
      } catch (err) {
        throw new Error(`rate: ${(err as Error).message}`);
      }
    },
  };
}
