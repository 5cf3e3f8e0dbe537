/**
 * Hostile input for the decoder (issue 5, "Bad input"), beyond decode.test.ts (which fuzzes
 * arbitrary bytes and JSON for "never throws, every event accounted for"): here every bad event
 * is a valid one with one field made hostile, so the reason can be checked to name that field and
 * the place (index, subject); good events batched with bad ones must come out exactly as they do
 * alone; and text built from a hostile JSON grammar (escapes of every code unit, NUL, lone
 * surrogates, numbers past the double range, duplicate and __proto__ fields, nesting) must give
 * bounded reasons and only events that satisfy the contract.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeMessage, type DecodeLimits } from './decode.js';

const LIMITS: DecodeLimits = { maxPayloadBytes: 1_048_576, maxEventsPerMessage: 10_000, maxKeyLength: 256, maxTags: 32, maxFutureMs: 3_600_000 };
const NOW = Date.UTC(2026, 10, 23, 12, 0, 0, 0);
const MSG_TIME = NOW - 4_321;
const SUBJECT = 'weir.events.cpu';
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** Longest reason the decoder may give, beyond the subject it names: a reason is a log line and a header, not a copy of the input. */
const MAX_REASON = 1024;

interface Accepted {
  metric: string;
  key: string;
  ts: number;
  value: number;
  tags?: Readonly<Record<string, string>>;
}
interface Rejected {
  reason: string;
  index: number;
  raw: string;
}

const utf8 = (s: string) => new TextEncoder().encode(s);

function decode(text: string | Uint8Array, subject = SUBJECT) {
  const data = typeof text === 'string' ? utf8(text) : text;
  const accepted: Accepted[] = [];
  const rejected: Rejected[] = [];
  const ret = decodeMessage(subject, data, () => MSG_TIME, NOW, LIMITS, {
    accept: (metric, key, ts, value, tags) => accepted.push({ metric, key, ts, value, ...(tags !== undefined ? { tags } : {}) }),
    reject: (reason, index, raw) => rejected.push({ reason, index, raw }),
  });
  expect(ret).toBe(accepted.length);
  return { accepted, rejected };
}

/** What every verdict must satisfy, whatever the input. */
function expectWellFormed(r: ReturnType<typeof decode>, subject = SUBJECT) {
  for (const a of r.accepted) {
    expect(a.metric).toBe(subject.slice('weir.events.'.length));
    expect(typeof a.key).toBe('string');
    expect(a.key.length).toBeGreaterThan(0);
    expect(a.key.length).toBeLessThanOrEqual(LIMITS.maxKeyLength);
    expect(CONTROL.test(a.key), JSON.stringify(a.key)).toBe(false);
    expect(LONE.test(a.key), JSON.stringify(a.key)).toBe(false);
    expect(Number.isFinite(a.value)).toBe(true);
    expect(Number.isSafeInteger(a.ts)).toBe(true);
    expect(a.ts).toBeGreaterThanOrEqual(0);
    expect(a.ts).toBeLessThanOrEqual(NOW + LIMITS.maxFutureMs);
    if (a.tags !== undefined) {
      expect(Object.keys(a.tags).length).toBeLessThanOrEqual(LIMITS.maxTags);
      for (const v of Object.values(a.tags)) expect(typeof v).toBe('string');
    }
  }
  for (const x of r.rejected) {
    // Says what is wrong (the payload, the subject or the event's field) and where.
    expect(x.reason, x.reason.slice(0, 200)).toMatch(/^(payload |subject |event[. ])/);
    expect(x.reason.length, x.reason.slice(0, 200)).toBeLessThanOrEqual(MAX_REASON + subject.length);
    if (x.index >= 0) expect(x.reason.endsWith(` at index ${x.index} (subject ${subject})`), x.reason).toBe(true);
    else if (!x.reason.startsWith('subject ')) expect(x.reason.endsWith(`(subject ${subject})`), x.reason).toBe(true);
    expect(x.raw.length).toBeLessThanOrEqual(4096);
  }
}

// ---- valid events and one-field mutations ----------------------------------------------------

const validKey = fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).filter((k) => !CONTROL.test(k));
const validTs = fc.oneof(
  fc.constant(undefined),
  fc.integer({ min: 0, max: NOW + LIMITS.maxFutureMs }),
  fc.constantFrom(0, 1, NOW, NOW + LIMITS.maxFutureMs),
  fc.integer({ min: 0, max: NOW + LIMITS.maxFutureMs }).map((t) => new Date(t).toISOString()),
  fc.constantFrom('1970-01-01T00:00:00Z', '1970-01-01T00:00:00.000+00:00', '2026-11-23T12:00:00+01:00'),
);
const validEvent = fc.record(
  {
    key: validKey,
    value: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.constantFrom(0, -0, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308)),
    ts: validTs,
    tags: fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ unit: 'binary', maxLength: 10 }), { maxKeys: 5 }),
    id: fc.string({ maxLength: 10 }),
    metric: fc.constant('cpu'),
  },
  { requiredKeys: ['key', 'value'] },
).map((e) => {
  const out: Record<string, unknown> = { ...e };
  if (out.ts === undefined) delete out.ts;
  return out;
});

/** What the decoder must give for a valid event. */
function expectedOf(e: Record<string, unknown>): Accepted {
  const ts = e.ts === undefined ? MSG_TIME : typeof e.ts === 'number' ? e.ts : Date.parse(e.ts as string);
  return {
    metric: 'cpu',
    key: e.key as string,
    ts,
    value: (e.value as number) + 0,
    ...(e.tags !== undefined ? { tags: JSON.parse(JSON.stringify(e.tags)) } : {}),
  };
}

/** A JSON value spliced in as raw text (NaN-like numbers JSON.stringify cannot write). */
const RAW = (text: string) => ({ __raw: text });
function toText(v: unknown): string {
  const slots: string[] = [];
  const s = JSON.stringify(v, (_k, x) => {
    if (x && typeof x === 'object' && '__raw' in x) {
      slots.push((x as { __raw: string }).__raw);
      return `\u0000RAW${slots.length - 1}\u0000`;
    }
    return x;
  });
  return s.replace(/"\\u0000RAW(\d+)\\u0000"/g, (_m, i) => slots[Number(i)]);
}

interface Mutation {
  /** The field the reason must name. */
  field: 'key' | 'value' | 'ts' | 'tags' | 'id' | 'metric' | 'event';
  /** For the counterexample. */
  what?: string;
  apply: (e: Record<string, unknown>) => unknown;
}

const control = fc.integer({ min: 0, max: 0x9f }).filter((c) => c < 0x20 || c >= 0x7f).map((c) => String.fromCharCode(c));
const lone = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const notString = fc.oneof(fc.integer(), fc.constant(null), fc.boolean(), fc.constant([]), fc.constant({}), fc.array(fc.string(), { minLength: 1, maxLength: 2 }));
const set = (field: string, v: unknown) => Object.assign((e: Record<string, unknown>) => ({ ...e, [field]: v }), { toString: () => `set ${field} ${toText(v)}` });
const drop = (field: string) => (e: Record<string, unknown>) => {
  const o = { ...e };
  delete o[field];
  return o;
};

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  // key
  fc.constant<Mutation>({ field: 'key', apply: drop('key') }),
  fc.constant<Mutation>({ field: 'key', apply: set('key', '') }),
  notString.map<Mutation>((v) => ({ field: 'key', apply: set('key', v) })),
  fc.integer({ min: LIMITS.maxKeyLength + 1, max: LIMITS.maxKeyLength + 50 }).map<Mutation>((n) => ({ field: 'key', apply: set('key', 'k'.repeat(n)) })),
  fc.tuple(control, fc.nat()).map<Mutation>(([c, at]) => ({
    field: 'key',
    apply: (e) => {
      const k = e.key as string;
      const i = at % (k.length + 1);
      return { ...e, key: k.slice(0, i) + c + k.slice(i) };
    },
  })),
  fc.tuple(lone, fc.boolean()).map<Mutation>(([s, atEnd]) => ({ field: 'key', apply: (e) => ({ ...e, key: atEnd ? `${e.key as string}${s}` : `${s}x${e.key as string}` }) })),
  // value: numbers as strings, null, missing, other types, past the double range (Infinity once parsed)
  fc.constantFrom('12', '1e3', ' 5', 'NaN', 'Infinity', '-Infinity', '0x1F', '').map<Mutation>((s) => ({ field: 'value', apply: set('value', s) })),
  fc.constant<Mutation>({ field: 'value', apply: drop('value') }),
  fc.oneof(fc.constant(null), fc.boolean(), fc.constant([1]), fc.constant({ v: 1 })).map<Mutation>((v) => ({ field: 'value', apply: set('value', v) })),
  fc.constantFrom('1e400', '-1e400', '1e309', '-2e308', '123456789e999').map<Mutation>((t) => ({ field: 'value', apply: set('value', RAW(t)) })),
  // ts: before 1970, fractions, year 9999, beyond the Date range, numbers as strings, no zone, other types
  fc.oneof(
    fc.integer({ min: -1e15, max: -1 }),
    fc.constantFrom(0.5, 1.5, -0.5, NOW + 0.25),
    fc.integer({ min: NOW + LIMITS.maxFutureMs + 1, max: 253402300799999 }),
    fc.constantFrom(253402300800000, 8.64e15, 8.64e15 + 1, 1e16, 1e21, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE),
    fc.constantFrom('9999-12-31T23:59:59Z', '9999-01-01', '1969-12-31T23:59:59.999Z', '12', String(NOW), '2026-11-23T12:00:00', '2026-02-30T00:00:00Z', 'yesterday', '', '+275760-09-13T00:00:00Z'),
    fc.oneof(fc.constant(null), fc.boolean(), fc.constant([NOW]), fc.constant({ ms: NOW })),
  ).map<Mutation>((v) => ({ field: 'ts', apply: set('ts', v) })),
  fc.constantFrom('1e400', '-1e400', '1e21').map<Mutation>((t) => ({ field: 'ts', apply: set('ts', RAW(t)) })),
  // tags
  fc.oneof(fc.constant([]), fc.constant('a=b'), fc.integer(), fc.constant(null), fc.boolean()).map<Mutation>((v) => ({ field: 'tags', apply: set('tags', v) })),
  fc.tuple(fc.string({ maxLength: 8 }), notString).map<Mutation>(([k, v]) => ({ field: 'tags', apply: (e) => ({ ...e, tags: { ...(e.tags as object), [k]: v } }) })),
  fc.integer({ min: LIMITS.maxTags + 1, max: LIMITS.maxTags + 10 }).map<Mutation>((n) => ({ field: 'tags', apply: set('tags', Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, 'v']))) })),
  // id, metric
  fc.oneof(fc.integer(), fc.constant(null), fc.boolean(), fc.constant({})).map<Mutation>((v) => ({ field: 'id', apply: set('id', v) })),
  fc.oneof(fc.constantFrom('mem', 'CPU', 'cpu ', '', 'cpu\u0000'), fc.integer(), fc.constant(null)).map<Mutation>((v) => ({ field: 'metric', apply: set('metric', v) })),
  // not an object at all
  // (an array in place of the event is a batch of its own when alone: see the batch property)
  fc.oneof(fc.integer(), fc.string({ maxLength: 5 }), fc.constant(null), fc.boolean()).map<Mutation>((v) => ({ field: 'event', what: toText(v), apply: () => v })),
);

const fieldReason = (field: Mutation['field']) => (field === 'event' ? /^event must be a JSON object/ : new RegExp(`^event\\.${field}[ .]`));

describe('decoder fuzz: a valid event with one hostile field', () => {
  it('alone: rejected as a whole (index -1), the reason names the field and the subject', () => {
    fc.assert(
      fc.property(validEvent, mutation, (e, m) => {
        const r = decode(toText(m.apply(e)));
        expectWellFormed(r);
        expect(r.accepted).toEqual([]);
        expect(r.rejected).toHaveLength(1);
        expect(r.rejected[0].index).toBe(-1);
        expect(r.rejected[0].reason).toMatch(fieldReason(m.field));
      }),
      { numRuns: 1500 },
    );
  });

  it('in a batch: each bad event rejected at its index naming its field; every good one accepted exactly as it is alone', () => {
    const slot = fc.oneof({ weight: 3, arbitrary: validEvent.map((e) => ({ e, m: null as Mutation | null })) }, { weight: 2, arbitrary: fc.tuple(validEvent, mutation).map(([e, m]) => ({ e, m })) });
    fc.assert(
      fc.property(fc.array(slot, { minLength: 1, maxLength: 25 }), (slots) => {
        const r = decode(toText(slots.map((s) => (s.m ? s.m.apply(s.e) : s.e))));
        expectWellFormed(r);
        const goods = slots.filter((s) => !s.m);
        expect(r.accepted).toEqual(goods.map((s) => expectedOf(s.e)));
        // the same as each decoded alone
        for (let i = 0; i < goods.length; i++) expect(decode(toText(goods[i].e)).accepted).toEqual([r.accepted[i]]);
        const bad = slots.flatMap((s, i) => (s.m ? [{ i, field: s.m.field }] : []));
        expect(r.rejected.map((x) => x.index)).toEqual(bad.map((b) => b.i));
        bad.forEach((b, j) => expect(r.rejected[j].reason).toMatch(fieldReason(b.field)));
      }),
      { numRuns: 700 },
    );
  });

  it('a message that is not JSON (NaN, Infinity, a raw control character, a trailing comma) rejects only itself: the next message decodes as before', () => {
    const breakers = ['NaN', 'Infinity', '-Infinity', 'undefined', "'12'", '0x10', '+1', '.5', '01'];
    fc.assert(
      fc.property(fc.array(validEvent, { minLength: 1, maxLength: 5 }), fc.nat(), fc.constantFrom(...breakers, '\u0000', '\u0007', ','), (events, at, breaker) => {
        const i = at % events.length;
        const text = toText(events.map((e, j) => (j === i ? { ...e, value: RAW(breaker === '\u0000' || breaker === '\u0007' ? `"a${breaker}b"` : breaker === ',' ? '1,' : breaker) } : e)));
        const broken = decode(text);
        expectWellFormed(broken);
        if (breaker === '\u0000' || breaker === '\u0007') {
          // a raw control character inside a JSON string is not JSON
          expect(broken.rejected.map((x) => x.index)).toEqual([-1]);
          expect(broken.rejected[0].reason).toMatch(/^payload is not valid JSON/);
        } else {
          expect(broken.accepted).toEqual([]);
          expect(broken.rejected).toHaveLength(1);
          expect(broken.rejected[0].index).toBe(-1);
          expect(broken.rejected[0].reason).toMatch(/^payload is not valid JSON/);
        }
        // the decoder keeps no state between messages
        expect(decode(toText(events)).accepted).toEqual(events.map(expectedOf));
      }),
      { numRuns: 300 },
    );
  });
});

// ---- hand-written hostile cases: the verdict for each --------------------------------------

describe('decoder: hostile cases of issue 5, each with its verdict', () => {
  const good = { key: 'g', value: 1, ts: NOW };
  const cases: { what: string; event: unknown; reason?: RegExp; ts?: number }[] = [
    { what: 'ts 0 (1970-01-01) is a valid time', event: { key: 'k', value: 1, ts: 0 }, ts: 0 },
    { what: 'ts "1970-01-01T00:00:00Z" is a valid time', event: { key: 'k', value: 1, ts: '1970-01-01T00:00:00Z' }, ts: 0 },
    { what: 'ts in 9999 (ms) is in the future', event: { key: 'k', value: 1, ts: 253402300799999 }, reason: /^event\.ts 9999-12-31T23:59:59\.999Z is more than 3600000 ms in the future/ },
    { what: 'ts in 9999 (ISO) is in the future', event: { key: 'k', value: 1, ts: '9999-12-31T23:59:59Z' }, reason: /^event\.ts 9999-12-31T23:59:59\.000Z is more than/ },
    { what: 'ts 2026-02-30 (Date.parse would take it for March 2)', event: { key: 'k', value: 1, ts: '2026-02-30T00:00:00Z' }, reason: /^event\.ts is not a valid date: "2026-02-30T00:00:00Z"/ },
    { what: 'ts 2026-04-31 (date only)', event: { key: 'k', value: 1, ts: '2026-04-31' }, reason: /^event\.ts is not a valid date/ },
    { what: 'ts 2024-02-29 (a leap day) is a valid time', event: { key: 'k', value: 1, ts: '2024-02-29T00:00:00Z' }, ts: Date.UTC(2024, 1, 29) },
    { what: 'ts "12" (a number as a string)', event: { key: 'k', value: 1, ts: '12' }, reason: /^event\.ts must be ISO-8601 with a zone .*got "12"/ },
    { what: 'value "12" (a number as a string)', event: { key: 'k', value: '12' }, reason: /^event\.value must be a finite number, got string "12"/ },
    { what: 'value 1e400 (Infinity)', event: { key: 'k', value: RAW('1e400') }, reason: /^event\.value must be a finite number, got Infinity/ },
    { what: 'value -1e400 (-Infinity)', event: { key: 'k', value: RAW('-1e400') }, reason: /^event\.value must be a finite number, got -Infinity/ },
    { what: 'value "NaN"', event: { key: 'k', value: 'NaN' }, reason: /^event\.value must be a finite number, got string "NaN"/ },
    { what: 'NUL in a key', event: { key: 'a\u0000b', value: 1 }, reason: /^event\.key "a\\u0000b" contains a control character/ },
    { what: 'DEL in a key', event: { key: 'a\u007fb', value: 1 }, reason: /control character/ },
    { what: 'a C1 control (U+0085) in a key', event: { key: 'a\u0085b', value: 1 }, reason: /control character/ },
    { what: 'a lone surrogate in a key', event: { key: 'a\ud83d', value: 1 }, reason: /lone UTF-16 surrogate/ },
    { what: 'unicode key (Cyrillic, emoji, RTL override, BOM, zero-width joiner, U+2028)', event: { key: 'ключ-😀\u202e\ufeff\u200d\u2028', value: 1 } },
    { what: 'key with ILP and SQL metacharacters', event: { key: `a b,c=d\\e"f'g;--`, value: 1 } },
    { what: 'a tag named by 10,000 characters with a bad value: the reason stays short', event: { key: 'k', value: 1, tags: { ['t'.repeat(10_000)]: 1 } }, reason: /^event\.tags\."t{40}…" must be a string/ },
    { what: '__proto__ as a tag name', event: JSON.parse('{"key":"k","value":1,"tags":{"__proto__":"x"}}') },
    { what: 'duplicate key field: the last one counts', event: RAW('{"key":"ok","key":"a\\u0000","value":1}'), reason: /^event\.key "a\\u0000" contains a control character/ },
  ];
  for (const c of cases)
    it(c.what, () => {
      const alone = decode(toText(c.event));
      const batch = decode(toText([good, c.event, good]));
      expectWellFormed(alone);
      expectWellFormed(batch);
      if (c.reason) {
        expect(alone.accepted).toEqual([]);
        expect(alone.rejected.map((x) => x.reason)).toHaveLength(1);
        expect(alone.rejected[0].reason).toMatch(c.reason);
        expect(batch.rejected.map((x) => x.index)).toEqual([1]);
        expect(batch.rejected[0].reason).toMatch(c.reason);
        expect(batch.accepted.map((a) => a.key)).toEqual(['g', 'g']);
      } else {
        expect(alone.rejected).toEqual([]);
        expect(alone.accepted).toHaveLength(1);
        if (c.ts !== undefined) expect(alone.accepted[0].ts).toBe(c.ts);
        expect(batch.accepted).toHaveLength(3);
        expect(batch.accepted[1]).toEqual(alone.accepted[0]);
      }
    });

  it('invalid UTF-8 anywhere in a message (overlong NUL, a surrogate encoded in UTF-8, a stray continuation byte, 0xff) rejects the message, naming UTF-8', () => {
    const pre = utf8('[{"key":"g","value":1},{"key":"');
    const post = utf8('","value":2}]');
    for (const bad of [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0x80], [0xff], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]) {
      const data = new Uint8Array([...pre, ...bad, ...post]);
      const r = decode(data);
      expectWellFormed(r);
      expect(r.accepted).toEqual([]);
      expect(r.rejected.map((x) => [x.index, x.reason])).toEqual([[-1, `payload is not valid UTF-8 (subject ${SUBJECT})`]]);
    }
  });
});

// ---- a hostile JSON grammar -----------------------------------------------------------------

/** A JSON string literal with escapes of any UTF-16 code unit (NUL, controls, lone surrogates), raw non-ASCII and plain text. */
const jsonString = fc
  .array(
    fc.oneof(
      fc.string({ unit: 'grapheme-ascii', maxLength: 4 }).map((s) => JSON.stringify(s).slice(1, -1)),
      fc.integer({ min: 0, max: 0xffff }).map((c) => `\\u${c.toString(16).padStart(4, '0')}`),
      fc.string({ unit: 'binary', maxLength: 3 }).filter((s) => !CONTROL.test(s)).map((s) => JSON.stringify(s).slice(1, -1)),
      fc.constantFrom('\\n', '\\t', '\\"', '\\\\', '\\/', '\\b', '\\f', '\\r'),
    ),
    { maxLength: 6 },
  )
  .map((parts) => `"${parts.join('')}"`);
const jsonNumber = fc.oneof(
  fc.double().filter(Number.isFinite).map(String),
  fc.integer().map(String),
  fc.constantFrom('0', '-0', '1e400', '-1e400', '1e-400', '1E+2', '9007199254740993', '253402300800000', '8640000000000001', String(NOW), '0.1e1', '-0.0'),
);
const { value: jsonValue } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, jsonString, jsonNumber, fc.constantFrom('true', 'false', 'null'), tie('object'), tie('array')),
  array: fc.array(tie('value'), { maxLength: 4 }).map((xs) => `[${xs.join(',')}]`),
  object: fc
    .array(fc.tuple(fc.oneof(jsonString, fc.constantFrom('"key"', '"value"', '"ts"', '"tags"', '"id"', '"metric"', '"__proto__"', '"constructor"')), tie('value')), { maxLength: 5 })
    .map((kvs) => `{${kvs.map(([k, v]) => `${k}:${v}`).join(',')}}`),
}));
/** Event-shaped objects whose fields come from the hostile grammar (so that many get as far as the field checks). */
const eventText = fc
  .record({
    key: fc.oneof(jsonString, jsonValue),
    value: fc.oneof(jsonNumber, jsonValue),
    ts: fc.option(fc.oneof(jsonNumber, jsonString, jsonValue), { nil: undefined }),
    tags: fc.option(fc.oneof(jsonValue, fc.array(fc.tuple(jsonString, fc.oneof(jsonString, jsonValue)), { maxLength: 3 }).map((kv) => `{${kv.map(([k, v]) => `${k}:${v}`).join(',')}}`)), { nil: undefined }),
    extra: fc.option(fc.tuple(fc.constantFrom('"key"', '"value"', '"__proto__"', '"metric"'), jsonValue), { nil: undefined }),
  })
  .map((e) => {
    const f = [`"key":${e.key}`, `"value":${e.value}`];
    if (e.ts !== undefined) f.push(`"ts":${e.ts}`);
    if (e.tags !== undefined) f.push(`"tags":${e.tags}`);
    if (e.extra !== undefined) f.push(`${e.extra[0]}:${e.extra[1]}`);
    return `{${f.join(',')}}`;
  });
const ws = fc.constantFrom('', ' ', '\n', '\t', '\r\n', '\u00a0', '\ufeff');

describe('decoder fuzz: a hostile JSON grammar', () => {
  it('never throws; every verdict is well formed; an accepted event equals what JSON.parse says the text holds', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof({ weight: 4, arbitrary: eventText }, { weight: 1, arbitrary: jsonValue }), { minLength: 1, maxLength: 8 }), fc.boolean(), ws, ws, (items, asArray, w1, w2) => {
        const text = `${w1}${asArray || items.length > 1 ? `[${items.join(',')}]` : items[0]}${w2}`;
        const r = decode(text);
        expectWellFormed(r);
        let parsed: unknown;
        try {
          // the decoder's TextDecoder drops a leading byte order mark
          parsed = JSON.parse(text.replace(/^\ufeff/, ''));
        } catch {
          expect(r.accepted).toEqual([]);
          expect(r.rejected.map((x) => x.index)).toEqual([-1]);
          return;
        }
        const list = Array.isArray(parsed) ? parsed : [parsed];
        expect(r.accepted.length + r.rejected.length).toBe(list.length);
        let a = 0;
        const rejectedAt = new Set(r.rejected.map((x) => x.index));
        list.forEach((e, i) => {
          if (rejectedAt.has(Array.isArray(parsed) ? i : -1)) return;
          const got = r.accepted[a++];
          const ev = e as Record<string, unknown>;
          expect(got.key).toBe(ev.key);
          expect(Object.is(got.value, (ev.value as number) + 0) || got.value === ev.value).toBe(true);
          if (ev.ts === undefined) expect(got.ts).toBe(MSG_TIME);
          else expect(got.ts).toBe(typeof ev.ts === 'number' ? ev.ts : Date.parse(ev.ts as string));
        });
        expect(a).toBe(r.accepted.length);
      }),
      { numRuns: 2500 },
    );
  });

  it('a leading UTF-8 byte order mark is dropped (TextDecoder); NBSP, which JSON does not count as whitespace, makes the message not JSON', () => {
    expect(decode('\ufeff{"key":"k","value":1}').accepted.map((a) => a.key)).toEqual(['k']);
    expect(decode('{"key":"k","value":1}\ufeff').rejected.map((x) => x.reason)).toEqual([expect.stringMatching(/^payload is not valid JSON/)]);
    expect(decode('\u00a0{"key":"k","value":1}').rejected.map((x) => x.reason)).toEqual([expect.stringMatching(/^payload is not valid JSON/)]);
  });
});
