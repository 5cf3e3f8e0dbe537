/**
 * Exact rational arithmetic on doubles (BigInt), for the oracles of the extreme-value tests
 * (test support only: nothing in the engine imports it). Every finite double is x = big(x)·2^-1074
 * exactly; sums, squares and quotients of such numbers are done without rounding, and rounded
 * once, correctly (half to even), by `toDouble`, which gives ±Infinity past the double range like
 * IEEE 754 does.
 */
import fc from 'fast-check';

const view = new DataView(new ArrayBuffer(8));

/** x · 2^1074, an integer, exactly. */
export function big(x: number): bigint {
  if (!Number.isFinite(x)) throw new Error(`big: ${x} is not finite`);
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const exp = (hi >>> 20) & 0x7ff;
  let m = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (exp > 0) m |= 1n << 52n;
  const v = m << BigInt(Math.max(exp, 1) - 1);
  return hi >>> 31 ? -v : v;
}

const bitLength = (a: bigint) => (a === 0n ? 0 : a.toString(2).length);

/** v · 2^e in two steps (2^e itself need not be a double). */
export function times2(v: number, e: number): number {
  if (v === 0) return v;
  const h = Math.trunc(e / 2);
  return v * 2 ** h * 2 ** (e - h);
}

/** (num / den) · 2^exp correctly rounded to a double (den > 0); ±Infinity past the range. */
export function toDouble(num: bigint, den: bigint, exp: number): number {
  if (den <= 0n) throw new Error('toDouble: den must be positive');
  if (num === 0n) return 0;
  const neg = num < 0n;
  const a = neg ? -num : num;
  // At least 56 bits of quotient, and the remainder as a sticky bit.
  const s = Math.max(0, 56 + bitLength(den) - bitLength(a));
  const scaled = a << BigInt(s);
  let q = scaled / den;
  const sticky = scaled % den !== 0n;
  let e = exp - s;
  const L = bitLength(q);
  // Keep 53 bits, or fewer where the result is subnormal (ulp 2^-1074).
  const drop = Math.max(L - 53, -1074 - e);
  if (drop > 0) {
    const d = BigInt(drop);
    const rem = q & ((1n << d) - 1n);
    const half = 1n << (d - 1n);
    q >>= d;
    if (rem > half || (rem === half && (sticky || (q & 1n) === 1n))) q += 1n;
    e += drop;
  }
  const v = times2(Number(q), e);
  return neg ? -v : v;
}

/** The exact sum of doubles, as x·2^-1074 units. */
export const bigSum = (xs: readonly number[]): bigint => xs.reduce((s, x) => s + big(x), 0n);

/** The exact sum, correctly rounded (±Infinity past the range). */
export const exactSumOf = (xs: readonly number[]): number => toDouble(bigSum(xs), 1n, -1074);

/** The exact mean, correctly rounded. */
export const exactMeanOf = (xs: readonly number[]): number => toDouble(bigSum(xs), BigInt(xs.length), -1074);

/**
 * The exact variance (sample: n - 1, population: n) as a rational: variance = num / den · 2^-2148.
 * null below two values (sample) or one (population).
 */
export function exactVarianceOf(xs: readonly number[], sample = true): { num: bigint; den: bigint } | null {
  if (xs.length < (sample ? 2 : 1)) return null;
  const { n, s, q } = exactMoments(xs);
  return { num: n * q - s * s, den: n * (sample ? n - 1n : n) };
}

/** The count, sum and sum of squares of finite doubles, exactly: s in 2^-1074 units, q in 2^-2148 units. */
export function exactMoments(xs: readonly number[]): { n: bigint; s: bigint; q: bigint } {
  let s = 0n;
  let q = 0n;
  for (const x of xs) {
    const b = big(x);
    s += b;
    q += b * b;
  }
  return { n: BigInt(xs.length), s, q };
}

/** The variance rounded to a double (±Infinity past the range), or null. */
export function exactVariance(xs: readonly number[], sample = true): number | null {
  const v = exactVarianceOf(xs, sample);
  return v && toDouble(v.num, v.den, -2148);
}

/** The standard deviation, within a few ulps (sqrt of the variance taken at a scale where it fits), or null. */
export function exactStddev(xs: readonly number[], sample = true): number | null {
  const v = exactVarianceOf(xs, sample);
  if (!v) return null;
  if (v.num === 0n) return 0;
  // variance · 2^-2k in range, with k even-ish around half the variance's exponent.
  const k = Math.floor((bitLength(v.num) - bitLength(v.den) - 2148) / 2);
  return times2(Math.sqrt(toDouble(v.num, v.den, -2148 - 2 * k)), k);
}

/** |a - b| ≤ ulps · ulp(b) (b finite), with ulp of subnormals 2^-1074. */
export function withinUlps(a: number, b: number, ulps: number): boolean {
  if (a === b) return true;
  const e = b === 0 ? -1074 : Math.max(-1074, Math.floor(Math.log2(Math.abs(b))) - 52);
  return Math.abs(a / 2 - b / 2) <= ulps * times2(1, e) / 2;
}

const M = Number.MAX_VALUE;

/** Extreme but valid finite values: the range's ends, the smallest subnormal, -0, around 2^53, powers of two at the carry and square limits. */
export const EXTREMES = [M, -M, 1e308, -1e308, 2 ** 1023, -(2 ** 1023), 2 ** 1022, 3 * 2 ** 1021, 1.5e154, -1e155, 1e200, 5e-324, -5e-324, 2 ** -1022, 1e-300, -0, 0, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53, 2 ** 53 + 2, 1, -1, 0.1] as const;

/** Extreme values mixed with ordinary ones and any finite double (huge and tiny together). */
export const extremeValue: fc.Arbitrary<number> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...EXTREMES) },
  { weight: 2, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 2, arbitrary: fc.double({ min: -1000, max: 1000, noNaN: true }) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(1, -1), fc.integer({ min: -1074, max: 1023 }), fc.double({ min: 1, max: 2, maxExcluded: true, noNaN: true })).map(([s, e, m]) => s * times2(m, e)) },
);
