/**
 * Exact floating-point summation (Shewchuk 1997, as in Python's math.fsum): the running sum is
 * kept as a short list of non-overlapping partials whose exact total is the exact sum of every
 * value added. The reported sum is that exact total correctly rounded, so it does not depend on
 * the order values arrive in or on how partial sums were merged: replays with another partitioning
 * give bit-identical sums and means.
 *
 * Partial sums never overflow: whole multiples of 2^1022 are moved out of the partials into an
 * integer `carry`, so the exact total is carry·2^1022 + Σ partials for any finite values in any
 * order (e.g. 1e308 + 1e308 − 1e308 is 1e308, whichever comes first). Only the reported total can
 * leave the double range (about 1.8e308): sumValue is then NaN (callers turn it into null), and
 * sumValueScaled / sumQuotient still give a scaled total or a ratio such as a mean. While every
 * partial sum stays below 2^1022 (about 4.5e307) the carry is 0 and nothing changes.
 */
export interface ExactSum {
  /** Non-overlapping partials in increasing magnitude, in p[0..n); each below 2^1022 in magnitude. */
  p: Float64Array;
  n: number;
  /** Whole units of 2^1022 taken out of the partials: the exact total is carry·2^1022 + Σ p. */
  carry: number;
  /** Only for a state read from the old "overflow" form (before the carry existed): its total is lost, the sum is NaN. */
  overflow: boolean;
}

const MIN_NORMAL = 2 ** -1022;
/** The carry unit: partials stay below it in magnitude, so no sum of two of them can overflow. */
const UNIT = 2 ** 1022;
/** Below this magnitude a partial divided by 8 may round (used when scaling a total past the range). */
const TINY = 2 ** -1019;

export function emptySum(): ExactSum {
  // Typed and fixed-size: resizing a plain array on every add cost more than the arithmetic.
  return { p: new Float64Array(4), n: 0, carry: 0, overflow: false };
}

/** Adds a finite x, exactly. */
export function sumAdd(s: ExactSum, x: number): ExactSum {
  if (s.overflow) return s;
  if (!(x < UNIT && x > -UNIT)) {
    if (!Number.isFinite(x)) {
      // Not a finite value: the total is lost (callers pass finite values only).
      s.overflow = true;
      return s;
    }
    // |x| in [2^1022, 2^1024): x - k·2^1022 is exact (a multiple of x's ulp, below 2^1022).
    const k = Math.trunc(x / UNIT);
    x -= k * UNIT;
    s.carry += k;
  }
  let p = s.p;
  const n = s.n;
  let i = 0;
  // |x| < 2^1022 and the partials add up to less than 2^1023: no intermediate can overflow.
  for (let j = 0; j < n; j++) {
    let y = p[j];
    if (Math.abs(x) < Math.abs(y)) {
      const t = x;
      x = y;
      y = t;
    }
    const hi = x + y;
    const lo = y - (hi - x);
    if (lo !== 0) p[i++] = lo;
    x = hi;
  }
  if (!(x < UNIT && x > -UNIT)) {
    // The new top partial is in [2^1022, 3·2^1022): take whole units out, exactly. What is left
    // is a multiple of the old top's lowest bit, so it still does not overlap the partials below.
    const k = Math.trunc(x / UNIT);
    x -= k * UNIT;
    s.carry += k;
  }
  if (i === p.length) {
    p = new Float64Array(p.length * 2);
    p.set(s.p);
    s.p = p;
  }
  p[i] = x;
  s.n = i + 1;
  return s;
}

/** Merges b into a: the exact total of a becomes total(a) + total(b). */
export function sumMerge(a: ExactSum, b: ExactSum): ExactSum {
  if (b.overflow) a.overflow = true;
  if (a.overflow) {
    a.n = 0;
    a.carry = 0;
    return a;
  }
  a.carry += b.carry;
  for (let j = 0; j < b.n; j++) sumAdd(a, b.p[j]);
  return a;
}

/** Multiplies the exact total by 2^k (exact unless partials underflow into subnormals). */
export function sumScale(s: ExactSum, k: number): ExactSum {
  if (k === 0 || s.overflow) return s;
  if (k < -1022 || k > 1023) {
    // 2^k, or 2^-k below, is not a normal double: scale in two steps.
    const half = Math.trunc(k / 2);
    return sumScale(sumScale(s, half), k - half);
  }
  const f = 2 ** k;
  if (k > 0) {
    // Scaling up can push partials past 2^1022: add them again, so the carry takes what it must.
    const carry = s.carry * f;
    if (!Number.isSafeInteger(carry)) {
      s.overflow = true;
      return s;
    }
    const old = s.p.slice(0, s.n);
    s.n = 0;
    s.carry = carry;
    for (const x of old) if (x !== 0) sumAdd(s, x * f);
    return s;
  }
  // Scaling down: the carry's units become partial units; the fraction of a unit goes into the partials.
  const carry = s.carry;
  let rest = 0;
  if (carry !== 0) {
    const div = 2 ** -k;
    s.carry = Math.trunc(carry / div);
    rest = carry - s.carry * div; // an integer below div, exactly
  }
  const p = s.p;
  let underflow = false;
  for (let j = 0; j < s.n; j++) {
    const x = p[j] * f;
    if (x !== 0 && Math.abs(x) < MIN_NORMAL) underflow = true;
    p[j] = x;
  }
  if (underflow) {
    // Subnormal partials were rounded and may now overlap or vanish: renormalise.
    const old = p.slice(0, s.n);
    s.n = 0;
    for (const x of old) if (x !== 0) sumAdd(s, x);
  }
  // rest·2^(1022 + k) < 2^1022: exact (k >= -1023 here).
  if (rest !== 0) sumAdd(s, rest * 2 ** (1022 + k));
  return s;
}

/**
 * The exact total, correctly rounded to a double; NaN when it is beyond the double range (about
 * ±1.8e308), or for a state read from the old "overflow" form. A zero total is +0.
 */
export function sumValue(s: ExactSum): number {
  if (s.overflow) return NaN;
  if (s.carry !== 0) return carriedValue(s);
  const p = s.p;
  let n = s.n;
  if (n === 0) return 0;
  let hi = p[--n];
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = p[--n];
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  // Round half to even correctly: if the remaining partials push lo past the halfway point.
  if (n > 0 && ((lo < 0 && p[n - 1] < 0) || (lo > 0 && p[n - 1] > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi + 0;
}

/** sumValue of a total with a carry: carry·2^1022 + Σ p, correctly rounded, NaN past the double range. */
function carriedValue(s: ExactSum): number {
  const c = s.carry;
  const p = s.p;
  const n = s.n;
  // The partials add up to less than 2^1022 + 2^971: with 6 units or more the total is past 2^1024.
  if (Math.abs(c) > 5) return NaN;
  let top = n - 1;
  while (top > 0 && p[top] === 0) top--; // the largest partial can be a zero above smaller ones
  const x = top >= 0 ? p[top] : 0;
  if ((c === 1 && x <= -(2 ** 1021)) || (c === -1 && x >= 2 ** 1021)) {
    // The unit and the largest partial nearly cancel: fold the unit in, exactly (Sterbenz), and
    // round as usual.
    const t = emptySum();
    for (let j = 0; j < top; j++) sumAdd(t, p[j]);
    sumAdd(t, x + c * UNIT);
    return sumValue(t);
  }
  // Otherwise |total| > 2^1020: round it at an eighth of its size, where nothing overflows.
  // Partials below 2^-1019 would round when divided by 8, and only their sign can matter at
  // this magnitude (ties): the largest of them stands for all of them as ±2^-1074.
  const t = emptySum();
  let tiny = 0;
  for (let j = 0; j < n; j++) {
    const x = p[j];
    if (x === 0) continue;
    if (Math.abs(x) < TINY) tiny = x;
    else sumAdd(t, x / 8);
  }
  if (tiny !== 0) sumAdd(t, tiny > 0 ? 5e-324 : -5e-324);
  sumAdd(t, c * 2 ** 1019);
  const v = sumValue(t) * 8;
  return Number.isFinite(v) ? v : NaN;
}

/**
 * The exact total times 2^k (k <= 0), correctly rounded: a total past the double range scaled
 * back into it, e.g. to divide it by a count. NaN for a state read from the old "overflow" form.
 */
export function sumValueScaled(s: ExactSum, k: number): number {
  if (k === 0) return sumValue(s);
  return sumValue(sumScale(sumClone(s), k));
}

/**
 * total(a) / total(b) rounded like sumValue(a) / sumValue(b), also when either total is past the
 * double range (then both are scaled first). NaN when a state is the old "overflow" form; the
 * caller decides what a zero denominator or a quotient past the range means.
 */
export function sumQuotient(a: ExactSum, b: ExactSum): number {
  const va = sumValue(a);
  const vb = sumValue(b);
  if (!Number.isNaN(va) && !Number.isNaN(vb)) return va / vb;
  if (a.overflow || b.overflow) return NaN;
  // A total past 1.8e308 comes from fewer than 2^53 finite values: times 2^-64 it is in range.
  const ka = Number.isNaN(va) ? -64 : 0;
  const kb = Number.isNaN(vb) ? -64 : 0;
  const q = sumValueScaled(a, ka) / sumValueScaled(b, kb);
  return q * 2 ** (kb - ka);
}

/**
 * total(s) / n (n > 0), rounded like sumValue(s) / n, also when the total is past the double range
 * (a mean of finite values always fits). NaN for a state read from the old "overflow" form.
 */
export function sumDivide(s: ExactSum, n: number): number {
  const v = sumValue(s);
  if (!Number.isNaN(v) || s.overflow) return v / n;
  return (sumValueScaled(s, -64) / n) * 2 ** 64;
}

/** A copy that shares nothing with `s`. */
export function sumClone(s: ExactSum): ExactSum {
  return { p: s.p.slice(), n: s.n, carry: s.carry, overflow: s.overflow };
}

/** JSON form: the partials as an array of numbers; `{carry, partials}` when there is a carry; "overflow" for the old form. */
export function sumToJson(s: ExactSum): number[] | { carry: number; partials: number[] } | 'overflow' {
  if (s.overflow) return 'overflow';
  const partials = Array.from(s.p.subarray(0, s.n));
  return s.carry === 0 ? partials : { carry: s.carry, partials };
}

/**
 * The inverse of sumToJson. Partials are re-added one by one, so the exact total is kept and the
 * invariant holds whatever list was stored. `fail` reports what is wrong (the caller adds where).
 * "overflow" (written before sums carried) reads as a sum whose total is lost.
 */
export function sumFromJson(v: unknown, fail: (what: string) => never): ExactSum {
  if (v === 'overflow') return { p: new Float64Array(4), n: 0, carry: 0, overflow: true };
  let list = v;
  let carry = 0;
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && ('carry' in v || 'partials' in v)) {
    const o = v as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => k !== 'carry' && k !== 'partials');
    if (extra.length) fail(`unexpected field ${JSON.stringify(extra[0])} in a carried sum (it has carry and partials)`);
    if (typeof o.carry !== 'number' || !Number.isSafeInteger(o.carry) || o.carry === 0)
      fail(`carry must be a non-zero whole number of 2^1022 units, got ${JSON.stringify(o.carry)?.slice(0, 40)}`);
    carry = o.carry as number;
    list = o.partials;
  }
  if (!Array.isArray(list)) fail(`expected an array of partial sums, {carry, partials} or "overflow", got ${JSON.stringify(v)?.slice(0, 40)}`);
  const s = emptySum();
  s.carry = carry;
  (list as unknown[]).forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isFinite(x)) fail(`partial ${i} must be a finite number, got ${JSON.stringify(x)?.slice(0, 40)}`);
    sumAdd(s, x);
  });
  if (!Number.isSafeInteger(s.carry)) fail('the carry is too large');
  return s;
}
