/**
 * Hostile HTTP requests against the whole gateway (buildGateway: every route, schema, hook and the
 * error handler, the real WeirService and Auth), with stand-ins for QuestDB, NATS and JetStream
 * that always answer (issue 5, "Bad input"). Since nothing behind the gateway fails here, a 5xx is
 * always the gateway's own fault: the property is that no request, however malformed, gets one,
 * and that every 4xx is the JSON error {error, param, message} naming what is at fault. The same
 * requests go to the real stack in test/hostile.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import client from 'prom-client';
import type { FastifyInstance } from 'fastify';
import { parseConfig } from '../engine/config.js';
import { buildGateway } from './app.js';
import { Auth } from './auth.js';
import { GatewayMetrics } from './metrics.js';
import { standInPool, standInRequest } from './testing/stand-ins.js';
import { WeirService, type ServiceDeps } from './service.js';
import { expectGoodAnswer as expectShared, GET_ROUTES, namesOf, queryString, REQUIRED, type Answer } from './testing/hostile-http.js';

const silentLog = { warn() {}, info() {}, error() {}, debug() {}, fatal() {}, trace() {}, child: () => silentLog, level: 'silent' };

/** Every parameter the service gave QuestDB: checked to be something QuestDB can take. */
const sqlParams: unknown[] = [];
let published = 0;

async function gateway(): Promise<FastifyInstance> {
  const config = parseConfig({});
  const pool = standInPool(sqlParams);
  const nc = {
    isClosed: () => false,
    status: () => ({ async *[Symbol.asyncIterator]() {} }),
    subscribe: () => ({ unsubscribe() {} }),
    request: standInRequest,
  };
  const js = { publish: async () => ({ seq: ++published, duplicate: false, stream: 'WEIR_EVENTS' }) };
  const registry = new client.Registry();
  const metrics = new GatewayMetrics(registry);
  const service = new WeirService({ config, pool, nc, js, log: silentLog } as unknown as ServiceDeps);
  const app = await buildGateway({ config, pool: pool as never, registry, service, auth: new Auth(config), metrics, nc: nc as never });
  await app.ready();
  return app;
}

// ---- what every answer must satisfy ----------------------------------------------------------

/** The shared check, and that no invalid Date went to QuestDB. */
function expectGoodAnswer(what: string, res: Answer, allowed: (param: string) => boolean) {
  const params = sqlParams.splice(0);
  for (const p of params) if (p instanceof Date) expect(Number.isNaN(p.getTime()), `${what}: an invalid Date went to QuestDB`).toBe(false);
  expectShared(what, res, allowed);
}

// ---- tests -------------------------------------------------------------------------------------

describe('gateway HTTP fuzz (stand-in backends that always answer)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await gateway();
  });
  afterAll(() => app?.close());

  it('GET routes with arbitrary query strings: never a 5xx; a 4xx is JSON naming a parameter of the request or a required one', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...GET_ROUTES), queryString, async (route, q) => {
        const res = await app.inject({ method: 'GET', url: `${route}?${q.text}` });
        const names = namesOf(q.pairs);
        expectGoodAnswer(`GET ${route}?${q.text.slice(0, 300)}`, res, (p) => names.has(p) || REQUIRED[route].includes(p));
      }),
      { numRuns: 2000 },
    );
  });

  it('a malformed value of a known parameter is a 400 naming that parameter', async () => {
    const cases: [string, string][] = [
      ['/v1/series?metric=cpu&key=k&from=yesterday', 'from'],
      ['/v1/series?metric=cpu&key=k&to=1e400', 'to'],
      ['/v1/series?metric=cpu&key=k&from=-8640000000000001&to=-8640000000000000', 'from'],
      ['/v1/series?metric=cpu&key=k&from=1&to=8640000000000001', 'to'],
      // no from: the default hour before the earliest time there is (a sweep of the gRPC fuzz sent QuestDB an Invalid Date)
      ['/v1/series?metric=cpu&key=k&to=-8640000000000000', 'to'],
      ['/v1/percentiles?metric=cpu&key=k&to=-8640000000000000', 'to'],
      ['/v1/series?metric=cpu&key=k&from=-9007199254740991&to=0', 'from'],
      ['/v1/series?metric=cpu&key=k&from=2026-02-30T00:00:00Z', 'from'],
      ['/v1/series?metric=cpu&key=k&window=5m', 'window'],
      ['/v1/series?metric=cpu&key=k&limit=0', 'limit'],
      ['/v1/series?metric=cpu&key=k&limit=50001', 'limit'],
      ['/v1/series?metric=a.b&key=k', 'metric'],
      ['/v1/series?metric=cpu&key=a%00b', 'key'],
      ['/v1/series?metric=cpu&key=a%07b', 'key'],
      ['/v1/series?metric=cpu&key=' + 'x'.repeat(257), 'key'],
      ['/v1/series?metric=cpu', 'key'],
      ['/v1/series?metric=cpu&key=k&bogus=1', 'bogus'],
      ['/v1/series?metric=cpu&key=k&key=j', 'key'],
      ['/v1/percentiles?metric=cpu&key=k&q=0.5,2', 'q'],
      ['/v1/percentiles?metric=cpu&key=k&q=NaN', 'q'],
      ['/v1/percentiles?metric=cpu&key=k&q=' + Array(40).fill('0.5').join(','), 'q'],
      ['/v1/latest?metric=cpu', 'key'],
      ['/v1/latest?metric=cpu&key=a%00', 'key'],
      ['/v1/top?metric=cpu&k=0', 'k'],
      ['/v1/top?metric=cpu&k=1001', 'k'],
      ['/v1/top?metric=cpu&k=1e4', 'k'],
      ['/v1/top?metric=cpu&by=DROP', 'by'],
      ['/v1/top?metric=cpu&order=sideways', 'order'],
      ['/v1/top?metric=cpu&scope=all', 'scope'],
      ['/v1/top?metric=%F0%9F%98%80', 'metric'],
      ['/v1/catalog?pipeline=..%2Fetc', 'pipeline'],
      ['/v1/stream?metric=cpu&key=a&keyPrefix=b', 'keyPrefix'],
      ['/v1/stream?window=5m', 'window'],
      ['/v1/stream?metric=a%20b', 'metric'],
    ];
    for (const [url, param] of cases) {
      const res = await app.inject({ method: 'GET', url });
      expectGoodAnswer(url, res, () => true);
      expect(res.statusCode, `${url}: ${res.body}`).toBe(400);
      expect(JSON.parse(res.body).param, `${url}: ${res.body}`).toBe(param);
    }
  });

  it('a to less than an hour after the earliest time, with no from: the range starts at the earliest time (no Invalid Date reaches QuestDB)', async () => {
    for (const url of ['/v1/series?metric=cpu&key=k&to=-8639999999000000', '/v1/percentiles?metric=cpu&key=k&to=-8639999999999999']) {
      const res = await app.inject({ method: 'GET', url });
      expectGoodAnswer(url, res, () => true);
      expect(res.statusCode, `${url}: ${res.body}`).toBe(200);
      expect(JSON.parse(res.body).from, url).toBe(-8_640_000_000_000_000);
    }
  });

  it('a pipeline no engine serves and that never ran is a 404 naming pipeline, not a 503', async () => {
    for (const url of ['/v1/catalog?pipeline=NaN', '/v1/latest?pipeline=nosuch&key=k', '/v1/top?pipeline=nosuch&window=1d&by=x', '/v1/series?pipeline=nosuch&key=k']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, `${url}: ${res.body}`).toBe(404);
      expect(JSON.parse(res.body).param).toBe('pipeline');
    }
    expect((await app.inject({ method: 'GET', url: '/v1/catalog?pipeline=tutors' })).statusCode).toBe(200);
  });

  // ---- POST /v1/events ----

  const goodEvent = { key: 'k', value: 1 };
  const allowedPublishParam = (p: string) => ['content-type', 'body', 'metric', 'events', 'idempotency-key', 'idempotencyKey'].includes(p) || /^events\[\d+\](\.(metric|key|value|ts|tags|id))?$/.test(p) || /^body(\.|$)/.test(p);

  it('POST /v1/events with wrong content types: 415 naming content-type; JSON with a charset or a +json type is taken', async () => {
    const body = JSON.stringify([goodEvent]);
    for (const ct of ['text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/octet-stream', 'image/png', 'text/json', 'application/jsonx', '*/*', 'garbage', 'application/json\u0000']) {
      const res = await app.inject({ method: 'POST', url: '/v1/events?metric=cpu', headers: { 'content-type': ct }, payload: body });
      expectGoodAnswer(`content-type ${JSON.stringify(ct)}`, res, allowedPublishParam);
      expect(res.statusCode, `${ct}: ${res.body}`).toBe(415);
      expect(JSON.parse(res.body).param).toBe('content-type');
    }
    for (const ct of ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON']) {
      const res = await app.inject({ method: 'POST', url: '/v1/events?metric=cpu', headers: { 'content-type': ct }, payload: body });
      expect(res.statusCode, `${ct}: ${res.body}`).toBe(202);
    }
    const none = await app.inject({ method: 'POST', url: '/v1/events?metric=cpu', payload: Buffer.from(body) });
    expectGoodAnswer('no content type', none, allowedPublishParam);
    expect(none.statusCode).toBeGreaterThanOrEqual(400);
  });

  it('POST /v1/events: bodies over the limit (413), deeply nested (400 naming the event), not JSON (400), with NaN and numbers as strings (400 naming the event and field)', async () => {
    const post = (payload: string | Buffer, url = '/v1/events?metric=cpu') => app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload });
    const cases: { what: string; payload: string | Buffer; status: number; param?: string | RegExp; message?: RegExp }[] = [
      { what: 'over maxPayloadBytes', payload: JSON.stringify([{ key: 'k', value: 1, id: 'x'.repeat(1_048_576) }]), status: 413, param: 'body' },
      { what: 'nested 100,000 deep as the whole body', payload: '['.repeat(100_000) + ']'.repeat(100_000), status: 400 },
      { what: 'nested 100,000 deep in a tag', payload: `[{"key":"k","value":1,"tags":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}]`, status: 400, param: 'events[0]', message: /tags/ },
      { what: 'nested 100,000 deep in the key', payload: `[{"key":${'['.repeat(100_000)}${']'.repeat(100_000)},"value":1}]`, status: 400, param: 'events[0]', message: /key/ },
      { what: 'nested 100,000 deep in the id', payload: `{"key":"k","value":1,"id":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, status: 400, param: 'events[0]', message: /id/ },
      { what: 'NaN', payload: '[{"key":"k","value":NaN}]', status: 400, param: 'body' },
      { what: 'Infinity as 1e400', payload: '[{"key":"k","value":1e400}]', status: 400, param: 'events[0]', message: /value must be a finite number, got Infinity/ },
      { what: 'value "12"', payload: '[{"key":"k","value":1},{"key":"k","value":"12"}]', status: 400, param: 'events[1]', message: /value must be a finite number, got string "12"/ },
      { what: 'ts "12"', payload: '[{"key":"k","value":1,"ts":"12"}]', status: 400, param: 'events[0]', message: /ts must be ISO-8601/ },
      { what: 'ts in 9999', payload: '[{"key":"k","value":1,"ts":"9999-12-31T23:59:59Z"}]', status: 400, param: 'events[0]', message: /future/ },
      { what: 'NUL in a key', payload: '[{"key":"a\\u0000b","value":1}]', status: 400, param: 'events[0]', message: /control character/ },
      { what: 'NUL in a metric', payload: '[{"key":"k","value":1,"metric":"a\\u0000"}]', status: 400, param: 'events[0].metric' },
      { what: 'unicode metric', payload: '[{"key":"k","value":1,"metric":"cpü"}]', status: 400, param: 'events[0].metric' },
      { what: 'bad ?metric', payload: '[{"key":"k","value":1}]', status: 400, param: 'metric' },
      { what: 'not JSON', payload: '{"key":', status: 400, param: 'body' },
      { what: 'empty body', payload: '', status: 400 },
      { what: 'empty array', payload: '[]', status: 400, param: 'events' },
      { what: 'a number', payload: '42', status: 400 },
      { what: 'invalid UTF-8', payload: Buffer.from([0x5b, 0x7b, 0x22, 0x6b, 0x65, 0x79, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x2c, 0x22, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x22, 0x3a, 0x31, 0x7d, 0x5d]), status: 400, param: 'body', message: /UTF-8/ },
      { what: '10,001 events', payload: JSON.stringify(Array.from({ length: 10_001 }, () => goodEvent)), status: 400, param: 'events' },
    ];
    for (const c of cases) {
      const res = await post(c.payload, c.what === 'bad ?metric' ? '/v1/events?metric=a.b' : undefined);
      expectGoodAnswer(c.what, res, allowedPublishParam);
      expect(res.statusCode, `${c.what}: ${res.body.slice(0, 300)}`).toBe(c.status);
      const body = JSON.parse(res.body);
      if (c.param !== undefined) expect(body.param, `${c.what}: ${res.body.slice(0, 300)}`).toEqual(c.param);
      if (c.message) expect(body.message, c.what).toMatch(c.message);
      expect(res.body.length, `${c.what}: the error is short`).toBeLessThan(4096);
    }
  });

  it('POST /v1/events with arbitrary bodies and content types: never a 5xx; 4xx names the parameter', async () => {
    const body = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null'),
      fc.array(fc.record({ key: fc.oneof(fc.string(), fc.jsonValue({ maxDepth: 2 })), value: fc.oneof(fc.double(), fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })), ts: fc.oneof(fc.integer(), fc.string({ maxLength: 25 }), fc.constant(undefined)), metric: fc.oneof(fc.constant(undefined), fc.string({ maxLength: 5 })) }, { requiredKeys: [] }), { maxLength: 5 }).map((v) => JSON.stringify(v)),
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
      fc.integer({ min: 1_000, max: 60_000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
      fc.integer({ min: 1_000, max: 60_000 }).map((d) => `{"key":"k","value":1,"tags":${'{"a":'.repeat(d)}1${'}'.repeat(d)}}`),
    );
    const ct = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', undefined);
    await fc.assert(
      fc.asyncProperty(body, ct, fc.constantFrom('', '?metric=cpu', '?metric=a.b', '?metric=%00', '?bogus=1'), async (payload, contentType, q) => {
        const res = await app.inject({ method: 'POST', url: `/v1/events${q}`, headers: contentType ? { 'content-type': contentType } : {}, payload });
        expectGoodAnswer(`POST ${q} ${contentType} ${payload.slice(0, 120)}`, res, (p) => allowedPublishParam(p) || p === 'bogus');
      }),
      { numRuns: 400 },
    );
  });

  it('the other routes and methods: unknown paths are a JSON 404, wrong methods 404/405, never a 5xx', async () => {
    for (const [method, url] of [
      ['GET', '/v1/nope'],
      ['DELETE', '/v1/events'],
      ['PUT', '/v1/series?metric=cpu&key=k'],
      ['POST', '/v1/series'],
      ['GET', '/v1/events'],
      ['GET', '/%FF'],
      ['GET', '/v1/series/%00'],
      ['GET', '/healthz?x=%00'],
      ['GET', '/docs/json'],
    ] as const) {
      const res = await app.inject({ method, url });
      expect(res.statusCode, `${method} ${url}: ${res.body.slice(0, 200)}`).toBeLessThan(500);
    }
  });
});
