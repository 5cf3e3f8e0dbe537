/**
 * Hostile gRPC calls against the real gRPC server (startGrpcServer: the proto, every handler, the
 * status mapping, the real WeirService and Auth), through a real @grpc/grpc-js client loaded from
 * proto/weir/v1/weir.proto with the server's loader options, with stand-ins for QuestDB, NATS and
 * JetStream that always answer: the gRPC twin of gateway/http.fuzz.test.ts. Since nothing behind
 * the gateway fails here, INTERNAL, UNKNOWN or UNAVAILABLE is always the gateway's own fault: the
 * property is that no call, however malformed, gets one; that every other non-OK status is one of
 * the ApiError mappings (errors.ts GRPC_CODE) with `weir-error` saying which; that an
 * INVALID_ARGUMENT names a field of the request (or a required one) in `weir-param` and its
 * details start with it; and that the server still serves afterwards.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import client from 'prom-client';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import type { Logger } from 'pino';
import { parseConfig } from '../engine/config.js';
import { keyToken } from '../engine/subjects.js';
import { Auth } from './auth.js';
import { GRPC_CODE } from './errors.js';
import { PROTO_LOADER_OPTIONS, startGrpcServer, weirProtoPath } from './grpc.js';
import { GatewayMetrics } from './metrics.js';
import { standInPool, standInRequest } from './testing/stand-ins.js';
import { WeirService, type ServiceDeps } from './service.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

// ---- the server, with stand-in backends that always answer -----------------------------------

/** What the gateway logged at error level (toStatus logs every error it answers INTERNAL). */
const logged: unknown[] = [];
const log = { warn() {}, info() {}, debug() {}, trace() {}, fatal: (...a: unknown[]) => logged.push(a), error: (...a: unknown[]) => logged.push(a), child: () => log, level: 'silent' };

/** Every parameter the service gave QuestDB: checked to be something QuestDB can take. */
const sqlParams: unknown[] = [];
let published = 0;

/** The gateway's default max receive size (grpc-js's: startGrpcServer sets none). */
const MAX_RECEIVE = 4 * 1024 * 1024;

async function server() {
  const config = parseConfig({});
  const pool = standInPool(sqlParams);
  const nc = {
    isClosed: () => false,
    status: () => ({ async *[Symbol.asyncIterator]() {} }),
    // A results subscription gets one result at once (metric * as "cpu", key * as "k"), so a
    // subscriber whose filter takes it sees a first answer.
    subscribe: (subject: string, opts?: { callback?: (err: unknown, msg: unknown) => void }) => {
      let open = true;
      const m = /^weir\.results\.([^.]+)\.([^.]+)\.([^.]+)$/.exec(subject);
      if (m && opts?.callback) {
        const [, pipeline, metric, token] = m;
        const concrete = `weir.results.${pipeline}.${metric === '*' ? 'cpu' : metric}.${token === '*' ? keyToken('k') : token}`;
        const result = { pipeline, metric: metric === '*' ? 'cpu' : metric, key: 'k', window: '10s', start: 1_767_225_600_000, end: 1_767_225_610_000, final: true, revision: 0, count: 2, rate: 0.2, sum: 3, min: 1, max: 2, mean: 1.5, stddev: 0.7, p50: 1, p90: 2, p95: 2, p99: 2, p999: 2, emittedAt: 1_767_225_610_001 };
        setImmediate(() => open && opts.callback!(null, { subject: concrete, string: () => JSON.stringify(result) }));
      }
      return { unsubscribe: () => void (open = false) };
    },
    request: standInRequest,
  };
  const js = { publish: async () => ({ seq: ++published, duplicate: false, stream: 'WEIR_EVENTS' }) };
  const metrics = new GatewayMetrics(new client.Registry());
  const service = new WeirService({ config, pool, nc, js, log } as unknown as ServiceDeps);
  const srv = await startGrpcServer({ config, service, auth: new Auth(config), metrics, log: log as unknown as Logger, ready: async () => true, port: 0 });
  return { srv, service };
}

// ---- the client ------------------------------------------------------------------------------

const pkg = protoLoader.loadSync(weirProtoPath(), PROTO_LOADER_OPTIONS);
const Weir = (grpc.loadPackageDefinition(pkg) as unknown as { weir: { v1: { Weir: grpc.ServiceClientConstructor } } }).weir.v1.Weir;
const UNARY = ['Publish', 'QuerySeries', 'Percentiles', 'Latest', 'TopK', 'Catalog'] as const;
type Unary = (typeof UNARY)[number];
type Rpc = Unary | 'Subscribe';

interface Outcome {
  code: number;
  details: string;
  metadata: grpc.Metadata;
  response?: Obj;
}

/** Fields of each request message (snake_case, as the proto names them). */
const FIELDS: Record<Rpc, string[]> = Object.fromEntries(
  ([...UNARY, 'Subscribe'] as Rpc[]).map((m) => {
    const def = (pkg['weir.v1.Weir'] as protoLoader.ServiceDefinition)[m];
    const type = (def.requestType as unknown as { type: { field: { name: string }[] } }).type;
    return [m, type.field.map((f) => f.name)];
  }),
) as Record<Rpc, string[]>;

/** Fields a call may need although the request left them unset (so an error may name one). */
const REQUIRED: Record<Rpc, string[]> = {
  Publish: ['events'],
  QuerySeries: ['metric', 'key'],
  Percentiles: ['metric', 'key'],
  Latest: ['metric', 'key'],
  TopK: ['metric', 'window', 'by'],
  Catalog: [],
  Subscribe: [],
};

const isSet = (v: unknown) => v !== undefined && v !== null && v !== '' && v !== 0 && v !== false && !(Array.isArray(v) && v.length === 0);

/** The params an INVALID_ARGUMENT of this request may name: a field it sets, a required one, or (Publish) one of its events. */
function allowedParams(rpc: Rpc, req: Obj): (param: string) => boolean {
  return (p) => {
    if (REQUIRED[rpc].includes(p)) return true;
    if (FIELDS[rpc].includes(p)) return isSet(req[p]);
    const ev = /^events\[(\d+)\](?:\.(metric|key|value|ts|tags|id))?$/.exec(p);
    return rpc === 'Publish' && ev !== null && Number(ev[1]) < (req.events?.length ?? 0);
  };
}

/** The details of an INVALID_ARGUMENT for request bytes that do not decode as the method's message (no field to name). */
const UNDECODABLE_RE = /^the request is not a valid weir\.v1\.\w+ message \(protobuf: .+\)$/;

/** grpc-js turns a request too large for the server into this status (no weir-error: grpc-js answers it). */
const isOversize = (o: Outcome) => o.code === grpc.status.RESOURCE_EXHAUSTED && /larger than max/.test(o.details);

/**
 * The check every answer must pass. OK, or an ApiError's status: the code is GRPC_CODE of its
 * `weir-error`, never INTERNAL, UNKNOWN or UNAVAILABLE (the backends answer); an INVALID_ARGUMENT
 * names a field `allowed` accepts in `weir-param`, and its details start with it.
 */
function expectGoodOutcome(what: string, o: Outcome, allowed: (param: string) => boolean) {
  const at = `${what}: ${grpc.status[o.code]} ${o.details.slice(0, 300)}`;
  const invalidDates = sqlParams.splice(0).filter((p) => p instanceof Date && Number.isNaN(p.getTime()));
  expect(invalidDates, `${at}: an invalid Date went to QuestDB`).toEqual([]);
  expect(logged.splice(0), `${at}: the gateway logged an error`).toEqual([]);
  expect([grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED], at).not.toContain(o.code);
  if (o.code === grpc.status.OK) return;
  expect(o.details.length, at).toBeGreaterThan(0);
  if (isOversize(o)) return;
  const kind = String(o.metadata.get('weir-error')[0] ?? '');
  expect(Object.keys(GRPC_CODE), `${at}: weir-error "${kind}"`).toContain(kind);
  expect(GRPC_CODE[kind as keyof typeof GRPC_CODE], at).toBe(o.code);
  if (o.code !== grpc.status.INVALID_ARGUMENT) return;
  const params = o.metadata.get('weir-param').map(String);
  if (params.length === 0 && UNDECODABLE_RE.test(o.details)) return;
  expect(params.length, `${at}: weir-param`).toBe(1);
  expect(allowed(params[0]), `${at}: weir-param "${params[0]}" is no field of the request`).toBe(true);
  expect(o.details.startsWith(`${params[0]}:`), `${at}: details start with the param`).toBe(true);
}

// ---- hostile values --------------------------------------------------------------------------

const LONG = 'y'.repeat(70_000);
const hostileString = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('', 'cpu', 'k', 'svc-a', '10s', '1m', '1d', 'tutors', 'default', 'count', 'score', 'desc', 'asc', 'current', 'final', '0', '1', '-1', 'true') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      ' ', '\u0000', 'a\u0000b', '\u0007', '\u007f', '\u0085', '\u202e', '\ufeff', '\ud800', 'a\udc00', '😀', 'cpü', 'Проц', 'a.b', 'a b', '*', '>', '..', '../etc', 'weir.results.>', "'; DROP TABLE weir_agg_10s; --", '"', '\\', '\n', '\r\n',
      'NaN', 'Infinity', '1e400', '0x10', '9223372036854775807', '-9223372036854775808', '8640000000000000', '-8640000000000000', '8640000000000001', '2026-02-30T00:00:00Z', '9999-12-31T23:59:59Z', '+275760-09-13T00:00:00Z', '1970-01-01T00:00:00Z', 'yesterday',
    ),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }) },
  { weight: 1, arbitrary: fc.integer({ min: 250, max: 300 }).map((n) => 'x'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 10_000, max: 70_000 }).map((n) => LONG.slice(0, n)) },
);
/** Mostly a good value (so calls get past the first check and reach the later ones), sometimes a hostile one. */
const mostly = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>) => fc.oneof({ weight: 5, arbitrary: good }, { weight: 1, arbitrary: bad });
const str = (good: string[], bad: string[] = []) => mostly(fc.constantFrom(...good), bad.length ? fc.oneof(fc.constantFrom(...bad), hostileString) : hostileString);
const pipeline = str(['', 'default', 'tutors'], ['nosuch', 'NaN', 'a-b_c']);
const window = str(['', '10s', '1m'], ['1d', '5m', 'session', 'global']);
const time = str(['', '0', '1', '1767225600000', '1767229200000', '2026-01-01T00:00:00Z', '2026-01-01T00:30:00.5Z'], ['-8640000000000000', '8640000000000000', '-9007199254740991', '9223372036854775807']);
const int32 = mostly(fc.integer({ min: 0, max: 1000 }), fc.oneof(fc.constantFrom(-1, 1001, 50_000, 50_001, 2 ** 31 - 1, -(2 ** 31)), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })));
const double = fc.oneof(fc.constantFrom(NaN, Infinity, -Infinity, -0, 0, 0.5, 1, 1 + Number.EPSILON, 5e-324, -5e-324, Number.MAX_VALUE, -Number.MAX_VALUE), fc.double());
/** int64 as the client takes them: numbers (rounded past 2^53) and exact decimal strings up to ±2^63. */
const int64 = fc.oneof(
  fc.constantFrom<number | string>('9223372036854775807', '-9223372036854775808', 0, -1, 8.64e15, -8.64e15, 8.64e15 + 1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
  fc.integer(),
);
const tags = mostly<Record<string, string>>(
  fc.dictionary(fc.stringMatching(/^[a-z]{1,8}$/), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
  fc.oneof(
    fc.dictionary(hostileString, hostileString, { maxKeys: 5 }),
    fc.integer({ min: 33, max: 2_000 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, 'v']))),
  ),
);
const event = fc.record(
  {
    metric: str(['', 'cpu', 'mem']),
    key: str(['k', 'svc-a', 'ключ', '😀 key']),
    value: mostly<number | null>(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.oneof(double, fc.constant(null))),
    ts: mostly<number | string>(fc.integer({ min: 1_767_225_600_000, max: 1_767_312_000_000 }), int64),
    tags,
    id: str(['', 'e1']),
  },
  { requiredKeys: ['key', 'value'] },
);
const opt = { requiredKeys: [] as never[] };

const REQUESTS: Record<Rpc, fc.Arbitrary<Obj>> = {
  Publish: fc.record({ events: mostly(fc.array(event, { minLength: 1, maxLength: 5 }), fc.constant([] as Obj[])), metric: str(['', 'cpu']), idempotency_key: str(['', 'abc', 'a:b.c-d_e', 'x'.repeat(128)], ['x'.repeat(129)]) }, opt),
  QuerySeries: fc.record({ metric: str(['cpu']), key: str(['k', 'ключ']), window, from: time, to: time, limit: int32, pipeline }, opt),
  Percentiles: fc.record({ metric: str(['cpu']), key: str(['k']), window, from: time, to: time, q: mostly(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }), fc.array(double, { maxLength: 40 })) }, opt),
  Latest: fc.record({ pipeline, metric: str(['cpu']), key: str(['k']), window, final: fc.boolean() }, opt),
  TopK: fc.record({ pipeline, metric: str(['cpu']), window, by: str(['', 'count', 'p99', 'score'], ['DROP', 'nosuch']), k: int32, order: str(['', 'asc', 'desc'], ['sideways']), scope: str(['', 'current', 'final'], ['all']) }, opt),
  Catalog: fc.record({ pipeline }, opt),
  Subscribe: fc.record({ pipeline, metric: str(['', 'cpu']), key: str(['', 'k']), key_prefix: str(['', 'k', 'x']), window, final_only: fc.boolean() }, opt),
};

/** A short description of a request for failure messages (long strings cut). */
const show = (req: Obj) => JSON.stringify(req, (_k, v) => (typeof v === 'string' && v.length > 80 ? `${v.slice(0, 40)}…(${v.length})` : typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)).slice(0, 600);

// ---- tests -------------------------------------------------------------------------------------

describe('gateway gRPC fuzz (stand-in backends that always answer)', () => {
  let srv: Awaited<ReturnType<typeof server>>['srv'];
  let service: WeirService;
  let weir: grpc.Client & Record<string, (...a: unknown[]) => unknown>;
  let raw: grpc.Client;
  let addr: string;

  beforeAll(async () => {
    ({ srv, service } = await server());
    addr = `127.0.0.1:${srv.port}`;
    weir = new Weir(addr, grpc.credentials.createInsecure()) as never;
    raw = new grpc.Client(addr, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    weir?.close();
    raw?.close();
    await srv?.close();
  });
  // The server keeps serving after each batch of hostile calls: a good call of each kind succeeds.
  afterEach(async () => {
    const cat = await call('Catalog', {});
    expect([cat.code, cat.response?.pipeline], cat.details).toEqual([grpc.status.OK, 'default']);
    const pub = await call('Publish', { events: [{ key: 'k', value: 1 }], metric: 'cpu' });
    expect([pub.code, pub.response?.accepted], pub.details).toEqual([grpc.status.OK, 1]);
    const sub = await subscribe({ metric: 'cpu' });
    expect(sub.code, sub.details).toBe(grpc.status.OK);
    expect(sub.first).toMatchObject({ pipeline: 'default', metric: 'cpu', key: 'k', window: '10s', final: true, count: 2 });
    // The server ends a subscription when the cancel reaches it: wait for that (bounded).
    for (let i = 0; i < 200 && service.activeSubscriptions > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(service.activeSubscriptions, 'every subscription ended').toBe(0);
    sqlParams.length = 0;
    expect(logged.splice(0)).toEqual([]);
  });

  function call(rpc: Unary, req: Obj, md = new grpc.Metadata()): Promise<Outcome> {
    return new Promise((resolve) => {
      weir[rpc](req, md, { deadline: Date.now() + 15_000 }, (err: grpc.ServiceError | null, res: Obj) => {
        if (err) resolve({ code: err.code, details: err.details ?? '', metadata: err.metadata ?? new grpc.Metadata() });
        else resolve({ code: grpc.status.OK, details: '', metadata: new grpc.Metadata(), response: res });
      });
    });
  }

  /** Opens Subscribe and cancels it after its first answer: a result, an error, or (a filter the stand-in's result misses) headers and 25 ms of nothing. */
  function subscribe(req: Obj): Promise<Outcome & { first?: Obj }> {
    return new Promise((resolve) => {
      const stream = weir.Subscribe(req, { deadline: Date.now() + 15_000 }) as grpc.ClientReadableStream<Obj>;
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const done = (o: Outcome & { first?: Obj }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stream.cancel();
        resolve(o);
      };
      stream.on('data', (first: Obj) => done({ code: grpc.status.OK, details: '', metadata: new grpc.Metadata(), first }));
      stream.on('metadata', () => (timer = setTimeout(() => done({ code: grpc.status.OK, details: '', metadata: new grpc.Metadata() }), 25)));
      stream.on('error', (err: grpc.ServiceError) => done({ code: err.code, details: err.details ?? '', metadata: err.metadata ?? new grpc.Metadata() }));
    });
  }

  /** Sends `bytes` as the request message of `rpc` (Subscribe: cancelled after its first answer, as in subscribe()). */
  function rawCall(rpc: Rpc, bytes: Buffer): Promise<Outcome> {
    const id = (b: Buffer) => b;
    return new Promise((resolve) => {
      let settled = false;
      const end = (err: grpc.ServiceError | null) => {
        if (settled) return;
        settled = true;
        resolve(err ? { code: err.code, details: err.details ?? '', metadata: err.metadata ?? new grpc.Metadata() } : { code: grpc.status.OK, details: '', metadata: new grpc.Metadata() });
      };
      const path = `/weir.v1.Weir/${rpc}`;
      const options = { deadline: Date.now() + 15_000 };
      if (rpc !== 'Subscribe') return void raw.makeUnaryRequest(path, id, id, bytes, new grpc.Metadata(), options, end);
      const stream = raw.makeServerStreamRequest(path, id, id, bytes, new grpc.Metadata(), options);
      const finish = (err: grpc.ServiceError | null) => {
        end(err);
        stream.cancel();
      };
      stream.on('data', () => finish(null));
      stream.on('metadata', () => setTimeout(() => finish(null), 25));
      stream.on('error', finish);
    });
  }

  for (const rpc of UNARY) {
    it(`${rpc} with arbitrary requests: never INTERNAL, UNKNOWN or UNAVAILABLE; an INVALID_ARGUMENT names a field of the request`, async () => {
      await fc.assert(
        fc.asyncProperty(REQUESTS[rpc], async (req) => {
          const o = await call(rpc, req);
          expectGoodOutcome(`${rpc} ${show(req)}`, o, allowedParams(rpc, req));
        }),
        { numRuns: rpc === 'Publish' ? 400 : 250, seed: 20_260_101 },
      );
    });
  }

  it('Subscribe with arbitrary filters, cancelled after the first answer: the same, and every subscription is released', async () => {
    await fc.assert(
      fc.asyncProperty(REQUESTS.Subscribe, async (req) => {
        const o = await subscribe(req);
        expectGoodOutcome(`Subscribe ${show(req)}`, o, allowedParams('Subscribe', req));
        if (o.first) expect(o.first.pipeline, show(req)).toBe(req.pipeline || 'default');
      }),
      { numRuns: 200, seed: 20_260_101 },
    );
  });

  it('request bytes that are not the message (random, or a request truncated, with a byte changed or bytes appended): never INTERNAL or UNKNOWN', async () => {
    const weirDef = pkg['weir.v1.Weir'] as protoLoader.ServiceDefinition;
    const bytes = (rpc: Rpc) =>
      fc.oneof(
        fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
        fc.tuple(REQUESTS[rpc], fc.nat(), fc.nat(255), fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.constantFrom('truncate', 'change', 'append')).map(([req, at, byte, tail, how]) => {
          const b = Buffer.from(weirDef[rpc].requestSerialize(req));
          if (how === 'append') return Buffer.concat([b, tail]);
          if (b.length === 0) return Buffer.from(tail);
          if (how === 'truncate') return b.subarray(0, at % b.length);
          b[at % b.length] = byte;
          return b;
        }),
      );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Rpc>(...UNARY, 'Subscribe').chain((rpc) => fc.tuple(fc.constant(rpc), bytes(rpc))),
        async ([rpc, b]) => {
          const o = await rawCall(rpc, b);
          expectGoodOutcome(`${rpc} bytes ${b.subarray(0, 200).toString('hex')} (${b.length})`, o, (p) => FIELDS[rpc].includes(p) || REQUIRED[rpc].includes(p) || /^events\[\d+\]/.test(p));
        },
      ),
      { numRuns: 300, seed: 20_260_101 },
    );
  });

  it('bytes that do not decode: INVALID_ARGUMENT saying so, for every method; PublishStream says which request', async () => {
    // 0x00: field number 0, which no message has; 0x7f: field 15, wire type 7, which does not
    // exist; 0x78 0xff: a varint of field 15 cut short.
    for (const rpc of [...UNARY, 'Subscribe'] as Rpc[])
      for (const b of [Buffer.from([0]), Buffer.from([0x7f]), Buffer.from([0x78, 0xff])]) {
        const o = await rawCall(rpc, b);
        const what = `${rpc} bytes ${b.toString('hex')}: ${grpc.status[o.code]} ${o.details}`;
        expectGoodOutcome(what, o, () => false);
        expect([grpc.status[o.code], o.metadata.get('weir-error')[0], o.metadata.get('weir-param')[0]], what).toEqual(['INVALID_ARGUMENT', 'bad_request', undefined]);
        expect(o.details, what).toMatch(new RegExp(`^the request is not a valid weir\\.v1\\.${rpc === 'Subscribe' ? 'SubscribeRequest' : rpc === 'Catalog' ? 'CatalogRequest' : '\\w+'} message`));
      }
    // PublishStream: a good request, then bytes that do not decode: the first is stored, the call fails at index 1.
    const weirDef = pkg['weir.v1.Weir'] as protoLoader.ServiceDefinition;
    const good = Buffer.from(weirDef.PublishStream.requestSerialize({ events: [{ key: 'k', value: 1 }], metric: 'cpu' }));
    const o = await new Promise<Outcome>((resolve) => {
      const id = (b: Buffer) => b;
      const stream = raw.makeClientStreamRequest('/weir.v1.Weir/PublishStream', id, id, new grpc.Metadata(), { deadline: Date.now() + 15_000 }, (err: grpc.ServiceError | null) =>
        resolve(err ? { code: err.code, details: err.details ?? '', metadata: err.metadata ?? new grpc.Metadata() } : { code: grpc.status.OK, details: '', metadata: new grpc.Metadata() }),
      );
      stream.write(good);
      stream.write(Buffer.from([0]));
      stream.end();
    });
    expectGoodOutcome(`PublishStream: ${o.details}`, o, () => false);
    expect([grpc.status[o.code], o.metadata.get('weir-request-index')[0], o.metadata.get('weir-accepted')[0]], o.details).toEqual(['INVALID_ARGUMENT', '1', '1']);
    expect(o.details).toMatch(/^the request is not a valid weir\.v1\.PublishRequest message \(protobuf: /);
  });

  it('hand-written hostile requests get the exact code and param', async () => {
    const INVALID = grpc.status.INVALID_ARGUMENT;
    const NOT_FOUND = grpc.status.NOT_FOUND;
    const cases: [Unary, Obj, number, string][] = [
      ['Publish', {}, INVALID, 'events'],
      ['Publish', { events: [{ key: 'k', value: 1 }] }, INVALID, 'events[0].metric'],
      ['Publish', { events: [{ key: 'k' }], metric: 'cpu' }, INVALID, 'events[0]'],
      ['Publish', { events: [{ key: 'k', value: 1 }, { key: 'k', value: NaN }], metric: 'cpu' }, INVALID, 'events[1]'],
      ['Publish', { events: [{ key: 'k', value: -Infinity }], metric: 'cpu' }, INVALID, 'events[0]'],
      ['Publish', { events: [{ key: 'a\u0000b', value: 1 }], metric: 'cpu' }, INVALID, 'events[0]'],
      ['Publish', { events: [{ key: '', value: 1 }], metric: 'cpu' }, INVALID, 'events[0]'],
      ['Publish', { events: [{ key: 'k', value: 1, ts: '9223372036854775807' }], metric: 'cpu' }, INVALID, 'events[0]'],
      ['Publish', { events: [{ key: 'k', value: 1, ts: '-9223372036854775808' }], metric: 'cpu' }, INVALID, 'events[0]'],
      ['Publish', { events: [{ key: 'k', value: 1, tags: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`t${i}`, 'v'])) }], metric: 'cpu' }, INVALID, 'events[0]'],
      ['Publish', { events: [{ key: 'k', value: 1, metric: 'cpü' }] }, INVALID, 'events[0].metric'],
      ['Publish', { events: [{ key: 'k', value: 1 }], metric: 'a.b' }, INVALID, 'metric'],
      ['Publish', { events: [{ key: 'k', value: 1 }], metric: 'cpu', idempotency_key: 'x'.repeat(129) }, INVALID, 'idempotency_key'],
      ['Publish', { events: [{ key: 'k', value: 1 }], metric: 'cpu', idempotency_key: 'a b' }, INVALID, 'idempotency_key'],
      ['Publish', { events: Array.from({ length: 10_001 }, () => ({ key: 'k', value: 1 })), metric: 'cpu' }, INVALID, 'events'],
      ['QuerySeries', { metric: 'cpu' }, INVALID, 'key'],
      ['QuerySeries', { key: 'k' }, INVALID, 'metric'],
      ['QuerySeries', { metric: 'cpu', key: 'k', limit: -1 }, INVALID, 'limit'],
      ['QuerySeries', { metric: 'cpu', key: 'k', limit: 2 ** 31 - 1 }, INVALID, 'limit'],
      ['QuerySeries', { metric: 'cpu', key: 'k', limit: -(2 ** 31) }, INVALID, 'limit'],
      ['QuerySeries', { metric: 'cpu', key: 'k', window: '5m' }, INVALID, 'window'],
      ['QuerySeries', { metric: 'cpu', key: 'k', from: 'yesterday' }, INVALID, 'from'],
      ['QuerySeries', { metric: 'cpu', key: 'k', to: '9223372036854775807' }, INVALID, 'to'],
      ['QuerySeries', { metric: 'cpu', key: 'k', from: '-8640000000000001', to: '-8640000000000000' }, INVALID, 'from'],
      ['QuerySeries', { metric: 'cpu', key: 'k', from: '2', to: '1' }, INVALID, 'from'],
      ['QuerySeries', { metric: 'cpu', key: 'k\u0007' }, INVALID, 'key'],
      ['QuerySeries', { metric: 'cpu', key: 'x'.repeat(257) }, INVALID, 'key'],
      ['QuerySeries', { pipeline: 'nosuch', key: 'k' }, NOT_FOUND, 'pipeline'],
      ['QuerySeries', { pipeline: '../etc', key: 'k' }, INVALID, 'pipeline'],
      ['QuerySeries', { pipeline: 'tutors', metric: 'cpu', key: 'k' }, INVALID, 'metric'],
      ['Percentiles', { metric: 'cpu', key: 'k', q: [0.5, 2] }, INVALID, 'q'],
      ['Percentiles', { metric: 'cpu', key: 'k', q: [NaN] }, INVALID, 'q'],
      ['Percentiles', { metric: 'cpu', key: 'k', q: [-Infinity] }, INVALID, 'q'],
      ['Percentiles', { metric: 'cpu', key: 'k', q: Array(33).fill(0.5) }, INVALID, 'q'],
      ['Percentiles', { metric: 'cpu\u0000', key: 'k' }, INVALID, 'metric'],
      ['Latest', { metric: 'cpu' }, INVALID, 'key'],
      ['Latest', { pipeline: 'nosuch', key: 'k' }, NOT_FOUND, 'pipeline'],
      ['TopK', { metric: 'cpu', k: -1 }, INVALID, 'k'],
      ['TopK', { metric: 'cpu', k: 2 ** 31 - 1 }, INVALID, 'k'],
      ['TopK', { metric: 'cpu', k: 1001 }, INVALID, 'k'],
      ['TopK', { metric: 'cpu', by: 'DROP' }, INVALID, 'by'],
      ['TopK', { metric: 'cpu', order: 'sideways' }, INVALID, 'order'],
      ['TopK', { metric: 'cpu', scope: 'all' }, INVALID, 'scope'],
      ['TopK', { pipeline: 'tutors' }, INVALID, 'window'],
      ['TopK', { pipeline: 'tutors', window: '1d' }, INVALID, 'by'],
      ['TopK', { metric: '😀' }, INVALID, 'metric'],
      ['Catalog', { pipeline: '..' }, INVALID, 'pipeline'],
      ['Catalog', { pipeline: 'x'.repeat(65) }, INVALID, 'pipeline'],
      ['Catalog', { pipeline: 'NaN' }, NOT_FOUND, 'pipeline'],
    ];
    for (const [rpc, req, code, param] of cases) {
      const what = `${rpc} ${show(req)}`;
      const o = await call(rpc, req);
      expectGoodOutcome(what, o, () => true);
      expect([grpc.status[o.code], o.metadata.get('weir-param')[0]], `${what}: ${o.details.slice(0, 300)}`).toEqual([grpc.status[code], param]);
    }
    for (const [req, param] of [
      [{ key: 'k', key_prefix: 'k' }, 'key_prefix'],
      [{ window: '5m' }, 'window'],
      [{ metric: 'a b' }, 'metric'],
      [{ key: 'a\u0000' }, 'key'],
      [{ pipeline: 'a.b' }, 'pipeline'],
      [{ key_prefix: 'x'.repeat(257) }, 'key_prefix'],
    ] as [Obj, string][]) {
      const o = await subscribe(req);
      expectGoodOutcome(`Subscribe ${show(req)}`, o, () => true);
      expect([grpc.status[o.code], o.metadata.get('weir-param')[0]], `Subscribe ${show(req)}: ${o.details}`).toEqual(['INVALID_ARGUMENT', param]);
    }
  });

  it(`requests over the max receive size (${MAX_RECEIVE} bytes) are RESOURCE_EXHAUSTED; the next call is served`, async () => {
    const big = 'z'.repeat(MAX_RECEIVE + 1);
    for (const [rpc, req] of [
      ['Publish', { events: [{ key: 'k', value: 1, id: big }], metric: 'cpu' }],
      ['QuerySeries', { metric: 'cpu', key: big }],
      ['Catalog', { pipeline: big }],
    ] as [Unary, Obj][]) {
      const o = await call(rpc, req);
      expectGoodOutcome(`${rpc} of ${MAX_RECEIVE + 1} bytes`, o, () => false);
      expect(isOversize(o), `${rpc}: ${grpc.status[o.code]} ${o.details}`).toBe(true);
    }
    const o = await subscribe({ key: big });
    expect(isOversize(o), `Subscribe: ${grpc.status[o.code]} ${o.details}`).toBe(true);
  });
});
