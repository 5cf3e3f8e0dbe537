import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseConfig, type WeirConfigInput } from '../engine/config.js';
import { ApiError, BadRequest } from './errors.js';
import { parseQuantiles, WeirService, type ServiceDeps } from './service.js';
import { keyToken as keyTokenOf } from '../engine/subjects.js';

// ---- helpers ---------------------------------------------------------------------------------

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

async function asyncErrorOf(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

function expectBadRequest(err: unknown, param: string, what: string) {
  expect(err, `${what}: expected a BadRequest`).toBeInstanceOf(BadRequest);
  const e = err as BadRequest;
  expect({ status: e.statusCode, code: e.code, param: e.param }, `${what}: ${e.message}`).toEqual({ status: 400, code: 'bad_request', param });
}

interface Published {
  subject: string;
  events: Record<string, unknown>[];
  opts: unknown;
}

/** A JetStream stand-in that records every publish and acks with increasing sequence numbers. */
function fakeJs(opts: { failAt?: number; duplicate?: boolean } = {}) {
  const calls: Published[] = [];
  let seq = 1;
  const js = {
    publish: async (subject: string, payload: Uint8Array, o?: unknown) => {
      if (opts.failAt !== undefined && calls.length === opts.failAt) throw new Error('stream unavailable');
      calls.push({ subject, events: JSON.parse(Buffer.from(payload).toString('utf8')), opts: o });
      return { seq: seq++, duplicate: opts.duplicate ?? false, stream: 'S' };
    },
  };
  return { js, calls };
}

const silentLog = { warn() {}, info() {}, error() {}, debug() {} };

function serviceOf(input: WeirConfigInput = {}, js = fakeJs()) {
  const deps = { config: parseConfig(input), pool: {}, nc: {}, js: js.js, log: silentLog } as unknown as ServiceDeps;
  return { service: new WeirService(deps), calls: js.calls };
}

// ---- parseQuantiles --------------------------------------------------------------------------

const DEFAULT_QS = [0.5, 0.9, 0.95, 0.99, 0.999];
const quantile = fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(0, 1, 0.5, 0.999, 5e-324)).map((x) => x + 0);
/** A decimal number as a client would write it, possibly padded with spaces. */
const DECIMAL = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

describe('parseQuantiles', () => {
  it('valid lists round-trip, as a comma-separated string, an array of strings or of numbers', () => {
    fc.assert(
      fc.property(fc.array(quantile, { minLength: 1, maxLength: 32 }), fc.array(fc.constantFrom('', ' ', '  ', '\t'), { minLength: 64, maxLength: 64 }), (qs, pad) => {
        const strs = qs.map((q, i) => `${pad[2 * i]}${q}${pad[2 * i + 1]}`);
        expect(parseQuantiles(strs.join(','), 32)).toEqual(qs);
        expect(parseQuantiles(strs, 32)).toEqual(qs);
        expect(parseQuantiles(qs, 32)).toEqual(qs);
        if (qs.length === 1) expect(parseQuantiles(qs[0], 32)).toEqual(qs);
      }),
      { numRuns: 500 },
    );
    expect(parseQuantiles('0,0.5,1', 3)).toEqual([0, 0.5, 1]);
    expect(parseQuantiles('1e-3, .5, 1.0', 3)).toEqual([0.001, 0.5, 1]);
  });

  it('absent gives the default quantiles', () => {
    for (const v of [undefined, null, '', []]) expect(parseQuantiles(v, 32), JSON.stringify(v)).toEqual(DEFAULT_QS);
  });

  it('too many, out of [0, 1], non-finite or non-numeric gives BadRequest on q', () => {
    const bad = fc.oneof(
      fc.double({ noNaN: true }).filter((x) => x < 0 || x > 1),
      fc.double({ min: 1, max: 2, noNaN: true, minExcluded: true }),
      fc.double({ min: -1, max: 0, noNaN: true, maxExcluded: true }).filter((x) => x !== 0),
      fc.constantFrom(NaN, Infinity, -Infinity, -1e-300, 1 + Number.EPSILON),
      fc.string({ maxLength: 12 }).filter((s) => !DECIMAL.test(s) && !s.includes(',')),
      fc.constantFrom('', ' ', 'abc', '0.5x', '1,5', 'Infinity', 'NaN', '--1', '1..0', '½'),
    );
    fc.assert(
      fc.property(fc.array(quantile, { maxLength: 10 }), bad, fc.nat(), (good, b, at) => {
        const i = at % (good.length + 1);
        const list: unknown[] = [...good.slice(0, i), b, ...good.slice(i)];
        const asString = list.map(String).join(',');
        expectBadRequest(errorOf(() => parseQuantiles(list, 32)), 'q', `array ${JSON.stringify(list.map(String))}`);
        expectBadRequest(errorOf(() => parseQuantiles(list.map(String), 32)), 'q', `string array ${JSON.stringify(list.map(String))}`);
        // one string: only when the bad part is not itself a comma list, and the whole is not ""
        if (asString !== '') expectBadRequest(errorOf(() => parseQuantiles(asString, 32)), 'q', `string ${JSON.stringify(asString)}`);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 10 }), (max, extra) => {
        const qs = Array.from({ length: max + extra }, (_, i) => i / (max + extra));
        expectBadRequest(errorOf(() => parseQuantiles(qs, max)), 'q', 'too many (array)');
        expectBadRequest(errorOf(() => parseQuantiles(qs.join(','), max)), 'q', 'too many (string)');
        expect(parseQuantiles(qs.slice(0, max), max)).toEqual(qs.slice(0, max));
      }),
    );
    expect((errorOf(() => parseQuantiles('0.5,2', 32)) as Error).message).toContain('"2"');
  });

  it('rejects numbers that are not written in decimal, and values that are not numbers or strings', () => {
    // Number() reads these, but they are not quantiles a client meant to send
    for (const v of ['0x1', '0x0', '0b1', '0o0', '0.5,0x1']) expectBadRequest(errorOf(() => parseQuantiles(v, 32)), 'q', JSON.stringify(v));
    for (const v of [[null], [true], [false], [[0.5]], [{}], [0.5, null]]) expectBadRequest(errorOf(() => parseQuantiles(v, 32)), 'q', JSON.stringify(v));
  });
});

// ---- publish ---------------------------------------------------------------------------------

const METRICS = ['cpu', 'mem', 'disk:io', 'net-rx', 'a_b'];
const keyArb = fc.oneof(
  fc.stringMatching(/^[a-z0-9:_-]{1,12}$/),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }).filter((s) => !/[\u0000-\u001f\u007f-\u009f]/.test(s)),
);
const NOW = Date.now();
const tsArb = fc.oneof(fc.integer({ min: 0, max: NOW }), fc.integer({ min: 0, max: NOW }).map((t) => new Date(t).toISOString()));

interface GenEvent {
  /** The metric the event belongs to; whether it says so itself or relies on the default. */
  metric: string;
  body: Record<string, unknown>;
}

interface RawEvent {
  m: number;
  omitMetric: boolean;
  key: string;
  value: number;
  ts?: number | string;
  tags?: Record<string, string>;
  id?: string;
}

/** Valid events over a few metrics; events of the default metric sometimes omit `metric`. */
const eventsArb: fc.Arbitrary<RawEvent[]> = fc.array(
  fc.record({
    m: fc.nat({ max: METRICS.length - 1 }),
    omitMetric: fc.boolean(),
    key: keyArb,
    value: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: -1000, max: 1000 })).map((v) => v + 0),
    ts: fc.option(tsArb, { nil: undefined }),
    tags: fc.option(fc.dictionary(fc.stringMatching(/^[a-z]{1,5}$/), fc.string({ maxLength: 5 }), { maxKeys: 3 }), { nil: undefined }),
    id: fc.option(fc.uuid(), { nil: undefined }),
  }),
  { minLength: 1, maxLength: 80, size: 'max' },
);

function build(raw: RawEvent[], defaultMetric: string | undefined): GenEvent[] {
  return raw.map((r) => {
    const metric = METRICS[r.m];
    const body: Record<string, unknown> = { key: r.key, value: r.value };
    if (!(r.omitMetric && metric === defaultMetric)) body.metric = metric;
    if (r.ts !== undefined) body.ts = r.ts;
    if (r.tags !== undefined) body.tags = r.tags;
    if (r.id !== undefined) body.id = r.id;
    return { metric, body };
  });
}

/** What publish must write: per metric in order of first appearance, its events in order, cut every `per`. */
function expectedMessages(events: GenEvent[], per: number): { subject: string; events: unknown[] }[] {
  const groups = new Map<string, unknown[]>();
  for (const e of events) {
    if (!groups.has(e.metric)) groups.set(e.metric, []);
    groups.get(e.metric)!.push(JSON.parse(JSON.stringify(e.body)));
  }
  const out: { subject: string; events: unknown[] }[] = [];
  for (const [metric, list] of groups) for (let i = 0; i < list.length; i += per) out.push({ subject: `weir.events.${metric}`, events: list.slice(i, i + per) });
  return out;
}

/** Ways to make one event invalid, and the parameter the refusal must name. */
const INVALID: { name: string; apply: (e: Record<string, unknown>, hasDefault: boolean) => unknown; param: (i: number, hasDefault: boolean) => string }[] = [
  { name: 'value as string', apply: (e) => ({ ...e, value: String(e.value) }), param: (i) => `events[${i}]` },
  { name: 'value null', apply: (e) => ({ ...e, value: null }), param: (i) => `events[${i}]` },
  { name: 'value missing', apply: ({ value: _, ...e }) => e, param: (i) => `events[${i}]` },
  { name: 'value boolean', apply: (e) => ({ ...e, value: true }), param: (i) => `events[${i}]` },
  { name: 'key missing', apply: ({ key: _, ...e }) => e, param: (i) => `events[${i}]` },
  { name: 'key empty', apply: (e) => ({ ...e, key: '' }), param: (i) => `events[${i}]` },
  { name: 'key number', apply: (e) => ({ ...e, key: 7 }), param: (i) => `events[${i}]` },
  { name: 'key too long', apply: (e) => ({ ...e, key: 'k'.repeat(257) }), param: (i) => `events[${i}]` },
  { name: 'key with a control character', apply: (e) => ({ ...e, key: 'a\u0001b' }), param: (i) => `events[${i}]` },
  { name: 'metric with a dot', apply: (e) => ({ ...e, metric: 'cpu.user' }), param: (i) => `events[${i}].metric` },
  { name: 'metric empty', apply: (e) => ({ ...e, metric: '' }), param: (i) => `events[${i}].metric` },
  { name: 'metric a number', apply: (e) => ({ ...e, metric: 5 }), param: (i) => `events[${i}].metric` },
  { name: 'metric missing', apply: ({ metric: _, ...e }) => e, param: (i, d) => (d ? 'unused' : `events[${i}].metric`) },
  { name: 'ts far in the future', apply: (e) => ({ ...e, ts: Date.now() + 3 * 3_600_000 }), param: (i) => `events[${i}]` },
  { name: 'ts negative', apply: (e) => ({ ...e, ts: -1 }), param: (i) => `events[${i}]` },
  { name: 'ts fractional', apply: (e) => ({ ...e, ts: 1.5 }), param: (i) => `events[${i}]` },
  { name: 'ts not ISO', apply: (e) => ({ ...e, ts: '01/02/2024' }), param: (i) => `events[${i}]` },
  { name: 'tags not an object', apply: (e) => ({ ...e, tags: ['a'] }), param: (i) => `events[${i}]` },
  { name: 'tag value a number', apply: (e) => ({ ...e, tags: { a: 1 } }), param: (i) => `events[${i}]` },
  { name: 'id a number', apply: (e) => ({ ...e, id: 1 }), param: (i) => `events[${i}]` },
  { name: 'event null', apply: () => null, param: (i, d) => (d ? `events[${i}]` : `events[${i}].metric`) },
  { name: 'event a number', apply: () => 42, param: (i, d) => (d ? `events[${i}]` : `events[${i}].metric`) },
  { name: 'event an array', apply: (e) => [e], param: (i, d) => (d ? `events[${i}]` : `events[${i}].metric`) },
];

describe('WeirService.publish (fake JetStream)', () => {
  it('groups per metric into messages of at most maxEventsPerMessage; every event once, in order per metric', async () => {
    await fc.assert(
      fc.asyncProperty(
        eventsArb,
        fc.integer({ min: 1, max: 9 }),
        fc.option(fc.constantFrom(...METRICS), { nil: undefined }),
        fc.option(fc.stringMatching(/^[A-Za-z0-9_.:-]{1,20}$/), { nil: undefined }),
        async (raw, per, defaultMetric, idem) => {
          const events = build(raw, defaultMetric);
          const { service, calls } = serviceOf({ limits: { maxEventsPerMessage: per } });
          const answer = await service.publish(
            events.map((e) => e.body),
            defaultMetric,
            idem,
          );
          const expected = expectedMessages(events, per);
          expect(calls.map((c) => ({ subject: c.subject, events: c.events }))).toEqual(expected);
          for (const c of calls) expect(c.events.length).toBeLessThanOrEqual(per);
          expect(calls.map((c) => c.opts)).toEqual(calls.map((_, i) => (idem ? { msgID: `${idem}:${i}` } : undefined)));
          expect(answer).toEqual({ accepted: events.length, messages: expected.length, firstSeq: 1, lastSeq: expected.length, duplicate: false });
        },
      ),
      { numRuns: 150 },
    );
  });

  it('one invalid event anywhere: BadRequest naming its index, and nothing is published', async () => {
    await fc.assert(
      fc.asyncProperty(
        eventsArb,
        fc.nat(),
        fc.nat({ max: INVALID.length - 1 }),
        fc.integer({ min: 1, max: 9 }),
        fc.option(fc.constantFrom(...METRICS), { nil: undefined }),
        async (raw, at, which, per, defaultMetric) => {
          const inv = INVALID[which];
          fc.pre(!(inv.name === 'metric missing' && defaultMetric !== undefined)); // then it is valid
          const events = build(raw, defaultMetric).map((e) => e.body as unknown);
          const i = at % (events.length + 1);
          const source = { key: 'k', value: 1, metric: METRICS[at % METRICS.length] } as Record<string, unknown>;
          events.splice(i, 0, inv.apply(source, defaultMetric !== undefined));
          const { service, calls } = serviceOf({ limits: { maxEventsPerMessage: per } });
          const err = await asyncErrorOf(() => service.publish(events, defaultMetric));
          const param = inv.param(i, defaultMetric !== undefined);
          expectBadRequest(err, param, inv.name);
          expect((err as Error).message, inv.name).toContain(`events[${i}]`);
          expect(calls, `${inv.name}: nothing may be published`).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('request-level refusals: no events, too many, a bad metric parameter', async () => {
    const { service, calls } = serviceOf({ gateway: { limits: { maxPublishEvents: 5 } } });
    expectBadRequest(await asyncErrorOf(() => service.publish([])), 'events', 'empty');
    const six = Array.from({ length: 6 }, (_, i) => ({ metric: 'cpu', key: `k${i}`, value: i }));
    expectBadRequest(await asyncErrorOf(() => service.publish(six)), 'events', 'too many');
    expectBadRequest(await asyncErrorOf(() => service.publish(six.slice(0, 1), 'cpu.user')), 'metric', 'bad default metric');
    expectBadRequest(await asyncErrorOf(() => service.publish(six.slice(0, 1), 'a b')), 'metric', 'bad default metric');
    expect(calls).toEqual([]);
    // five is fine; a single object is one event
    expect((await service.publish(six.slice(0, 5))).accepted).toBe(5);
    const one = await service.publish({ key: 'solo', value: 1 }, 'mem');
    expect(one).toMatchObject({ accepted: 1, messages: 1 });
    expect(calls[calls.length - 1]).toMatchObject({ subject: 'weir.events.mem', events: [{ key: 'solo', value: 1 }] });
  });

  it('a JetStream failure is a 503; acks flagged duplicate are reported', async () => {
    const failing = serviceOf({}, fakeJs({ failAt: 0 }));
    const err = await asyncErrorOf(() => failing.service.publish([{ metric: 'cpu', key: 'a', value: 1 }]));
    expect(err).toBeInstanceOf(ApiError);
    expect({ status: (err as ApiError).statusCode, code: (err as ApiError).code }).toEqual({ status: 503, code: 'unavailable' });
    const dup = serviceOf({}, fakeJs({ duplicate: true }));
    expect((await dup.service.publish([{ metric: 'cpu', key: 'a', value: 1 }], undefined, 'req-1')).duplicate).toBe(true);
  });

  it('valid events are never refused for the size of the messages publish itself builds', async () => {
    // Every event fits a message on its own, but maxEventsPerMessage of them do not fit maxPayloadBytes.
    const { service, calls } = serviceOf({ limits: { maxPayloadBytes: 2_000, maxEventsPerMessage: 100 } });
    const events = Array.from({ length: 100 }, (_, i) => ({ metric: 'cpu', key: `host-${String(i).padStart(3, '0')}-${'x'.repeat(40)}`, value: i }));
    const answer = await service.publish(events);
    expect(answer.accepted).toBe(100);
    expect(calls.flatMap((c) => c.events)).toEqual(events);
    for (const c of calls) expect(Buffer.byteLength(JSON.stringify(c.events))).toBeLessThanOrEqual(2_000);
  });
});

// ---- parseFilter -----------------------------------------------------------------------------

describe('WeirService.parseFilter', () => {
  const { service } = serviceOf({
    pipeline: {
      name: 'main',
      windows: [
        { name: '10s', size: '10s', table: 't10' },
        { name: '1m', size: '1m', table: 't1m' },
      ],
    },
  });

  it('valid filters come back as given, with the default pipeline', () => {
    fc.assert(
      fc.property(
        fc.option(fc.constantFrom(...METRICS), { nil: undefined }),
        fc.option(fc.oneof(fc.record({ key: keyArb }), fc.record({ keyPrefix: keyArb })), { nil: undefined }),
        fc.option(fc.constantFrom('10s', '1m'), { nil: undefined }),
        fc.constantFrom<unknown>(undefined, true, 'true', false, 'false'),
        (metric, k, window, finalOnly) => {
          const f = service.parseFilter({ metric, ...k, window, finalOnly });
          expect(f).toEqual({
            pipeline: 'main',
            metric,
            key: k && 'key' in k ? k.key : undefined,
            keyPrefix: k && 'keyPrefix' in k ? k.keyPrefix : undefined,
            window,
            finalOnly: finalOnly === true || finalOnly === 'true',
          });
        },
      ),
    );
    expect(service.parseFilter({ final: 'true' }).finalOnly).toBe(true);
    // another pipeline's windows are not known here: passed through
    expect(service.parseFilter({ pipeline: 'other', window: '5m' })).toMatchObject({ pipeline: 'other', window: '5m' });
  });

  it('names the bad field', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ key: 'a', keyPrefix: 'a' }, 'keyPrefix'],
      [{ metric: 'cpu', key: 'x', keyPrefix: 'y' }, 'keyPrefix'],
      [{ window: '5m' }, 'window'],
      [{ window: '10S' }, 'window'],
      [{ window: 7 }, 'window'],
      [{ window: 'x'.repeat(17) }, 'window'],
      [{ metric: 'cpu.user' }, 'metric'],
      [{ metric: 'a b' }, 'metric'],
      [{ metric: 3 }, 'metric'],
      [{ key: 'k'.repeat(257) }, 'key'],
      [{ key: 5 }, 'key'],
      [{ keyPrefix: 'k'.repeat(257) }, 'keyPrefix'],
      [{ pipeline: 'a.b' }, 'pipeline'],
      [{ pipeline: '*' }, 'pipeline'],
    ];
    for (const [q, param] of cases) expectBadRequest(errorOf(() => service.parseFilter(q)), param, JSON.stringify(q));
  });
});

// ---- subscribe: filters on the subject and the JSON text -------------------------------------

/** A NATS stand-in with subject matching ("*" one token, ">" the rest), enough for the hub. */
function fakeNats() {
  const subs: { subject: string; callback: (err: unknown, msg: { subject: string; string(): string }) => void; closed: boolean }[] = [];
  const match = (filter: string, subject: string) => {
    const f = filter.split('.');
    const s = subject.split('.');
    for (let i = 0; i < f.length; i++) {
      if (f[i] === '>') return s.length > i;
      if (i >= s.length || (f[i] !== '*' && f[i] !== s[i])) return false;
    }
    return f.length === s.length;
  };
  return {
    nc: {
      subscribe(subject: string, o: { callback: (err: unknown, msg: { subject: string; string(): string }) => void }) {
        const e = { subject, callback: o.callback, closed: false };
        subs.push(e);
        return { unsubscribe: () => (e.closed = true) };
      },
    },
    publish(subject: string, text: string) {
      for (const s of subs) if (!s.closed && match(s.subject, subject)) s.callback(null, { subject, string: () => text });
    },
    open: () => subs.filter((s) => !s.closed).length,
  };
}

describe('WeirService.subscribe', () => {
  const config: WeirConfigInput = {
    pipeline: {
      windows: [
        { name: '10s', size: '10s', table: 'w10s' },
        { name: '1m', size: '1m', table: 'w1m' },
      ],
    },
  };
  // Keys that try to fool a text filter: quotes, '"final":true', '"window":"1m",', dots, prefixes.
  const keyArb = fc.oneof(
    fc.constantFrom('k', 'k1', 'ka', 'x', '"final":true', 'a","final":true,"b', '"window":"1m",', 'k.1', 'k"', 'k\\', 'é', 'k 2'),
    fc.string({ unit: fc.constantFrom('k', 'a', '"', '\\', ':', ',', '.', 't', 'r', 'u', 'e'), minLength: 1, maxLength: 8 }),
  );
  const resultArb = fc.record({
    metric: fc.constantFrom('cpu', 'mem'),
    key: keyArb,
    window: fc.constantFrom('10s', '1m'),
    final: fc.boolean(),
    start: fc.integer({ min: 0, max: 100 }),
  });
  const filterArb = fc.record(
    {
      metric: fc.constantFrom('cpu', 'mem'),
      key: keyArb,
      keyPrefix: fc.constantFrom('k', '"', 'a"', '"final', 'é'),
      window: fc.constantFrom('10s', '1m'),
      finalOnly: fc.boolean(),
    },
    { requiredKeys: [] },
  );

  it('delivers exactly the results a filter on the parsed result selects, as the text published, parsing only on demand', () => {
    fc.assert(
      fc.property(fc.array(filterArb, { minLength: 1, maxLength: 6 }), fc.array(resultArb, { maxLength: 40 }), (filters, results) => {
        const nats = fakeNats();
        const service = new WeirService({ config: parseConfig(config), pool: {}, nc: nats.nc, js: {}, log: silentLog } as unknown as ServiceDeps);
        const valid = filters.filter((f) => !(f.key !== undefined && f.keyPrefix !== undefined));
        const got: string[][] = valid.map(() => []);
        const closers = valid.map((f, i) =>
          service.subscribe(service.parseFilter(f), (raw, result) => {
            got[i].push(raw);
            expect(JSON.stringify(result())).toBe(raw);
          }),
        );
        const texts: string[] = [];
        for (const [n, r] of results.entries()) {
          // The engine's field order (engine/worker.ts publishResult).
          const full = { pipeline: 'default', metric: r.metric, key: r.key, window: r.window, start: r.start, end: r.start + 10, final: r.final, revision: 0, count: n, rate: 1, sum: 1, min: 1, max: 1, mean: 1, stddev: null, p50: 1, p90: 1, p95: 1, p99: 1, p999: 1, emittedAt: 5 };
          const text = JSON.stringify(full);
          texts.push(text);
          nats.publish(`weir.results.default.${r.metric}.${keyTokenOf(r.key)}`, text);
        }
        valid.forEach((f, i) => {
          const want = results
            .map((r, n) => ({ r, text: texts[n] }))
            .filter(({ r }) => (f.metric === undefined || r.metric === f.metric) && (f.key === undefined || r.key === f.key))
            .filter(({ r }) => (f.keyPrefix === undefined || r.key.startsWith(f.keyPrefix)) && (f.window === undefined || r.window === f.window) && (!f.finalOnly || r.final))
            .map(({ text }) => text);
          expect(got[i], JSON.stringify(f)).toEqual(want);
        });
        expect(service.activeSubscriptions).toBe(valid.length);
        for (const c of closers) c();
        expect(service.activeSubscriptions).toBe(0);
        expect(nats.open()).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});

describe('WeirService.subscribe: a message that is not JSON', () => {
  it('is forwarded as text, parses to null (logged once), and the next message is delivered as usual', () => {
    const nats = fakeNats();
    const warnings: unknown[] = [];
    const log = { ...silentLog, warn: (...a: unknown[]) => warnings.push(a) };
    const service = new WeirService({ config: parseConfig({}), pool: {}, nc: nats.nc, js: {}, log } as unknown as ServiceDeps);
    const got: [string, unknown, unknown][] = [];
    service.subscribe(service.parseFilter({ metric: 'cpu' }), (raw, result) => got.push([raw, result(), result()]));
    nats.publish('weir.results.default.cpu.a', 'not json');
    nats.publish('weir.results.default.cpu.a', '{"key":"a","final":true}');
    expect(got).toEqual([
      ['not json', null, null],
      ['{"key":"a","final":true}', { key: 'a', final: true }, { key: 'a', final: true }],
    ]);
    expect(warnings).toHaveLength(1);
  });
});
