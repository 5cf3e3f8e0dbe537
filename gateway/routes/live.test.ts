/**
 * GET /v1/latest and /v1/top serialize their answers through the route's response schema
 * (fast-json-stringify via Fastify). A declared pipeline's fields may share a name with a default
 * figure (`count`, `p50`, …) and hold any number or null: the body must be exactly what
 * JSON.stringify gives of the service's answer, never coerced (a schema typed `integer` truncates
 * 2.5 to 2, one typed `number` writes null as 0) nor dropped. Routes on a bare Fastify instance, the
 * service a stub returning the given answer.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import Fastify, { type FastifyInstance } from 'fastify';
import type { LiveResult } from '../../engine/subjects.js';
import { liveRoutes } from './live.js';

type Obj = Record<string, unknown>;

let results: Obj[] = [];
const topOf = (entries: Obj[]) => ({ metric: 'films', window: '1d', by: 'popularity', order: 'desc', start: 1_767_225_600_000, final: false, candidates: entries.length, entries });

async function app(): Promise<FastifyInstance> {
  const a = Fastify();
  a.decorate('weir', { service: { latest: async () => ({ results }), topK: async () => topOf(results) } } as unknown as FastifyInstance['weir']);
  await a.register(liveRoutes);
  await a.ready();
  return a;
}

const FIGURES = ['count', 'rate', 'sum', 'min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p95', 'p99', 'p999'];
const ID = { pipeline: 'films', metric: 'films', key: 'tt0111161', window: '1d', start: 1_767_225_600_000, end: 1_767_312_000_000, final: false, revision: 7, emittedAt: 1_767_300_000_123 };

describe('/v1/latest and /v1/top: declared pipelines’ fields pass through the response schema', () => {
  let a: FastifyInstance;
  afterAll(() => a?.close());

  const both = async (rs: Obj[]) => {
    a ??= await app();
    results = rs;
    const latest = await a.inject('/v1/latest?pipeline=films&key=tt0111161');
    const top = await a.inject('/v1/top?pipeline=films&window=1d&by=popularity');
    expect(latest.statusCode, latest.body).toBe(200);
    expect(top.statusCode, top.body).toBe(200);
    // Same JSON as JSON.stringify of the answer (key order aside: the schema's properties come first).
    expect(JSON.parse(latest.body)).toEqual(JSON.parse(JSON.stringify({ results: rs })));
    expect(JSON.parse(top.body)).toEqual(JSON.parse(JSON.stringify(topOf(rs))));
    return JSON.parse(latest.body).results as Obj[];
  };

  it('a field `count` of 2.5 and a `p50` of null are not coerced (no 2, no 0), nor any other figure name', async () => {
    const [got] = await both([{ ...ID, count: 2.5, p50: null, sum: null, rate: -0.5, stddev: 3, p999: 1e-9, popularity: 0.75, trend_dir: -1, crowd: null }]);
    expect(got.count).toBe(2.5);
    expect(got.p50).toBeNull();
    expect(got.sum).toBeNull();
    expect(got.crowd).toBeNull();
    expect(got.popularity).toBe(0.75);
  });

  it('the default pipeline’s results are unchanged', async () => {
    const r: LiveResult = { ...ID, pipeline: 'default', metric: 'lat', final: true, revision: 0, count: 3, rate: 0.3, sum: 6.5, min: 1, max: 3.5, mean: 2.1666, stddev: null, p50: 2, p90: 3.5, p95: 3.5, p99: 3.5, p999: 3.5 };
    await both([r as unknown as Obj, { ...r, key: 'b', stddev: 0.25 } as unknown as Obj]);
  });

  it('property: any declared result (fields named like default figures or not, numbers or null) passes exactly', async () => {
    const name = fc.oneof(fc.stringMatching(/^[a-z][a-z0-9_]{0,47}$/), fc.constantFrom(...FIGURES, 'trend_pct', 'trend_dir', 'read_p50'));
    const value = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.constant(null));
    const fields = fc.dictionary(name, value, { maxKeys: 16 }).filter((d) => !['start', 'end', 'revision', 'final'].some((k) => k in d));
    await fc.assert(
      fc.asyncProperty(fc.array(fields, { minLength: 1, maxLength: 3 }), async (list) => {
        await both(list.map((f, i) => ({ ...ID, key: `k${i}`, ...f })));
      }),
      { numRuns: 150 },
    );
  });
});
