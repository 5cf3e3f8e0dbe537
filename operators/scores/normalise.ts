/**
 * Normalisers: how one raw metric maps to a comparable value (0..1 for all but identity), as the
 * pipeline format writes them (`score.normalise.<field>`).
 *
 * Static normalisers are a function of the value alone:
 * - `{ minmax: { min, max } }`: (x - min) / (max - min), clamped to [0, 1];
 * - `{ log: { max } }`: ln(1 + x) / ln(1 + max), clamped to [0, 1] (x <= 0 gives 0): for
 *   heavy-tailed counts such as popularity;
 * - `{ capped: { cap } }`: x / cap clamped to [0, 1]: award counts, where 10 wins is as good as 12;
 * - identity (no normaliser): the raw value, unclamped.
 *
 * Running normalisers depend on the current values of all entities (each entity's latest value
 * counts once; entities without a value are left out):
 * - `{ minmax: {} }` or with one bound: the missing bound is the current min (max) of the
 *   population; no clamping is needed for the population's own values;
 * - `{ zscore: { clip = 3 } }`: z = (x - mean) / stddev (population stddev), mapped linearly
 *   from [-clip, clip] to [0, 1] and clamped, so the mean maps to 0.5;
 * - `{ rank: {} }`: the percentile rank among current values, (below + (equal - 1) / 2) / (n - 1):
 *   the lowest 0, the highest 1, ties share the mean of their ranks.
 * When there is nothing to compare with (one value, all values equal, stddev 0), every value
 * maps to 0.5.
 *
 * Any finite values work (docs/operators-aggregates.md, "Extreme values"): minmax divides halves
 * when max - min or x - min is past the double range, and zscore keeps exact sums of the values
 * and of their squares (three bands of magnitude, so squares of 1e308 and of 5e-324 are both
 * exact), so a huge value changes the population only while it is in it: once it leaves, mean and
 * stddev are again exactly those of the values that remain.
 */

import { encodeNum, type SnapshotReader } from '../keyed/snapshot.js';
import { emptySum, sumAdd, sumValue, sumValueScaled, type ExactSum } from '../aggregates/exact-sum.js';

export type NormaliserSpec =
  | { minmax: { min?: number; max?: number } }
  | { log: { max: number } }
  | { capped: { cap: number } }
  | { zscore: { clip?: number } }
  | { rank: Record<string, never> };

export interface Normaliser {
  /** True when normalised values depend on the other entities' current values. */
  readonly running: boolean;
  /**
   * Records that one entity's current value went from `before` to `after` (undefined: none).
   * Returns true when the normalised value of some other entity's value may have changed.
   */
  update(before: number | undefined, after: number | undefined): boolean;
  /** The normalised value of a current value `x`. */
  normalise(x: number): number;
  /** Forgets the population. */
  clear(): void;
  /**
   * The population state as JSON, for snapshots: null for static normalisers; the sorted values
   * (minmax, rank), whose zeros keep their sign; the compensated sums (zscore), which depend on
   * the order values came and went.
   */
  snapshot(): unknown;
  /**
   * Replaces the population with a snapshot's. `values` are the current values of all entities
   * (any order): the state must agree with them, or `read` throws saying where (`where`).
   */
  restore(state: unknown, values: readonly number[], read: SnapshotReader, where: string): void;
}

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

/**
 * clamp01((x - lo) / (hi - lo)) for hi > lo. When hi - lo or x - lo is past the double range
 * (bounds or values near ±1.8e308), the halves are divided instead: the same ratio, never
 * Infinity / Infinity.
 */
function between(x: number, lo: number, hi: number): number {
  const r = (x - lo) / (hi - lo);
  if (r === r && Number.isFinite(hi - lo)) return clamp01(r);
  return clamp01((x / 2 - lo / 2) / (hi / 2 - lo / 2));
}

/** The current values of a population, sorted, for exact min, max and rank in O(log n). */
export class SortedValues {
  private a = new Float64Array(16);
  private n = 0;

  get size(): number {
    return this.n;
  }

  /** Number of values < x. */
  lowerBound(x: number): number {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.a[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Number of values <= x. */
  upperBound(x: number): number {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.a[mid] <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Inserts x: binary search plus a memmove of the tail, O(n) bytes moved but no allocation. */
  insert(x: number): void {
    if (this.n === this.a.length) {
      const grown = new Float64Array(this.a.length * 2);
      grown.set(this.a);
      this.a = grown;
    }
    const i = this.upperBound(x);
    this.a.copyWithin(i + 1, i, this.n);
    // -0 is stored as +0: the two compare equal, so remove(0) may take either, and a stale -0
    // left as the minimum would make (x − min) differ in sign of zero from a fresh population.
    this.a[i] = x === 0 ? 0 : x;
    this.n++;
  }

  /** Removes one occurrence of x; false if absent. */
  remove(x: number): boolean {
    const i = this.lowerBound(x);
    if (i >= this.n || this.a[i] !== x) return false;
    this.a.copyWithin(i, i + 1, this.n);
    this.n--;
    return true;
  }

  min(): number {
    return this.n ? this.a[0] : NaN;
  }

  max(): number {
    return this.n ? this.a[this.n - 1] : NaN;
  }

  clear(): void {
    this.n = 0;
  }

  /** The values in order (zeros with their sign), for snapshots. */
  toArray(): number[] {
    return Array.from(this.a.subarray(0, this.n));
  }

  /** Replaces the values with `sorted`, which must be in ascending order. */
  load(sorted: readonly number[]): void {
    let cap = 16;
    while (cap < sorted.length) cap *= 2;
    this.a = new Float64Array(cap);
    for (let i = 0; i < sorted.length; i++) this.a[i] = sorted[i] === 0 ? 0 : sorted[i];
    this.n = sorted.length;
  }
}

/**
 * The sorted population of a snapshot: ascending, and the same values as the entities' current
 * ones (compared with ===, so a 0 may stand for a -0: the sorted array is what decides min/max).
 */
function restoreSorted(values: SortedValues, state: unknown, current: readonly number[], read: SnapshotReader, where: string): void {
  const a = read.array(state, where).map((v, i) => read.finite(v, `${where}[${i}]`));
  for (let i = 1; i < a.length; i++) if (!(a[i - 1] <= a[i])) read.fail(`${where} must be in ascending order: ${a[i - 1]} comes before ${a[i]} at ${i}`);
  if (a.length !== current.length) read.fail(`${where} holds ${a.length} values, but ${current.length} entities have this metric`);
  const sorted = [...current].sort((x, y) => x - y);
  for (let i = 0; i < a.length; i++) if (a[i] !== sorted[i]) read.fail(`${where}[${i}] is ${a[i]}, but the entities' values sorted give ${sorted[i]} there`);
  values.load(a);
}

/** A normaliser that depends on nothing but its own value and options: no population, no state to keep. */
abstract class StaticNormaliser implements Normaliser {
  readonly running = false;
  abstract normalise(x: number): number;
  update(): boolean {
    return false;
  }
  clear(): void {}
  snapshot(): null {
    return null;
  }
  /** A static normaliser holds no population: its snapshot is null. */
  restore(state: unknown, _values: readonly number[], read: SnapshotReader, where: string): void {
    if (state !== null) read.fail(`${where} must be null (a static normaliser keeps no state), got ${JSON.stringify(state)?.slice(0, 60)}`);
  }
}

class Identity extends StaticNormaliser {
  normalise(x: number): number {
    return x;
  }
}

class StaticMinMax extends StaticNormaliser {
  constructor(
    private readonly min: number,
    private readonly max: number,
  ) {
    super();
  }
  normalise(x: number): number {
    return between(x, this.min, this.max);
  }
}

class RunningMinMax implements Normaliser {
  readonly running = true;
  private readonly values = new SortedValues();
  constructor(
    private readonly min: number | undefined,
    private readonly max: number | undefined,
  ) {}
  private lo(): number {
    return this.min ?? this.values.min();
  }
  private hi(): number {
    return this.max ?? this.values.max();
  }
  update(before: number | undefined, after: number | undefined): boolean {
    const lo = this.lo();
    const hi = this.hi();
    if (before !== undefined) this.values.remove(before);
    if (after !== undefined) this.values.insert(after);
    return !Object.is(lo, this.lo()) || !Object.is(hi, this.hi());
  }
  normalise(x: number): number {
    const lo = this.lo();
    const hi = this.hi();
    return hi > lo ? between(x, lo, hi) : 0.5;
  }
  clear(): void {
    this.values.clear();
  }
  snapshot(): (number | string)[] {
    return this.values.toArray().map(encodeNum);
  }
  restore(state: unknown, values: readonly number[], read: SnapshotReader, where: string): void {
    restoreSorted(this.values, state, values, read, where);
  }
}

class LogScale extends StaticNormaliser {
  private readonly denom: number;
  constructor(max: number) {
    super();
    this.denom = Math.log1p(max);
  }
  normalise(x: number): number {
    return x > 0 ? clamp01(Math.log1p(x) / this.denom) : 0;
  }
}

class Capped extends StaticNormaliser {
  constructor(private readonly cap: number) {
    super();
  }
  normalise(x: number): number {
    return clamp01(x / this.cap);
  }
}

/** Values of at least this magnitude have their squares summed times 2^-1200, below its inverse times 2^1200. */
const BAND = 2 ** 300;
const TINY_BAND = 2 ** -300;

/** v · 2^e in two steps, so that 2^e itself need not be a double (|e| up to 2400). */
function times2(v: number, e: number): number {
  if (v === 0) return v; // not 0 · Infinity
  const h = Math.trunc(e / 2);
  return v * 2 ** h * 2 ** (e - h);
}

/** The rounding error of hi = y * y, exactly (Dekker's product; |y| < 2^425 here, so nothing overflows). */
function squareError(y: number, hi: number): number {
  const c = 134217729 * y; // 2^27 + 1
  const yh = c - (c - y);
  const yl = y - yh;
  return yh * yh - hi + 2 * yh * yl + yl * yl;
}

/**
 * Population mean and stddev from exact sums: Σx (exact-sum.ts, which carries past 1.8e308) and
 * Σx² split into three bands by |x| (below 2^-300 scaled by 2^600 before squaring, above 2^300 by
 * 2^-600, the rest as they are), each square added as its rounded value plus its rounding error.
 * Adding and removing a value are exact, so the state is a function of the current values alone:
 * no drift, whatever the order values came and went in. For ordinary values (all magnitudes in
 * [2^-300, 2^300)) mean and variance are computed as before, sum / n and Σx² / n − mean², from the
 * exact sums; otherwise the same formula is evaluated at the scale 2^±600 of the largest band
 * present, and values are normalised at that scale (so a stddev of 1e-320 does not round to 0).
 */
class ZScore implements Normaliser {
  readonly running = true;
  private n = 0;
  private readonly sum: ExactSum = emptySum();
  /** Σ of squares per band: [tiny × 2^1200, ordinary, huge × 2^-1200], and how many values each holds. */
  private readonly squares: ExactSum[] = [emptySum(), emptySum(), emptySum()];
  private readonly inBand = [0, 0, 0];
  /** Mean and stddev of the values times 2^-scale (scale 0 for ordinary values, ±600 otherwise: see derive). */
  private mean = 0;
  /** 0 when there is nothing to compare with. */
  private std = 0;
  private scale = 0;
  constructor(private readonly clip: number) {}

  private account(x: number, sign: 1 | -1): void {
    this.n += sign;
    sumAdd(this.sum, sign * x);
    const ax = Math.abs(x);
    if (ax === 0) return;
    const band = ax >= BAND ? 2 : ax < TINY_BAND ? 0 : 1;
    const y = band === 2 ? x * 2 ** -600 : band === 0 ? x * 2 ** 600 : x;
    const hi = y * y;
    const sq = this.squares[band];
    sumAdd(sq, sign * hi);
    sumAdd(sq, sign * squareError(y, hi));
    this.inBand[band] += sign;
  }

  update(before: number | undefined, after: number | undefined): boolean {
    if (before !== undefined) this.account(before, -1);
    if (after !== undefined) this.account(after, 1);
    const { mean, std, scale } = this;
    this.derive();
    if (std === 0 && this.std === 0) return false;
    return mean !== this.mean || std !== this.std || scale !== this.scale;
  }
  normalise(x: number): number {
    if (this.std === 0) return 0.5;
    // At the population's scale (x itself for ordinary values), so a tiny stddev does not underflow.
    const y = this.scale === 0 ? x : times2(x, -this.scale);
    let z = (y - this.mean) / this.std;
    // y - mean past the double range: the halves give the same ratio (a y past it is off the scale: 0 or 1).
    if (!Number.isFinite(z) && Number.isFinite(y)) z = (y / 2 - this.mean / 2) / (this.std / 2);
    return clamp01(z / (2 * this.clip) + 0.5);
  }
  clear(): void {
    this.n = 0;
    for (const s of [this.sum, ...this.squares]) {
      s.n = 0;
      s.carry = 0;
      s.overflow = false;
    }
    this.inBand.fill(0);
    this.mean = 0;
    this.std = 0;
    this.scale = 0;
  }
  /** Mean and stddev from n and the sums. */
  private derive(): void {
    const n = this.n;
    this.scale = 0;
    if (n <= 0) {
      this.mean = 0;
      this.std = 0;
      return;
    }
    const [tiny, ordinary, huge] = this.squares;
    if (this.inBand[0] === 0 && this.inBand[2] === 0 && this.sum.carry === 0) {
      this.mean = sumValue(this.sum) / n;
      const variance = sumValue(ordinary) / n - this.mean * this.mean;
      this.std = variance > 0 ? Math.sqrt(variance) : 0;
      return;
    }
    // The scale of the largest band present: values times 2^-s, squares times 2^-2s.
    const s = this.inBand[2] > 0 ? 600 : this.inBand[1] > 0 ? 0 : -600;
    const q = times2(sumValue(tiny), -1200 - 2 * s) + times2(sumValue(ordinary), -2 * s) + times2(sumValue(huge), 1200 - 2 * s);
    const mean = sumValueScaled(this.sum, -s) / n;
    const variance = q / n - mean * mean;
    this.mean = mean;
    this.std = variance > 0 ? Math.sqrt(variance) : 0;
    this.scale = s;
  }
  /**
   * The sums are exact, so the current values alone determine them: the snapshot only says so, and
   * restore() recomputes the sums from the values.
   */
  snapshot(): { exact: true } {
    return { exact: true };
  }
  /**
   * Recomputes the sums from the entities' values. A snapshot of the compensated sums an older
   * version kept (`{ sum: [s, c], sumSq: [s, c] }`) is checked for shape and read the same way:
   * its figures are then the exact ones, which can differ from the old ones in the last bits.
   */
  restore(state: unknown, values: readonly number[], read: SnapshotReader, where: string): void {
    const o = read.object(state, where);
    if ('exact' in o) {
      if (o.exact !== true || Object.keys(o).length !== 1) read.fail(`${where} must be { "exact": true }, got ${JSON.stringify(state)?.slice(0, 60)}`);
    } else {
      for (const k of ['sum', 'sumSq'] as const) {
        const [a, b] = read.array(o[k], `${where}.${k}`, { min: 2, max: 2 });
        read.number(a, `${where}.${k}[0]`);
        read.number(b, `${where}.${k}[1]`);
      }
    }
    this.clear();
    for (const v of values) this.account(v, 1);
    this.derive();
  }
}

class PercentileRank implements Normaliser {
  readonly running = true;
  private readonly values = new SortedValues();
  update(before: number | undefined, after: number | undefined): boolean {
    const v = this.values;
    const n0 = v.size;
    if (before !== undefined) v.remove(before);
    if (after !== undefined) v.insert(after);
    if (v.size !== n0) return Math.min(n0, v.size) > 0;
    if (before === undefined || after === undefined || before === after) return false;
    // Same n: another value's rank moves only if it lies in [min(before, after), max(before, after)].
    const lo = Math.min(before, after);
    const hi = Math.max(before, after);
    return v.upperBound(hi) - v.lowerBound(lo) > 1;
  }
  normalise(x: number): number {
    const v = this.values;
    const n = v.size;
    if (n < 2) return 0.5;
    const below = v.lowerBound(x);
    const equal = v.upperBound(x) - below;
    return clamp01((below + (equal - 1) / 2) / (n - 1));
  }
  clear(): void {
    this.values.clear();
  }
  snapshot(): (number | string)[] {
    return this.values.toArray().map(encodeNum);
  }
  restore(state: unknown, values: readonly number[], read: SnapshotReader, where: string): void {
    restoreSorted(this.values, state, values, read, where);
  }
}

/** A fresh normaliser (with its own population) for `spec`; identity when undefined. */
export function createNormaliser(spec: NormaliserSpec | undefined): Normaliser {
  if (spec === undefined) return new Identity();
  if ('minmax' in spec) {
    const { min, max } = spec.minmax;
    if (min !== undefined && max !== undefined) {
      if (!(max > min)) throw new Error(`minmax: max (${max}) must be greater than min (${min})`);
      return new StaticMinMax(min, max);
    }
    return new RunningMinMax(min, max);
  }
  if ('log' in spec) {
    if (!(spec.log.max > 0 && Number.isFinite(spec.log.max))) throw new Error(`log: max must be a positive finite number, got ${spec.log.max}`);
    return new LogScale(spec.log.max);
  }
  if ('capped' in spec) {
    if (!(spec.capped.cap > 0 && Number.isFinite(spec.capped.cap))) throw new Error(`capped: cap must be a positive finite number, got ${spec.capped.cap}`);
    return new Capped(spec.capped.cap);
  }
  if ('zscore' in spec) {
    const clip = spec.zscore.clip ?? 3;
    if (!(clip > 0 && Number.isFinite(clip))) throw new Error(`zscore: clip must be a positive finite number, got ${clip}`);
    return new ZScore(clip);
  }
  if ('rank' in spec) return new PercentileRank();
  throw new Error(`unknown normaliser ${JSON.stringify(spec)}: use one of minmax, log, capped, zscore, rank`);
}
