/**
 * Distinct count: exact while the window has seen at most `exactUpTo` distinct items (a Set),
 * then a HyperLogLog estimate (hyperloglog.ts, relative standard error ≈ 1.04/√(2^precision)).
 *
 * What counts as an item (`of`): the sample's value, its metric, or one tag's value ('tag:user');
 * samples without that tag are skipped.
 *
 * Merging is exact and order-free: two exact sets merge into their union (and switch to the
 * sketch if the union passes the bound); a sketch absorbs the other side's items or registers.
 * The state is exact if and only if the true distinct count is at most `exactUpTo`, and the
 * sketch's registers depend only on the set of items, so any partition merged in any order gives
 * the same state as one pass. In sketch mode the estimate is raised to exactUpTo + 1 if it falls
 * below: the true count is known to be larger.
 *
 *   const users = distinct({ of: 'tag:user', exactUpTo: 1000, precision: 12 });
 */
import type { Aggregator } from '../aggregate.js';
import type { Sample } from '../sample.js';
import { StateReader } from './codec.js';
import { hllAddNumber, hllAddString, hllCreate, hllEstimate, hllFromBytes, hllMerge, hllToBytes, type Hll } from './hyperloglog.js';

export type DistinctOf = 'value' | 'metric' | `tag:${string}`;

export interface DistinctOptions {
  /** What is counted: 'value' (default), 'metric' or 'tag:<name>'. */
  of?: DistinctOf;
  /** Count exactly up to this many distinct items (default 1000), then estimate. */
  exactUpTo?: number;
  /** HyperLogLog precision p: 2^p registers (default 12: 4096 registers, 1.6 % standard error). */
  precision?: number;
}

type Item = number | string;

export interface DistinctState {
  /** The exact items, or null once the state is a sketch. */
  items: Set<Item> | null;
  hll: Hll | null;
}

export const DEFAULT_EXACT_UP_TO = 1000;
export const DEFAULT_PRECISION = 12;

/** Distinct values, metrics or tag values: exact below the bound, HyperLogLog above. */
export function distinct(options: DistinctOptions = {}): Aggregator<Sample, DistinctState, number> {
  const { of = 'value', exactUpTo = DEFAULT_EXACT_UP_TO, precision = DEFAULT_PRECISION } = options;
  if (!Number.isSafeInteger(exactUpTo) || exactUpTo < 0) throw new Error(`distinct: exactUpTo must be a non-negative integer, got ${exactUpTo}`);
  hllCreate(precision); // validates the precision
  const tag = of.startsWith('tag:') ? of.slice(4) : null;
  if (tag === '') throw new Error('distinct: "tag:" needs a tag name, e.g. "tag:user"');
  if (tag === null && of !== 'value' && of !== 'metric') throw new Error(`distinct: of must be "value", "metric" or "tag:<name>", got "${of}"`);
  const numeric = of === 'value';
  const name = 'distinct';

  const addItem = (acc: DistinctState, item: Item) => {
    if (acc.items) {
      acc.items.add(item);
      if (acc.items.size > exactUpTo) toSketch(acc);
    } else if (typeof item === 'number') hllAddNumber(acc.hll!, item);
    else hllAddString(acc.hll!, item);
  };
  const toSketch = (acc: DistinctState) => {
    const h = hllCreate(precision);
    for (const item of acc.items!) {
      if (typeof item === 'number') hllAddNumber(h, item);
      else hllAddString(h, item);
    }
    acc.items = null;
    acc.hll = h;
  };

  return {
    create: () => ({ items: new Set(), hll: null }),
    add(acc, s) {
      if (tag !== null) {
        const v = s.tags?.[tag];
        if (v !== undefined) addItem(acc, v);
      } else addItem(acc, numeric ? s.value + 0 : s.metric);
      return acc;
    },
    merge(a, b) {
      if (b.items) {
        for (const item of b.items) addItem(a, item);
        return a;
      }
      if (a.items) {
        const mine = a.items;
        a.items = null;
        a.hll = hllMerge(hllCreate(precision), b.hll!);
        for (const item of mine) addItem(a, item);
        return a;
      }
      hllMerge(a.hll!, b.hll!);
      return a;
    },
    result(acc) {
      if (acc.items) return acc.items.size;
      return Math.max(exactUpTo + 1, Math.round(hllEstimate(acc.hll!)));
    },
    serialize(acc) {
      if (acc.items) {
        const items = [...acc.items];
        if (numeric) (items as number[]).sort((x, y) => x - y);
        else items.sort();
        return `x:${JSON.stringify(items)}`;
      }
      return `h:${precision}:${Buffer.from(hllToBytes(acc.hll!)).toString('base64')}`;
    },
    deserialize(text) {
      const r: StateReader = new StateReader(name, text);
      if (typeof text !== 'string') r.fail(`expected a string, got ${typeof text}`);
      if (text.startsWith('x:')) {
        let items: unknown;
        try {
          items = JSON.parse(text.slice(2));
        } catch {
          r.fail('the exact items after "x:" are not JSON');
        }
        if (!Array.isArray(items)) r.fail('expected a JSON array of items after "x:"');
        const set = new Set<Item>();
        items.forEach((item, i) => {
          if (numeric ? typeof item !== 'number' || !Number.isFinite(item) : typeof item !== 'string')
            r.fail(`item ${i} must be a ${numeric ? 'finite number' : 'string'} (distinct of ${of}), got ${JSON.stringify(item)}`);
          set.add(numeric ? (item as number) + 0 : (item as string));
        });
        if (set.size !== items.length) r.fail('an item is listed twice');
        if (set.size > exactUpTo) r.fail(`${set.size} exact items, more than exactUpTo (${exactUpTo})`);
        return { items: set, hll: null };
      }
      const m = /^h:(\d+):([A-Za-z0-9+/]*={0,2})$/.exec(text);
      if (!m) r.fail('expected "x:<JSON items>" or "h:<precision>:<base64 registers>"');
      const p = Number(m[1]);
      if (p !== precision) r.fail(`the sketch has precision ${p}, this aggregator ${precision}`);
      const hll = hllFromBytes(p, Buffer.from(m[2], 'base64'), (what) => r.fail(what));
      return { items: null, hll };
    },
  };
}
