import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { percentiles, quantileName, type PercentilesOptions, type Quantiles } from './percentiles.js';
import { hdrErrorBound, hdrQuantiles, releaseHdr } from './hdr.js';
import { rankOf } from './quantile-sketch.js';
import {
  arrivalOrderFree,
  expectMalformed,
  feed,
  garbage,
  mergeLeavesOther,
  mergesLikeOnePass,
  mergeTree,
  roundTrips,
  samples,
  splitCase,
  survivesGarbage,
  type Check,
} from './testing/laws.js';
import type { Sample } from '../sample.js';

const RUNS = { numRuns: 40 };
const QS = [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];

/** Values for sketches: several magnitudes, both signs, zeros and heavy repeats. */
const value = fc.oneof(
  { weight: 3, arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true }) },
  { weight: 2, arbitrary: fc.tuple(fc.boolean(), fc.double({ min: -3, max: 6, noNaN: true })).map(([neg, e]) => (neg ? -1 : 1) * 10 ** e) },
  { weight: 2, arbitrary: fc.integer({ min: -50, max: 1000 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -0, 1, 7.25, 1000) },
);
const stream = samples({ value }, 0, 300);
const nonEmpty = samples({ value }, 1, 300);

const sortedValues = (xs: readonly Sample[]) => xs.map((s) => s.value + 0).sort((a, b) => a - b);
const names = QS.map(quantileName);

function expectEmptyIsNull(agg: ReturnType<typeof percentiles>) {
  const r = agg.result(agg.create());
  for (const n of names) expect(r[n]).toBeNull();
}

/** Every estimate lies in [min, max] and passes `ok(estimate, q, sorted)`. */
const withinBound =
  (ok: (est: number, q: number, sorted: readonly number[]) => string | null): Check<Quantiles> =>
  (actual, _expected, xs) => {
    const sorted = sortedValues(xs);
    QS.forEach((q, i) => {
      const est = actual[names[i]];
      if (sorted.length === 0) return void expect(est).toBeNull();
      if (typeof est !== 'number') throw new Error(`q=${q}: no estimate`);
      if (est < sorted[0] || est > sorted[sorted.length - 1]) throw new Error(`q=${q}: ${est} outside [${sorted[0]}, ${sorted[sorted.length - 1]}]`);
      const why = ok(est, q, sorted);
      if (why) throw new Error(`q=${q}, n=${sorted.length}: ${why}`);
    });
  };

describe('quantileName', () => {
  it('names quantiles as pipeline columns do', () => {
    expect([0.5, 0.9, 0.95, 0.99, 0.999, 0, 1, 0.05, 0.001, 0.25].map(quantileName)).toEqual(['p50', 'p90', 'p95', 'p99', 'p999', 'p0', 'p100', 'p05', 'p001', 'p25']);
  });
  it('gives distinct quantiles distinct names', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (a, b) => {
        fc.pre(a !== b);
        expect(quantileName(a)).not.toBe(quantileName(b));
      }),
      { numRuns: 300 },
    );
  });
});

describe('percentiles: ddsketch', () => {
  for (const accuracy of [0.005, 0.02]) {
    const agg = percentiles({ impl: 'ddsketch', q: QS, accuracy });
    const bound = withinBound((est, q, sorted) => {
      const exact = sorted[rankOf(q, sorted.length)];
      // ddsketch.ts counts magnitudes below 1e-300 as zero: an absolute 1e-300 on top.
      return Math.abs(est - exact) <= accuracy * (1 + 1e-9) * Math.abs(exact) + 1e-300 ? null : `${est} is not within ${accuracy} of ${exact}`;
    });
    it(`is within alpha = ${accuracy} (relative) of the exact value at rank floor(q(n-1))`, () =>
      fc.assert(fc.property(stream, (xs) => bound(agg.result(feed(agg, xs)), {}, xs)), { numRuns: 100 }));
    it(`merges exactly like one pass, in any order (alpha ${accuracy})`, () => {
      fc.assert(mergesLikeOnePass(agg, stream), RUNS);
      fc.assert(arrivalOrderFree(agg, stream), RUNS);
      fc.assert(mergeLeavesOther(agg, stream), RUNS);
    });
    it(`round-trips, also after merges (alpha ${accuracy})`, () => fc.assert(roundTrips(agg, stream), RUNS));
  }
  it('is the default, with p50, p90, p95, p99; all null when empty', () => {
    const agg = percentiles();
    expect(Object.keys(agg.result(feed(agg, [{ metric: 'm', value: 5, ts: 0 }])))).toEqual(['p50', 'p90', 'p95', 'p99']);
    expectEmptyIsNull(percentiles({ q: QS }));
  });
  it('malformed states throw and say what is wrong', () => {
    const agg = percentiles({ q: [0.5] });
    expectMalformed(agg, '[1,2]', /^percentiles \(ddsketch\): .*expected 3 fields \[min, max, sketch\], got 2/);
    expectMalformed(agg, '[1,2,3]', /^percentiles \(ddsketch\): .*field 3 \(sketch\) must be a string, got 3/);
    expectMalformed(agg, '[1,2,"!!"]', /^percentiles \(ddsketch\): .*field 3 \(sketch\): ddsketch: sketch is not base64/);
    const one = agg.serialize(feed(agg, [{ metric: 'm', value: 5, ts: 0 }]));
    const inner = JSON.parse(one)[2] as string;
    expectMalformed(agg, JSON.stringify([null, null, inner]), /^percentiles \(ddsketch\): .*min and max are null but the sketch holds values/);
    expectMalformed(agg, JSON.stringify([6, 5, inner]), /^percentiles \(ddsketch\): .*min 6 is above max 5/);
    expectMalformed(agg, JSON.stringify([5, 5, agg.serialize(agg.create()).split('"')[1]]), /^percentiles \(ddsketch\): .*min and max are set but the sketch is empty/);
    expectMalformed(percentiles({ accuracy: 0.01 }), one, /^percentiles \(ddsketch\): .*relative accuracy 0.005, this aggregator 0.01/);
    fc.assert(survivesGarbage(agg, 'percentiles (ddsketch)', garbage(agg, stream)), { numRuns: 100 });
  });
});

describe('percentiles: hdr', () => {
  for (const [digits, resolution] of [
    [3, 0.001],
    [2, 1],
    [1, 0.25],
    [4, 0.5],
  ] as const) {
    const opts: PercentilesOptions = { impl: 'hdr', q: QS, digits, resolution };
    const agg = percentiles(opts);
    const label = `${digits} digits, resolution ${resolution}`;
    const bound = withinBound((est, q, sorted) => {
      const exact = sorted[rankOf(q, sorted.length)];
      const tol = hdrErrorBound(exact, digits, resolution) * (1 + 1e-12);
      return Math.abs(est - exact) <= tol ? null : `${est} is ${Math.abs(est - exact)} from ${exact}, more than ${tol}`;
    });
    it(`is within 10^-digits relative plus resolution/2 of the exact value (${label})`, () =>
      fc.assert(fc.property(stream, (xs) => bound(agg.result(feed(agg, xs)), {}, xs)), { numRuns: 60 }));
    it(`merges exactly like one pass, in any order (${label})`, () => {
      fc.assert(mergesLikeOnePass(agg, stream), RUNS);
      fc.assert(arrivalOrderFree(agg, stream), RUNS);
      fc.assert(mergeLeavesOther(agg, stream), { numRuns: 20 });
    });
    it(`round-trips, also after merges (${label})`, () => fc.assert(roundTrips(agg, stream), { numRuns: 25 }));
  }

  it('5 digits: within 10^-5 relative (few runs: 2^18 buckets per histogram)', () => {
    const agg = percentiles({ impl: 'hdr', q: QS, digits: 5, resolution: 1e-3 });
    const xs = samples({ value: fc.double({ min: -1000, max: 1000, noNaN: true }) }, 1, 200);
    fc.assert(
      fc.property(xs, (ss) => {
        const sorted = sortedValues(ss);
        const r = agg.result(feed(agg, ss));
        QS.forEach((q, i) => {
          const exact = sorted[rankOf(q, sorted.length)];
          expect(Math.abs(r[names[i]]! - exact)).toBeLessThanOrEqual(hdrErrorBound(exact, 5, 1e-3) * (1 + 1e-12));
        });
      }),
      { numRuns: 10 },
    );
  });

  it('WebAssembly histograms give the same answers as JS ones, merged and round-tripped', () => {
    const js = percentiles({ impl: 'hdr', q: QS });
    const wasm = percentiles({ impl: 'hdr', q: QS, wasm: true });
    fc.assert(
      fc.property(splitCase(stream), (c) => {
        expect(wasm.result(mergeTree(wasm, c))).toEqual(js.result(feed(js, c.xs)));
        const acc = feed(wasm, c.xs);
        expect(wasm.result(wasm.deserialize(wasm.serialize(acc)))).toEqual(js.result(feed(js, c.xs)));
        releaseHdr(acc.sketch as Parameters<typeof releaseHdr>[0]);
      }),
      { numRuns: 25 },
    );
  });

  it('records magnitudes up to resolution * (2^53 - 1) and clamps beyond', () => {
    const sketch = hdrQuantiles({ resolution: 1 });
    const s = sketch.create();
    sketch.add(s, 2 ** 52);
    sketch.add(s, -(2 ** 40));
    sketch.add(s, 1e300);
    const [lo, mid, hi] = sketch.quantiles(s, [0, 0.5, 1]);
    expect(Math.abs(lo + 2 ** 40)).toBeLessThanOrEqual(hdrErrorBound(2 ** 40, 3, 1));
    expect(Math.abs(mid - 2 ** 52)).toBeLessThanOrEqual(hdrErrorBound(2 ** 52, 3, 1));
    expect(hi).toBeGreaterThan(2 ** 52);
    expect(hi).toBeLessThanOrEqual(2 ** 53 * 1.001);
  });

  it('malformed states throw and say what is wrong', () => {
    const agg = percentiles({ impl: 'hdr', q: [0.5] });
    const state = JSON.parse(agg.serialize(feed(agg, [{ metric: 'm', value: -5, ts: 0 }, { metric: 'm', value: 5, ts: 0 }]))) as [number, number, string];
    const [res, pos, neg] = state[2].split('|');
    const withInner = (inner: string) => JSON.stringify([state[0], state[1], inner]);
    expectMalformed(agg, withInner(`${res}|${pos}`), /^percentiles \(hdr\): .*field 3 \(sketch\): expected "<resolution>\|<histogram of values >= 0>\|/);
    expectMalformed(agg, withInner(`0.5|${pos}|${neg}`), /^percentiles \(hdr\): .*the state has resolution 0.5, this aggregator 0.001/);
    expectMalformed(agg, withInner(`${res}|${pos}|%%%`), /^percentiles \(hdr\): .*the negative histogram is not base64/);
    expectMalformed(agg, withInner(`${res}|AAAAAAAA|${neg}`), /^percentiles \(hdr\): .*the non-negative histogram does not decode \(/);
    expectMalformed(percentiles({ impl: 'hdr', q: [0.5], digits: 2 }), withInner(`${res}|${pos}|${neg}`), /^percentiles \(hdr\): .*the non-negative histogram has 3 significant digits, this aggregator 2/);
    fc.assert(survivesGarbage(agg, 'percentiles (hdr)', garbage(agg, stream)), { numRuns: 60 });
  });
});

describe('percentiles: tdigest', () => {
  /** The documented bound: rank error <= delta + (m - 1/2)/n, m = the largest multiplicity. */
  const rankBound = (delta: number) =>
    withinBound((est, q, sorted) => {
      const n = sorted.length;
      const below = lowerBound(sorted, est, false);
      const atOrBelow = lowerBound(sorted, est, true);
      const err = Math.max(0, below / n - q, q - atOrBelow / n);
      const tol = delta + (maxMultiplicity(sorted) - 0.5) / n + 1e-12;
      return err <= tol ? null : `${est} has rank [${below}, ${atOrBelow}] of ${n}: rank error ${err} > ${tol}`;
    });
  for (const delta of [0.01, 0.05]) {
    const agg = percentiles({ impl: 'tdigest', q: QS, delta });
    it(`has rank error at most delta + ties (delta ${delta})`, () =>
      fc.assert(fc.property(stream, (xs) => rankBound(delta)(agg.result(feed(agg, xs)), {}, xs)), { numRuns: 100 }));
    it(`keeps that bound after merging a random split in any order (delta ${delta})`, () =>
      fc.assert(fc.property(splitCase(stream), (c) => rankBound(delta)(agg.result(mergeTree(agg, c)), {}, c.xs)), { numRuns: 60 }));
    it(`round-trips to the same answers, also after merges (delta ${delta})`, () => {
      fc.assert(
        fc.property(splitCase(stream), (c) => {
          const acc = mergeTree(agg, c);
          expect(agg.result(agg.deserialize(agg.serialize(acc)))).toEqual(agg.result(acc));
        }),
        RUNS,
      );
      fc.assert(mergeLeavesOther(agg, stream), { numRuns: 20 });
    });
  }
  it('has the bound on larger continuous and sorted inputs too', () => {
    const agg = percentiles({ impl: 'tdigest', q: QS });
    fc.assert(
      fc.property(fc.integer({ min: 1000, max: 5000 }), fc.boolean(), fc.integer(), (n, sorted, seed) => {
        const xs = Array.from({ length: n }, (_, i) => ({ metric: 'm', value: sorted ? i : Math.sin(seed + i * 12.9898) * 43758.5453, ts: 0 }));
        rankBound(0.01)(agg.result(feed(agg, xs)), {}, xs);
      }),
      { numRuns: 10 },
    );
  });
  it('malformed states throw and say what is wrong', () => {
    const agg = percentiles({ impl: 'tdigest', q: [0.5] });
    const inner = (text: string) => JSON.stringify([1, 2, text]);
    expectMalformed(agg, inner('[0.01,1]'), /^percentiles \(tdigest\): .*expected a JSON array \[delta, mean1, weight1/);
    expectMalformed(agg, inner('[0.05,1,1]'), /^percentiles \(tdigest\): .*the state has delta 0.05, this aggregator 0.01/);
    expectMalformed(agg, inner('[0.01,1,0]'), /^percentiles \(tdigest\): .*centroid 1: weight must be a positive integer, got 0/);
    expectMalformed(agg, inner('[0.01,"a",1]'), /^percentiles \(tdigest\): .*centroid 1: mean must be a finite number, got "a"/);
    expectMalformed(agg, inner('[0.01,2,1,1,1]'), /^percentiles \(tdigest\): .*centroid 2: means must not decrease, got 1 after 2/);
    expectMalformed(agg, inner('{'), /^percentiles \(tdigest\): .*field 3 \(sketch\): not JSON/);
    fc.assert(survivesGarbage(agg, 'percentiles (tdigest)', garbage(agg, stream)), { numRuns: 100 });
  });
});

describe('percentiles: options', () => {
  it('refuses quantiles outside [0, 1], repeated names and unknown impls', () => {
    expect(() => percentiles({ q: [0.5, 1.5] })).toThrow(/percentiles: each quantile must be in \[0, 1\], got 1.5/);
    expect(() => percentiles({ q: [] })).toThrow(/percentiles: name at least one quantile/);
    expect(() => percentiles({ q: [0.5, 0.5] })).toThrow(/percentiles: quantile p50 is listed twice/);
    expect(() => percentiles({ impl: 'nope' } as unknown as PercentilesOptions)).toThrow(/percentiles: impl must be ddsketch, hdr or tdigest, got "nope"/);
    expect(() => percentiles({ impl: 'hdr', digits: 7 as 5 })).toThrow(/hdr: digits must be an integer from 1 to 5, got 7/);
    expect(() => percentiles({ impl: 'tdigest', delta: 1 })).toThrow(/tdigest: delta must be in \(0, 1\), got 1/);
  });
  it('every impl gives null for an empty window and the exact value for one sample', () => {
    for (const impl of ['ddsketch', 'hdr', 'tdigest'] as const) {
      const agg = percentiles({ impl, q: QS });
      expectEmptyIsNull(agg);
      const r = agg.result(feed(agg, [{ metric: 'm', value: 42.5, ts: 0 }]));
      for (const n of names) expect(r[n], `${impl} ${n}`).toBe(42.5);
    }
  });
});

function lowerBound(sorted: readonly number[], x: number, inclusive: boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < x || (inclusive && sorted[mid] === x)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function maxMultiplicity(sorted: readonly number[]): number {
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i = j) {
    while (j < sorted.length && sorted[j] === sorted[i]) j++;
    best = Math.max(best, j - i);
  }
  return best;
}
