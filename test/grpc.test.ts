/**
 * The gRPC gateway (weir.v1.Weir) over a real socket on the real stack, with auth on. Events go in
 * through Publish and PublishStream; every answer (QuerySeries, Percentiles, Latest, TopK) must
 * equal the HTTP API's answer to the same question and the rows QuestDB holds (read over PG wire,
 * and checked against a brute-force computation of the events); a final-only Subscribe must
 * receive every window QuestDB holds. Each scope is tried allowed and refused, bad requests must
 * name the field (details and the `weir-param` trailer), and the standard health and reflection
 * services must answer. The client is built from proto/weir/v1/weir.proto, not from the server.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import type protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor.js';
import { rng } from '../benchmarks/producer.js';
import { sketchFromBase64, sketchMerge, type DDSketch } from '../operators/aggregates/ddsketch.js';
import { clampedQuantiles } from '../operators/aggregates/summary.js';
import { ROOT, startEngine, waitFor } from './harness.js';
import { useRealStack } from './real-stack.js';

const T = {
  admin: 'grpc-admin-token-0123456789',
  reader: 'grpc-reader-token-0123456789',
  subscriber: 'grpc-subscr-token-0123456789',
  publisher: 'grpc-publish-token-0123456789',
};
const CONFIG = {
  // Generous lateness: if the machine stalls between two publish calls long enough for the idle
  // watermark to pass the test's (recent past) windows, the later events still land as
  // corrections instead of being dropped as late; the assertions hold either way.
  pipeline: { maxOutOfOrderness: '1s', allowedLateness: '10m', idleTimeout: '2s' },
  results: { partialInterval: '200ms' },
  workers: 2,
  gateway: {
    // Small enough that the slow-subscriber test overflows it quickly; readers that keep up never queue.
    limits: { subscriberBuffer: 500 },
    tokens: [
      { name: 'admin', token: T.admin, scopes: ['admin'] },
      { name: 'reader', token: T.reader, scopes: ['read'] },
      { name: 'subscriber', token: T.subscriber, scopes: ['subscribe'] },
      { name: 'publisher', token: T.publisher, scopes: ['publish'] },
    ],
  },
};

const LOADER = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };
const METRICS = ['grpc_lat', 'grpc_temp'];
const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4', 'a.b c/ü']; // the last is not a NATS subject token
const WINDOWS = [
  { name: '10s', size: 10_000, table: 'weir_agg_10s' },
  { name: '1m', size: 60_000, table: 'weir_agg_1m' },
];
const FIGURES = ['count', 'sum', 'min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p95', 'p99', 'p999'] as const;
const N = 1680; // ~140 events per (metric, key), ~23 per 10 s window: enough for percentile checks

interface Ev {
  metric: string;
  key: string;
  ts: number;
  value: number;
}
type Row = Record<string, number | string | null> & { metric: string; key: string; ts: number; count: number };
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

// ---- client ----------------------------------------------------------------------------------

const weirDef = protoLoader.loadSync(path.join(ROOT, 'proto/weir/v1/weir.proto'), LOADER);
const WeirClient = (grpc.loadPackageDefinition(weirDef) as Obj).weir.v1.Weir as grpc.ServiceClientConstructor;
const require = createRequire(import.meta.url);
const healthDef = protoLoader.loadSync(require('grpc-health-check').protoPath as string, LOADER);
const HealthClient = (grpc.loadPackageDefinition(healthDef) as Obj).grpc.health.v1.Health as grpc.ServiceClientConstructor;
const reflectionProto = path.join(path.dirname(require.resolve('@grpc/reflection')), '../proto/grpc/reflection/v1/reflection.proto');
const reflectionDef = protoLoader.loadSync(reflectionProto, LOADER);
const ReflectionClient = (grpc.loadPackageDefinition(reflectionDef) as Obj).grpc.reflection.v1.ServerReflection as grpc.ServiceClientConstructor;

function md(token: string | null): grpc.Metadata {
  const m = new grpc.Metadata();
  if (token) m.set('authorization', `Bearer ${token}`);
  return m;
}

/** A failed call's status, details and the trailer naming the field. */
interface Failure {
  code: number;
  details: string;
  param: string | undefined;
  metadata: grpc.Metadata;
}
const failure = (e: grpc.ServiceError): Failure => ({ code: e.code, details: e.details, param: e.metadata?.get('weir-param')[0] as string | undefined, metadata: e.metadata });

describe('gRPC gateway on the real stack', () => {
  const ctx = useRealStack();
  let client: grpc.Client & Obj;
  const base = Math.floor(Date.now() / 60_000) * 60_000 - 5 * 60_000;

  // `token`: null sends no authorization metadata at all.
  /** A unary call; rejects with the ServiceError. */
  function call<T = Obj>(method: string, req: Obj, token: string | null = T.admin): Promise<T> {
    return new Promise((resolve, reject) => client[method](req, md(token), { deadline: Date.now() + 30_000 }, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))));
  }
  /** A unary call that must fail; resolves with how. */
  async function refused(method: string, req: Obj, token: string | null = T.admin): Promise<Failure> {
    try {
      const res = await call(method, req, token);
      throw new Error(`${method} ${JSON.stringify(req)} succeeded: ${JSON.stringify(res)}`);
    } catch (err) {
      if (!(err as grpc.ServiceError).code) throw err;
      return failure(err as grpc.ServiceError);
    }
  }
  /** Client streaming publish; resolves with the response or the failure. */
  function publishStream(requests: Obj[], token: string | null = T.admin): Promise<{ res?: Obj; fail?: Failure }> {
    return new Promise((resolve) => {
      const stream = client.PublishStream(md(token), { deadline: Date.now() + 60_000 }, (err: grpc.ServiceError | null, res: Obj) =>
        resolve(err ? { fail: failure(err) } : { res }),
      );
      for (const r of requests) stream.write(r);
      stream.end();
    });
  }
  /** Opens a Subscribe stream, collecting results; `ready` resolves once the server has subscribed (headers). */
  function subscribe(req: Obj, token: string | null = T.admin) {
    const results: Obj[] = [];
    const stream = client.Subscribe(req, md(token)) as grpc.ClientReadableStream<Obj>;
    let error: grpc.ServiceError | undefined;
    const ended = new Promise<Failure>((resolve) => {
      stream.on('error', (e: grpc.ServiceError) => {
        error = e;
        resolve(failure(e));
      });
      stream.on('status', (s: grpc.StatusObject) => {
        if (s.code === grpc.status.OK) resolve({ code: 0, details: s.details, param: undefined, metadata: s.metadata });
      });
    });
    stream.on('data', (r: Obj) => results.push(r));
    const ready = new Promise<void>((resolve, reject) => {
      stream.once('metadata', () => resolve());
      void ended.then((f) => reject(new Error(`subscription ended before it started: ${f.code} ${f.details}`)));
    });
    ready.catch(() => undefined); // refused subscriptions are awaited through `ended`
    return { results, stream, ready, ended, error: () => error };
  }
  async function http(pathAndQuery: string, token = T.admin): Promise<Obj> {
    const r = await fetch(`${ctx.engine!.http}${pathAndQuery}`, { headers: { authorization: `Bearer ${token}` } });
    const body = await r.json();
    if (r.status !== 200) throw new Error(`GET ${pathAndQuery}: ${r.status} ${JSON.stringify(body)}`);
    return body as Obj;
  }

  // gRPC messages in the JSON API's shape: camelCase, unset optional figures as null.
  const point = (p: Obj) => ({ ts: p.ts, rate: p.rate, ...Object.fromEntries(FIGURES.map((f) => [f, p[f] ?? null])) });
  // superseded and fields are a declared pipeline's (test/gateway-pipelines.test.ts): false and empty here.
  const live = (r: Obj) => {
    const { emitted_at, _stddev, stddev, _sum, sum, superseded, fields, ...rest } = r; // eslint-disable-line @typescript-eslint/no-unused-vars
    expect({ superseded, fields }).toEqual({ superseded: false, fields: {} });
    return { ...rest, sum: sum ?? null, stddev: stddev ?? null, emittedAt: emitted_at };
  };

  beforeAll(async () => {
    ctx.engine = await startEngine(ctx.stack, CONFIG);
    client = new WeirClient(ctx.engine.grpc, grpc.credentials.createInsecure()) as grpc.Client & Obj;
  }, 180_000);
  afterAll(() => client?.close());

  it('serves the standard health service and reflection', async () => {
    const health = new HealthClient(ctx.engine!.grpc, grpc.credentials.createInsecure()) as grpc.Client & Obj;
    const check = (service: string) =>
      new Promise<Obj>((resolve, reject) => health.Check({ service }, (err: grpc.ServiceError | null, res: Obj) => (err ? reject(err) : resolve(res))));
    for (const service of ['', 'weir.v1.Weir'])
      await waitFor(`health of "${service}" SERVING`, async () => ((await check(service)).status === 'SERVING' ? true : undefined), 30_000);
    const unknown = await check('no.such.Service').then(
      () => undefined,
      (e: grpc.ServiceError) => e.code,
    );
    expect(unknown).toBe(grpc.status.NOT_FOUND);
    health.close();

    const refl = new ReflectionClient(ctx.engine!.grpc, grpc.credentials.createInsecure()) as grpc.Client & Obj;
    const ask = (req: Obj) =>
      new Promise<Obj>((resolve, reject) => {
        const s = refl.ServerReflectionInfo();
        s.on('data', (r: Obj) => {
          resolve(r);
          s.end();
        });
        s.on('error', reject);
        s.write(req);
      });
    const list = await ask({ list_services: '*' });
    const names = (list.list_services_response.service as Obj[]).map((s) => s.name);
    expect(names).toContain('weir.v1.Weir');
    expect(names).toContain('grpc.health.v1.Health');
    const file = await ask({ file_containing_symbol: 'weir.v1.Weir' });
    expect(file.file_descriptor_response.file_descriptor_proto.length).toBeGreaterThan(0);
    // A descriptor strict clients accept: map entries named as protoc names them, proto3 optional marked.
    const FDP = (descriptor as unknown as { FileDescriptorProto: protobuf.Type }).FileDescriptorProto;
    const files = (file.file_descriptor_response.file_descriptor_proto as Buffer[]).map((b) => FDP.toObject(FDP.decode(b)) as Obj);
    const weirFile = files.find((f) => f.package === 'weir.v1')!;
    expect(weirFile.service.map((x: Obj) => x.name)).toEqual(['Weir']);
    expect(weirFile.service[0].method.map((x: Obj) => x.name)).toEqual(
      expect.arrayContaining(['Publish', 'PublishStream', 'QuerySeries', 'Latest', 'Percentiles', 'TopK', 'Subscribe']),
    );
    const event = weirFile.messageType.find((m: Obj) => m.name === 'Event');
    expect(event.nestedType.map((n: Obj) => n.name)).toEqual(['TagsEntry']);
    expect(event.field.find((f: Obj) => f.name === 'tags').typeName).toBe('TagsEntry');
    expect(event.field.filter((f: Obj) => f.proto3Optional).map((f: Obj) => f.name)).toEqual(['value', 'ts']);
    refl.close();

    // grpcurl, when installed (never downloaded here): lists the services from reflection alone.
    const grpcurl = [process.env.GRPCURL, path.join(os.homedir(), 'go/bin/grpcurl'), '/usr/local/bin/grpcurl', '/usr/bin/grpcurl'].find((p) => p && existsSync(p));
    if (grpcurl) {
      const out = execFileSync(grpcurl, ['-plaintext', ctx.engine!.grpc, 'list'], { encoding: 'utf8', timeout: 30_000 });
      expect(out.split('\n')).toContain('weir.v1.Weir');
      const desc = execFileSync(grpcurl, ['-plaintext', ctx.engine!.grpc, 'describe', 'weir.v1.Weir'], { encoding: 'utf8', timeout: 30_000 });
      expect(desc).toContain('rpc Subscribe');
      const ev = execFileSync(grpcurl, ['-plaintext', ctx.engine!.grpc, 'describe', 'weir.v1.Event'], { encoding: 'utf8', timeout: 30_000 });
      expect(ev).toContain('map<string, string> tags = 5;');
      expect(ev).toContain('optional double value = 3;');
    }
  });

  it('publishes over Publish and PublishStream; series, percentiles, latest, top-K and subscriptions match HTTP and QuestDB', async () => {
    // Subscriptions first, so that every firing reaches them.
    const all = subscribe({ final_only: true });
    const narrow = subscribe({ metric: 'grpc_lat', key_prefix: 'k', window: '10s', final_only: true });
    onTestFinished(() => {
      all.stream.cancel();
      narrow.stream.cancel();
    });
    await Promise.all([all.ready, narrow.ready]);

    // A seeded workload in the recent past: one minute, every (metric, key), six 10 s windows.
    const rand = rng(7);
    const events: Ev[] = [];
    for (let i = 0; i < N; i++) {
      const metric = METRICS[i % METRICS.length];
      const key = KEYS[Math.floor(rand() * KEYS.length)];
      events.push({ metric, key, ts: base + Math.floor(rand() * 60_000), value: 1 + Math.floor(rand() * rand() * 10_000) });
    }
    const half = N / 2;
    const first = events.slice(0, half);
    const second = events.slice(half);
    const asProto = (e: Ev, withMetric = true) => ({
      ...(withMetric ? { metric: e.metric } : {}),
      key: e.key,
      value: e.value,
      ts: e.ts,
      ...(e.value % 3 === 0 ? { tags: { region: 'eu', host: `h${e.value % 5}` } } : {}),
      ...(e.value % 4 === 0 ? { id: `ev-${e.ts}-${e.value}` } : {}),
    });

    // Unary: one request with the default metric (events without one), one with per-event metrics.
    const lat = first.filter((e) => e.metric === 'grpc_lat');
    const rest = first.filter((e) => e.metric !== 'grpc_lat');
    const a = await call('Publish', { metric: 'grpc_lat', events: lat.map((e) => asProto(e, false)), idempotency_key: 'grpc-test-a' });
    expect(a).toMatchObject({ accepted: lat.length, messages: 1, duplicate: false });
    expect(a.first_seq).toBeGreaterThan(0);
    expect(a.last_seq).toBe(a.first_seq);
    const b = await call('Publish', { events: rest.map((e) => asProto(e)) });
    expect(b).toMatchObject({ accepted: rest.length, messages: 1, duplicate: false });
    expect(b.first_seq).toBeGreaterThan(a.last_seq);
    // The same idempotency key again: stored once (the row counts below prove it).
    const again = await call('Publish', { metric: 'grpc_lat', events: lat.map((e) => asProto(e, false)), idempotency_key: 'grpc-test-a' });
    expect(again.duplicate).toBe(true);

    // Client streaming: requests of 40 mixed events, each stored before the next (contiguous sequences).
    const requests: Obj[] = [];
    let expectMessages = 0;
    for (let i = 0; i < second.length; i += 40) {
      const part = second.slice(i, i + 40);
      requests.push({ events: part.map((e) => asProto(e)) });
      expectMessages += new Set(part.map((e) => e.metric)).size;
    }
    const st = await publishStream(requests);
    expect(st.fail).toBeUndefined();
    expect(st.res).toMatchObject({ accepted: second.length, messages: expectMessages, duplicate: false });
    expect(st.res!.first_seq).toBeGreaterThan(b.last_seq);
    expect(st.res!.last_seq - st.res!.first_seq + 1).toBe(expectMessages);

    // QuestDB holds every event once, in the brute-force windows.
    const inList = METRICS.map((m) => `'${m}'`).join(',');
    for (const w of WINDOWS)
      await waitFor(
        `${w.table} to hold all ${N} events`,
        async () => ((await ctx.pool.query(`SELECT sum(count) AS n FROM ${w.table} WHERE metric IN (${inList})`)).rows[0].n === N ? true : undefined),
        90_000,
      );
    const rows = new Map<string, Row[]>();
    for (const w of WINDOWS) {
      const res = await ctx.pool.query(`SELECT * FROM ${w.table} WHERE metric IN (${inList}) ORDER BY metric, key, ts`);
      rows.set(w.name, res.rows as Row[]);
      const oracle = new Map<string, number[]>();
      for (const e of events) {
        const id = `${e.metric}|${e.key}|${e.ts - (e.ts % w.size)}`;
        oracle.set(id, [...(oracle.get(id) ?? []), e.value]);
      }
      expect(res.rows.length).toBe(oracle.size);
      for (const r of res.rows as Row[]) {
        const v = oracle.get(`${r.metric}|${r.key}|${r.ts}`);
        expect(v, `${w.table} row ${r.metric}/${r.key}@${r.ts}`).toBeDefined();
        expect([r.count, r.sum, r.min, r.max]).toEqual([v!.length, v!.reduce((x, y) => x + y, 0), Math.min(...v!), Math.max(...v!)]);
      }
    }

    // Subscribe: every row arrives as a final result (none missing, none extra), with the row's figures.
    const idOf = (window: string, metric: string, key: string, start: number) => `${window}|${metric}|${key}|${start}`;
    const expected = new Map<string, Row>();
    for (const w of WINDOWS) for (const r of rows.get(w.name)!) expected.set(idOf(w.name, r.metric, r.key, r.ts), r);
    const newest = (list: Obj[]) => {
      const m = new Map<string, Obj>();
      for (const r of list) {
        if (!METRICS.includes(r.metric)) continue;
        const id = idOf(r.window, r.metric, r.key, r.start);
        const prev = m.get(id);
        if (!prev || r.revision > prev.revision) m.set(id, r);
      }
      return m;
    };
    const got = await waitFor(
      'the final-only subscription to receive every window row',
      async () => {
        const m = newest(all.results);
        return [...expected.keys()].every((id) => m.has(id)) ? m : undefined;
      },
      30_000,
    );
    expect(all.results.every((r) => r.final === true && r.revision >= 0)).toBe(true);
    expect(new Set(got.keys())).toEqual(new Set(expected.keys()));
    const sameFigures = (r: Obj, row: Row, what: string) => {
      for (const f of FIGURES) {
        const want = row[f] as number | null;
        const have = r[f] ?? null;
        if (want === null || have === null || Number.isInteger(want)) expect(have, `${what} ${f}`).toBe(want);
        else expect(Math.abs(have - want), `${what} ${f}: ${have} vs ${want}`).toBeLessThanOrEqual(1e-9 * Math.abs(want));
      }
    };
    for (const [id, r] of got) {
      const row = expected.get(id)!;
      sameFigures(r, row, `subscribed ${id}`);
      expect(r.end - r.start).toBe(WINDOWS.find((w) => w.name === r.window)!.size);
      expect(r.pipeline).toBe('default');
      expect(r.emitted_at).toBeGreaterThan(0);
      expect({ superseded: r.superseded, fields: r.fields }).toEqual({ superseded: false, fields: {} });
    }
    // The narrow filter: exactly the 10 s windows of grpc_lat keys starting with "k".
    const narrowWant = new Set(rows.get('10s')!.filter((r) => r.metric === 'grpc_lat' && r.key.startsWith('k')).map((r) => idOf('10s', r.metric, r.key, r.ts)));
    await waitFor('the filtered subscription to receive its rows', async () => (newest(narrow.results).size >= narrowWant.size ? true : undefined), 30_000);
    expect(narrow.results.every((r) => r.metric === 'grpc_lat' && r.key.startsWith('k') && r.window === '10s' && r.final)).toBe(true);
    expect(new Set(newest(narrow.results).keys())).toEqual(narrowWant);

    // QuerySeries = GET /v1/series = the rows; Percentiles = GET /v1/percentiles = a merge of the stored sketches.
    const from = String(base);
    const to = new Date(base + 60_000).toISOString(); // ISO-8601 and ms both accepted, as in HTTP
    for (const metric of METRICS)
      for (const key of KEYS)
        for (const w of WINDOWS) {
          const g = await call('QuerySeries', { metric, key, window: w.name, from, to });
          const h = await http(`/v1/series?${new URLSearchParams({ metric, key, window: w.name, from, to })}`);
          const mine = rows.get(w.name)!.filter((r) => r.metric === metric && r.key === key);
          expect(mine.length).toBeGreaterThan(0);
          // pipeline, fields and pipeline_points are a declared pipeline's (test/gateway-pipelines.test.ts): empty here.
          const { pipeline, fields, pipeline_points, ...series } = g;
          expect({ pipeline, fields, pipeline_points }).toEqual({ pipeline: '', fields: [], pipeline_points: [] });
          expect({ ...series, points: g.points.map(point) }).toEqual(h);
          expect(g).toMatchObject({ metric, key, window: w.name, from: base, to: base + 60_000, truncated: false });
          expect(g.points.map(point)).toEqual(mine.map((r) => ({ ts: r.ts, rate: r.count / (w.size / 1000), ...Object.fromEntries(FIGURES.map((f) => [f, r[f]])) })));

          const qs = [0.5, 0.9, 0.99];
          const gp = await call('Percentiles', { metric, key, window: w.name, from, to, q: qs });
          const hp = await http(`/v1/percentiles?${new URLSearchParams({ metric, key, window: w.name, from, to, q: qs.join(',') })}`);
          const { relative_accuracy, quantiles, ...restP } = gp;
          expect({ ...restP, relativeAccuracy: relative_accuracy, quantiles: quantiles.map((x: Obj) => ({ q: x.q, value: x.value ?? null })) }).toEqual(hp);
          let sk: DDSketch | null = null;
          for (const r of mine) sk = sk ? sketchMerge(sk, sketchFromBase64(r.sketch as string)) : sketchFromBase64(r.sketch as string);
          const n = mine.reduce((s, r) => s + r.count, 0);
          const min = Math.min(...mine.map((r) => r.min as number));
          const max = Math.max(...mine.map((r) => r.max as number));
          expect(gp).toMatchObject({ count: n, windows: mine.length });
          expect(quantiles.map((x: Obj) => x.value)).toEqual(clampedQuantiles(sk!, min, max, qs));
          // And close to the exact quantiles of the events themselves.
          const sorted = events.filter((e) => e.metric === metric && e.key === key).map((e) => e.value).sort((x, y) => x - y);
          expect(sorted.length).toBe(n);
          qs.forEach((q, i) => {
            const exact = sorted[Math.floor(q * (sorted.length - 1))];
            expect(Math.abs(quantiles[i].value - exact), `q${q} of ${metric}/${key} (${w.name}): ${quantiles[i].value} vs ${exact}`).toBeLessThanOrEqual(0.01 * exact);
          });
        }

    // Latest and TopK at a quiet moment (every window final, nothing moving) = the HTTP answers.
    for (const metric of METRICS)
      for (const key of KEYS) {
        const g = await call('Latest', { metric, key });
        const h = await http(`/v1/latest?${new URLSearchParams({ metric, key })}`);
        expect(g.results.map(live)).toEqual(h.results);
        expect(g.results.length).toBe(WINDOWS.length);
        for (const r of g.results) {
          expect(r.final).toBe(true);
          sameFigures(r, expected.get(idOf(r.window, metric, key, r.start))!, `latest ${metric}/${key}/${r.window}`);
        }
        const g10 = await call('Latest', { metric, key, window: '10s', final: true });
        expect(g10.results.map(live)).toEqual((await http(`/v1/latest?${new URLSearchParams({ metric, key, window: '10s', final: 'true' })}`)).results);
      }
    for (const metric of METRICS)
      for (const q of [
        { window: '10s', by: 'count', k: 3, scope: 'final' },
        { window: '1m', by: 'p99', k: 10, order: 'asc' },
        {},
      ] as Obj[]) {
        const g = await call('TopK', { metric, ...q });
        const h = await http(`/v1/top?${new URLSearchParams({ metric, ...Object.fromEntries(Object.entries(q).map(([k, v]) => [k, String(v)])) })}`);
        const { entries, start, _start, ...restT } = g; // eslint-disable-line @typescript-eslint/no-unused-vars
        expect({ ...restT, start: start ?? null, entries: entries.map(live) }).toEqual(h);
        expect(entries.length).toBeGreaterThan(0);
      }

    // Cancelling a subscription ends it on the server (the gauge goes back to 0).
    all.stream.cancel();
    narrow.stream.cancel();
    expect((await all.ended).code).toBe(grpc.status.CANCELLED);
    await waitFor('the grpc subscription gauge to fall to 0', async () => ((await scrape())['weir_subscriptions_active{transport="grpc"}'] === 0 ? true : undefined), 15_000);
  });

  async function scrape(): Promise<Record<string, number>> {
    const text = await (await fetch(`${ctx.engine!.http}/metrics`, { headers: { authorization: `Bearer ${T.admin}` } })).text();
    const m: Record<string, number> = {};
    for (const line of text.split('\n')) {
      const match = /^(weir_[a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+)$/.exec(line);
      if (match) m[match[1] + (match[2] ?? '')] = Number(match[3]);
    }
    return m;
  }

  it('enforces token scopes', async () => {
    const series = { metric: 'grpc_lat', key: 'k0', window: '10s', from: String(base), to: String(base + 60_000) };
    const pub = { metric: 'grpc_scope', events: [{ key: 's', value: 1, ts: base + 120_000 }] };

    // read
    expect((await call('QuerySeries', series, T.reader)).points.length).toBeGreaterThan(0);
    expect((await call('Percentiles', series, T.reader)).count).toBeGreaterThan(0);
    expect((await call('Latest', { metric: 'grpc_lat', key: 'k0' }, T.reader)).results.length).toBeGreaterThan(0);
    expect((await call('TopK', { metric: 'grpc_lat' }, T.reader)).entries.length).toBeGreaterThan(0);
    expect((await call('Catalog', {}, T.reader)).windows).toEqual([
      { name: '10s', size_ms: 10_000 },
      { name: '1m', size_ms: 60_000 },
    ]);
    for (const [method, req, token] of [
      ['Publish', pub, T.reader],
      ['QuerySeries', series, T.publisher],
      ['Latest', { metric: 'grpc_lat', key: 'k0' }, T.subscriber],
      ['TopK', { metric: 'grpc_lat' }, T.publisher],
      ['Percentiles', series, T.subscriber],
      ['Publish', pub, T.subscriber],
    ] as const) {
      const f = await refused(method, req, token);
      expect(f.code, `${method} with ${token}`).toBe(grpc.status.PERMISSION_DENIED);
      expect(f.param).toBe('authorization');
    }
    const rs = await publishStream([pub], T.reader);
    expect(rs.fail?.code).toBe(grpc.status.PERMISSION_DENIED);

    // publish
    expect(await call('Publish', pub, T.publisher)).toMatchObject({ accepted: 1, messages: 1 });
    expect((await publishStream([pub, pub], T.publisher)).res).toMatchObject({ accepted: 2, messages: 2 });

    // subscribe
    const ok = subscribe({ metric: 'grpc_scope' }, T.subscriber);
    onTestFinished(() => ok.stream.cancel());
    await ok.ready;
    ok.stream.cancel();
    expect((await ok.ended).code).toBe(grpc.status.CANCELLED);
    for (const token of [T.reader, T.publisher]) {
      const no = subscribe({ metric: 'grpc_scope' }, token);
      const f = await no.ended;
      expect(f.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(f.param).toBe('authorization');
    }

    // no token, unknown token
    for (const token of [null, 'not-a-configured-token-123456']) {
      for (const [method, req] of [
        ['QuerySeries', series],
        ['Publish', pub],
        ['Latest', { metric: 'grpc_lat', key: 'k0' }],
      ] as const) {
        const f = await refused(method, req, token);
        expect(f.code, `${method} with ${token}`).toBe(grpc.status.UNAUTHENTICATED);
        expect(f.param).toBe('authorization');
      }
      expect((await publishStream([pub], token)).fail?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect((await subscribe({}, token).ended).code).toBe(grpc.status.UNAUTHENTICATED);
    }
  });

  it('refuses bad requests with INVALID_ARGUMENT naming the field', async () => {
    const ok = { metric: 'grpc_lat', key: 'k0', from: String(base), to: String(base + 60_000) };
    const cases: [string, Obj, string][] = [
      ['QuerySeries', { ...ok, window: '7s' }, 'window'],
      ['QuerySeries', { ...ok, from: String(base + 60_000), to: String(base) }, 'from'],
      ['QuerySeries', { ...ok, from: 'yesterday' }, 'from'],
      ['QuerySeries', { ...ok, to: '2026-13-45T99:00:00Z' }, 'to'],
      ['QuerySeries', { ...ok, metric: '' }, 'metric'],
      ['QuerySeries', { ...ok, metric: 'has.dot' }, 'metric'],
      ['QuerySeries', { ...ok, key: '' }, 'key'],
      ['QuerySeries', { ...ok, limit: -1 }, 'limit'],
      ['Percentiles', { ...ok, q: [0.5, 1.5] }, 'q'],
      ['Percentiles', { ...ok, q: [NaN] }, 'q'],
      ['Percentiles', { ...ok, from: '0', to: String(Date.now()) }, 'from'], // past maxRange
      ['TopK', { metric: 'grpc_lat', k: -1 }, 'k'],
      ['TopK', { metric: 'grpc_lat', k: 1_000_000 }, 'k'],
      ['TopK', { metric: 'grpc_lat', by: 'bogus' }, 'by'],
      ['TopK', { metric: 'grpc_lat', order: 'up' }, 'order'],
      ['TopK', { metric: 'grpc_lat', pipeline: 'no/such' }, 'pipeline'],
      ['Latest', { metric: 'grpc_lat' }, 'key'],
      ['Publish', { metric: 'grpc_bad', events: [{ key: 'x', value: 1 }, { key: 'x', value: NaN }] }, 'events[1]'],
      ['Publish', { metric: 'grpc_bad', events: [{ key: 'x', value: 'twelve' }] }, 'events[0]'], // a string becomes NaN on the wire
      ['Publish', { metric: 'grpc_bad', events: [{ key: 'x', value: Infinity }] }, 'events[0]'],
      ['Publish', { metric: 'grpc_bad', events: [{ key: 'x' }] }, 'events[0]'], // no value
      ['Publish', { metric: 'grpc_bad', events: [{ key: '', value: 1 }] }, 'events[0]'],
      ['Publish', { metric: 'grpc_bad', events: [{ key: 'x', value: 1, ts: -5 }] }, 'events[0]'],
      ['Publish', { events: [{ key: 'x', value: 1 }] }, 'events[0].metric'],
      ['Publish', { events: [{ metric: 'a.b', key: 'x', value: 1 }] }, 'events[0].metric'],
      ['Publish', { metric: 'grpc_bad', events: [] }, 'events'],
      ['Publish', { metric: 'bad metric', events: [{ key: 'x', value: 1 }] }, 'metric'],
      ['Publish', { metric: 'grpc_bad', idempotency_key: 'has space', events: [{ key: 'x', value: 1 }] }, 'idempotency_key'],
    ];
    for (const [method, req, param] of cases) {
      const f = await refused(method, req);
      const what = `${method} ${JSON.stringify(req)}`;
      expect(f.code, `${what}: ${f.details}`).toBe(grpc.status.INVALID_ARGUMENT);
      expect(f.param, what).toBe(param);
      expect(f.details.startsWith(`${param}: `), `${what}: details "${f.details}"`).toBe(true);
      expect(f.metadata.get('weir-error')[0]).toBe('bad_request');
    }

    // Subscribe filters.
    for (const [req, param] of [
      [{ key: 'k0', key_prefix: 'k' }, 'key_prefix'],
      [{ window: '7s' }, 'window'],
      [{ metric: 'a b' }, 'metric'],
      [{ pipeline: 'no such' }, 'pipeline'],
    ] as const) {
      const f = await subscribe(req).ended;
      expect(f.code, JSON.stringify(req)).toBe(grpc.status.INVALID_ARGUMENT);
      expect(f.param).toBe(param);
      expect(f.details.startsWith(`${param}: `)).toBe(true);
    }

    // PublishStream: the requests before a bad one are stored; the trailers say how far it got.
    const good = { metric: 'grpc_bad', events: [{ key: 'x', value: 1, ts: base + 120_000 }, { key: 'y', value: 2, ts: base + 120_000 }] };
    const s = await publishStream([good, { metric: 'grpc_bad', events: [{ key: 'x', value: NaN }] }, good]);
    expect(s.fail?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(s.fail?.param).toBe('events[0]');
    expect(s.fail?.metadata.get('weir-request-index')[0]).toBe('1');
    expect(s.fail?.metadata.get('weir-accepted')[0]).toBe('2');
    await waitFor(
      'the events before the bad request to be in QuestDB',
      async () => ((await ctx.pool.query(`SELECT sum(count) AS n FROM weir_agg_10s WHERE metric = 'grpc_bad'`)).rows[0].n === 2 ? true : undefined),
      30_000,
    );
  });

  it('counts calls per method and status code', async () => {
    const m = await scrape();
    const count = (method: string, code: string) => m[`weir_grpc_request_duration_seconds_count{method="${method}",code="${code}"}`] ?? 0;
    expect(count('QuerySeries', 'OK')).toBeGreaterThan(0);
    expect(count('QuerySeries', 'INVALID_ARGUMENT')).toBeGreaterThan(0);
    expect(count('Publish', 'PERMISSION_DENIED')).toBeGreaterThan(0);
    expect(count('PublishStream', 'OK')).toBeGreaterThan(0);
    expect(count('Subscribe', 'CANCELLED')).toBeGreaterThan(0);
    expect(count('Subscribe', 'UNAUTHENTICATED')).toBeGreaterThan(0);
    expect(m['weir_subscription_messages_total{transport="grpc"}']).toBeGreaterThan(0);
  });

  it('ends a subscriber that falls too far behind with RESOURCE_EXHAUSTED, never skipping silently', async () => {
    const slow = subscribe({ metric: 'grpc_slow' });
    onTestFinished(() => slow.stream.cancel());
    await slow.ready;
    slow.stream.pause(); // stop reading: HTTP/2 flow control backs up into the server's queue
    const now = Date.now();
    // 3000 keys: a partial and a firing each, far more than the buffer (500) plus what the transport holds.
    await call('Publish', { metric: 'grpc_slow', events: Array.from({ length: 3000 }, (_, i) => ({ key: `slow-${i}`, value: i, ts: now })) });
    await waitFor(
      'the gateway to drop the slow subscriber',
      async () => ((await scrape())['weir_subscriptions_dropped_total{transport="grpc"}'] >= 1 ? true : undefined),
      60_000,
    );
    // (grpc-js clients surface the status as soon as it arrives, even with messages still unread.)
    slow.stream.resume();
    const f = await slow.ended;
    expect(f.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(f.details).toMatch(/subscriber too slow/);
    expect(slow.results.every((r) => r.metric === 'grpc_slow')).toBe(true);
    await waitFor('the grpc subscription gauge to fall to 0', async () => ((await scrape())['weir_subscriptions_active{transport="grpc"}'] === 0 ? true : undefined), 15_000);
  });

  it('on SIGTERM ends open subscriptions with UNAVAILABLE and exits cleanly', async () => {
    const s = subscribe({ metric: 'grpc_lat', final_only: true });
    await s.ready;
    const exit = ctx.engine!.stop('SIGTERM');
    const f = await s.ended;
    expect(f.code).toBe(grpc.status.UNAVAILABLE);
    expect(f.details).toMatch(/shutting down/);
    expect(await exit).toBe(0);
  });
});
