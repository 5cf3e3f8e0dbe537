/**
 * GET /v1/series serializes its points through the route's response schema (fast-json-stringify).
 * A window whose sum is past ±1.8e308 has a null sum in QuestDB: the body must say null, never 0
 * (a schema typed `number` writes null as 0), and extreme finite figures pass exactly.
 */
import { afterAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { seriesRoutes } from './series.js';

const M = Number.MAX_VALUE;
const point = (ts: number, sum: number | null, stddev: number | null) => ({ ts, count: 2, rate: 0.2, sum, min: -M, max: M, mean: 5e-324, stddev, p50: -M, p90: 1e308, p95: M, p99: M, p999: M });
const answer = { metric: 'lat', key: 'k', window: '10s', from: 0, to: 20_000, truncated: false, points: [point(0, null, null), point(10_000, -0.5, 1.5e308), point(20_000, 0, 0)] };

describe('/v1/series: extreme and null figures pass through the response schema', () => {
  let a: FastifyInstance;
  afterAll(() => a?.close());

  it('a null sum stays null (not 0), ±1.8e308 and 5e-324 stay exact', async () => {
    a = Fastify();
    a.decorate('weir', { service: { series: async () => answer } } as unknown as FastifyInstance['weir']);
    await a.register(seriesRoutes);
    await a.ready();
    const res = await a.inject('/v1/series?metric=lat&key=k&window=10s&from=0&to=20000');
    expect(res.statusCode, res.body).toBe(200);
    expect(JSON.parse(res.body).points).toEqual(answer.points);
  });
});
