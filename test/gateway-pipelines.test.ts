/**
 * A declared pipeline's history through the gateway, on the real stack: the engine runs a small
 * rolling pipeline (two windows, so "every window" is more than one), events are published, and
 * once its table is quiet GET /v1/series?pipeline= must return exactly the rows of one key that
 * the table holds (read over PG wire with SELECT * and filtered here, not with the gateway's SQL),
 * which must equal a brute-force computation over the events; gRPC QuerySeries must return the same
 * rows. A tombstone row (superseded) put into the table is never returned. Unknown pipelines,
 * unknown windows and bad names are refused naming the parameter, over HTTP and gRPC.
 * Run: npm run build && npx vitest run --project integration test/gateway-pipelines.test.ts
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { jetstream } from '@nats-io/jetstream';
import { rng } from '../benchmarks/producer.js';
import { ROOT, startEngine, waitFor } from './harness.js';
import { useRealStack } from './real-stack.js';

const PIPELINE = `
name: gp_roll
source:
  metrics: [gp_a, gp_b]
keyBy: key
window: { type: rolling, pane: 10s, sizes: [20s, 1m] }
aggregates:
  n:     { fn: count }
  total: { fn: sum, metric: gp_a }
  b_max: { fn: max, metric: gp_b }
`;
const PANE = 10_000;
const SIZES = [
  { name: '20s', ms: 20_000 },
  { name: '1m', ms: 60_000 },
];
const FIELDS = ['n', 'total', 'b_max'];
const KEYS = ['k0', 'k1', 'k2', 'k 3/ü']; // the last is not a NATS subject token and needs URL encoding
const N = 800;

interface Ev {
  metric: 'gp_a' | 'gp_b';
  key: string;
  ts: number;
  value: number;
}
interface Point {
  ts: number;
  end: number;
  window: string;
  final: boolean;
  revision: number;
  emittedAt: number;
  fields: Record<string, number | null>;
}
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const LOADER = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };
const weirDef = protoLoader.loadSync(path.join(ROOT, 'proto/weir/v1/weir.proto'), LOADER);
const WeirClient = (grpc.loadPackageDefinition(weirDef) as Obj).weir.v1.Weir as grpc.ServiceClientConstructor;

const byTsThenWindow = (a: { ts: number; window: string }, b: { ts: number; window: string }) => a.ts - b.ts || (a.window < b.window ? -1 : a.window > b.window ? 1 : 0);

/**
 * Rolling rows by brute force (docs/pipelines.md): for each key, each pane P holding one of its
 * events and each size S, the row [P + pane - S, P + pane) over the key's events in it.
 */
function bruteForce(events: Ev[], key: string): Omit<Point, 'final' | 'revision' | 'emittedAt'>[] {
  const mine = events.filter((e) => e.key === key);
  const panes = [...new Set(mine.map((e) => e.ts - (e.ts % PANE)))];
  const rows = [];
  for (const p of panes)
    for (const s of SIZES) {
      const end = p + PANE;
      const ts = end - s.ms;
      const inside = mine.filter((e) => e.ts >= ts && e.ts < end);
      const b = inside.filter((e) => e.metric === 'gp_b').map((e) => e.value);
      rows.push({
        ts,
        end,
        window: s.name,
        fields: { n: inside.length, total: inside.filter((e) => e.metric === 'gp_a').reduce((t, e) => t + e.value, 0), b_max: b.length ? Math.max(...b) : null },
      });
    }
  return rows.sort(byTsThenWindow);
}

describe('declared pipeline history through the gateway (/v1/series?pipeline=, QuerySeries)', () => {
  const ctx = useRealStack();
  let client: grpc.Client & Obj;
  afterAll(() => client?.close());

  it('returns exactly the rows of the table (PG wire, brute force), over HTTP and gRPC; refuses what is unknown', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-gw-pipelines-'));
    writeFileSync(path.join(dir, 'gp_roll.yaml'), PIPELINE);
    ctx.engine = await startEngine(ctx.stack, { pipeline: { maxOutOfOrderness: '1s', idleTimeout: '1s' } }, { WEIR_PIPELINES: 'gp_roll', WEIR_PIPELINES_DIR: dir });
    client = new WeirClient(ctx.engine.grpc, grpc.credentials.createInsecure()) as grpc.Client & Obj;
    const H = ctx.engine.http;

    // 80 s of event time ending about 30 s ago, so the idle watermark closes every window.
    const rand = rng(23);
    const base = Math.floor((Date.now() - 110_000) / PANE) * PANE;
    const events: Ev[] = [];
    for (let i = 0; i < N; i++)
      events.push({ metric: rand() < 0.5 ? 'gp_a' : 'gp_b', key: KEYS[Math.floor(rand() * KEYS.length)], ts: base + Math.floor((i / N) * 80_000), value: Math.floor(rand() * 1000) });
    // Published in event-time order (runs of one metric per message), so no event is late, and one
    // pane at a time: the runner reads a pane's events before the next pane's arrive. (Within one
    // batch, the events of a pane that arrive with the first events of the next pane are not in the
    // rows of the windows that pane ends: those rows are superseded without being emitted again.)
    const js = jetstream(ctx.nc);
    const status = async () => (await ctx.nc.request('weir.api.gp_roll.status', '{}', { timeout: 2000 })).json<{ caughtUp: boolean; events: number }>();
    for (let i = 0; i < events.length; ) {
      const pane = events[i].ts - (events[i].ts % PANE);
      while (i < events.length && events[i].ts < pane + PANE) {
        let j = i + 1;
        while (j < events.length && j - i < 100 && events[j].metric === events[i].metric && events[j].ts < pane + PANE) j++;
        const body = events.slice(i, j).map(({ metric: _m, ...e }) => e);
        await js.publish(`weir.events.${events[i].metric}`, JSON.stringify(body));
        i = j;
      }
      await waitFor(`gp_roll to read the events up to ${i}`, async () => ((await status()).events === i ? true : undefined), 20_000, 20);
    }

    const want = new Map(KEYS.map((k) => [k, bruteForce(events, k)]));
    const wantRows = [...want.values()].reduce((t, r) => t + r.length, 0);
    // Quiet: QuestDB applied every write, every row is there, the newest window of each (key,
    // window) has fired, and two reads a second apart are equal.
    type Row = { ts: number; key: string; window: string; window_end: number; final: boolean; revision: number; emitted_at: number; superseded: boolean } & Record<string, unknown>;
    const readTable = async () => (await ctx.pool.query<Row>('SELECT * FROM weir_p_gp_roll')).rows;
    const applied = async () => {
      const t = (await ctx.pool.query<{ writerTxn: number; sequencerTxn: number }>(`SELECT writerTxn, sequencerTxn FROM wal_tables() WHERE name = 'weir_p_gp_roll'`)).rows[0];
      return t !== undefined && Number(t.writerTxn) === Number(t.sequencerTxn);
    };
    let previous = '';
    await waitFor(
      'the table of gp_roll complete and quiet',
      async () => {
        if (!(await applied())) return undefined;
        const rows = await readTable();
        const newest = new Map<string, Row>();
        for (const r of rows) {
          const id = `${r.key}|${r.window}`;
          if ((newest.get(id)?.ts ?? -Infinity) < r.ts) newest.set(id, r);
        }
        const text = JSON.stringify(rows.sort((a, b) => byTsThenWindow(a, b) || (a.key < b.key ? -1 : 1)));
        const quiet = rows.length === wantRows && [...newest.values()].every((r) => r.final) && text === previous;
        previous = text;
        return quiet ? true : undefined;
      },
      30_000,
      1_000,
    );

    // A tombstone of an absorbed session, as the sink writes one: the gateway must skip it.
    const tombstoneTs = base + 5_000;
    await ctx.pool.query(
      `INSERT INTO weir_p_gp_roll (ts, key, window, window_end, final, revision, emitted_at, superseded) VALUES ($1, 'k0', '20s', $2, true, -1, $3, true)`,
      [new Date(tombstoneTs), new Date(tombstoneTs + 20_000), new Date()],
    );
    await waitFor('the tombstone applied', async () => ((await applied()) && (await readTable()).some((r) => r.superseded) ? true : undefined), 10_000, 100);

    const table = await readTable();
    const from = base - 60_000;
    const to = base + 120_000;
    /** The rows of one key as the table holds them, selected and ordered here (not by the gateway's SQL). */
    const fromTable = (key: string, window?: string, lo = from, hi = to): Point[] =>
      table
        .filter((r) => r.key === key && !r.superseded && r.ts >= lo && r.ts < hi && (window === undefined || r.window === window))
        .map((r) => ({ ts: r.ts, end: r.window_end, window: r.window, final: r.final, revision: r.revision, emittedAt: r.emitted_at, fields: Object.fromEntries(FIELDS.map((f) => [f, r[f] as number | null])) }))
        .sort(byTsThenWindow);
    const get = async (query: string) => {
      const r = await fetch(`${H}/v1/series?${query}`);
      return { status: r.status, body: (await r.json()) as Obj };
    };
    const series = async (query: string) => {
      const { status, body } = await get(query);
      expect(status, `${query}: ${JSON.stringify(body)}`).toBe(200);
      return body;
    };
    const grpcSeries = (req: Obj) =>
      new Promise<Obj>((resolve, reject) => client.QuerySeries(req, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: Obj) => (err ? reject(err) : resolve(res))));
    const grpcPoint = (p: Obj): Point => ({
      ts: p.ts,
      end: p.end,
      window: p.window,
      final: p.final,
      revision: p.revision,
      emittedAt: p.emitted_at,
      fields: Object.fromEntries(FIELDS.map((f) => [f, p.fields[f] ?? null])),
    });

    expect(table.some((r) => r.superseded && r.key === 'k0' && r.ts === tombstoneTs)).toBe(true);
    for (const key of KEYS) {
      const q = `pipeline=gp_roll&key=${encodeURIComponent(key)}&from=${from}&to=${to}`;
      const a = await series(q);
      const rows = fromTable(key);
      expect(rows.length, key).toBe(want.get(key)!.length);
      expect(a).toEqual({ pipeline: 'gp_roll', metric: 'gp_roll', key, window: null, from, to, truncated: false, fields: FIELDS, points: rows });
      // ... which is the brute-force computation
      expect(a.points.map(({ ts, end, window, fields }: Point) => ({ ts, end, window, fields })), key).toEqual(want.get(key));
      // ... and what gRPC returns (null fields are absent from the map)
      const g = await grpcSeries({ pipeline: 'gp_roll', key, from: String(from), to: String(to) });
      expect({ ...g, pipeline_points: g.pipeline_points.map(grpcPoint) }).toEqual({
        pipeline: 'gp_roll',
        metric: 'gp_roll',
        key,
        window: '',
        from,
        to,
        truncated: false,
        fields: FIELDS,
        points: [],
        pipeline_points: rows,
      });
      for (const p of g.pipeline_points) expect(Object.keys(p.fields).sort()).toEqual(FIELDS.filter((f) => rows.find((r) => r.ts === p.ts && r.window === p.window)!.fields[f] !== null).sort());

      // One window, and a narrower range.
      for (const w of SIZES.map((s) => s.name)) {
        const one = await series(`${q}&window=${w}`);
        expect(one.window).toBe(w);
        expect(one.points, `${key} ${w}`).toEqual(fromTable(key, w));
        const g1 = await grpcSeries({ pipeline: 'gp_roll', key, window: w, from: String(from), to: String(to) });
        expect(g1.pipeline_points.map(grpcPoint)).toEqual(fromTable(key, w));
      }
      const lo = base + 20_000;
      const hi = base + 50_000;
      expect((await series(`pipeline=gp_roll&key=${encodeURIComponent(key)}&from=${lo}&to=${new Date(hi).toISOString()}`)).points).toEqual(fromTable(key, undefined, lo, hi));
    }
    // A limit cuts in order and says so.
    const cut = await series(`pipeline=gp_roll&key=k1&from=${from}&to=${to}&limit=3`);
    expect(cut.truncated).toBe(true);
    expect(cut.points).toEqual(fromTable('k1').slice(0, 3));
    // The default pipeline's series keeps its shape beside it (pipeline=default is the same).
    const dflt = await series(`metric=gp_a&key=k0&window=10s&from=${base}&to=${base + 90_000}`);
    expect(Object.keys(dflt).sort()).toEqual(['from', 'key', 'metric', 'points', 'to', 'truncated', 'window']);
    expect(await series(`pipeline=default&metric=gp_a&key=k0&window=10s&from=${base}&to=${base + 90_000}`)).toEqual(dflt);

    // Refusals, naming the parameter.
    const refused = async (query: string, status: number, param: string, ...says: string[]) => {
      const r = await get(query);
      expect({ status: r.status, param: r.body.param }, `${query}: ${JSON.stringify(r.body)}`).toEqual({ status, param });
      for (const s of says) expect(r.body.message).toContain(s);
    };
    await refused(`pipeline=nope&key=k0`, 404, 'pipeline', '"nope"', 'weir_p_nope');
    await refused(`pipeline=${encodeURIComponent('gp_roll";--')}&key=k0`, 400, 'pipeline');
    await refused(`pipeline=gp_roll&key=k0&window=5m`, 400, 'window', 'gp_roll', '20s', '1m');
    await refused(`pipeline=gp_roll&key=k0&metric=gp_a`, 400, 'metric');
    await refused(`pipeline=gp_roll&key=k0&from=${to}&to=${from}`, 400, 'from');
    await refused(`pipeline=gp_roll`, 400, 'key');
    const grpcRefused = async (req: Obj) =>
      grpcSeries(req).then(
        (res) => {
          throw new Error(`QuerySeries ${JSON.stringify(req)} succeeded: ${JSON.stringify(res)}`);
        },
        (e: grpc.ServiceError) => ({ code: e.code, param: e.metadata.get('weir-param')[0] }),
      );
    expect(await grpcRefused({ pipeline: 'nope', key: 'k0' })).toEqual({ code: grpc.status.NOT_FOUND, param: 'pipeline' });
    expect(await grpcRefused({ pipeline: 'gp_roll', key: 'k0', window: '5m' })).toEqual({ code: grpc.status.INVALID_ARGUMENT, param: 'window' });
    expect(await grpcRefused({ pipeline: 'a b', key: 'k0' })).toEqual({ code: grpc.status.INVALID_ARGUMENT, param: 'pipeline' });
  });
});
