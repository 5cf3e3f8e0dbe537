import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  createSketch,
  DEFAULT_ALPHA,
  ddsketch,
  sketchAdd,
  SketchAccumulator,
  sketchFromBase64,
  sketchFromBytes,
  sketchMerge,
  sketchQuantiles,
  sketchToBase64,
  sketchToBytes,
  type DDSketch,
} from './ddsketch.js';

// ---- generators ------------------------------------------------------------------------------

/** sign * 10^e for e in [-200, 200]: tiny and huge magnitudes. */
const wideMagnitude = fc
  .tuple(fc.boolean(), fc.double({ min: -200, max: 200, noNaN: true }))
  .map(([neg, e]) => (neg ? -1 : 1) * 10 ** e);
const value = fc.oneof(
  { weight: 4, arbitrary: wideMagnitude },
  { weight: 2, arbitrary: fc.integer({ min: -1000, max: 1000 }) },
  { weight: 2, arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true }).filter((x) => x === 0 || Math.abs(x) >= 1e-200) },
  { weight: 1, arbitrary: fc.constantFrom(0, -0, 1, -1, 1e-200, -1e-200, 1e200, -1e200) },
);
const values = (minLength = 1, maxLength = 300) => fc.array(value, { minLength, maxLength, size: 'max' });
const alpha = fc.oneof(fc.constant(DEFAULT_ALPHA), fc.constantFrom(0.001, 0.01, 0.02, 0.05), fc.double({ min: 0.0005, max: 0.2, noNaN: true }));
const quantiles = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 20 }).map((qs) => [0, 0.5, 0.9, 0.99, 1, ...qs]);

// ---- oracles / helpers -----------------------------------------------------------------------

function sketchOf(xs: readonly number[], a = DEFAULT_ALPHA): DDSketch {
  const s = createSketch(a);
  for (const x of xs) sketchAdd(s, x);
  return s;
}

/** The exact value at 0-based rank floor(q * (n - 1)) of the sorted input. */
function exactQuantile(sorted: readonly number[], q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))];
}

function expectWithinAlpha(est: number, exact: number, a: number, what: string) {
  const tol = a * (1 + 1e-9) * Math.abs(exact);
  if (!(Math.abs(est - exact) <= tol)) {
    throw new Error(`${what}: estimate ${est} vs exact ${exact}: relative error ${Math.abs(est - exact) / Math.abs(exact)} > alpha ${a}`);
  }
}

/** A canonical, comparable view of a sketch's state. */
function stateOf(s: DDSketch) {
  const sorted = (m: Map<number, number>) => [...m.entries()].sort((x, y) => x[0] - y[0]);
  return { alpha: s.alpha, count: s.count, zeros: s.zeros, pos: sorted(s.pos), neg: sorted(s.neg) };
}

function expectThrowsError(fn: () => unknown, what: string) {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  if (!(thrown instanceof Error)) throw new Error(`${what}: expected an Error to be thrown`);
  expect(thrown.message).toMatch(/ddsketch/);
}

/** What a successfully decoded sketch must satisfy, whatever bytes it came from. */
function expectConsistent(s: DDSketch) {
  expect(s.alpha > 0 && s.alpha < 1).toBe(true);
  let total = s.zeros;
  for (const c of [...s.pos.values(), ...s.neg.values()]) {
    expect(Number.isSafeInteger(c) && c >= 0).toBe(true);
    total += c;
  }
  expect(Number.isSafeInteger(s.zeros) && s.zeros >= 0).toBe(true);
  expect(Number.isSafeInteger(s.count)).toBe(true);
  expect(s.count).toBe(total);
  const qs = sketchQuantiles(s, [0, 0.25, 0.5, 0.75, 1]);
  if (s.count > 0) for (const v of qs) expect(Number.isFinite(v), `quantile ${v} of a decoded sketch`).toBe(true);
  // the decoded state survives its own round trip
  expect(stateOf(sketchFromBytes(sketchToBytes(s)))).toEqual(stateOf(s));
}

// ---- tests -----------------------------------------------------------------------------------

describe('ddsketch: accuracy vs the exact sorted array', () => {
  it('every quantile is within alpha (relative) of the exact value at floor(q*(n-1))', () => {
    fc.assert(
      fc.property(values(), alpha, quantiles, (xs, a, qs) => {
        const s = sketchOf(xs, a);
        expect(s.count).toBe(xs.length);
        const sorted = [...xs].sort((x, y) => x - y);
        const est = sketchQuantiles(s, qs);
        qs.forEach((q, i) => expectWithinAlpha(est[i], exactQuantile(sorted, q), a, `q=${q}, n=${xs.length}`));
      }),
      { numRuns: 300 },
    );
  });

  it('accuracy holds with heavy duplicates and all-zero / all-negative inputs', () => {
    const few = fc.constantFrom(0, -0, -3.5, 2, 1e-150, -1e150, 7);
    fc.assert(
      fc.property(fc.array(few, { minLength: 1, maxLength: 200, size: 'max' }), quantiles, (xs, qs) => {
        const sorted = [...xs].sort((x, y) => x - y);
        const est = sketchQuantiles(sketchOf(xs), qs);
        qs.forEach((q, i) => expectWithinAlpha(est[i], exactQuantile(sorted, q), DEFAULT_ALPHA, `q=${q}`));
      }),
      { numRuns: 200 },
    );
  });

  it('finite values near Number.MAX_VALUE stay finite and within alpha', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.double({ min: 1e307, max: Number.MAX_VALUE, noNaN: true })), { minLength: 1, maxLength: 50, size: 'max' }),
        alpha,
        quantiles,
        (pairs, a, qs) => {
          const xs = pairs.map(([neg, x]) => (neg ? -x : x));
          const sorted = [...xs].sort((x, y) => x - y);
          const est = sketchQuantiles(sketchOf(xs, a), qs);
          qs.forEach((q, i) => expectWithinAlpha(est[i], exactQuantile(sorted, q), a, `q=${q}`));
        },
      ),
      { numRuns: 100 },
    );
    expectWithinAlpha(sketchQuantiles(sketchOf([Number.MAX_VALUE]), [0.5])[0], Number.MAX_VALUE, DEFAULT_ALPHA, 'MAX_VALUE');
    expectWithinAlpha(sketchQuantiles(sketchOf([-Number.MAX_VALUE]), [0.5])[0], -Number.MAX_VALUE, DEFAULT_ALPHA, '-MAX_VALUE');
  });

  it('quantiles are monotone in q', () => {
    fc.assert(
      fc.property(values(), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2, maxLength: 20 }), (xs, qs) => {
        const sortedQs = [...qs].sort((x, y) => x - y);
        const est = sketchQuantiles(sketchOf(xs), sortedQs);
        for (let i = 1; i < est.length; i++) expect(est[i]).toBeGreaterThanOrEqual(est[i - 1]);
      }),
    );
  });

  it('an empty sketch answers NaN; q outside [0, 1] throws', () => {
    fc.assert(
      fc.property(alpha, quantiles, (a, qs) => {
        for (const v of sketchQuantiles(createSketch(a), qs)) expect(v).toBeNaN();
      }),
      { numRuns: 20 },
    );
    for (const q of [-0.1, 1.5, NaN]) expectThrowsError(() => sketchQuantiles(sketchOf([1, 2, 3]), [q]), `q=${q}`);
    for (const a of [0, 1, -0.1, NaN, 2]) expectThrowsError(() => createSketch(a), `alpha=${a}`);
  });
});

describe('ddsketch: merge is exact', () => {
  const partitionCase = fc.integer({ min: 1, max: 6 }).chain((k) =>
    fc.record({
      xs: values(0, 300),
      parts: fc.array(fc.nat({ max: k - 1 }), { minLength: 300, maxLength: 300 }),
      order: fc.shuffledSubarray([...Array(k).keys()], { minLength: k, maxLength: k }),
      flips: fc.array(fc.boolean(), { minLength: k, maxLength: k }),
      k: fc.constant(k),
      a: alpha,
      qs: quantiles,
    }),
  );

  it('merging sketches of a random partition in random order equals one sketch of all values', () => {
    fc.assert(
      fc.property(partitionCase, ({ xs, parts, order, flips, k, a, qs }) => {
        const buckets: number[][] = Array.from({ length: k }, () => []);
        xs.forEach((x, i) => buckets[parts[i]].push(x));
        let acc = createSketch(a);
        order.forEach((p, i) => {
          const part = sketchOf(buckets[p], a);
          acc = flips[i] ? sketchMerge(acc, part) : sketchMerge(part, acc);
        });
        const single = sketchOf(xs, a);
        expect(stateOf(acc)).toEqual(stateOf(single));
        expect(sketchQuantiles(acc, qs)).toEqual(sketchQuantiles(single, qs));
      }),
      { numRuns: 200 },
    );
  });

  it('merging sketches of different alpha throws', () => {
    fc.assert(
      fc.property(alpha, alpha, values(0, 20), (a, b, xs) => {
        fc.pre(a !== b);
        expectThrowsError(() => sketchMerge(sketchOf(xs, a), sketchOf(xs, b)), `merge ${a} with ${b}`);
      }),
      { numRuns: 50 },
    );
  });

  it('the Aggregator form agrees with the functions', () => {
    fc.assert(
      fc.property(values(0, 100), values(0, 100), alpha, quantiles, (xs, ys, a, qs) => {
        const agg = ddsketch(a);
        const ax = agg.create();
        for (const x of xs) agg.add(ax, x);
        const ay = agg.create();
        for (const y of ys) agg.add(ay, y);
        const merged = agg.result(agg.merge(ax, ay));
        expect(sketchQuantiles(merged, qs)).toEqual(sketchQuantiles(sketchOf([...xs, ...ys], a), qs));
        const back = agg.deserialize(agg.serialize(merged));
        expect(stateOf(back)).toEqual(stateOf(merged));
      }),
      { numRuns: 100 },
    );
  });
});

describe('ddsketch: binary and base64 codec', () => {
  it('bytes and base64 round trips preserve count, buckets and every quantile exactly', () => {
    fc.assert(
      fc.property(values(0, 300), alpha, quantiles, (xs, a, qs) => {
        const s = sketchOf(xs, a);
        const fromBytes = sketchFromBytes(sketchToBytes(s));
        const fromB64 = sketchFromBase64(sketchToBase64(s));
        for (const back of [fromBytes, fromB64]) {
          expect(back.count).toBe(xs.length);
          expect(back.alpha).toBe(a);
          expect(stateOf(back)).toEqual(stateOf(s));
          expect(sketchQuantiles(back, qs)).toEqual(sketchQuantiles(s, qs));
        }
        // the encoding is canonical: re-encoding gives the same bytes
        expect([...sketchToBytes(fromBytes)]).toEqual([...sketchToBytes(s)]);
      }),
      { numRuns: 200 },
    );
  });

  it('every truncation of a valid encoding throws, and so do trailing bytes', () => {
    fc.assert(
      fc.property(values(0, 100), alpha, fc.uint8Array({ minLength: 1, maxLength: 4 }), (xs, a, extra) => {
        const bytes = sketchToBytes(sketchOf(xs, a));
        for (let len = 0; len < bytes.length; len++) {
          expectThrowsError(() => sketchFromBytes(bytes.slice(0, len)), `truncated to ${len} of ${bytes.length}`);
        }
        const longer = new Uint8Array([...bytes, ...extra]);
        expectThrowsError(() => sketchFromBytes(longer), 'trailing bytes');
      }),
      { numRuns: 100 },
    );
  });

  it('random bytes either throw or decode to a consistent sketch (never garbage, never a hang)', () => {
    // fully random bytes, and a valid header (version 1 + a valid alpha) followed by random bytes
    const header = (a: number) => {
      const b = new Uint8Array(9);
      b[0] = 1;
      new DataView(b.buffer).setFloat64(1, a, true);
      return b;
    };
    // small bytes are one-byte varints, so these tails often parse to the end: they probe the validation
    const tailByte = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 6 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) });
    const structured = fc
      .tuple(alpha, fc.array(tailByte, { maxLength: 30, size: 'max' }))
      .map(([a, tail]) => new Uint8Array([...header(a), ...tail]));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64, size: 'max' }), structured), (bytes) => {
        let s: DDSketch;
        try {
          s = sketchFromBytes(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
          expect((err as Error).message).toMatch(/ddsketch/);
          return;
        }
        expectConsistent(s);
      }),
      { numRuns: 3000 },
    );
  });

  it('rejects hand-made malformed encodings', () => {
    const head = sketchToBytes(createSketch()).slice(0, 9); // version + alpha
    const enc = (...rest: number[]) => new Uint8Array([...head, ...rest]);
    const cases: Record<string, Uint8Array> = {
      // zeros 0; pos: 2 entries, key 2 (svar 4) count 1, then key 2 again (delta 0) count 5; neg: 0 entries
      'duplicate bucket key': enc(0, 2, 4, 1, 0, 5, 0),
      // keys must increase: key 2 then key 1 (delta -1 = svar 1)
      'decreasing bucket key': enc(0, 2, 4, 1, 1, 1, 0),
      // a bucket whose key is far beyond the largest finite double
      'bucket key out of range': enc(0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 0),
      'negative bucket key out of range': enc(0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1),
      // a count of 2^55 (8-byte varint), beyond exact integers
      'count beyond 2^53': enc(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0, 0),
      'unknown version': new Uint8Array([2, ...head.slice(1), 0, 0, 0]),
      'alpha out of range': (() => {
        const b = enc(0, 0, 0);
        new DataView(b.buffer).setFloat64(1, 1.5, true);
        return b;
      })(),
      empty: new Uint8Array(0),
    };
    for (const [what, bytes] of Object.entries(cases)) expectThrowsError(() => sketchFromBytes(bytes), what);
    for (const text of ['not base64!', '%%%%', 'AQ==', '', '|']) expectThrowsError(() => sketchFromBase64(text), `base64 ${text}`);
  });

  it('a sketch of 10,000 values spanning 3 orders of magnitude is under 8 KB in base64', () => {
    // worst case for the range: log-uniform values hit every bucket between 1 and 1000
    const xs: number[] = [];
    for (let i = 0; i < 10_000; i++) xs.push(10 ** ((3 * i) / 9_999));
    const s = sketchOf(xs);
    expect(s.pos.size).toBeGreaterThan(600); // ~ln(1000)/ln(gamma) buckets: the data does span the range
    expect(sketchToBase64(s).length).toBeLessThan(8 * 1024);
    // and random values, with a sign and zeros, over the same span
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.double({ min: 0, max: 3, noNaN: true }), fc.boolean()), { minLength: 10_000, maxLength: 10_000, size: 'max' }), (pairs) => {
        const r = sketchOf(pairs.map(([e, neg]) => (neg ? -1 : 1) * 10 ** e));
        expect(sketchToBase64(r).length).toBeLessThan(8 * 1024);
      }),
      { numRuns: 5 },
    );
  });
});

describe('ddsketch: SketchAccumulator (merge straight from the encoded form)', () => {
  it('equals decoding every sketch and merging them, for random sketches in random order', () => {
    fc.assert(
      fc.property(alpha, fc.array(values(0, 60), { maxLength: 12 }), quantiles, (a, groups, qs) => {
        const texts = groups.map((xs) => sketchToBase64(sketchOf(xs, a)));
        const acc = new SketchAccumulator();
        for (const t of texts) acc.addBase64(t);
        const got = acc.result();
        expect(acc.merged).toBe(texts.length);
        if (texts.length === 0) {
          expect(got).toBeNull();
          return;
        }
        let want = sketchFromBase64(texts[0]);
        for (const t of texts.slice(1)) want = sketchMerge(want, sketchFromBase64(t));
        expect(stateOf(got!)).toEqual(stateOf(want));
        expect(sketchQuantiles(got!, qs)).toEqual(sketchQuantiles(want, qs));
        expect(sketchQuantiles(got!, qs)).toEqual(sketchQuantiles(sketchOf(groups.flat(), a), qs));
      }),
      { numRuns: 300 },
    );
  });

  it('keys far apart grow the store in both directions without losing counts', () => {
    const acc = new SketchAccumulator();
    const xs = [1e-200, 1e200, 1, -1e-150, -1e150, 0, 3, 1e-200, 7e100];
    for (const x of xs) acc.addBase64(sketchToBase64(sketchOf([x])));
    expect(stateOf(acc.result()!)).toEqual(stateOf(sketchOf(xs)));
  });

  it('throws on whatever sketchFromBytes throws on, and on mixed accuracies', () => {
    const head = sketchToBytes(createSketch()).slice(0, 9);
    const enc = (...rest: number[]) => new Uint8Array([...head, ...rest]);
    for (const bytes of [enc(0, 2, 4, 1, 0, 5, 0), enc(0, 2, 4, 1, 1, 1, 0), enc(0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 0), new Uint8Array(0), enc(0, 0)]) {
      expectThrowsError(() => sketchFromBytes(bytes), 'oracle');
      expectThrowsError(() => new SketchAccumulator().addBytes(bytes), 'accumulator');
    }
    for (const text of ['not base64!', '%%%%', '', '|']) expectThrowsError(() => new SketchAccumulator().addBase64(text), `base64 ${text}`);
    const acc = new SketchAccumulator();
    acc.addBase64(sketchToBase64(sketchOf([1], 0.01)));
    expectThrowsError(() => acc.addBase64(sketchToBase64(sketchOf([1], 0.02))), 'mixed alpha');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        let oracle: unknown = null;
        try {
          sketchFromBytes(bytes);
        } catch (err) {
          oracle = err;
        }
        let mine: unknown = null;
        try {
          new SketchAccumulator().addBytes(bytes);
        } catch (err) {
          mine = err;
        }
        expect(mine === null).toBe(oracle === null);
      }),
      { numRuns: 2000 },
    );
  });
});
