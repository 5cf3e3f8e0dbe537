/**
 * The end-to-end slice on the real stack (nats-server + QuestDB started by scripts/stack.ts):
 * >= 100k events over several metrics and >= 100 keys, out of order within the lateness, with
 * bad events interleaved and a graceful engine restart in the middle of the stream. The rows
 * in QuestDB, read over PG wire, must equal an independent brute-force computation.
 */
import { describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { startEngine, waitFor } from './harness.js';
import { QCOLS, QS, WINDOWS, exactQuantile, oracle, relClose, workload } from './oracle.js';
import { useRealStack } from './real-stack.js';

const METRICS = ['e2e_latency', 'e2e_temp', 'e2e_errors'];
const KEYS = Array.from({ length: 120 }, (_, i) => `svc-${i}`);
const HOT = KEYS.slice(0, 5);
const N_GOOD = 120_000;
const SPAN_MS = 150_000;

describe('end to end on the real stack', () => {
  const ctx = useRealStack();
  const base = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
  const { messages, good, bad } = workload({ seed: 42, base, metrics: METRICS, keys: KEYS, hot: HOT, events: N_GOOD, spanMs: SPAN_MS });
  const config = { pipeline: { idleTimeout: '1h' }, workers: 2 };

  async function publish(list: { subject: string; body: string }[]) {
    const js = jetstream(ctx.nc);
    const enc = new TextEncoder();
    for (let i = 0; i < list.length; i += 500) await Promise.all(list.slice(i, i + 500).map((m) => js.publish(m.subject, enc.encode(m.body))));
  }

  it('turns 120k events (with bad ones, out of order, across a restart) into exactly the brute-force rows', async () => {
    expect(new Set(good.map((e) => e.key)).size).toBeGreaterThanOrEqual(100);
    expect(bad).toBeGreaterThan(20);
    ctx.engine = await startEngine(ctx.stack, config);
    const half = Math.floor(messages.length / 2);
    await publish(messages.slice(0, half));
    // Stop the engine while it is consuming: windows are open and acks are outstanding.
    await waitFor('the engine to consume some messages', async () => ((await ctx.engine!.metrics()).weir_messages_total > 0 ? true : undefined), 30_000, 20);
    expect(await ctx.engine.stop('SIGTERM')).toBe(0);
    expect(ctx.engine.output()).toContain('engine stopped');

    ctx.engine = await startEngine(ctx.stack, config);
    await publish(messages.slice(half));
    // A sentinel far ahead in event time moves the watermark past every test window.
    await jetstream(ctx.nc).publish('weir.events.e2e_sentinel', JSON.stringify({ key: 's', value: 1, ts: base + 10 * 60_000 }));

    const expected = oracle(good);
    const expectedByTable = new Map<string, number>();
    for (const c of expected.values()) expectedByTable.set(c.table, (expectedByTable.get(c.table) ?? 0) + c.values.length);
    const inList = METRICS.map((m) => `'${m}'`).join(',');
    for (const w of WINDOWS) {
      await waitFor(
        `${w.table} to hold all ${expectedByTable.get(w.table)} events`,
        async () => {
          const r = await ctx.pool.query(`SELECT sum(count) AS n FROM ${w.table} WHERE metric IN (${inList})`);
          return r.rows[0].n === expectedByTable.get(w.table) ? true : undefined;
        },
        90_000,
      );
    }

    // Row by row against the oracle.
    let checkedPercentiles = 0;
    for (const w of WINDOWS) {
      const res = await ctx.pool.query(`SELECT * FROM ${w.table} WHERE metric IN (${inList})`);
      const cells = [...expected.values()].filter((c) => c.table === w.table);
      expect(res.rows.length).toBe(cells.length);
      const byId = new Map(res.rows.map((r) => [`${w.table}|${r.metric}|${r.key}|${r.ts}`, r]));
      for (const cell of cells) {
        const row = byId.get(`${cell.table}|${cell.metric}|${cell.key}|${cell.start}`);
        expect(row, `row for ${cell.table} ${cell.metric} ${cell.key} ${new Date(cell.start).toISOString()}`).toBeDefined();
        const v = cell.values;
        const sorted = [...v].sort((a, b) => a - b);
        const n = v.length;
        const sum = v.reduce((a, b) => a + b, 0);
        const mean = sum / n;
        expect(row.count).toBe(n);
        expect(row.sum).toBe(sum + 0);
        expect(row.min).toBe(sorted[0] + 0); // + 0: the oracle may hold -0, JSON carries 0
        expect(row.max).toBe(sorted[n - 1] + 0);
        const scale = Math.max(Math.abs(mean), 1e-300);
        expect(Math.abs(row.mean - mean) / scale).toBeLessThanOrEqual(1e-9);
        if (n < 2) expect(row.stddev).toBeNull();
        else {
          const sd = Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
          if (sd === 0) expect(Math.abs(row.stddev)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(mean)));
          else expect(Math.abs(row.stddev - sd) / sd).toBeLessThanOrEqual(1e-9);
        }
        expect(typeof row.sketch).toBe('string');
        if (n >= 100) {
          QS.forEach((q, i) => {
            const exact = exactQuantile(sorted, q);
            const got = row[QCOLS[i]];
            expect(relClose(got, exact, 0.01), `${QCOLS[i]} of ${cell.metric}/${cell.key}@${cell.start}: ${got} vs exact ${exact}`).toBe(true);
          });
          checkedPercentiles++;
        }
      }
    }
    expect(checkedPercentiles).toBeGreaterThan(50);

    // Bad events: each one is in the dead-letter stream with a reason.
    const jsm = await jetstreamManager(ctx.nc);
    const dlq = await waitFor(
      'dead letters',
      async () => {
        const info = await jsm.streams.info('WEIR_DEADLETTER', { subjects_filter: 'weir.dlq.>' });
        const n = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
        return n >= bad ? n : undefined;
      },
      30_000,
    );
    expect(dlq).toBe(bad);
    const consumer = await jetstream(ctx.nc).consumers.get('WEIR_DEADLETTER', { filter_subjects: ['weir.dlq.>'] });
    const reasons: string[] = [];
    for (let i = 0; i < bad; i++) {
      const m = await consumer.next({ expires: 5000 });
      expect(m).not.toBeNull();
      const reason = m!.headers?.get('Weir-Reason') ?? '';
      expect(reason.length).toBeGreaterThan(10);
      reasons.push(reason);
    }
    expect(reasons.some((r) => r.includes('event.value must be a finite number, got string "12"'))).toBe(true);
    expect(reasons.some((r) => r.includes('event.key must be a string'))).toBe(true);
    expect(reasons.some((r) => r.includes('not valid JSON'))).toBe(true);
    expect(reasons.every((r) => /subject weir\.events\./.test(r))).toBe(true);

    // Nothing counted as late: the disorder stayed inside the allowed lateness.
    const m = await ctx.engine.metrics();
    expect(m.weir_events_late_total).toBe(0);

    // The read path answers from the same rows.
    const hot = HOT[0];
    const series = await (await fetch(`${ctx.engine.http}/v1/series?metric=e2e_latency&key=${hot}&window=1m&from=${base - 60_000}&to=${base + 300_000}`)).json();
    const own = [...expected.values()].filter((c) => c.table === 'weir_agg_1m' && c.metric === 'e2e_latency' && c.key === hot).sort((a, b) => a.start - b.start);
    expect(series.points.map((p: { ts: number; count: number }) => [p.ts, p.count])).toEqual(own.map((c) => [c.start, c.values.length]));
    const all = own.flatMap((c) => c.values).sort((a, b) => a - b);
    const pct = await (await fetch(`${ctx.engine.http}/v1/percentiles?metric=e2e_latency&key=${hot}&from=${new Date(base - 60_000).toISOString()}&to=${base + 300_000}&q=0.5,0.99`)).json();
    expect(pct.count).toBe(all.length);
    expect(relClose(pct.quantiles[0].value, exactQuantile(all, 0.5), 0.01)).toBe(true);
    expect(relClose(pct.quantiles[1].value, exactQuantile(all, 0.99), 0.01)).toBe(true);
    const badQuery = await fetch(`${ctx.engine.http}/v1/series?metric=e2e_latency`);
    expect(badQuery.status).toBe(400);
    expect((await badQuery.json()).param).toBe('key');
    const badWindow = await fetch(`${ctx.engine.http}/v1/series?metric=e2e_latency&key=a&window=7m`);
    expect(badWindow.status).toBe(400);
    expect((await badWindow.json()).message).toContain('window must be one of 10s, 1m');
  }, 300_000);
});
