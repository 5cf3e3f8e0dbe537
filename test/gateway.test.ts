/**
 * The HTTP gateway over real sockets on the real stack, with auth on: events go in through
 * POST /v1/events, and every answer (series, latest, top, percentiles, SSE and WebSocket
 * subscriptions) is checked against the rows QuestDB holds and a brute-force computation.
 * Each scope is tried allowed and refused; bad queries must name the bad parameter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { rng } from '../benchmarks/producer.js';
import { startEngine, waitFor, type EngineProcess } from './harness.js';
import { useRealStack } from './real-stack.js';

const T = {
  admin: 'admin-token-0123456789',
  reader: 'reader-token-0123456789',
  subscriber: 'subscr-token-0123456789',
  publisher: 'publish-token-0123456789',
  limited: 'limited-token-0123456789',
  onesub: 'onesub-token-0123456789',
};
const CONFIG = {
  // A request's events are grouped per metric into one message each, so within a request of
  // 300 events (~7.5 s of event time) one metric's message trails the other's: 10 s of
  // out-of-orderness keeps every event on time.
  pipeline: { maxOutOfOrderness: '10s', allowedLateness: '2s', idleTimeout: '1s' },
  results: { partialInterval: '200ms' },
  gateway: {
    tokens: [
      { name: 'admin', token: T.admin, scopes: ['admin'] },
      { name: 'reader', token: T.reader, scopes: ['read'] },
      { name: 'subscriber', token: T.subscriber, scopes: ['subscribe'] },
      { name: 'publisher', token: T.publisher, scopes: ['publish'] },
      { name: 'limited', token: T.limited, scopes: ['read'], ratePerSec: 0.5, burst: 3 },
      { name: 'onesub', token: T.onesub, scopes: ['subscribe'], maxSubscriptions: 1 },
    ],
  },
};

const METRICS = ['gw_latency', 'gw_temp'];
const KEYS = Array.from({ length: 8 }, (_, i) => `k${i}`).concat(['a.b c/ü']); // one key that is not a subject token
const WINDOWS = [
  { name: '10s', size: 10_000, table: 'weir_agg_10s' },
  { name: '1m', size: 60_000, table: 'weir_agg_1m' },
];

interface Ev {
  metric: string;
  key: string;
  ts: number;
  value: number;
}
interface Agg {
  count: number;
  sum: number;
  min: number;
  max: number;
}
interface Result {
  metric: string;
  key: string;
  window: string;
  start: number;
  final: boolean;
  revision: number;
  count: number;
  sum: number;
  min: number;
  max: number;
  p50: number;
  p99: number;
  rate: number;
}

const id = (window: string, metric: string, key: string, start: number) => `${window}|${metric}|${key}|${start}`;

function bruteForce(events: Ev[]): Map<string, Agg> {
  const m = new Map<string, Agg>();
  for (const e of events)
    for (const w of WINDOWS) {
      const start = Math.floor(e.ts / w.size) * w.size;
      const k = id(w.name, e.metric, e.key, start);
      const a = m.get(k);
      if (!a) m.set(k, { count: 1, sum: e.value, min: e.value, max: e.value });
      else {
        a.count++;
        a.sum += e.value;
        if (e.value < a.min) a.min = e.value;
        if (e.value > a.max) a.max = e.value;
      }
    }
  return m;
}

/** SSE client over fetch: collects `result` events until aborted. */
function sse(url: string, token: string) {
  const results: Result[] = [];
  const ctl = new AbortController();
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  const done = (async () => {
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: ctl.signal });
    if (res.status !== 200) throw new Error(`SSE ${res.status}: ${await res.text()}`);
    const dec = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += dec.decode(chunk, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (\w+)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (ev === 'ready') ready();
          if (ev === 'result' && data) results.push(JSON.parse(data));
        }
      }
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    }
  })();
  return { results, ready: readyP, close: () => ctl.abort(), done: done.catch((e) => (e.name === 'AbortError' ? undefined : Promise.reject(e))) };
}

describe('HTTP gateway on the real stack', () => {
  const ctx = useRealStack();
  let engine: EngineProcess;
  let http: string;
  const get = (path: string, token: string | null = T.admin) => fetch(`${http}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const getJson = async (path: string, token: string | null = T.admin) => {
    const r = await get(path, token);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> & { param?: string } };
  };

  beforeAll(async () => {
    engine = ctx.engine = await startEngine(ctx.stack, CONFIG);
    http = engine.http;
  });

  describe('data path: publish over HTTP, read back over HTTP, SSE and WebSocket', () => {
    // Event times are taken when the events are published, not when the file is collected: the
    // stack may take minutes to start on a loaded machine, and the engine's idle watermark follows
    // the clock meanwhile (events made at collection time could all be too late by then).
    const events: Ev[] = [];
    let expected: ReturnType<typeof bruteForce>;
    let base = 0;
    const makeEvents = () => {
      base = Math.floor((Date.now() - 5 * 60_000) / 60_000) * 60_000;
      const rand = rng(7);
      for (let i = 0; i < 6000; i++) {
        const metric = METRICS[i % 2];
        const key = KEYS[Math.floor(rand() * KEYS.length)];
        const ts = base + Math.floor((i / 6000) * 150_000) + Math.floor(rand() * 800);
        const value = metric === 'gw_latency' ? Math.floor(1 + rand() * rand() * 5000) : Math.round((rand() * 80 - 20) * 4) / 4;
        events.push({ metric, key, ts, value });
      }
      expected = bruteForce(events);
    };
    let sseAll: ReturnType<typeof sse>;
    let sseExact: ReturnType<typeof sse>;
    const wsResults: Result[] = [];
    let ws: WebSocket;

    beforeAll(async () => {
      // Subscribers first: they must see every window result of what follows.
      sseAll = sse(`${http}/v1/stream?finalOnly=true`, T.subscriber);
      sseExact = sse(`${http}/v1/stream?metric=gw_latency&key=${encodeURIComponent('a.b c/ü')}`, T.subscriber);
      ws = new WebSocket(`${http.replace('http', 'ws')}/v1/ws?metric=gw_temp&keyPrefix=k&finalOnly=true&access_token=${T.subscriber}`);
      ws.on('message', (d) => wsResults.push(JSON.parse(String(d))));
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      await Promise.all([sseAll.ready, sseExact.ready]);
      makeEvents();
      for (let off = 0; off < events.length; off += 300) {
        const chunk = events.slice(off, off + 300).map((e) => ({ metric: e.metric, key: e.key, value: e.value, ts: e.ts }));
        const r = await fetch(`${http}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${T.publisher}`, 'content-type': 'application/json' }, body: JSON.stringify(chunk) });
        expect(r.status).toBe(202);
        expect(((await r.json()) as { accepted: number }).accepted).toBe(chunk.length);
      }
      // Every window row is in QuestDB (the engine closes idle windows with processing time).
      await waitFor(
        'all window rows in QuestDB',
        async () => {
          const r = await ctx.pool.query("SELECT count() n FROM weir_agg_10s WHERE metric LIKE 'gw_%'");
          const r2 = await ctx.pool.query("SELECT count() n FROM weir_agg_1m WHERE metric LIKE 'gw_%'");
          if (r.rows[0].n + r2.rows[0].n === expected.size) return true;
          const m = await engine.metrics(T.admin);
          throw new Error(`${r.rows[0].n} + ${r2.rows[0].n} rows, want ${expected.size}; wm ${m.weir_watermark_ms} now ${Date.now()} lag ${m.weir_consumer_lag_messages} msgs ${m.weir_messages_total} maxTs ${Math.max(...events.map((e) => e.ts))}`);
        },
        120_000,
        500,
      );
      // And every final result reached the subscribers (they are published as windows fire).
      await waitFor('final results at the SSE subscriber', async () => (new Set(sseAll.results.filter((r) => r.metric.startsWith('gw_')).map((r) => id(r.window, r.metric, r.key, r.start))).size === expected.size ? true : undefined), 30_000);
    }, 240_000);

    afterAll(() => {
      sseAll?.close();
      sseExact?.close();
      ws?.close();
    });

    it('QuestDB rows equal brute force, and /v1/series equals the rows', async () => {
      const rows = await ctx.pool.query(
        "SELECT 'weir_agg_10s' t, ts, metric, key, count, sum, min, max, p50, p99 FROM weir_agg_10s WHERE metric LIKE 'gw_%' UNION ALL SELECT 'weir_agg_1m' t, ts, metric, key, count, sum, min, max, p50, p99 FROM weir_agg_1m WHERE metric LIKE 'gw_%'",
      );
      expect(rows.rows.length).toBe(expected.size);
      for (const r of rows.rows) {
        const w = WINDOWS.find((x) => x.table === r.t)!;
        const e = expected.get(id(w.name, r.metric, r.key, r.ts));
        expect(e, id(w.name, r.metric, r.key, r.ts)).toBeDefined();
        expect(r.count).toBe(e!.count);
        expect(r.sum).toBeCloseTo(e!.sum, 6);
        expect(r.min).toBe(e!.min);
        expect(r.max).toBe(e!.max);
      }
      for (const metric of METRICS)
        for (const key of KEYS)
          for (const w of WINDOWS) {
            const q = `/v1/series?metric=${metric}&key=${encodeURIComponent(key)}&window=${w.name}&from=${base - 60_000}&to=${base + 300_000}`;
            const { status, body } = await getJson(q, T.reader);
            expect(status).toBe(200);
            const mine = rows.rows.filter((r) => r.t === w.table && r.metric === metric && r.key === key).sort((a, b) => a.ts - b.ts);
            const points = body.points as Record<string, number>[];
            expect(points.map((p) => [p.ts, p.count, p.sum, p.min, p.max, p.p50, p.p99])).toEqual(mine.map((r) => [r.ts, r.count, r.sum, r.min, r.max, r.p50, r.p99]));
          }
    });

    it('the SSE subscriber received every final window result, with the stored figures', async () => {
      const rows = await ctx.pool.query("SELECT ts, metric, key, count, sum, p99 FROM weir_agg_10s WHERE metric LIKE 'gw_%'");
      const finals = new Map<string, Result>();
      for (const r of sseAll.results) if (r.final && r.metric.startsWith('gw_')) finals.set(id(r.window, r.metric, r.key, r.start), r); // newest revision wins
      expect(sseAll.results.every((r) => r.final)).toBe(true);
      expect(new Set(finals.keys())).toEqual(new Set(expected.keys()));
      for (const row of rows.rows) {
        const r = finals.get(id('10s', row.metric, row.key, row.ts))!;
        expect([r.count, r.sum, r.p99]).toEqual([row.count, row.sum, row.p99]);
        expect(r.rate).toBeCloseTo(row.count / 10, 9);
      }
    });

    it('an exact-key SSE subscription (key with dots, spaces, unicode) sees that key only, partials and finals', async () => {
      expect(sseExact.results.length).toBeGreaterThan(0);
      expect(sseExact.results.every((r) => r.metric === 'gw_latency' && r.key === 'a.b c/ü')).toBe(true);
      expect(sseExact.results.some((r) => !r.final)).toBe(true);
      const finals = new Set(sseExact.results.filter((r) => r.final).map((r) => id(r.window, r.metric, r.key, r.start)));
      const want = [...expected.keys()].filter((k) => k.includes('|gw_latency|a.b c/ü|'));
      expect(finals).toEqual(new Set(want));
    });

    it('the WebSocket subscriber (metric + key prefix, finals) received exactly its share', async () => {
      const want = [...expected.keys()].filter((k) => k.includes('|gw_temp|k'));
      await waitFor('ws finals', async () => (new Set(wsResults.map((r) => id(r.window, r.metric, r.key, r.start))).size >= want.length ? true : undefined), 10_000);
      expect(wsResults.every((r) => r.final && r.metric === 'gw_temp' && r.key.startsWith('k'))).toBe(true);
      expect(new Set(wsResults.map((r) => id(r.window, r.metric, r.key, r.start)))).toEqual(new Set(want));
    });

    it('/v1/latest (final) is the newest stored row of each window; /v1/top ranks like brute force', async () => {
      for (const metric of METRICS)
        for (const key of KEYS.slice(0, 4)) {
          const { body } = await getJson(`/v1/latest?metric=${metric}&key=${key}&final=true`, T.reader);
          const results = body.results as Result[];
          for (const w of WINDOWS) {
            const row = (await ctx.pool.query(`SELECT ts, count, sum, p99 FROM ${w.table} WHERE metric = $1 AND key = $2 ORDER BY ts DESC LIMIT 1`, [metric, key])).rows[0];
            const r = results.find((x) => x.window === w.name)!;
            expect([r.start, r.count, r.sum, r.p99]).toEqual([row.ts, row.count, row.sum, row.p99]);
          }
        }
      // Top keys by count in the newest fired 1m window, against brute force over the events.
      const { body } = await getJson('/v1/top?metric=gw_latency&window=1m&by=count&k=3&scope=final', T.reader);
      const start = body.start as number;
      const counts = KEYS.map((key) => ({ key, n: expected.get(id('1m', 'gw_latency', key, start))?.count ?? 0 }))
        .filter((x) => x.n > 0)
        .sort((a, b) => b.n - a.n || (a.key < b.key ? -1 : 1));
      expect((body.entries as Result[]).map((e) => [e.key, e.count])).toEqual(counts.slice(0, 3).map((c) => [c.key, c.n]));
      expect(body.candidates).toBe(counts.length);
      // Ascending by max: the smallest maxima first.
      const asc = await getJson('/v1/top?metric=gw_latency&window=1m&by=max&k=2&order=asc&scope=final', T.reader);
      const maxes = KEYS.map((key) => ({ key, v: expected.get(id('1m', 'gw_latency', key, start))?.max }))
        .filter((x) => x.v !== undefined)
        .sort((a, b) => a.v! - b.v! || (a.key < b.key ? -1 : 1));
      expect((asc.body.entries as Result[]).map((e) => e.key)).toEqual(maxes.slice(0, 2).map((m) => m.key));
    });

    it('/v1/percentiles merges stored sketches: a range of one window equals that row; a cached repeat is identical', async () => {
      const row = (await ctx.pool.query("SELECT ts, p50, p99, count FROM weir_agg_1m WHERE metric = 'gw_latency' AND key = 'k0' ORDER BY ts LIMIT 1")).rows[0];
      const q = `/v1/percentiles?metric=gw_latency&key=k0&window=1m&from=${row.ts}&to=${row.ts + 60_000}&q=0.5,0.99`;
      const a = await getJson(q, T.reader);
      expect(a.status).toBe(200);
      expect(a.body.count).toBe(row.count);
      expect((a.body.quantiles as { value: number }[]).map((x) => x.value)).toEqual([row.p50, row.p99]);
      const b = await getJson(q, T.reader);
      expect(b.body).toEqual(a.body);
      const m = await engine.metrics(T.admin);
      expect(m['weir_history_cache_requests_total{result="hit"}']).toBeGreaterThan(0);
    });

    it('POST /v1/events is all or nothing and names the bad event', async () => {
      const r = await fetch(`${http}/v1/events?metric=gw_bad`, {
        method: 'POST',
        headers: { authorization: `Bearer ${T.publisher}`, 'content-type': 'application/json' },
        body: JSON.stringify([{ key: 'x', value: 1 }, { key: 'y', value: '2' }]),
      });
      expect(r.status).toBe(400);
      const body = (await r.json()) as { param: string; message: string };
      expect(body.param).toBe('events[1]');
      expect(body.message).toMatch(/value must be a finite number/);
      const wrongType = await fetch(`${http}/v1/events?metric=gw_bad`, { method: 'POST', headers: { authorization: `Bearer ${T.publisher}`, 'content-type': 'text/plain' }, body: 'key=x' });
      expect(wrongType.status).toBe(415);
      const noMetric = await fetch(`${http}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${T.publisher}`, 'content-type': 'application/json' }, body: '{"key":"x","value":1}' });
      expect(noMetric.status).toBe(400);
      expect(((await noMetric.json()) as { param: string }).param).toBe('events[0].metric');
      // Nothing of the rejected requests reached the stream.
      const { body: top } = await getJson('/v1/catalog', T.reader);
      expect((top.metrics as { metric: string }[]).some((m) => m.metric === 'gw_bad')).toBe(false);
      // Idempotency-Key: the retry is stored once.
      const send = () =>
        fetch(`${http}/v1/events?metric=gw_idem`, { method: 'POST', headers: { authorization: `Bearer ${T.publisher}`, 'content-type': 'application/json', 'idempotency-key': 'req-42' }, body: '[{"key":"x","value":1}]' }).then((x) => x.json() as Promise<{ duplicate: boolean; lastSeq: number }>);
      const first = await send();
      const again = await send();
      expect(first.duplicate).toBe(false);
      expect(again.duplicate).toBe(true);
      expect(again.lastSeq).toBe(first.lastSeq);
    });
  });

  describe('scopes: each allowed and refused', () => {
    const routes: { scope: string; call: (token: string | null) => Promise<Response> }[] = [
      { scope: 'read', call: (t) => get('/v1/series?metric=gw_latency&key=k0', t) },
      { scope: 'read', call: (t) => get('/v1/latest?metric=gw_latency&key=k0', t) },
      { scope: 'read', call: (t) => get('/v1/top?metric=gw_latency', t) },
      { scope: 'read', call: (t) => get('/v1/percentiles?metric=gw_latency&key=k0', t) },
      { scope: 'read', call: (t) => get('/v1/catalog', t) },
      {
        scope: 'subscribe',
        call: async (t) => {
          const ctl = new AbortController();
          const r = await fetch(`${http}/v1/stream?metric=gw_latency`, { headers: t ? { authorization: `Bearer ${t}` } : {}, signal: ctl.signal });
          if (r.status === 200) {
            ctl.abort();
            return new Response('{}', { status: 200 });
          }
          return new Response(await r.text(), { status: r.status });
        },
      },
      { scope: 'publish', call: (t) => fetch(`${http}/v1/events?metric=gw_scope`, { method: 'POST', headers: { ...(t ? { authorization: `Bearer ${t}` } : {}), 'content-type': 'application/json' }, body: '{"key":"s","value":1}' }) },
      { scope: 'admin', call: (t) => get('/metrics', t) },
    ];
    const holder: Record<string, string> = { read: T.reader, subscribe: T.subscriber, publish: T.publisher, admin: T.admin };

    for (const [i, r] of routes.entries()) {
      it(`${r.scope} route #${i}: allowed with ${r.scope}, refused without`, async () => {
        const ok = await r.call(holder[r.scope]);
        expect(ok.status, await ok.clone().text().catch(() => '')).toBeLessThan(300);
        const admin = await r.call(T.admin);
        expect(admin.status).toBeLessThan(300);
        for (const [scope, token] of Object.entries(holder)) {
          if (scope === r.scope || scope === 'admin') continue;
          const refused = await r.call(token);
          expect(refused.status).toBe(403);
          expect(((await refused.json()) as { message: string }).message).toMatch(new RegExp(`lacks the "${r.scope}" scope`));
        }
        expect((await r.call(null)).status).toBe(401);
        expect((await r.call('not-a-token-at-all-xx')).status).toBe(401);
      });
    }

    it('access_token in the query works for clients without headers; open routes need no token', async () => {
      expect((await fetch(`${http}/v1/catalog?access_token=${T.reader}`)).status).toBe(200);
      expect((await fetch(`${http}/healthz`)).status).toBe(200);
      expect((await fetch(`${http}/readyz`)).status).toBe(200);
      expect((await fetch(`${http}/docs/json`)).status).toBe(200);
    });

    it('per-token rate limit: 429 with Retry-After past the burst', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await get('/v1/catalog', T.limited)).status);
      expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
      const last = await get('/v1/catalog', T.limited);
      expect(last.status).toBe(429);
      expect(Number(last.headers.get('retry-after'))).toBeGreaterThan(0);
      // Another token is not affected.
      expect((await get('/v1/catalog', T.reader)).status).toBe(200);
    });

    it('per-token subscription limit: the second concurrent subscription gets 429', async () => {
      const first = sse(`${http}/v1/stream?metric=gw_latency`, T.onesub);
      await first.ready;
      const second = await get('/v1/stream?metric=gw_latency', T.onesub);
      expect(second.status).toBe(429);
      expect(((await second.json()) as { message: string }).message).toMatch(/limit is 1/);
      first.close();
      // Released on disconnect.
      await waitFor('subscription released', async () => {
        const ctl = new AbortController();
        const r = await fetch(`${http}/v1/stream?metric=gw_latency`, { headers: { authorization: `Bearer ${T.onesub}` }, signal: ctl.signal });
        ctl.abort();
        return r.status === 200 ? true : undefined;
      }, 10_000);
    });
  });

  describe('bad queries: 400 naming the parameter', () => {
    const cases: [string, string][] = [
      ['/v1/series?key=k0', 'metric'],
      ['/v1/series?metric=gw_latency&key=k0&window=5h', 'window'],
      ['/v1/series?metric=gw_latency&key=k0&from=2026-01-02&to=2026-01-01', 'from'],
      ['/v1/series?metric=gw_latency&key=k0&from=yesterday', 'from'],
      ['/v1/series?metric=gw_latency&key=k0&from=0&to=9999999999999', 'from'],
      ['/v1/series?metric=gw.latency&key=k0', 'metric'],
      ['/v1/series?metric=gw_latency&key=k0&bogus=1', 'bogus'],
      ['/v1/percentiles?metric=gw_latency&key=k0&q=0.5,2', 'q'],
      ['/v1/percentiles?metric=gw_latency&key=k0&q=abc', 'q'],
      ['/v1/latest?metric=gw_latency', 'key'],
      ['/v1/latest?metric=gw_latency&key=k0&window=7s', 'window'],
      ['/v1/top?metric=gw_latency&k=0', 'k'],
      ['/v1/top?metric=gw_latency&k=100000', 'k'],
      ['/v1/top?metric=gw_latency&by=median', 'by'],
      ['/v1/top?metric=gw_latency&scope=yesterday', 'scope'],
      ['/v1/stream?metric=gw_latency&key=a&keyPrefix=b', 'keyPrefix'],
      ['/v1/stream?window=3m', 'window'],
    ];
    for (const [path, param] of cases) {
      it(`${path} -> 400 naming ${param}`, async () => {
        const { status, body } = await getJson(path);
        expect(status, JSON.stringify(body)).toBe(400);
        expect(body.param).toBe(param);
        expect(body.error).toBe('bad_request');
        expect(typeof body.message).toBe('string');
      });
    }
  });
});
