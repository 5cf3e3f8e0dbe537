/**
 * A declared pipeline's history through the gateway, on the real stack: the engine runs a small
 * rolling pipeline (two windows, so "every window" is more than one), events are published, and
 * once its table is quiet GET /v1/series?pipeline= must return exactly the rows of one key that
 * the table holds (read over PG wire with SELECT * and filtered here, not with the gateway's SQL),
 * which must equal a brute-force computation over the events; gRPC QuerySeries must return the same
 * rows. A tombstone row (superseded) put into the table is never returned. Unknown pipelines,
 * unknown windows and bad names are refused naming the parameter, over HTTP and gRPC.
 *
 * Its live results (a second engine, with a session pipeline whose fields are named `count` and
 * `p50` like the default pipeline's figures, hold fractions and nulls, and whose sessions merge):
 * gRPC Latest, TopK and Subscribe carry every field in LiveResult.fields (null ones absent, the
 * typed figures unset) and equal GET /v1/latest, /v1/top and /v1/stream?pipeline=; the HTTP answers
 * are exactly the engine's JSON (no field coerced by the response schema), and a tombstone of an
 * absorbed session arrives as superseded on both.
 * Run: npm run build && npx vitest run --project integration test/gateway-pipelines.test.ts
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
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
 * Live results: sessions (10 s gap) whose fields share names with the default pipeline's figures.
 * `count` is a mean (fractions; null in a session without gl_a), `p50` a max (null without gl_b).
 */
const LIVE_PIPELINE = `
name: gp_live
source:
  metrics: [gl_a, gl_b]
keyBy: key
window: { type: session, gap: 10s }
allowedLateness: 10m
aggregates:
  count: { fn: mean, metric: gl_a }
  p50:   { fn: max, metric: gl_b }
  n:     { fn: count }
`;
const LIVE_KEYS = ['k0', 'k1', 'k2', 'k 3/ü'];
/** The default pipeline's figures: the typed fields of LiveResult, unset for a declared pipeline. */
const TYPED_FIGURES = ['count', 'rate', 'sum', 'min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p95', 'p99', 'p999'];

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

  it('live results over gRPC (Latest, TopK, Subscribe) carry the declared fields and equal HTTP (/v1/latest, /v1/top, /v1/stream)', async () => {
    // A fresh engine running gp_live only. Event time alone moves its watermark (idleTimeout 10m):
    // the sessions fire when a later event arrives, never on the wall clock, so nothing here is late
    // by accident and nothing changes once the events are in.
    await ctx.engine?.stop();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-gw-live-'));
    writeFileSync(path.join(dir, 'gp_live.yaml'), LIVE_PIPELINE);
    ctx.engine = await startEngine(ctx.stack, { pipeline: { maxOutOfOrderness: '1s', idleTimeout: '10m' } }, { WEIR_PIPELINES: 'gp_live', WEIR_PIPELINES_DIR: dir });
    const H = ctx.engine.http;
    const live = new WeirClient(ctx.engine.grpc, grpc.credentials.createInsecure()) as grpc.Client & Obj;
    const js = jetstream(ctx.nc);
    const status = async () => (await ctx.nc.request('weir.api.gp_live.status', '{}', { timeout: 2000 })).json<{ caughtUp: boolean; events: number; results: number }>();
    type LiveEv = { metric: 'gl_a' | 'gl_b'; key: string; ts: number; value: number };
    let published = 0;
    /** Publishes in the given (event-time) order, one message per run of one metric, and waits until gp_live has read them. */
    const publish = async (evs: LiveEv[]) => {
      for (let i = 0; i < evs.length; ) {
        let j = i + 1;
        while (j < evs.length && evs[j].metric === evs[i].metric) j++;
        await js.publish(`weir.events.${evs[i].metric}`, JSON.stringify(evs.slice(i, j).map(({ metric: _m, ...e }) => e)));
        i = j;
      }
      published += evs.length;
      await waitFor(`gp_live to read ${published} events`, async () => ((await status()).events === published ? true : undefined), 20_000, 20);
    };

    // Until a pipeline has caught up with the stream it publishes no live results: one event first.
    const base = Math.floor((Date.now() - 120_000) / 10_000) * 10_000;
    await publish([{ metric: 'gl_a', key: 'warmup', ts: base - 60_000, value: 1 }]);
    await waitFor('gp_live caught up', async () => ((await status()).caughtUp ? true : undefined), 20_000, 50);

    // Subscribers before the results: SSE and gRPC, every key and one key.
    const sse = (query: string) => {
      const results: Obj[] = [];
      const ctl = new AbortController();
      let ready!: () => void;
      const readyP = new Promise<void>((r) => (ready = r));
      void (async () => {
        const res = await fetch(`${H}/v1/stream?${query}`, { signal: ctl.signal });
        if (res.status !== 200) throw new Error(`SSE ${query}: ${res.status} ${await res.text()}`);
        const dec = new TextDecoder();
        let buf = '';
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += dec.decode(chunk, { stream: true });
          for (let i: number; (i = buf.indexOf('\n\n')) >= 0; ) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const ev = /^event: (\w+)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (ev === 'ready') ready();
            if (ev === 'result' && data) results.push(JSON.parse(data));
          }
        }
      })().catch((e: Error) => {
        if (e.name !== 'AbortError') throw e;
      });
      onTestFinished(() => ctl.abort());
      return { results, ready: readyP };
    };
    const subscribe = (req: Obj) => {
      const results: Obj[] = [];
      const stream = live.Subscribe(req) as grpc.ClientReadableStream<Obj>;
      stream.on('data', (r: Obj) => results.push(r));
      stream.on('error', (e: grpc.ServiceError) => {
        if (e.code !== grpc.status.CANCELLED) results.push({ error: e.message });
      });
      const ready = new Promise<void>((resolve) => stream.once('metadata', () => resolve()));
      onTestFinished(() => stream.cancel());
      return { results, ready };
    };
    onTestFinished(() => live.close());
    const one = 'k 3/ü';
    const sseAll = sse('pipeline=gp_live');
    const sseOne = sse(`pipeline=gp_live&key=${encodeURIComponent(one)}`);
    const subAll = subscribe({ pipeline: 'gp_live' });
    const subOne = subscribe({ pipeline: 'gp_live', key: one });
    const subFinal = subscribe({ pipeline: 'gp_live', metric: 'gp_live', final_only: true });
    await Promise.all([sseAll.ready, sseOne.ready, subAll.ready, subOne.ready, subFinal.ready]);

    // Per key: session 1 at +0 s..+5 s, session 2 at +20 s..+24 s (no gl_b: p50 null), session 3 at
    // +60 s, the same start for every key (so top-K ranks them all), with a fraction, a null count
    // (k1: no gl_a) and a null p50 (k2: no gl_b). Then a later key moves the watermark past them.
    const at = (s: number) => base + s * 1000;
    const evs: LiveEv[] = [];
    LIVE_KEYS.forEach((key, i) => {
      evs.push({ metric: 'gl_a', key, ts: at(0), value: 1 + i }, { metric: 'gl_b', key, ts: at(5), value: 10 + i });
      evs.push({ metric: 'gl_a', key, ts: at(20), value: 2.5 }, { metric: 'gl_a', key, ts: at(24), value: 4 });
    });
    evs.push(
      { metric: 'gl_a', key: 'k0', ts: at(60), value: 1 },
      { metric: 'gl_a', key: 'k0', ts: at(61), value: 2 },
      { metric: 'gl_b', key: 'k0', ts: at(62), value: 7 },
      { metric: 'gl_b', key: 'k1', ts: at(60), value: 5 },
      { metric: 'gl_b', key: 'k1', ts: at(63), value: 9 },
      { metric: 'gl_a', key: 'k2', ts: at(60), value: 0.1 },
      { metric: 'gl_a', key: 'k2', ts: at(61), value: 0.2 },
      { metric: 'gl_a', key: 'k2', ts: at(62), value: 0.4 },
      { metric: 'gl_a', key: one, ts: at(60), value: 3 },
      { metric: 'gl_b', key: one, ts: at(61), value: -2.5 },
      { metric: 'gl_a', key: 'closer', ts: at(100), value: 0 },
    );
    evs.sort((a, b) => a.ts - b.ts);
    await publish(evs);
    const has = (list: Obj[], f: (r: Obj) => boolean) => list.some(f);
    await waitFor(
      'every session but the closer fired, at the subscribers',
      async () => (LIVE_KEYS.every((key) => [0, 20, 60].every((s) => has(sseAll.results, (r) => r.key === key && r.start === at(s) && r.final))) ? true : undefined),
      20_000,
      50,
    );
    // A late event between k0's sessions 1 and 2 merges them: session 1 is corrected to cover both,
    // and session 2's row becomes a tombstone.
    await publish([{ metric: 'gl_b', key: 'k0', ts: at(12), value: 100 }]);
    await waitFor('the tombstone of k0 session 2', async () => (has(sseAll.results, (r) => r.key === 'k0' && r.start === at(20) && r.superseded === true) ? true : undefined), 20_000, 50);
    // Quiet: every subscriber has every result the pipeline published (it publishes each result once).
    let before = -1;
    await waitFor(
      'the subscribers to have every result, and nothing more coming',
      async () => {
        const n = (await status()).results;
        const counts = [sseAll.results.length, subAll.results.length];
        const quiet = n === before && counts.every((c) => c === counts[0]) && subOne.results.length === sseOne.results.length;
        before = n;
        return quiet ? true : undefined;
      },
      20_000,
      300,
    );

    /** A gRPC LiveResult in the JSON shape, checking that the typed (default pipeline) figures are unset. */
    const asJson = (g: Obj) => {
      for (const f of TYPED_FIGURES) expect(g[f] ?? 0, `typed ${f} of ${g.key}@${g.start}`).toBe(0);
      const { pipeline, metric, key, window, start, end, final, revision, emitted_at, superseded, fields } = g;
      return { pipeline, metric, key, window, start, end, final, revision, emittedAt: emitted_at, ...(superseded ? { superseded } : {}), ...fields };
    };
    /** JSON without its null fields: what the gRPC map holds. */
    const noNulls = (j: Obj) => Object.fromEntries(Object.entries(j).filter(([, v]) => v !== null));

    // Subscribe = /v1/stream: the same results in the same order, every field.
    expect(subAll.results.some((r) => r.error)).toBe(false);
    expect(sseAll.results.length).toBeGreaterThanOrEqual(1 + LIVE_KEYS.length * 3 + 2);
    expect(subAll.results.map(asJson)).toEqual(sseAll.results.map(noNulls));
    expect(subOne.results.map(asJson)).toEqual(sseOne.results.map(noNulls));
    expect(subOne.results.length).toBeGreaterThan(0);
    expect(sseOne.results).toEqual(sseAll.results.filter((r) => r.key === one));
    expect(subFinal.results.map(asJson)).toEqual(sseAll.results.filter((r) => r.final).map(noNulls));
    // ... with the tombstone marked, its map empty, and the merged session corrected.
    const tomb = subAll.results.filter((r) => r.superseded);
    expect(tomb.map((r) => ({ key: r.key, start: r.start, revision: r.revision, fields: r.fields }))).toEqual([{ key: 'k0', start: at(20), revision: -1, fields: {} }]);
    expect(subAll.results.filter((r) => !r.superseded).every((r) => Object.keys(r.fields).length > 0)).toBe(true);
    const merged = subAll.results.filter((r) => r.key === 'k0' && r.start === at(0)).at(-1)!;
    expect({ end: merged.end, final: merged.final, fields: merged.fields }).toEqual({ end: at(34), final: true, fields: { count: 2.5, p50: 100, n: 5 } });
    expect(merged.revision).toBeGreaterThan(0);
    // Session 2 had no gl_b: p50 null in JSON, absent from the map.
    const s2 = sseAll.results.find((r) => r.key === 'k1' && r.start === at(20) && r.final)!;
    expect(s2).toMatchObject({ count: 3.25, p50: null, n: 2 });
    expect(subAll.results.find((r) => r.key === 'k1' && r.start === at(20) && r.final)!.fields).toEqual({ count: 3.25, n: 2 });

    // Latest: gRPC = HTTP, and HTTP = the engine's JSON exactly (the newest result the stream carried).
    const call = (method: string, req: Obj) =>
      new Promise<Obj>((resolve, reject) => live[method](req, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: Obj) => (err ? reject(err) : resolve(res))));
    const getJson = async (pathAndQuery: string) => {
      const r = await fetch(`${H}${pathAndQuery}`);
      const body = (await r.json()) as Obj;
      expect(r.status, `${pathAndQuery}: ${JSON.stringify(body)}`).toBe(200);
      return body;
    };
    const want: Record<string, Obj> = {
      k0: { count: 1.5, p50: 7, n: 3 },
      k1: { count: null, p50: 9, n: 2 },
      k2: { count: (0.1 + 0.2 + 0.4) / 3, p50: null, n: 3 },
      [one]: { count: 3, p50: -2.5, n: 2 },
    };
    for (const key of LIVE_KEYS) {
      const h = await getJson(`/v1/latest?${new URLSearchParams({ pipeline: 'gp_live', key })}`);
      const newest = sseAll.results.filter((r) => r.key === key && r.start === at(60)).at(-1)!;
      expect(h).toEqual({ results: [newest] });
      const [r] = h.results as Obj[];
      expect(Object.keys(r).sort()).toEqual(['count', 'emittedAt', 'end', 'final', 'key', 'metric', 'n', 'p50', 'pipeline', 'revision', 'start', 'window']);
      expect({ count: r.count, p50: r.p50, n: r.n }, key).toEqual(want[key].count === null || Number.isInteger(want[key].count) ? want[key] : { ...want[key], count: expect.closeTo(want[key].count, 12) });
      const g = await call('Latest', { pipeline: 'gp_live', key });
      expect(g.results.map(asJson), key).toEqual(h.results.map(noNulls));
      // The same with every optional field given.
      const q = { pipeline: 'gp_live', metric: 'gp_live', key, window: 'session', final: true };
      const h1 = await getJson(`/v1/latest?${new URLSearchParams({ ...q, final: 'true' })}`);
      expect(h1).toEqual(h);
      expect((await call('Latest', q)).results.map(asJson)).toEqual(h1.results.map(noNulls));
    }
    expect(((await getJson(`/v1/latest?pipeline=gp_live&key=k0`)).results as Obj[])[0].count).toBe(1.5);

    // TopK: gRPC = HTTP, ranked by the declared fields named like default figures.
    const tops: [Obj, string[]][] = [
      [{ window: 'session', by: 'count' }, [one, 'k0', 'k2']],
      [{ window: 'session', by: 'count', order: 'asc', k: 2 }, ['k2', 'k0']],
      [{ window: 'session', by: 'p50', order: 'asc', scope: 'final' }, [one, 'k0', 'k1']],
      [{ window: 'session', by: 'n', k: 4 }, []],
    ];
    for (const [q, keys] of tops) {
      const h = await getJson(`/v1/top?${new URLSearchParams({ pipeline: 'gp_live', ...Object.fromEntries(Object.entries(q).map(([k, v]) => [k, String(v)])) })}`);
      const g = await call('TopK', { pipeline: 'gp_live', ...q });
      const { entries, start, _start, ...rest } = g; // eslint-disable-line @typescript-eslint/no-unused-vars
      expect({ ...rest, start: start ?? null, entries: entries.map(asJson) }, JSON.stringify(q)).toEqual({ ...h, entries: (h.entries as Obj[]).map(noNulls) });
      expect(h.start).toBe(at(60));
      if (keys.length) expect((h.entries as Obj[]).map((e) => e.key), JSON.stringify(q)).toEqual(keys);
      for (const e of h.entries as Obj[]) expect(e).toEqual(sseAll.results.filter((r) => r.key === e.key && r.start === at(60)).at(-1));
    }
  });
});
