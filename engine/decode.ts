/**
 * Decoding and validation of events per contract v1. One NATS message on weir.events.<metric>
 * holds one JSON object or an array of them:
 *   {"key": string, "value": finite number, "ts"?: ms integer | ISO-8601, "tags"?: {..}, "id"?: string, "metric"?: string}
 * Good events go to `accept`; each bad one goes to `reject` with a reason that says what is
 * wrong and where, and never affects its neighbours.
 */
import { LONE_SURROGATE } from './subjects.js';

export const METRIC_RE = /^[A-Za-z0-9_:-]+$/;
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;
const ISO_RE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/;

export interface DecodeLimits {
  maxPayloadBytes: number;
  maxEventsPerMessage: number;
  maxKeyLength: number;
  maxTags: number;
  /** Events with ts later than now + maxFutureMs are rejected. */
  maxFutureMs: number;
}

export interface DecodeSink {
  /** `tags` is the event's tags object (already checked: string values, at most maxTags), when it has one. */
  accept(metric: string, key: string, ts: number, value: number, tags?: Readonly<Record<string, string>>): void;
  /** `index` is the position in an array payload, or -1 for the whole message. `raw` is the offending part. */
  reject(reason: string, index: number, raw: string): void;
}

const SUBJECT_PREFIX = 'weir.events.';
const metricCache = new Map<string, string | Error>();

/** The metric of a subject `weir.events.<metric>`, or an Error that says why the subject is bad. */
export function metricOfSubject(subject: string): string | Error {
  let m = metricCache.get(subject);
  if (m !== undefined) return m;
  if (!subject.startsWith(SUBJECT_PREFIX)) m = new Error(`subject ${subject} is not under ${SUBJECT_PREFIX}<metric>`);
  else {
    const metric = subject.slice(SUBJECT_PREFIX.length);
    m = METRIC_RE.test(metric)
      ? metric
      : new Error(`subject ${subject}: metric "${metric}" must be letters, digits, "_", "-" or ":" (no dots)`);
  }
  if (metricCache.size > 100_000) metricCache.clear();
  metricCache.set(subject, m);
  return m;
}

/** Parses a contract timestamp (ms integer or ISO-8601 with a zone); returns an Error on anything else. */
export function parseEventTs(ts: unknown): number | Error {
  if (typeof ts === 'number') {
    if (!Number.isInteger(ts)) return new Error(`ts must be an integer number of ms since the epoch or an ISO-8601 string, got ${ts}`);
    if (ts < 0) return new Error(`ts must not be before 1970-01-01, got ${ts}`);
    return ts;
  }
  if (typeof ts === 'string') {
    if (!ISO_RE.test(ts)) return new Error(`ts must be ISO-8601 with a zone (e.g. 2026-01-02T03:04:05.678Z), got ${JSON.stringify(ts.slice(0, 64))}`);
    const ms = Date.parse(ts);
    if (!Number.isFinite(ms) || !dayExists(ts)) return new Error(`ts is not a valid date: ${JSON.stringify(ts)}`);
    if (ms < 0) return new Error(`ts must not be before 1970-01-01, got ${ts}`);
    return ms;
  }
  return new Error(`ts must be a number (ms) or an ISO-8601 string, got ${describe(ts)}`);
}

/**
 * Whether the day of an ISO date exists: Date.parse takes 2026-02-30 for 2026-03-02 and 2026-04-31
 * for 2026-05-01, silently moving an impossible time into the next month.
 */
function dayExists(iso: string): boolean {
  const y = Number(iso.slice(0, 4));
  const m = Number(iso.slice(5, 7));
  const d = Number(iso.slice(8, 10));
  return m >= 1 && m <= 12 && d >= 1 && d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
}

/** A field name as a reason shows it: plain names as they are, any other quoted and cut to 40 characters. */
function fieldName(k: string): string {
  return /^[A-Za-z0-9_-]{1,40}$/.test(k) ? k : JSON.stringify(k.length > 40 ? k.slice(0, 40) + '…' : k);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

/** Validates one event object; returns null if good (after calling accept) or the reason. */
function validateEvent(e: unknown, metric: string, defaultTs: () => number, now: number, limits: DecodeLimits, sink: DecodeSink): string | null {
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return `event must be a JSON object, got ${describe(e)}`;
  const ev = e as Record<string, unknown>;
  const key = ev.key;
  if (typeof key !== 'string') return `event.key must be a string, got ${describe(key)}`;
  if (key.length === 0) return 'event.key must not be empty';
  if (key.length > limits.maxKeyLength) return `event.key is ${key.length} characters, the limit is ${limits.maxKeyLength}`;
  if (CONTROL_RE.test(key)) return `event.key ${JSON.stringify(key.slice(0, 40))} contains a control character`;
  if (LONE_SURROGATE.test(key)) return `event.key ${JSON.stringify(key.slice(0, 40))} is not well-formed Unicode (a lone UTF-16 surrogate)`;
  const value = ev.value;
  if (typeof value !== 'number') return `event.value must be a finite number, got ${describe(value)} (key ${key})`;
  if (!Number.isFinite(value)) return `event.value must be a finite number, got ${value} (key ${key})`;
  if (ev.metric !== undefined && ev.metric !== metric) return `event.metric ${describe(ev.metric)} does not match the subject's metric "${metric}" (key ${key})`;
  let ts: number;
  if (ev.ts === undefined) ts = defaultTs();
  else {
    const parsed = parseEventTs(ev.ts);
    if (parsed instanceof Error) return `event.${parsed.message} (key ${key})`;
    ts = parsed;
  }
  if (ts > now + limits.maxFutureMs) return `event.ts ${isoOrRaw(ts)} is more than ${limits.maxFutureMs} ms in the future (key ${key})`;
  if (ev.tags !== undefined) {
    const tags = ev.tags;
    if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) return `event.tags must be an object of strings, got ${describe(tags)} (key ${key})`;
    let n = 0;
    for (const [k, v] of Object.entries(tags)) {
      if (typeof v !== 'string') return `event.tags.${fieldName(k)} must be a string, got ${describe(v)} (key ${key})`;
      if (++n > limits.maxTags) return `event.tags has more than ${limits.maxTags} entries (key ${key})`;
    }
  }
  if (ev.id !== undefined && typeof ev.id !== 'string') return `event.id must be a string, got ${describe(ev.id)} (key ${key})`;
  sink.accept(metric, key, ts, value, ev.tags as Readonly<Record<string, string>> | undefined);
  return null;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes one message. `msgTime` gives the JetStream message time in ms (asked only when an event has no ts).
 * Returns the number of events accepted.
 */
export function decodeMessage(subject: string, data: Uint8Array, msgTime: () => number, now: number, limits: DecodeLimits, sink: DecodeSink): number {
  const metric = metricOfSubject(subject);
  const rawOf = () => safeText(data, 4096);
  if (metric instanceof Error) {
    sink.reject(metric.message, -1, rawOf());
    return 0;
  }
  if (data.length > limits.maxPayloadBytes) {
    sink.reject(`payload is ${data.length} bytes, the limit is ${limits.maxPayloadBytes} (subject ${subject})`, -1, rawOf());
    return 0;
  }
  let text: string;
  try {
    text = decoder.decode(data);
  } catch {
    sink.reject(`payload is not valid UTF-8 (subject ${subject})`, -1, rawOf());
    return 0;
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    sink.reject(`payload is not valid JSON: ${(err as Error).message} (subject ${subject})`, -1, text.slice(0, 4096));
    return 0;
  }
  if (Array.isArray(body)) {
    if (body.length > limits.maxEventsPerMessage) {
      sink.reject(`payload holds ${body.length} events, the limit is ${limits.maxEventsPerMessage} (subject ${subject})`, -1, text.slice(0, 4096));
      return 0;
    }
    let ok = 0;
    for (let i = 0; i < body.length; i++) {
      const reason = validateEvent(body[i], metric, msgTime, now, limits, sink);
      if (reason === null) ok++;
      else sink.reject(`${reason} at index ${i} (subject ${subject})`, i, safeJson(body[i]));
    }
    return ok;
  }
  const reason = validateEvent(body, metric, msgTime, now, limits, sink);
  if (reason === null) return 1;
  sink.reject(`${reason} (subject ${subject})`, -1, text.slice(0, 4096));
  return 0;
}

function safeText(data: Uint8Array, max: number): string {
  return Buffer.from(data.buffer, data.byteOffset, Math.min(data.length, max)).toString('utf8');
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v)?.slice(0, 4096) ?? 'undefined';
  } catch {
    // Too deep to stringify (or to String()): say so instead of overflowing the stack again.
    try {
      return String(v).slice(0, 4096);
    } catch {
      return '<value too deeply nested to print>';
    }
  }
}

/** ISO form of a ms timestamp, or the raw number when it is outside the Date range (> 8.64e15). */
function isoOrRaw(ts: number): string {
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? String(ts) : d.toISOString();
}
