/**
 * A declared pipeline on the real stack: the engine runs it beside the default pipeline
 * (WEIR_PIPELINES), its rows in QuestDB equal a brute-force computation over the published
 * events, the gateway answers Latest and TopK from its live state, and a graceful restart resumes
 * from the checkpoint written on stop (no event read again, the live state back) and leaves
 * exactly the same rows, none duplicated. (kill -9 and a corrupt checkpoint: pipeline-checkpoints.test.ts.)
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { rng } from '../benchmarks/producer.js';
import { startEngine, waitFor } from './harness.js';
import { useRealStack } from './real-stack.js';

const PIPELINE = `
name: pl_ops
source:
  metrics: [pl_req, pl_lat]
  where: { tags: { env: prod } }
keyBy: [tag:variant, key]
window: { type: tumbling, size: 10s }
trigger: { early: 500ms }
allowedLateness: 5s
aggregates:
  n:       { fn: count }
  reqs:    { fn: count, metric: pl_req }
  lat_max: { fn: max, metric: pl_lat }
  lat_min: { fn: min, metric: pl_lat }
`;

interface Ev {
  metric: string;
  key: string;
  ts: number;
  value: number;
  tags: Record<string, string>;
}

describe('declared pipelines on the real stack', () => {
  const ctx = useRealStack();

  it('rows equal brute force; gateway Latest/TopK read the live state; a restart resumes from the checkpoint with the same rows', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-pipelines-'));
    writeFileSync(path.join(dir, 'pl_ops.yaml'), PIPELINE);
    const env = { WEIR_PIPELINES: 'pl_ops', WEIR_PIPELINES_DIR: dir };
    const config = { pipeline: { maxOutOfOrderness: '1s', idleTimeout: '1s' } };
    ctx.engine = await startEngine(ctx.stack, config, env);

    // 2 minutes of event time, ending 30 s ago, so every window closes on the idle watermark.
    const rand = rng(11);
    const base = Math.floor((Date.now() - 150_000) / 10_000) * 10_000;
    const events: Ev[] = [];
    for (let i = 0; i < 3000; i++) {
      const metric = rand() < 0.5 ? 'pl_req' : 'pl_lat';
      events.push({
        metric,
        key: `svc${Math.floor(rand() * 4)}`,
        ts: base + Math.floor((i / 3000) * 120_000),
        value: Math.round(rand() * 1000),
        tags: { env: rand() < 0.8 ? 'prod' : 'dev', ...(rand() < 0.95 ? { variant: rand() < 0.5 ? 'A' : 'B' } : {}) },
      });
    }
    const js = jetstream(ctx.nc);
    for (let i = 0; i < events.length; i += 100) {
      const chunk = events.slice(i, i + 100);
      for (const metric of ['pl_req', 'pl_lat']) {
        const mine = chunk.filter((e) => e.metric === metric).map(({ metric: _m, ...e }) => e);
        if (mine.length) await js.publish(`weir.events.${metric}`, JSON.stringify(mine));
      }
    }

    const want = new Map<string, { n: number; reqs: number; lat: number[] }>();
    for (const e of events) {
      if (e.tags.env !== 'prod' || e.tags.variant === undefined) continue;
      const id = `${e.tags.variant}|${e.key}|${e.ts - (e.ts % 10_000)}`;
      const w = want.get(id) ?? { n: 0, reqs: 0, lat: [] };
      w.n++;
      if (e.metric === 'pl_req') w.reqs++;
      else w.lat.push(e.value);
      want.set(id, w);
    }
    type Row = { key: string; ts: Date; n: number; reqs: number; lat_max: number | null; lat_min: number | null; final: boolean };
    const readRows = async () => (await ctx.pool.query<Row>(`SELECT key, ts, n, reqs, lat_max, lat_min, final FROM weir_p_pl_ops WHERE window = '10s'`)).rows;
    const expectRows = (rows: Row[]) => {
      const got = new Map(rows.map((r) => [`${r.key}|${new Date(r.ts).getTime()}`, r]));
      expect(got.size).toBe(want.size);
      for (const [id, w] of want) {
        const r = got.get(id);
        expect(r, id).toBeDefined();
        expect({ n: r!.n, reqs: r!.reqs, lat_max: r!.lat_max, lat_min: r!.lat_min, final: r!.final }, id).toEqual({
          n: w.n,
          reqs: w.reqs,
          lat_max: w.lat.length ? Math.max(...w.lat) : null,
          lat_min: w.lat.length ? Math.min(...w.lat) : null,
          final: true,
        });
      }
    };
    await waitFor(
      'every window of pl_ops final in QuestDB',
      async () => {
        const rows = await readRows();
        return rows.length === want.size && rows.every((r) => r.final) ? rows : undefined;
      },
      90_000,
      500,
    );
    expectRows(await readRows());

    // Live state through the gateway: the newest final window of one key, and a top-K.
    const someId = [...want.keys()].sort().at(-1)!;
    const [variant, svc] = someId.split('|');
    const latest = (await (await fetch(`${ctx.engine.http}/v1/latest?pipeline=pl_ops&key=${encodeURIComponent(`${variant}|${svc}`)}&final=true`)).json()) as { results: { start: number; n: number }[] };
    const newestOfKey = Math.max(...[...want.keys()].filter((id) => id.startsWith(`${variant}|${svc}|`)).map((id) => Number(id.split('|')[2])));
    expect(latest.results[0].start).toBe(newestOfKey);
    expect(latest.results[0].n).toBe(want.get(`${variant}|${svc}|${newestOfKey}`)!.n);
    const top = (await (await fetch(`${ctx.engine.http}/v1/top?pipeline=pl_ops&window=10s&by=reqs&k=3&scope=final`)).json()) as { start: number; entries: { key: string; reqs: number }[] };
    const inWindow = [...want.entries()].filter(([id]) => Number(id.split('|')[2]) === top.start).map(([id, w]) => ({ key: id.split('|').slice(0, 2).join('|'), reqs: w.reqs }));
    const keysStillNewest = inWindow.sort((a, b) => b.reqs - a.reqs || (a.key < b.key ? -1 : 1));
    expect(top.entries.map((e) => e.reqs)).toEqual(keysStillNewest.slice(0, top.entries.length).map((e) => e.reqs));
    const badBy = await fetch(`${ctx.engine.http}/v1/top?pipeline=pl_ops&window=10s&by=nope`);
    expect(badBy.status).toBe(400);
    expect(((await badBy.json()) as { param: string }).param).toBe('by');

    // Restart: SIGTERM writes a checkpoint after the last flush; the new runner restores it and
    // reads nothing again (every message is before the checkpoint), with the live state back.
    expect(await ctx.engine.stop()).toBe(0);
    ctx.engine = await startEngine(ctx.stack, config, env);
    type Status = { caughtUp: boolean; events: number; eventsThisRun: number; restoredFrom: number; lastSeq: number };
    const st = await waitFor(
      'pl_ops to resume from its checkpoint after the restart',
      async () => {
        const s = (await ctx.nc.request('weir.api.pl_ops.status', '{}', { timeout: 2000 })).json<Status>();
        return s.caughtUp ? s : undefined;
      },
      60_000,
      500,
    );
    expect(st.restoredFrom).toBeGreaterThan(0);
    expect(st.eventsThisRun).toBe(0);
    expect(st.events).toBe(events.length);
    const latestAfter = (await (await fetch(`${ctx.engine.http}/v1/latest?pipeline=pl_ops&key=${encodeURIComponent(`${variant}|${svc}`)}&final=true`)).json()) as { results: { start: number; n: number }[] };
    expect(latestAfter.results.map((r) => [r.start, r.n])).toEqual(latest.results.map((r) => [r.start, r.n]));
    await waitFor(
      'the rows applied and final',
      async () => {
        const t = (await ctx.pool.query<{ writerTxn: number; sequencerTxn: number }>(`SELECT writerTxn, sequencerTxn FROM wal_tables() WHERE name = 'weir_p_pl_ops'`)).rows[0];
        if (!t || Number(t.writerTxn) !== Number(t.sequencerTxn)) return undefined;
        return (await readRows()).every((r) => r.final) ? true : undefined;
      },
      30_000,
      200,
    );
    expectRows(await readRows());
    const count = (await ctx.pool.query<{ c: number }>(`SELECT count() c FROM weir_p_pl_ops`)).rows[0].c;
    expect(count).toBe(want.size);
  });
});
