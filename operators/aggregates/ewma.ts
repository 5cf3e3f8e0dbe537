/**
 * Exponentially weighted moving average by event time, with a half-life:
 *
 *   ewma = Σ wᵢ·xᵢ / Σ wᵢ,   wᵢ = 2^((tᵢ − t_max) / halfLife)
 *
 * the time-decayed mean as of the newest event: a sample one half-life older than the newest
 * counts half as much. Weights depend only on each sample's own event time, never on arrival
 * order, so out-of-order samples, any partitioning and any merge order give the same result.
 * (An arrival-order EWMA, s ← α·x + (1 − α)·s, would not: it depends on which sample came first.)
 *
 * How it stays exact: each sample's exponent tᵢ/halfLife is split into an integer part kᵢ and a
 * fraction fᵢ (from tᵢ mod halfLife, which is exact, so fᵢ keeps full precision at epoch times). The sample contributes 2^fᵢ·xᵢ and 2^fᵢ to two exact sums (exact-sum.ts) scaled to
 * a reference R = max kᵢ, i.e. multiplied by 2^(kᵢ − R). When a newer sample raises R, both sums
 * are multiplied by a power of two, which is exact. So the state is a function of the multiset
 * of samples, and the result is bit-identical in every order. The exception is underflow:
 * contributions more than ~1000 half-lives older than the newest sample fall below 2^-1022 and
 * are rounded (their weight is below 1e-300, so the value is unaffected; only bit-identity is).
 * Any finite value works: a product 2^fᵢ·xᵢ past the double range is added as two exact halves,
 * and the exact sums carry past 1.8e308 (exact-sum.ts), so the weighted mean is always finite.
 *
 *   const e = ewma({ halfLifeMs: 60_000 });
 */
import type { Aggregator } from '../aggregate.js';
import type { Sample } from '../sample.js';
import { StateReader } from './codec.js';
import { emptySum, sumAdd, sumClone, sumFromJson, sumMerge, sumQuotient, sumScale, sumToJson, sumValue, type ExactSum } from './exact-sum.js';
import { finiteOrNull } from './scalar.js';

export interface EwmaOptions {
  /** The half-life in ms (> 0): a sample this much older than the newest weighs half. */
  halfLifeMs: number;
}

export interface EwmaState {
  /** The reference exponent R (integer, in half-lives since the epoch); -Infinity when empty. */
  ref: number;
  /** Σ 2^fᵢ·xᵢ·2^(kᵢ − R), exactly. */
  num: ExactSum;
  /** Σ 2^fᵢ·2^(kᵢ − R), exactly. */
  den: ExactSum;
}

/** The event-time EWMA with the given half-life; null when empty. */
export function ewma(options: EwmaOptions): Aggregator<Sample, EwmaState, number | null> {
  const h = options.halfLifeMs;
  if (!(h > 0 && Number.isFinite(h))) throw new Error(`ewma: halfLifeMs must be a positive number of ms, got ${h}`);

  /** Moves `s` to reference `ref` (>= s.ref). */
  const rebase = (s: EwmaState, ref: number) => {
    if (s.ref !== ref) {
      sumScale(s.num, s.ref - ref);
      sumScale(s.den, s.ref - ref);
      s.ref = ref;
    }
  };

  return {
    create: () => ({ ref: -Infinity, num: emptySum(), den: emptySum() }),
    add(acc, s) {
      // ts = k·h + r with 0 <= r < h. Not via ts / h: at 1.7e12 ms that quotient keeps too few
      // fraction bits (f would be off by ~1e-5 for h = 7.5 ms). `%` is exact (fmod).
      let r = s.ts % h;
      if (r < 0) r += h;
      const k = Math.round((s.ts - r) / h);
      const w = 2 ** (r / h);
      if (acc.ref === -Infinity) acc.ref = k;
      else if (k > acc.ref) rebase(acc, k);
      const scale = 2 ** (k - acc.ref);
      const wx = w * s.value * scale;
      if (Number.isFinite(wx)) sumAdd(acc.num, wx);
      else {
        // |value| near 1.8e308: 2^f·x overflows. Half of it is exact to the bit (a power-of-two
        // scaling of the same rounded product), and the exact sum adds it twice.
        const half = w * (s.value / 2) * scale;
        sumAdd(acc.num, half);
        sumAdd(acc.num, half);
      }
      sumAdd(acc.den, w * scale);
      return acc;
    },
    merge(a, b) {
      if (b.ref === -Infinity) return a;
      if (a.ref === -Infinity) {
        a.ref = b.ref;
        a.num = sumClone(b.num);
        a.den = sumClone(b.den);
        return a;
      }
      if (b.ref > a.ref) rebase(a, b.ref);
      let { num, den } = b;
      if (b.ref < a.ref) {
        // Scale copies: merge must leave b as it was.
        num = sumScale(sumClone(b.num), b.ref - a.ref);
        den = sumScale(sumClone(b.den), b.ref - a.ref);
      }
      sumMerge(a.num, num);
      sumMerge(a.den, den);
      return a;
    },
    result(acc) {
      if (acc.ref === -Infinity) return null;
      return finiteOrNull(sumQuotient(acc.num, acc.den));
    },
    serialize: (acc) => (acc.ref === -Infinity ? JSON.stringify([h]) : JSON.stringify([h, acc.ref, sumToJson(acc.num), sumToJson(acc.den)])),
    deserialize(text) {
      const r: StateReader = new StateReader('ewma', text);
      const v = r.json();
      if (!Array.isArray(v) || (v.length !== 1 && v.length !== 4)) r.fail('expected [halfLifeMs] or [halfLifeMs, ref, weighted sum, weight sum]');
      if (v[0] !== h) r.fail(`the state has half-life ${JSON.stringify(v[0])} ms, this aggregator ${h} ms`);
      if (v.length === 1) return { ref: -Infinity, num: emptySum(), den: emptySum() };
      const ref = r.number(v[1], 'field 2 (ref)');
      if (!Number.isInteger(ref)) r.fail(`field 2 (ref) must be an integer, got ${ref}`);
      const num = sumFromJson(v[2], (what) => r.fail(`field 3 (weighted sum): ${what}`));
      const den = sumFromJson(v[3], (what) => r.fail(`field 4 (weight sum): ${what}`));
      if (!(sumValue(den) > 0)) r.fail('field 4 (weight sum) must be positive');
      return { ref, num, den };
    },
  };
}
