/**
 * Snapshots of the keyed operators (scores, trends, alerts, debounce, throttle): JSON text with a
 * `format` tag and the operator's spec, read back with checks that name where a problem is, so a
 * corrupt or mismatched checkpoint fails with an Error instead of a half-restored operator.
 * Numbers go through the window snapshots' encodeNumber/decodeNumber (±Infinity and NaN as
 * strings), plus "-0": a -0 that came back as 0 could change what an operator does next (a
 * running min of -0 against 0, a score of -0 in a top-K).
 */
import { decodeNumber, encodeNumber, notANumber } from '../windows/snapshot.js';

/** A number as JSON: finite numbers as they are, -0, ±Infinity and NaN as strings. */
export function encodeNum(x: number): number | string {
  return Object.is(x, -0) ? '-0' : encodeNumber(x);
}

/** How held values of type T become JSON values and back (debounce, throttle). */
export interface ValueCodec<T> {
  encode(value: T): unknown;
  /** Throws on a value it cannot take. */
  decode(json: unknown): T;
}

/**
 * The default codec: values that are JSON already (null, booleans, strings, finite numbers,
 * arrays and plain objects of them) go in as they are. Anything else (undefined, NaN, a Date, a
 * Map, a class instance, a cycle) is refused when the snapshot is taken rather than changed
 * silently. A -0 comes back as 0.
 */
export function jsonCodec<T>(): ValueCodec<T> {
  return {
    encode(value: T): unknown {
      checkJson(value, 'value', new Set());
      return value;
    },
    decode: (json: unknown) => json as T,
  };
}

function checkJson(v: unknown, where: string, open: Set<object>): void {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`${where} is ${v}, which JSON cannot hold (pass a codec)`);
    return;
  }
  if (typeof v !== 'object') throw new Error(`${where} is ${typeof v === 'undefined' ? 'undefined' : `a ${typeof v}`}, which JSON cannot hold (pass a codec)`);
  if (open.has(v)) throw new Error(`${where} is a cycle, which JSON cannot hold`);
  open.add(v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      if (!(i in v)) throw new Error(`${where}[${i}] is a hole, which JSON cannot hold`);
      checkJson(v[i], `${where}[${i}]`, open);
    }
  } else {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) throw new Error(`${where} is a ${proto?.constructor?.name ?? 'non-plain object'}, not plain JSON (pass a codec)`);
    for (const [k, x] of Object.entries(v)) checkJson(x, `${where}.${k}`, open);
  }
  open.delete(v);
}

/**
 * The first place where two JSON values differ, as "<path>: snapshot has X, this operator has Y"
 * (object keys in a different order count: the order of metrics and weights changes results).
 */
export function jsonDifference(theirs: unknown, mine: unknown, path: string): string | undefined {
  const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));
  if (JSON.stringify(theirs) === JSON.stringify(mine)) return undefined;
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (Array.isArray(theirs) && Array.isArray(mine)) {
    for (let i = 0; i < Math.min(theirs.length, mine.length); i++) {
      const d = jsonDifference(theirs[i], mine[i], `${path}[${i}]`);
      if (d) return d;
    }
    return `${path}: snapshot has ${theirs.length} entries, this operator ${mine.length}`;
  }
  if (isObject(theirs) && isObject(mine)) {
    for (const k of new Set([...Object.keys(mine), ...Object.keys(theirs)])) {
      const d = jsonDifference(theirs[k], mine[k], `${path}.${k}`);
      if (d) return d;
    }
    return `${path}: keys in another order (snapshot ${Object.keys(theirs).join(', ')}; this operator ${Object.keys(mine).join(', ')})`;
  }
  return `${path}: snapshot has ${show(theirs)}, this operator has ${show(mine)}`;
}

/** Reads one kind of snapshot; every error starts with "<what> snapshot: ". */
export class SnapshotReader {
  constructor(readonly what: string) {}

  fail(message: string): never {
    throw new Error(`${this.what} snapshot: ${message}`);
  }

  /**
   * Parses `text`, checks its format tag and that it was taken with `spec` (as JSON, after
   * dropping undefined fields), and returns the top-level object.
   */
  open(text: unknown, format: string, spec: unknown): Record<string, unknown> {
    if (typeof text !== 'string') this.fail(`expected JSON text, got ${typeof text}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      this.fail(`not JSON (${(err as Error).message})`);
    }
    const top = this.object(parsed, 'the snapshot');
    if (top.format !== format) this.fail(`format ${JSON.stringify(top.format)} is not ${format}`);
    const diff = jsonDifference(top.spec, JSON.parse(JSON.stringify(spec)), 'spec');
    if (diff) this.fail(`taken by an operator built with another spec: ${diff}`);
    return top;
  }

  object(v: unknown, where: string): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(`${where} must be an object, got ${kind(v)}`);
    return v as Record<string, unknown>;
  }

  array(v: unknown, where: string, length?: { min?: number; max?: number }): unknown[] {
    if (!Array.isArray(v)) this.fail(`${where} must be an array, got ${kind(v)}`);
    if (length?.min !== undefined && v.length < length.min) this.fail(`${where} must have at least ${length.min} entries, got ${v.length}`);
    if (length?.max !== undefined && v.length > length.max) this.fail(`${where} must have at most ${length.max} entries, got ${v.length}`);
    return v;
  }

  /** A number as encodeNum writes it (any double, NaN and ±Infinity included). */
  number(v: unknown, where: string): number {
    if (v === '-0') return -0;
    if ((typeof v === 'number' && Number.isFinite(v)) || v === 'Infinity' || v === '-Infinity' || v === 'NaN') return decodeNumber(v, where);
    this.fail(`${where} must be a number, got ${notANumber(v)}`);
  }

  finite(v: unknown, where: string): number {
    const x = this.number(v, where);
    if (!Number.isFinite(x)) this.fail(`${where} must be a finite number, got ${x}`);
    return x;
  }

  /** A whole number >= 0. */
  count(v: unknown, where: string): number {
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
    this.fail(`${where} must be a whole number >= 0, got ${JSON.stringify(v)}`);
  }

  string(v: unknown, where: string): string {
    if (typeof v === 'string') return v;
    this.fail(`${where} must be a string, got ${kind(v)}`);
  }

  boolean(v: unknown, where: string): boolean {
    if (typeof v === 'boolean') return v;
    this.fail(`${where} must be true or false, got ${JSON.stringify(v)}`);
  }

  oneOf<S extends string>(v: unknown, options: readonly S[], where: string): S {
    if (typeof v === 'string' && (options as readonly string[]).includes(v)) return v as S;
    this.fail(`${where} must be one of ${options.join(', ')}, got ${JSON.stringify(v)}`);
  }

  /** Keys must be unique within a snapshot. */
  unique(seen: Set<string>, key: string, where: string): void {
    if (seen.has(key)) this.fail(`${where}: key ${JSON.stringify(key)} appears twice`);
    seen.add(key);
  }

  /** Runs `fn`, prefixing an Error it throws (from a codec, a normaliser) with this snapshot's name and `where`. */
  within<R>(where: string, fn: () => R): R {
    try {
      return fn();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (message.startsWith(`${this.what} snapshot:`)) throw err;
      this.fail(`${where}: ${message}`);
    }
  }
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}
