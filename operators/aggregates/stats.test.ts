import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { moments, type Moments, type MomentsResult } from './stats.js';

// ---- generators ------------------------------------------------------------------------------

/** Dyadic fractions k/8 with |k| <= 2^20: every partial sum of <= 300 of them is exact in a double. */
const dyadic = fc.integer({ min: -(2 ** 20), max: 2 ** 20 }).map((k) => k / 8);
/** Plain integers. */
const integer = fc.integer({ min: -1_000_000, max: 1_000_000 });
/** Exactly representable values (sums are exact), scaled so that x * 8 is an integer. */
const exactValue = fc.oneof(dyadic, integer);
/**
 * General finite doubles, -0 normalised to 0. Magnitudes in [1e-100, 1e100] (or 0): squared
 * deviations neither overflow nor underflow into subnormals (below ~1e-154 they do, in any
 * double-precision variance, this one and the oracle alike).
 */
const generalValue = fc
  .double({ min: -1e100, max: 1e100, noNaN: true })
  .filter((x) => x === 0 || Math.abs(x) >= 1e-100)
  .map((x) => x + 0);

// ---- brute-force oracles ---------------------------------------------------------------------

function feed(xs: readonly number[]): Moments {
  const acc = moments.create();
  for (const x of xs) moments.add(acc, x);
  return acc;
}

const maxAbs = (xs: readonly number[]) => xs.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

/** Exact sample variance of values that are integers after scaling by 8, via BigInt. */
function exactVariance(xs: readonly number[]): number {
  const n = BigInt(xs.length);
  let s1 = 0n;
  let s2 = 0n;
  for (const x of xs) {
    const k = BigInt(x * 8); // exact: x * 8 is an integer for every exactValue
    s1 += k;
    s2 += k * k;
  }
  // var = (n*S2 - S1^2) / (n (n-1)) / 64
  const num = n * s2 - s1 * s1;
  return Number(num) / Number(n * (n - 1n)) / 64;
}

/** Neumaier-compensated sum: an oracle far more precise than a naive loop. */
function fsum(xs: readonly number[]): number {
  let s = 0;
  let c = 0;
  for (const x of xs) {
    const t = s + x;
    c += Math.abs(s) >= Math.abs(x) ? s - t + x : x - t + s;
    s = t;
  }
  return s + c;
}

/** Two-pass compensated sample variance for general doubles. */
function twoPassVariance(xs: readonly number[]): number {
  const mean = fsum(xs) / xs.length;
  const dev = xs.map((x) => x - mean);
  const corr = fsum(dev);
  return (fsum(dev.map((d) => d * d)) - (corr * corr) / xs.length) / (xs.length - 1);
}

function expectClose(actual: number, expected: number, tol: number, what: string) {
  if (!(Math.abs(actual - expected) <= tol)) {
    throw new Error(`${what}: got ${actual}, expected ${expected} (tolerance ${tol}, off by ${Math.abs(actual - expected)})`);
  }
}

/** stddev tolerance: 1e-9 relative, plus a floor scaled by max |x| for near-zero spreads around a large mean. */
const sdTol = (sd: number, xs: readonly number[]) => 1e-9 * sd + 1e-12 * maxAbs(xs);

function checkExactAgainstBruteForce(r: MomentsResult, xs: readonly number[]) {
  let sum = 0;
  for (const x of xs) sum += x; // exact for exactValue inputs
  expect(r.count).toBe(xs.length);
  expect(r.sum).toBe(sum);
  expect(r.min).toBe(Math.min(...xs));
  expect(r.max).toBe(Math.max(...xs));
  expect(r.mean).toBe(sum / xs.length);
  if (xs.length < 2) {
    expect(r.stddev).toBeNull();
    expect(r.variance).toBeNull();
  } else {
    const v = exactVariance(xs);
    expectClose(r.variance!, v, 1e-9 * v + 1e-12 * maxAbs(xs) ** 2, 'variance');
    expectClose(r.stddev!, Math.sqrt(v), sdTol(Math.sqrt(v), xs), 'stddev');
  }
}

/** Splits xs into k parts by the given assignment. */
function split<T>(xs: readonly T[], parts: readonly number[], k: number): T[][] {
  const out: T[][] = Array.from({ length: k }, () => []);
  xs.forEach((x, i) => out[parts[i] % k].push(x));
  return out;
}

/** xs with, for each element, a part index; k parts; a merge order (a permutation of 0..k-1); merge directions. */
const splitCase = (value: fc.Arbitrary<number>, minLength = 0) =>
  fc.integer({ min: 1, max: 6 }).chain((k) =>
    fc.record({
      xs: fc.array(value, { minLength, maxLength: 200, size: 'max' }),
      parts: fc.array(fc.nat({ max: k - 1 }), { minLength: 200, maxLength: 200 }),
      order: fc.shuffledSubarray([...Array(k).keys()], { minLength: k, maxLength: k }),
      flips: fc.array(fc.boolean(), { minLength: k, maxLength: k }),
      k: fc.constant(k),
    }),
  );

function mergeInOrder(parts: number[][], order: readonly number[], flips: readonly boolean[]): Moments {
  let acc = moments.create();
  order.forEach((p, i) => {
    const part = feed(parts[p]);
    acc = flips[i] ? moments.merge(acc, part) : moments.merge(part, acc);
  });
  return acc;
}

const sameNumber = (a: number, b: number) => a === b || (Number.isNaN(a) && Number.isNaN(b));

// ---- tests -----------------------------------------------------------------------------------

describe('moments: single pass vs brute force', () => {
  it('count/sum/min/max/mean exact and variance/stddev ~exact for dyadic and integer inputs', () => {
    fc.assert(
      fc.property(fc.array(exactValue, { minLength: 1, maxLength: 300, size: 'max' }), (xs) => {
        checkExactAgainstBruteForce(moments.result(feed(xs)), xs);
      }),
      { numRuns: 200 },
    );
  });

  it('general doubles: count/min/max exact, sum/mean/stddev within relative tolerances', () => {
    fc.assert(
      fc.property(fc.array(generalValue, { minLength: 1, maxLength: 200, size: 'max' }), (xs) => {
        const r = moments.result(feed(xs));
        const n = xs.length;
        const m = maxAbs(xs);
        const absSum = fsum(xs.map(Math.abs));
        expect(r.count).toBe(n);
        expect(r.min).toBe(Math.min(...xs));
        expect(r.max).toBe(Math.max(...xs));
        // naive summation error bound: (n - 1) * eps * sum |x|
        expectClose(r.sum, fsum(xs), n * Number.EPSILON * absSum, 'sum');
        const mean = fsum(xs) / n;
        expectClose(r.mean, mean, 1e-9 * Math.max(Math.abs(mean), m), 'mean');
        if (n < 2) expect(r.stddev).toBeNull();
        else {
          const sd = Math.sqrt(Math.max(0, twoPassVariance(xs)));
          expectClose(r.stddev!, sd, sdTol(sd, xs), 'stddev');
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a tight cluster around a large mean keeps its spread (no catastrophic cancellation)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 30 }),
        fc.array(fc.integer({ min: -64, max: 64 }), { minLength: 2, maxLength: 200, size: 'max' }),
        (base, ds) => {
          const xs = ds.map((d) => base + d / 8);
          const sd = Math.sqrt(exactVariance(xs));
          // relative 1e-6 of the spread itself, however large the mean: the naive sum-of-squares fails this
          expectClose(moments.result(feed(xs)).stddev!, sd, 1e-6 * sd + 1e-300, 'stddev');
        },
      ),
      { numRuns: 200 },
    );
  });

  it('stddev and variance are null when count < 2; empty min/max/mean are NaN', () => {
    const empty = moments.result(moments.create());
    expect(empty.count).toBe(0);
    expect(empty.sum).toBe(0);
    expect(empty.stddev).toBeNull();
    expect(empty.variance).toBeNull();
    expect(empty.min).toBeNaN();
    expect(empty.max).toBeNaN();
    expect(empty.mean).toBeNaN();
    fc.assert(
      fc.property(generalValue, (x) => {
        const r = moments.result(feed([x]));
        expect(r.stddev).toBeNull();
        expect(r.variance).toBeNull();
        expect(r.min).toBe(x);
        expect(r.max).toBe(x);
        expect(r.mean).toBe(x);
      }),
    );
  });

  it('result() does not consume the accumulator', () => {
    fc.assert(
      fc.property(fc.array(exactValue, { minLength: 1, maxLength: 50, size: 'max' }), exactValue, (xs, extra) => {
        const acc = feed(xs);
        moments.result(acc);
        moments.add(acc, extra);
        checkExactAgainstBruteForce(moments.result(acc), [...xs, extra]);
      }),
    );
  });
});

describe('moments: merge', () => {
  it('merging a random split into k parts, in random order and direction, equals the single pass', () => {
    fc.assert(
      fc.property(splitCase(exactValue), ({ xs, parts, order, flips, k }) => {
        const merged = moments.result(mergeInOrder(split(xs, parts, k), order, flips));
        const single = moments.result(feed(xs));
        expect(merged.count).toBe(single.count);
        expect(merged.sum).toBe(single.sum);
        if (xs.length === 0) {
          expect(merged.min).toBeNaN();
          expect(merged.max).toBeNaN();
          expect(merged.mean).toBeNaN();
          expect(merged.stddev).toBeNull();
          return;
        }
        expect(merged.min).toBe(single.min);
        expect(merged.max).toBe(single.max);
        expect(merged.mean).toBe(single.mean);
        if (xs.length < 2) expect(merged.stddev).toBeNull();
        else {
          const sd = Math.sqrt(exactVariance(xs));
          expectClose(merged.stddev!, sd, sdTol(sd, xs), 'merged stddev');
          expectClose(merged.stddev!, single.stddev!, 2 * sdTol(sd, xs), 'merged vs single stddev');
        }
      }),
      { numRuns: 200 },
    );
  });

  it('merge with general doubles stays within tolerance of the brute force', () => {
    fc.assert(
      fc.property(splitCase(generalValue, 2), ({ xs, parts, order, flips, k }) => {
        const r = moments.result(mergeInOrder(split(xs, parts, k), order, flips));
        expect(r.count).toBe(xs.length);
        expect(r.min).toBe(Math.min(...xs));
        expect(r.max).toBe(Math.max(...xs));
        expectClose(r.sum, fsum(xs), xs.length * Number.EPSILON * fsum(xs.map(Math.abs)), 'sum');
        const sd = Math.sqrt(Math.max(0, twoPassVariance(xs)));
        expectClose(r.stddev!, sd, sdTol(sd, xs), 'stddev');
      }),
      { numRuns: 150 },
    );
  });

  it('merging an empty accumulator either way is the identity', () => {
    fc.assert(
      fc.property(fc.array(exactValue, { maxLength: 50, size: 'max' }), (xs) => {
        const a = moments.merge(feed(xs), moments.create());
        const b = moments.merge(moments.create(), feed(xs));
        for (const m of [a, b]) {
          const r = moments.result(m);
          const s = moments.result(feed(xs));
          for (const f of ['count', 'sum', 'min', 'max', 'mean'] as const) expect(sameNumber(r[f], s[f])).toBe(true);
          expect(r.stddev).toBe(s.stddev);
        }
      }),
    );
  });
});

describe('moments: serialize / deserialize', () => {
  const fields = ['count', 'sum', 'min', 'max', 'mean', 'm2'] as const;

  it('round trip reproduces every field exactly (empty accumulators included)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.array(exactValue, { maxLength: 100, size: 'max' }), fc.array(generalValue, { maxLength: 100, size: 'max' })), (xs) => {
        const acc = feed(xs);
        const back = moments.deserialize(moments.serialize(acc));
        for (const f of fields) expect(back[f], f).toBe(acc[f]);
        expect(moments.result(back)).toEqual(moments.result(acc));
        // a deserialised accumulator keeps working
        moments.add(back, 1);
        moments.add(acc, 1);
        for (const f of fields) expect(back[f], f).toBe(acc[f]);
      }),
      { numRuns: 200 },
    );
  });

  const expectThrowsWithMessage = (text: string) => {
    let thrown: unknown;
    try {
      moments.deserialize(text);
    } catch (err) {
      thrown = err;
    }
    if (!(thrown instanceof Error)) throw new Error(`deserialize(${JSON.stringify(text)}) did not throw an Error`);
    expect(thrown.message.length).toBeGreaterThan(0);
  };

  it('garbage that is not JSON throws an Error with a message', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        let isJson = true;
        try {
          JSON.parse(s);
        } catch {
          isJson = false;
        }
        fc.pre(!isJson);
        expectThrowsWithMessage(s);
      }),
      { numRuns: 200 },
    );
    for (const s of ['', '[', 'moments', '[1,2,3,4,5,6', 'NaN']) expectThrowsWithMessage(s);
  });

  it('JSON that is not an array of 6 throws', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        fc.pre(!(Array.isArray(v) && v.length === 6));
        expectThrowsWithMessage(JSON.stringify(v));
      }),
      { numRuns: 200 },
    );
  });

  it('an array of 6 with a non-numeric entry, or a count that is not a non-negative integer, throws', () => {
    const nonNumber = fc.oneof(fc.string(), fc.boolean(), fc.array(fc.integer(), { maxLength: 2 }), fc.object({ maxDepth: 1 }));
    fc.assert(
      fc.property(
        fc.array(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e9, max: 1e9 }), { minLength: 6, maxLength: 6 }),
        fc.nat({ max: 5 }),
        nonNumber,
        (nums, at, bad) => {
          const arr: unknown[] = [...nums];
          arr[at] = bad;
          expectThrowsWithMessage(JSON.stringify(arr));
        },
      ),
      { numRuns: 200 },
    );
    for (const s of ['[-1,0,null,null,0,0]', '[1.5,0,0,0,0,0]', '[null,0,0,0,0,0]', '[1,null,0,0,0,0]', '[1,0,0,0,0,null]']) expectThrowsWithMessage(s);
  });
});
