import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AGGREGATE_NAMES, AGGREGATES, AggregateOptionsError, aggregatorFor } from './registry.js';
import { feed, mergeTree, samples, splitCase } from './testing/laws.js';

const WHERE = 'films.yaml: aggregates.x';

/** Options that build every aggregate, and a few variants of each. */
const VALID: Record<string, unknown[]> = {
  count: [{}, undefined],
  sum: [{}],
  min: [{}],
  max: [{}],
  mean: [{}],
  variance: [{}],
  stddev: [{}],
  rate: [{ window: '10s' }, { window: 60_000, per: '1m', of: 'sum' }],
  ewma: [{ halfLife: '30s' }, { halfLife: 250 }],
  first: [{}],
  last: [{}],
  distinct: [{}, { of: 'tag:user', exactUpTo: 5, precision: 10 }, { of: 'metric' }],
  percentiles: [{}, { q: [0.5, 0.999] }, { impl: 'hdr', digits: 2, resolution: 0.5 }, { impl: 'tdigest', q: [0.1], delta: 0.05 }, { impl: 'ddsketch', accuracy: 0.01 }],
  ratio: [
    { numerator: { metric: 'hits' }, denominator: { metric: ['hits', 'misses'] } },
    { numerator: { tags: { status: 'hit' } }, denominator: { tags: { status: ['hit', 'miss'] } }, of: 'sum' },
  ],
};

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AggregateOptionsError);
    return (err as Error).message;
  }
  throw new Error('expected an AggregateOptionsError');
}

describe('registry', () => {
  it('lists every aggregate a pipeline can name', () => {
    expect(AGGREGATE_NAMES).toEqual(['count', 'sum', 'min', 'max', 'mean', 'variance', 'stddev', 'rate', 'ewma', 'first', 'last', 'distinct', 'percentiles', 'ratio']);
    expect(Object.keys(VALID).sort()).toEqual([...AGGREGATE_NAMES].sort());
  });

  it('builds working aggregators from valid options: results are numbers, null or named numbers, and merge and round-trip', () => {
    for (const name of AGGREGATE_NAMES) {
      for (const options of VALID[name]) {
        const agg = aggregatorFor(name, options, WHERE);
        fc.assert(
          fc.property(splitCase(samples()), (c) => {
            const single = agg.result(feed(agg, c.xs));
            const shapeOk =
              single === null ||
              typeof single === 'number' ||
              Object.values(single).every((v) => v === null || typeof v === 'number');
            expect(shapeOk, `${name} result ${JSON.stringify(single)}`).toBe(true);
            const merged = agg.result(mergeTree(agg, c));
            if (!(name === 'variance' || name === 'stddev' || (name === 'percentiles' && (options as { impl?: string })?.impl === 'tdigest')))
              expect(merged, name).toEqual(single);
            expect(agg.result(agg.deserialize(agg.serialize(feed(agg, c.xs)))), name).toEqual(single);
          }),
          { numRuns: 10 },
        );
      }
    }
  });

  it('fills defaults: percentiles are DDSketch p50/p90/p95/p99, rate per second', () => {
    const p = aggregatorFor('percentiles', {}, WHERE);
    expect(Object.keys(p.result(p.create()) as object)).toEqual(['p50', 'p90', 'p95', 'p99']);
    expect(AGGREGATES.percentiles.options.parse({})).toMatchObject({ impl: 'ddsketch', accuracy: 0.005 });
    expect(AGGREGATES.rate.options.parse({ window: '10s' })).toEqual({ window: 10_000, per: 1000, of: 'count' });
    const r = aggregatorFor('rate', { window: '10s' }, WHERE);
    expect(r.result(r.create())).toBe(0);
    expect(r.result(feed(r, [{ metric: 'm', value: 1, ts: 0 }]))).toBe(0.1);
  });

  it('names where the problem is and what is wrong', () => {
    const cases: [string, unknown, RegExp][] = [
      ['nope', {}, /^films\.yaml: aggregates\.x: unknown aggregate "nope"; one of count, sum, .*ratio$/],
      ['count', { x: 1 }, /^films\.yaml: aggregates\.x\.x: unknown option "x"; count takes no options$/],
      ['count', 5, /^films\.yaml: aggregates\.x: options must be a mapping/],
      ['percentiles', { q: [0.5, 1.5] }, /^films\.yaml: aggregates\.x\.q\[1\]: each quantile must be in \[0, 1\]$/],
      ['percentiles', { q: 'p99' }, /^films\.yaml: aggregates\.x\.q: q must be a list of quantiles in \[0, 1\], e\.g\. \[0\.5, 0\.99\], got "p99"$/],
      ['percentiles', { q: [] }, /aggregates\.x\.q: q must name at least one quantile/],
      ['percentiles', { q: [0.5, 0.5] }, /aggregates\.x\.q\[1\]: quantile 0\.5 repeats q\[0\] \(both are p50\)/],
      ['percentiles', { impl: 'hdr', digits: 7 }, /aggregates\.x\.digits: digits must be from 1 to 5/],
      ['percentiles', { impl: 'hdr', accuracy: 0.01 }, /aggregates\.x\.accuracy: unknown option "accuracy"; percentiles with impl hdr takes impl, q, digits, resolution, wasm/],
      ['percentiles', { impl: 'fast' }, /aggregates\.x\.impl: impl must be ddsketch, hdr or tdigest, got "fast"/],
      ['percentiles', { impl: 'tdigest', delta: 2 }, /aggregates\.x\.delta: delta must be in \(0, 1\)/],
      ['rate', {}, /aggregates\.x\.window: window is required: the window's length \(pipeline code passes the window size\), e\.g\. 10s/],
      ['rate', { window: '10 s' }, /aggregates\.x\.window: window must look like 500ms, 10s, 1m, 2h or 7d, got "10 s"/],
      ['rate', { window: 0 }, /aggregates\.x\.window: window must be longer than 0/],
      ['rate', { window: '1s', of: 'max' }, /aggregates\.x\.of: rate: of must be "count" or "sum"/],
      ['ewma', {}, /aggregates\.x\.halfLife: halfLife is required: how much older a sample weighs half, e\.g\. 1m/],
      ['ewma', { halfLife: true }, /aggregates\.x\.halfLife: halfLife must be a duration like 1m or a number of ms, got true/],
      ['distinct', { of: 'user' }, /aggregates\.x\.of: of must be "value", "metric" or "tag:<name>"/],
      ['distinct', { precision: 30 }, /aggregates\.x\.precision: precision must be at most 18/],
      ['distinct', { exactUpTo: 1.5 }, /aggregates\.x\.exactUpTo: exactUpTo must be a whole number/],
      ['ratio', { numerator: { metric: 'a' } }, /aggregates\.x\.denominator: denominator is required: which samples it counts/],
      ['ratio', { numerator: {}, denominator: { metric: 'a' } }, /aggregates\.x\.numerator: numerator must name a metric or tags/],
      ['ratio', { numerator: { metric: 'a', tag: 'x' }, denominator: { metric: 'a' } }, /aggregates\.x\.numerator\.tag: unknown key "tag"; numerator takes metric and tags/],
      ['ratio', { numerator: { tags: { s: 1 } }, denominator: { metric: 'a' } }, /aggregates\.x\.numerator\.tags\.s: each tag of numerator\.tags must be a value or a list of values/],
    ];
    for (const [name, options, pattern] of cases) expect(messageOf(() => aggregatorFor(name, options, WHERE)), `${name} ${JSON.stringify(options)}`).toMatch(pattern);
  });

  it('lists every problem, one line each, and keeps them on the error', () => {
    let err: AggregateOptionsError | undefined;
    try {
      aggregatorFor('percentiles', { impl: 'hdr', q: [2], digits: 0, colour: 'red', size: 1 }, WHERE);
    } catch (e) {
      err = e as AggregateOptionsError;
    }
    expect(err?.where).toBe(WHERE);
    expect(err?.issues.map((i) => i.path).sort()).toEqual(['.colour', '.digits', '.size', '.q[0]'].sort());
    expect(err?.message.split('\n')).toHaveLength(4);
  });

  it('never builds from garbage options without saying why', () => {
    fc.assert(
      fc.property(fc.constantFrom(...AGGREGATE_NAMES), fc.jsonValue(), (name, options) => {
        try {
          aggregatorFor(name, options, WHERE);
        } catch (err) {
          expect(err).toBeInstanceOf(AggregateOptionsError);
          expect((err as Error).message.startsWith(WHERE)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
