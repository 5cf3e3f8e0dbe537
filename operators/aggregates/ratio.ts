/**
 * A ratio of two selections of a window's samples: clicks / impressions, hits / (hits + misses),
 * errors / requests. Each side selects samples by metric and/or tag values; a sample may count
 * on both sides. `of: 'count'` (default) counts the selected samples, `of: 'sum'` sums their
 * values (exactly, exact-sum.ts). The result is numerator / denominator, null when the
 * denominator is 0. Both sides are exact, so the result does not depend on arrival or merge order.
 *
 *   ratio({ numerator: { metric: 'clicks' }, denominator: { metric: 'impressions' } })
 *   ratio({ numerator: { tags: { cache: 'hit' } }, denominator: { tags: { cache: ['hit', 'miss'] } } })
 */
import type { Aggregator } from '../aggregate.js';
import type { Sample } from '../sample.js';
import { StateReader } from './codec.js';
import { emptySum, sumAdd, sumFromJson, sumMerge, sumQuotient, sumToJson, sumValue, type ExactSum } from './exact-sum.js';
import { finiteOrNull } from './scalar.js';

/** Which samples a side takes: all listed conditions must hold (a list means "any of these"). */
export interface Selector {
  metric?: string | readonly string[];
  tags?: Readonly<Record<string, string | readonly string[]>>;
}

export interface RatioOptions {
  numerator: Selector;
  denominator: Selector;
  /** 'count' (default): number of selected samples; 'sum': sum of their values. */
  of?: 'count' | 'sum';
}

export interface RatioState {
  num: ExactSum;
  den: ExactSum;
}

const asSet = (v: string | readonly string[]) => new Set(typeof v === 'string' ? [v] : v);

/** A predicate for a selector; throws if it selects nothing at all. */
export function selects(sel: Selector, side: string): (s: Sample) => boolean {
  if (sel.metric === undefined && (sel.tags === undefined || Object.keys(sel.tags).length === 0))
    throw new Error(`ratio: the ${side} must name a metric or tags`);
  const metrics = sel.metric === undefined ? null : asSet(sel.metric);
  const tags = Object.entries(sel.tags ?? {}).map(([name, values]) => [name, asSet(values)] as const);
  return (s) => {
    if (metrics && !metrics.has(s.metric)) return false;
    for (const [name, values] of tags) {
      const v = s.tags?.[name];
      if (v === undefined || !values.has(v)) return false;
    }
    return true;
  };
}

/** numerator / denominator over selected samples; null when the denominator is 0. */
export function ratio(options: RatioOptions): Aggregator<Sample, RatioState, number | null> {
  const inNum = selects(options.numerator, 'numerator');
  const inDen = selects(options.denominator, 'denominator');
  const bySum = options.of === 'sum';
  return {
    create: () => ({ num: emptySum(), den: emptySum() }),
    add(acc, s) {
      const x = bySum ? s.value : 1;
      if (inNum(s)) sumAdd(acc.num, x);
      if (inDen(s)) sumAdd(acc.den, x);
      return acc;
    },
    merge(a, b) {
      sumMerge(a.num, b.num);
      sumMerge(a.den, b.den);
      return a;
    },
    result(acc) {
      // A total with a carry is at least 2^1021 in magnitude, never 0. Sums past the double range
      // are divided in scaled form: the ratio is null only when it is itself out of range.
      if (acc.den.carry === 0 && sumValue(acc.den) === 0) return null;
      return finiteOrNull(sumQuotient(acc.num, acc.den));
    },
    serialize: (acc) => JSON.stringify([sumToJson(acc.num), sumToJson(acc.den)]),
    deserialize(text) {
      const r: StateReader = new StateReader('ratio', text);
      const [num, den] = r.tuple(['numerator', 'denominator']);
      const acc = {
        num: sumFromJson(num, (what) => r.fail(`field 1 (numerator): ${what}`)),
        den: sumFromJson(den, (what) => r.fail(`field 2 (denominator): ${what}`)),
      };
      if (!bySum) {
        for (const [i, side] of [acc.num, acc.den].entries()) {
          const n = sumValue(side);
          if (!Number.isSafeInteger(n) || n < 0) r.fail(`field ${i + 1} must be a count (a non-negative integer) when of is "count", got ${n}`);
        }
      }
      return acc;
    },
  };
}
