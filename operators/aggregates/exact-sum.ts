/**
 * Exact floating-point summation (Shewchuk 1997, as in Python's math.fsum): the running sum is
 * kept as a short list of non-overlapping partials whose exact total is the exact sum of every
 * value added. The reported sum is that exact total correctly rounded, so it does not depend on
 * the order values arrive in or on how partial sums were merged: replays with another partitioning
 * give bit-identical sums and means.
 *
 * The one exception is overflow: if a partial sum ever exceeds the double range (about 1.8e308)
 * the state becomes `overflow` and the sum is reported as NaN (callers turn it into null). Which
 * prefixes overflow depends on arrival order, so only sums that come near 1.8e308 lose order
 * independence.
 */
export interface ExactSum {
  /** Non-overlapping partials in increasing magnitude, in p[0..n); their exact total is the sum. */
  p: Float64Array;
  n: number;
  overflow: boolean;
}

const MIN_NORMAL = 2 ** -1022;

export function emptySum(): ExactSum {
  // Typed and fixed-size: resizing a plain array on every add cost more than the arithmetic.
  return { p: new Float64Array(4), n: 0, overflow: false };
}

/** Adds a finite x, exactly. */
export function sumAdd(s: ExactSum, x: number): ExactSum {
  if (s.overflow) return s;
  let p = s.p;
  const n = s.n;
  let i = 0;
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
  if (!Number.isFinite(x)) s.overflow = true;
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
    return a;
  }
  for (let j = 0; j < b.n; j++) sumAdd(a, b.p[j]);
  return a;
}

/** Multiplies the exact total by 2^k (exact unless partials underflow into subnormals or overflow). */
export function sumScale(s: ExactSum, k: number): ExactSum {
  if (k === 0 || s.overflow) return s;
  const f = 2 ** k;
  if (f === 0 || !Number.isFinite(f)) {
    // 2^k itself under/overflows (|k| > 1023): scale in two steps.
    const half = Math.trunc(k / 2);
    return sumScale(sumScale(s, half), k - half);
  }
  const p = s.p;
  let underflow = false;
  for (let j = 0; j < s.n; j++) {
    const x = p[j] * f;
    if (!Number.isFinite(x)) s.overflow = true;
    else if (x !== 0 && Math.abs(x) < MIN_NORMAL) underflow = true;
    p[j] = x;
  }
  if (underflow && !s.overflow) {
    // Subnormal partials were rounded and may now overlap or vanish: renormalise.
    const old = p.slice(0, s.n);
    s.n = 0;
    for (const x of old) if (x !== 0) sumAdd(s, x);
  }
  return s;
}

/** The exact total, correctly rounded to a double (NaN after overflow); a zero total is +0. */
export function sumValue(s: ExactSum): number {
  if (s.overflow) return NaN;
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

/** A copy that shares nothing with `s`. */
export function sumClone(s: ExactSum): ExactSum {
  return { p: s.p.slice(), n: s.n, overflow: s.overflow };
}

/** JSON form: the partials as an array of numbers, or the string "overflow". */
export function sumToJson(s: ExactSum): number[] | 'overflow' {
  return s.overflow ? 'overflow' : Array.from(s.p.subarray(0, s.n));
}

/**
 * The inverse of sumToJson. Partials are re-added one by one, so the exact total is kept and the
 * invariant holds whatever list was stored. `fail` reports what is wrong (the caller adds where).
 */
export function sumFromJson(v: unknown, fail: (what: string) => never): ExactSum {
  if (v === 'overflow') return { p: new Float64Array(4), n: 0, overflow: true };
  if (!Array.isArray(v)) fail(`expected an array of partial sums or "overflow", got ${JSON.stringify(v)?.slice(0, 40)}`);
  const s = emptySum();
  v.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isFinite(x)) fail(`partial ${i} must be a finite number, got ${JSON.stringify(x)?.slice(0, 40)}`);
    sumAdd(s, x);
  });
  if (s.overflow) fail('partials add up beyond the double range');
  return s;
}
