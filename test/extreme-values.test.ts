/**
 * Extreme but valid values on the real stack (issue 5, "Bad input"): events of ±1.8e308, 5e-324,
 * -0, 2^53 ± 1 and tiny spreads, published over NATS into the default pipeline beside ordinary
 * ones. What must hold, end to end:
 * - each row in QuestDB (read over PG wire) holds exactly the figures the summary computes, a
 *   sum past ±1.8e308 as null (and the mean, stddev and percentiles of that window as numbers),
 *   never Infinity or NaN; the ordinary key's rows are untouched;
 * - the live results on NATS carry the same figures (sum null, not a missing or zero one);
 * - GET /v1/series returns null for that sum, not 0.
 */
import { describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { startEngine, waitFor } from './harness.js';
import { useRealStack } from './real-stack.js';
import { summaryAggregator, summaryFigures, type SummaryFigures } from '../operators/aggregates/summary.js';

const M = Number.MAX_VALUE;
const METRIC = 'extreme_test';
const FIGURES = ['count', 'sum', 'min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p95', 'p99', 'p999'] as const;

describe('extreme values on the real stack', () => {
  const ctx = useRealStack();
  const base = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
  // key -> the values of its consecutive 10 s windows
  const WINDOWS: Record<string, number[][]> = {
    h: [[1e308, 1e308], [M, -M, 5e-324], [1e-170, 3e-170], [-0, -0, 0], [2 ** 53, 2 ** 53 + 2, 1], [1.5e154, -1.5e154]],
    a: [[1, 2, 3], [4], [5, 6], [7], [8, 9], [10]],
  };
  const events = Object.entries(WINDOWS).flatMap(([key, ws]) => ws.flatMap((vs, w) => vs.map((value, i) => ({ key, value, ts: base + w * 10_000 + i * 10 }))));
  const agg = summaryAggregator();
  const expected = (vs: number[]): SummaryFigures => {
    const acc = agg.create();
    for (const v of vs) agg.add(acc, v);
    return summaryFigures(acc);
  };

  it('rows, live results and /v1/series hold every figure exactly, a sum past the range as null, and leave the ordinary key alone', async () => {
    ctx.engine = await startEngine(ctx.stack, { pipeline: { idleTimeout: '1h' } });
    const live: Record<string, unknown>[] = [];
    const sub = ctx.nc.subscribe(`weir.results.default.${METRIC}.>`, { callback: (_e, m) => void live.push(m.json()) });
    const js = jetstream(ctx.nc);
    // JSON cannot write -0: the payload is written by hand so the engine gets -0 itself
    const body = `[${events.map((e) => `{"key":"${e.key}","value":${Object.is(e.value, -0) ? '-0' : String(e.value)},"ts":${e.ts}}`).join(',')}]`;
    await js.publish(`weir.events.${METRIC}`, body);
    // a sentinel far ahead in event time fires every window
    await js.publish(`weir.events.${METRIC}_sentinel`, JSON.stringify({ key: 's', value: 1, ts: base + 10 * 60_000 }));

    const n = Object.values(WINDOWS).reduce((s, ws) => s + ws.length, 0);
    const rows = await waitFor(
      `${n} rows of ${METRIC}`,
      async () => {
        const r = await ctx.pool.query(`SELECT ts, key, ${FIGURES.join(', ')} FROM weir_agg_10s WHERE metric = $1 ORDER BY key, ts`, [METRIC]);
        return r.rows.length === n ? r.rows : undefined;
      },
      60_000,
    );
    for (const r of rows) {
      const w = (new Date(r.ts).getTime() - base) / 10_000;
      const want = expected(WINDOWS[r.key][w]);
      expect(Object.fromEntries(FIGURES.map((f) => [f, r[f]])), `${r.key} window ${w}`).toEqual(want);
    }
    const hostile = rows.filter((r) => r.key === 'h');
    expect(hostile.map((r) => r.sum)).toEqual([null, 5e-324, 4e-170, 0, 2 ** 54 + 2, 0]);
    expect(hostile[0]).toMatchObject({ count: 2, min: 1e308, max: 1e308, mean: 1e308, stddev: 0 });
    expect(hostile[2].stddev / (Math.SQRT2 * 1e-170)).toBeCloseTo(1, 12); // used to read 0
    expect(hostile[5].stddev / (Math.SQRT2 * 1.5e154)).toBeCloseTo(1, 12); // used to read null (m2 overflowed)

    // the live finals say the same, sum null included
    await waitFor('the live finals', async () => (live.filter((m) => m.final === true && m.window === '10s').length >= n ? true : undefined), 30_000);
    sub.unsubscribe();
    for (const m of live.filter((x) => x.final === true && x.window === '10s')) {
      const w = ((m.start as number) - base) / 10_000;
      const want = expected(WINDOWS[m.key as string][w]);
      expect(Object.fromEntries(FIGURES.map((f) => [f, m[f]])), `live ${m.key} window ${w}`).toEqual(want);
    }

    // the HTTP history says null for that sum (a schema typed number would write 0)
    const res = await fetch(`${ctx.engine.http}/v1/series?metric=${METRIC}&key=h&window=10s&from=${base}&to=${base + 60_000}`);
    expect(res.status).toBe(200);
    const points = ((await res.json()) as { points: Record<string, unknown>[] }).points;
    expect(points.map((p) => p.sum)).toEqual([null, 5e-324, 4e-170, 0, 2 ** 54 + 2, 0]);
    expect(points[0]).toMatchObject({ count: 2, mean: 1e308, min: 1e308 });
  }, 90_000);
});
