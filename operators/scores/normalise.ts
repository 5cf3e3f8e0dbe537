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
 */

import { encodeNum, type SnapshotReader } from '../keyed/snapshot.js';

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
    this.a[i] = x;
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
    this.a.set(sorted);
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

/** A sum with Neumaier's compensation: exact while partial sums are exact, close otherwise. */
class CompensatedSum {
  private s = 0;
  private c = 0;
  add(x: number): void {
    const t = this.s + x;
    if (Math.abs(this.s) >= Math.abs(x)) this.c += this.s - t + x;
    else this.c += x - t + this.s;
    this.s = t;
  }
  get value(): number {
    return this.s + this.c;
  }
  clear(): void {
    this.s = 0;
    this.c = 0;
  }
  state(): [number | string, number | string] {
    return [encodeNum(this.s), encodeNum(this.c)];
  }
  load(state: unknown, read: SnapshotReader, where: string): void {
    const [s, c] = read.array(state, where, { min: 2, max: 2 });
    this.s = read.number(s, `${where}[0]`);
    this.c = read.number(c, `${where}[1]`);
  }
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
    return clamp01((x - this.min) / (this.max - this.min));
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
    return hi > lo ? clamp01((x - lo) / (hi - lo)) : 0.5;
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

class ZScore implements Normaliser {
  readonly running = true;
  private n = 0;
  private sum = new CompensatedSum();
  private sumSq = new CompensatedSum();
  private mean = 0;
  /** 0 when there is nothing to compare with. */
  private std = 0;
  constructor(private readonly clip: number) {}
  update(before: number | undefined, after: number | undefined): boolean {
    if (before !== undefined) {
      this.n--;
      this.sum.add(-before);
      this.sumSq.add(-before * before);
    }
    if (after !== undefined) {
      this.n++;
      this.sum.add(after);
      this.sumSq.add(after * after);
    }
    const { mean, std } = this;
    this.derive();
    if (std === 0 && this.std === 0) return false;
    return mean !== this.mean || std !== this.std;
  }
  normalise(x: number): number {
    if (this.std === 0) return 0.5;
    return clamp01((x - this.mean) / this.std / (2 * this.clip) + 0.5);
  }
  clear(): void {
    this.n = 0;
    this.sum.clear();
    this.sumSq.clear();
    this.mean = 0;
    this.std = 0;
  }
  /** Mean and stddev from n and the sums. */
  private derive(): void {
    if (this.n > 0) {
      this.mean = this.sum.value / this.n;
      const variance = this.sumSq.value / this.n - this.mean * this.mean;
      this.std = variance > 0 ? Math.sqrt(variance) : 0;
    } else {
      this.mean = 0;
      this.std = 0;
    }
  }
  /** The sums, not the values: they carry rounding that depends on the order of updates. */
  snapshot(): { sum: (number | string)[]; sumSq: (number | string)[] } {
    return { sum: this.sum.state(), sumSq: this.sumSq.state() };
  }
  restore(state: unknown, values: readonly number[], read: SnapshotReader, where: string): void {
    const o = read.object(state, where);
    const sum = new CompensatedSum();
    const sumSq = new CompensatedSum();
    sum.load(o.sum, read, `${where}.sum`);
    sumSq.load(o.sumSq, read, `${where}.sumSq`);
    this.sum = sum;
    this.sumSq = sumSq;
    this.n = values.length;
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
