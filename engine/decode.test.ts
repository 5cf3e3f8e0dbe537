import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeMessage, type DecodeLimits } from './decode.js';
import { partitionOf } from './partition.js';

const LIMITS: DecodeLimits = { maxPayloadBytes: 1_048_576, maxEventsPerMessage: 10_000, maxKeyLength: 256, maxTags: 32, maxFutureMs: 3_600_000 };
const NOW = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const MSG_TIME = NOW - 1_234;
const SUBJECT = 'weir.events.cpu';
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

interface Accepted {
  metric: string;
  key: string;
  ts: number;
  value: number;
}
interface Rejected {
  reason: string;
  index: number;
  raw: string;
}

const utf8 = (s: string) => new TextEncoder().encode(s);

function decode(subject: string, data: Uint8Array) {
  const accepted: Accepted[] = [];
  const rejected: Rejected[] = [];
  let msgTimeCalls = 0;
  let ret: number;
  try {
    ret = decodeMessage(
      subject,
      data,
      () => {
        msgTimeCalls++;
        return MSG_TIME;
      },
      NOW,
      LIMITS,
      {
        accept: (metric, key, ts, value) => accepted.push({ metric, key, ts, value }),
        reject: (reason, index, raw) => rejected.push({ reason, index, raw }),
      },
    );
  } catch (err) {
    throw new Error(`decodeMessage threw ${(err as Error)?.message} on subject ${JSON.stringify(subject)}, payload ${JSON.stringify(new TextDecoder().decode(data.subarray(0, 200)))}`);
  }
  return { ret, accepted, rejected, msgTimeCalls };
}

/** The accounting invariant, checked against an independent reading of the payload. */
function expectAccountedFor(subject: string, data: Uint8Array, r: ReturnType<typeof decode>) {
  expect(r.ret).toBe(r.accepted.length);
  for (const x of r.rejected) {
    expect(typeof x.reason).toBe('string');
    expect(x.reason.length).toBeGreaterThan(0);
    expect(typeof x.raw).toBe('string');
  }
  const metric = /^weir\.events\.([A-Za-z0-9_:-]+)$/.exec(subject)?.[1];
  for (const a of r.accepted) {
    expect(a.metric).toBe(metric);
    expect(typeof a.key).toBe('string');
    expect(a.key.length).toBeGreaterThan(0);
    expect(a.key.length).toBeLessThanOrEqual(LIMITS.maxKeyLength);
    expect(CONTROL.test(a.key)).toBe(false);
    expect(Number.isFinite(a.value)).toBe(true);
    expect(Number.isInteger(a.ts)).toBe(true);
    expect(a.ts).toBeGreaterThanOrEqual(0);
    expect(a.ts).toBeLessThanOrEqual(NOW + LIMITS.maxFutureMs);
  }
  let body: unknown;
  let parsed = false;
  if (metric !== undefined && data.length <= LIMITS.maxPayloadBytes) {
    try {
      body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
      parsed = true;
    } catch {
      parsed = false;
    }
  }
  if (parsed && Array.isArray(body) && body.length <= LIMITS.maxEventsPerMessage) {
    // each element accepted or rejected exactly once, rejects carry their index
    const idx = r.rejected.map((x) => x.index);
    for (const i of idx) expect(i >= 0 && i < body.length && Number.isInteger(i), `index ${i} of ${body.length}`).toBe(true);
    expect(new Set(idx).size).toBe(idx.length);
    expect(r.accepted.length + r.rejected.length).toBe(body.length);
  } else {
    // one verdict for the whole message; whole-message rejects use index -1
    expect(r.accepted.length + r.rejected.length).toBe(1);
    for (const x of r.rejected) expect(x.index).toBe(-1);
    if (!parsed) expect(r.accepted).toHaveLength(0);
  }
}

// ---- generators ------------------------------------------------------------------------------

const anyJson = fc.jsonValue({ maxDepth: 2 });
const isoAny = fc.date({ noInvalidDate: true }).map((d) => d.toISOString());
const eventish = fc.record(
  {
    key: fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ minLength: 250, maxLength: 260 }), fc.constant(''), anyJson),
    value: fc.oneof(fc.double(), fc.integer(), fc.string({ maxLength: 4 }), anyJson),
    ts: fc.oneof(
      fc.integer({ min: -1_000, max: NOW + 2 * LIMITS.maxFutureMs }),
      fc.double(),
      fc.constantFrom(-1, 1.5, 8.64e15, 8.64e15 + 1, 1e16, 1e300, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE),
      isoAny,
      fc.string({ maxLength: 30 }),
      anyJson,
    ),
    tags: fc.oneof(fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 40 }), anyJson),
    metric: fc.oneof(fc.constant('cpu'), fc.constant('mem'), anyJson),
    id: fc.oneof(fc.string({ maxLength: 5 }), anyJson),
  },
  { requiredKeys: [] },
);
const payloadValue = fc.oneof(anyJson, eventish, fc.array(fc.oneof(eventish, anyJson), { maxLength: 30 }));
const subject = fc.oneof(
  { weight: 6, arbitrary: fc.constant(SUBJECT) },
  { weight: 1, arbitrary: fc.constantFrom('weir.events.a.b', 'weir.events.', 'weir.other.cpu', 'weir.events.m:1_x-y') },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }).map((s) => `weir.events.${s}`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);

// ---- fuzz ------------------------------------------------------------------------------------

describe('decodeMessage fuzz: never throws, accounts for every event', () => {
  it('arbitrary bytes', () => {
    fc.assert(
      fc.property(subject, fc.uint8Array({ maxLength: 300, size: 'max' }), (subj, data) => {
        expectAccountedFor(subj, data, decode(subj, data));
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary JSON values and event-like objects, single and in arrays', () => {
    fc.assert(
      fc.property(subject, payloadValue, (subj, v) => {
        const data = utf8(JSON.stringify(v));
        expectAccountedFor(subj, data, decode(subj, data));
      }),
      { numRuns: 500 },
    );
  });

  it('valid JSON with a few bytes corrupted', () => {
    fc.assert(
      fc.property(
        payloadValue,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (v, flips) => {
          const data = utf8(JSON.stringify(v) ?? 'null');
          for (const [at, byte] of flips) data[at % data.length] = byte;
          expectAccountedFor(SUBJECT, data, decode(SUBJECT, data));
        },
      ),
      { numRuns: 300 },
    );
  });
});

// ---- good events -----------------------------------------------------------------------------

const goodKey = fc.string({ unit: 'binary', minLength: 1, maxLength: 256 }).filter((k) => k.length <= 256 && !CONTROL.test(k));
const goodTsMs = fc.integer({ min: 0, max: NOW + LIMITS.maxFutureMs });
const goodEvent = fc.record({
  key: goodKey,
  value: fc.double({ noNaN: true, noDefaultInfinity: true }),
  ts: fc.oneof(
    fc.constant(undefined),
    goodTsMs.map((t) => ({ json: t as number | string, ms: t })),
    goodTsMs.map((t) => ({ json: new Date(t).toISOString(), ms: t })),
    // the same instant written with a numeric offset
    fc.tuple(goodTsMs, fc.integer({ min: -12 * 60, max: 14 * 60 })).map(([t, off]) => {
      const sign = off < 0 ? '-' : '+';
      const hh = String(Math.floor(Math.abs(off) / 60)).padStart(2, '0');
      const mm = String(Math.abs(off) % 60).padStart(2, '0');
      return { json: `${new Date(t + off * 60_000).toISOString().slice(0, -1)}${sign}${hh}:${mm}`, ms: t };
    }),
  ),
  metric: fc.boolean(),
  tags: fc.option(fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: LIMITS.maxTags }), { nil: undefined }),
  id: fc.option(fc.string({ maxLength: 16 }), { nil: undefined }),
});
type GoodEvent = typeof goodEvent extends fc.Arbitrary<infer T> ? T : never;

const toJson = (e: GoodEvent) => ({
  key: e.key,
  value: e.value,
  ...(e.ts ? { ts: e.ts.json } : {}),
  ...(e.metric ? { metric: 'cpu' } : {}),
  ...(e.tags ? { tags: e.tags } : {}),
  ...(e.id !== undefined ? { id: e.id } : {}),
});
const expected = (e: GoodEvent): Accepted => ({ metric: 'cpu', key: e.key, ts: e.ts ? e.ts.ms : MSG_TIME, value: e.value + 0 /* JSON has no -0 */ });

describe('decodeMessage: good events', () => {
  it('every valid event is accepted, in order, with the right key, value and ts', () => {
    fc.assert(
      fc.property(fc.oneof(goodEvent.map((e) => [e] as const), fc.array(goodEvent, { minLength: 1, maxLength: 50 })), fc.boolean(), (events, asArray) => {
        const single = !asArray && events.length === 1;
        const data = utf8(JSON.stringify(single ? toJson(events[0]) : events.map(toJson)));
        const r = decode(SUBJECT, data);
        expect(r.rejected).toEqual([]);
        expect(r.ret).toBe(events.length);
        expect(r.accepted).toEqual(events.map(expected));
        // the message time is asked only when an event has no ts
        if (events.every((e) => e.ts)) expect(r.msgTimeCalls).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('limits are inclusive: key of 256, 32 tags, ts at now + maxFutureMs, 10,000 events, a payload of exactly maxPayloadBytes', () => {
    const tags = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`t${i}`, 'v']));
    const ev = { key: 'k'.repeat(256), value: 1, ts: NOW + LIMITS.maxFutureMs, tags };
    expect(decode(SUBJECT, utf8(JSON.stringify(ev))).accepted).toHaveLength(1);
    const many = Array.from({ length: 10_000 }, (_, i) => ({ key: `k${i}`, value: i, ts: NOW }));
    expect(decode(SUBJECT, utf8(JSON.stringify(many))).ret).toBe(10_000);
    const small = JSON.stringify({ key: 'k', value: 1, ts: NOW });
    const exact = utf8(small + ' '.repeat(LIMITS.maxPayloadBytes - small.length));
    expect(exact.length).toBe(LIMITS.maxPayloadBytes);
    expect(decode(SUBJECT, exact).ret).toBe(1);
  });
});

// ---- bad events ------------------------------------------------------------------------------

/** A bad event alone must be rejected (index -1) and, between two good events, rejected at its index without harming them. */
function expectRejected(badJsonText: string, reason: RegExp[], subj = SUBJECT) {
  const alone = decode(subj, utf8(badJsonText));
  expect(alone.accepted, badJsonText).toEqual([]);
  expect(alone.rejected).toHaveLength(1);
  expect(alone.rejected[0].index).toBe(-1);
  for (const re of reason) expect(alone.rejected[0].reason).toMatch(re);
  const good = '{"key":"ok","value":1,"ts":1000}';
  const sandwich = decode(subj, utf8(`[${good},${badJsonText},${good}]`));
  expect(sandwich.accepted.map((a) => a.key)).toEqual(['ok', 'ok']);
  expect(sandwich.rejected).toHaveLength(1);
  expect(sandwich.rejected[0].index).toBe(1);
  for (const re of reason) expect(sandwich.rejected[0].reason).toMatch(re);
  expect(sandwich.rejected[0].reason).toMatch(/index 1/);
}

describe('decodeMessage: bad events name the problem', () => {
  it('value as a string', () => expectRejected('{"key":"k","value":"12"}', [/value/, /finite number/, /"12"/]));
  it('value 1e400 (Infinity once parsed)', () => expectRejected('{"key":"k","value":1e400}', [/value/, /finite/, /Infinity/]));
  it('value missing or null', () => {
    expectRejected('{"key":"k"}', [/value/, /undefined/]);
    expectRejected('{"key":"k","value":null}', [/value/, /null/]);
  });
  it('missing key', () => expectRejected('{"value":1}', [/key/, /string/]));
  it('empty key', () => expectRejected('{"key":"","value":1}', [/key/, /empty/]));
  it('key with a control character', () => expectRejected('{"key":"a\\u0007b","value":1}', [/key/, /control character/]));
  it('key with a lone UTF-16 surrogate (valid JSON, not well-formed Unicode)', () => {
    expectRejected('{"key":"a\\ud800b","value":1}', [/key/, /lone UTF-16 surrogate/]);
    expectRejected('{"key":"\\udc00","value":1}', [/key/, /lone UTF-16 surrogate/]);
  });
  it('key with a surrogate pair (an astral character) is fine', () => {
    const out = decode(SUBJECT, utf8('[{"key":"a\\ud83d\\ude00","value":1}]'));
    expect(out.accepted.map((a) => a.key)).toEqual(['a\u{1F600}']);
  });
  it('key over 256 characters', () => expectRejected(JSON.stringify({ key: 'x'.repeat(257), value: 1 }), [/key/, /257/, /256/]));
  it('ts in the far future', () => {
    expectRejected('{"key":"k","value":1,"ts":"9999-01-01T00:00:00Z"}', [/ts/, /future/]);
    expectRejected('{"key":"k","value":1,"ts":"9999-01-01"}', [/ts/, /future/]);
    expectRejected(JSON.stringify({ key: 'k', value: 1, ts: NOW + LIMITS.maxFutureMs + 1 }), [/ts/, /future/]);
  });
  it('ts as a number beyond the Date range (1e16 ms) is rejected, not a crash', () => {
    // BUG (engine/decode.ts): new Date(ts).toISOString() throws RangeError for ts > 8.64e15
    expectRejected('{"key":"k","value":1,"ts":1e16}', [/ts/, /future|range/]);
    expectRejected('{"key":"k","value":1,"ts":1e300}', [/ts/, /future|range/]);
  });
  it('ts negative', () => {
    expectRejected('{"key":"k","value":1,"ts":-5}', [/ts/, /1970/, /-5/]);
    expectRejected('{"key":"k","value":1,"ts":"1969-12-31T23:59:59Z"}', [/ts/, /1970/]);
  });
  it('ts not an integer', () => expectRejected('{"key":"k","value":1,"ts":1.5}', [/ts/, /integer/, /1\.5/]));
  it('ts "yesterday"', () => expectRejected('{"key":"k","value":1,"ts":"yesterday"}', [/ts/, /ISO-8601/, /yesterday/]));
  it('ts ISO without a zone, or an impossible date', () => {
    expectRejected('{"key":"k","value":1,"ts":"2026-01-02T03:04:05"}', [/ts/, /ISO-8601/]);
    expectRejected('{"key":"k","value":1,"ts":"2026-13-45T00:00:00Z"}', [/ts/, /2026-13-45/]);
  });
  it('metric field mismatching the subject', () => expectRejected('{"key":"k","value":1,"metric":"mem"}', [/metric/, /"mem"/, /"cpu"/]));
  it('tags with a non-string value, tags not an object, too many tags', () => {
    expectRejected('{"key":"k","value":1,"tags":{"host":"a","n":1}}', [/tags\.n/, /string/]);
    expectRejected('{"key":"k","value":1,"tags":["a"]}', [/tags/, /object/]);
    const tags = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`t${i}`, 'v']));
    expectRejected(JSON.stringify({ key: 'k', value: 1, tags }), [/tags/, /32/]);
  });
  it('id not a string', () => expectRejected('{"key":"k","value":1,"id":7}', [/id/, /string/]));
  it('not an object', () => {
    expectRejected('42', [/object/]);
    expectRejected('"hello"', [/object/]);
    expectRejected('null', [/object/]);
  });

  const expectWholeReject = (subj: string, data: Uint8Array, reason: RegExp[]) => {
    const r = decode(subj, data);
    expect(r.ret).toBe(0);
    expect(r.accepted).toEqual([]);
    expect(r.rejected).toHaveLength(1);
    expect(r.rejected[0].index).toBe(-1);
    for (const re of reason) expect(r.rejected[0].reason).toMatch(re);
  };

  it('payload over maxPayloadBytes', () => {
    const small = JSON.stringify({ key: 'k', value: 1 });
    expectWholeReject(SUBJECT, utf8(small + ' '.repeat(LIMITS.maxPayloadBytes + 1 - small.length)), [/payload/, /1048577/, /1048576/]);
  });
  it('more events than maxEventsPerMessage', () => {
    const many = Array.from({ length: 10_001 }, () => ({ key: 'k', value: 1 }));
    expectWholeReject(SUBJECT, utf8(JSON.stringify(many)), [/10001/, /10000/]);
  });
  it('invalid UTF-8', () => {
    expectWholeReject(SUBJECT, new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), [/UTF-8/]);
    expectWholeReject(SUBJECT, new Uint8Array([0xc3]), [/UTF-8/]); // truncated sequence
  });
  it('invalid JSON', () => {
    expectWholeReject(SUBJECT, utf8('{"key":"k",'), [/JSON/]);
    expectWholeReject(SUBJECT, utf8(''), [/JSON/]);
    expectWholeReject(SUBJECT, utf8('NaN'), [/JSON/]);
  });
  it('a subject with a bad metric', () => {
    expectWholeReject('weir.events.a.b', utf8('{"key":"k","value":1}'), [/metric/, /"a\.b"/]);
    expectWholeReject('weir.other', utf8('{"key":"k","value":1}'), [/weir\.events\./]);
  });

  it('deeply nested arrays (100,000 levels) do not crash', () => {
    const depth = 100_000;
    const open = '['.repeat(depth);
    const close = ']'.repeat(depth);
    // unclosed: invalid JSON
    expectWholeReject(SUBJECT, utf8(open), [/JSON/]);
    // a nested array as the payload: one element (itself an array), rejected at index 0
    // BUG (engine/decode.ts): the reject's raw text, safeJson(), overflows the stack (JSON.stringify, then String())
    const nested = decode(SUBJECT, utf8(open + close));
    expect(nested.accepted).toEqual([]);
    expect(nested.rejected.map((x) => x.index)).toEqual([0]);
    expect(nested.rejected[0].reason).toMatch(/object/);
    // beside good events
    const mixed = decode(SUBJECT, utf8(`[{"key":"k","value":1},${open}${close},{"key":"k","value":2}]`));
    expect(mixed.accepted.map((a) => a.value)).toEqual([1, 2]);
    expect(mixed.rejected.map((x) => x.index)).toEqual([1]);
    // deep objects in a field
    const deepObj = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
    const inTags = decode(SUBJECT, utf8(`[{"key":"k","value":1,"tags":${deepObj}}]`));
    expect(inTags.rejected.map((x) => x.index)).toEqual([0]);
    expect(inTags.rejected[0].reason).toMatch(/tags\.a/);
  });
});

// ---- partitionOf -----------------------------------------------------------------------------

describe('partitionOf', () => {
  it('is an integer in [0, n) and deterministic', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.integer({ min: 1, max: 4096 }), (s, n) => {
        const p = partitionOf(s, n);
        expect(Number.isInteger(p)).toBe(true);
        expect(p).toBeGreaterThanOrEqual(0);
        expect(p).toBeLessThan(n);
        expect(partitionOf(s.slice(0), n)).toBe(p);
      }),
      { numRuns: 500 },
    );
  });

  it('is the 32-bit FNV-1a hash modulo n (published test vectors), so it is stable across runs and machines', () => {
    // FNV-1a 32-bit vectors from the reference (http://www.isthe.com/chongo/tech/comp/fnv/)
    expect(partitionOf('', 2 ** 32)).toBe(0x811c9dc5);
    expect(partitionOf('a', 2 ** 32)).toBe(0xe40c292c);
    expect(partitionOf('foobar', 2 ** 32)).toBe(0xbf9cf968);
    fc.assert(
      fc.property(fc.string({ maxLength: 50 }), fc.integer({ min: 1, max: 1000 }), (s, n) => {
        expect(partitionOf(s, n)).toBe(partitionOf(s, 2 ** 32) % n);
      }),
    );
  });

  it('spreads series over partitions', () => {
    const n = 8;
    const counts = Array(n).fill(0);
    for (let i = 0; i < 8_000; i++) counts[partitionOf(`cpu\u0001host-${i}`, n)]++;
    for (const c of counts) expect(c).toBeGreaterThan(700); // 1,000 expected each
  });
});

describe('decodeMessage: tags reach the sink', () => {
  it('passes the tags object of each event, and undefined without one', () => {
    const seen: (Record<string, string> | undefined)[] = [];
    decodeMessage(SUBJECT, utf8('[{"key":"a","value":1,"tags":{"variant":"B","source":"home"}},{"key":"b","value":2}]'), () => MSG_TIME, NOW, LIMITS, {
      accept: (_m, _k, _t, _v, tags) => seen.push(tags as Record<string, string> | undefined),
      reject: () => undefined,
    });
    expect(seen).toEqual([{ variant: 'B', source: 'home' }, undefined]);
  });
});
