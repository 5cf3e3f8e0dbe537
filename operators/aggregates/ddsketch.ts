import type { Aggregator } from '../aggregate.js';

/**
 * DDSketch (Masson, Rim, Lee, VLDB 2019): a quantile sketch with a relative-error guarantee.
 * Every returned quantile q lies within `alpha` (relative) of the true value at rank
 * floor(q * (n - 1)) of the sorted inputs, for any finite input, negative and zero included.
 * Buckets are logarithmic (gamma = (1 + alpha) / (1 - alpha)), stored sparsely, so the sketch
 * is mergeable by adding counts, and merges are exact: merge(a, b) equals the sketch of a ∪ b.
 *
 * Why not @datadog/sketches-js: its merge() (2.1.1) drops the negative store, and its protobuf
 * form stores every bucket of the range densely as a double. See docs/decisions.md.
 */
export interface DDSketch {
  readonly alpha: number;
  /** ln(gamma), cached. */
  readonly lnGamma: number;
  count: number;
  zeros: number;
  /** bucket key -> count for values > 0 (key = ceil(log_gamma(v))). */
  pos: Map<number, number>;
  /** bucket key -> count for values < 0, keyed by |v|. */
  neg: Map<number, number>;
}

/** Values whose magnitude is below this count as zero (far below any real measurement). */
const MIN_INDEXABLE = 1e-300;
export const DEFAULT_ALPHA = 0.005;

export function createSketch(alpha = DEFAULT_ALPHA): DDSketch {
  if (!(alpha > 0 && alpha < 1)) throw new Error(`ddsketch: relative accuracy must be in (0, 1), got ${alpha}`);
  const gamma = (1 + alpha) / (1 - alpha);
  return { alpha, lnGamma: Math.log(gamma), count: 0, zeros: 0, pos: new Map(), neg: new Map() };
}

/** The bucket key of |v| (v != 0); exposed so callers adding one value to several sketches compute it once. */
export function bucketKey(s: DDSketch, absValue: number): number {
  return Math.ceil(Math.log(absValue) / s.lnGamma);
}

/** Adds one finite value. */
export function sketchAdd(s: DDSketch, v: number, weight = 1): DDSketch {
  s.count += weight;
  if (v > MIN_INDEXABLE) {
    const k = Math.ceil(Math.log(v) / s.lnGamma);
    s.pos.set(k, (s.pos.get(k) ?? 0) + weight);
  } else if (v < -MIN_INDEXABLE) {
    const k = Math.ceil(Math.log(-v) / s.lnGamma);
    s.neg.set(k, (s.neg.get(k) ?? 0) + weight);
  } else {
    s.zeros += weight;
  }
  return s;
}

/** Merges b into a (same alpha required). */
export function sketchMerge(a: DDSketch, b: DDSketch): DDSketch {
  if (a.alpha !== b.alpha) throw new Error(`ddsketch: cannot merge relative accuracy ${a.alpha} with ${b.alpha}`);
  a.count += b.count;
  a.zeros += b.zeros;
  for (const [k, c] of b.pos) a.pos.set(k, (a.pos.get(k) ?? 0) + c);
  for (const [k, c] of b.neg) a.neg.set(k, (a.neg.get(k) ?? 0) + c);
  return a;
}

/** The representative value of bucket k: within alpha of every value the bucket holds. */
function bucketValue(s: DDSketch, k: number): number {
  const gamma = Math.exp(s.lnGamma);
  // In log space: gamma^k alone overflows for values near Number.MAX_VALUE.
  // Clamped: for values near Number.MAX_VALUE, MAX_VALUE is still within alpha of them.
  return Math.min(Number.MAX_VALUE, Math.exp(k * s.lnGamma + Math.log(2 / (gamma + 1))));
}

/**
 * Quantiles for several q at once (one sort of the buckets). Each q must be in [0, 1].
 * Returns NaN for an empty sketch.
 */
export function sketchQuantiles(s: DDSketch, qs: readonly number[]): number[] {
  if (s.count === 0) return qs.map(() => NaN);
  const negKeys = [...s.neg.keys()].sort((x, y) => y - x); // most negative value first
  const posKeys = [...s.pos.keys()].sort((x, y) => x - y);
  const out: number[] = [];
  for (const q of qs) {
    if (!(q >= 0 && q <= 1)) throw new Error(`ddsketch: quantile must be in [0, 1], got ${q}`);
    const rank = Math.floor(q * (s.count - 1));
    let seen = 0;
    let value = NaN;
    found: {
      for (const k of negKeys) {
        seen += s.neg.get(k)!;
        if (seen > rank) {
          value = -bucketValue(s, k);
          break found;
        }
      }
      seen += s.zeros;
      if (seen > rank) {
        value = 0;
        break found;
      }
      for (const k of posKeys) {
        seen += s.pos.get(k)!;
        if (seen > rank) {
          value = bucketValue(s, k);
          break found;
        }
      }
      value = bucketValue(s, posKeys[posKeys.length - 1]);
    }
    out.push(value);
  }
  return out;
}

// ---- compact binary form: version, alpha, zeros, then each store as (zigzag key delta, count) varints.

const VERSION = 1;

class ByteWriter {
  private buf = new Uint8Array(64);
  private len = 0;
  private ensure(n: number) {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  byte(b: number) {
    this.ensure(1);
    this.buf[this.len++] = b;
  }
  f64(v: number) {
    this.ensure(8);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 8).setFloat64(0, v, true);
    this.len += 8;
  }
  /** Unsigned varint for integers up to 2^53. */
  uvar(v: number) {
    while (v >= 0x80) {
      this.byte((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.byte(v);
  }
  svar(v: number) {
    this.uvar(v >= 0 ? v * 2 : -v * 2 - 1);
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

class ByteReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  private need(n: number) {
    if (this.pos + n > this.buf.length) throw new Error('ddsketch: truncated sketch');
  }
  byte(): number {
    this.need(1);
    return this.buf[this.pos++];
  }
  f64(): number {
    this.need(8);
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8).getFloat64(0, true);
    this.pos += 8;
    return v;
  }
  uvar(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      result += (b & 0x7f) * mul;
      if (result > Number.MAX_SAFE_INTEGER) throw new Error('ddsketch: varint beyond 2^53');
      if (b < 0x80) return result;
      mul *= 0x80;
    }
    throw new Error('ddsketch: varint too long');
  }
  svar(): number {
    const u = this.uvar();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }
  done(): boolean {
    return this.pos === this.buf.length;
  }
}

function writeStore(w: ByteWriter, store: Map<number, number>) {
  const keys = [...store.keys()].sort((a, b) => a - b);
  w.uvar(keys.length);
  let prev = 0;
  for (const k of keys) {
    w.svar(k - prev);
    w.uvar(store.get(k)!);
    prev = k;
  }
}

/** Bucket keys a finite, indexable value can have under `lnGamma`. */
function keyInRange(key: number, lnGamma: number): boolean {
  return key * lnGamma <= Math.log(Number.MAX_VALUE) + lnGamma && key * lnGamma >= Math.log(MIN_INDEXABLE) - lnGamma;
}

/** Reads one store, validating it, and hands each (key, count) to `add`; returns the total count. */
function readStore(r: ByteReader, add: (key: number, count: number) => void, lnGamma: number): number {
  const n = r.uvar();
  let key = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const delta = r.svar();
    // Keys are written strictly increasing and counts positive: anything else is corrupt.
    if (i > 0 && delta <= 0) throw new Error('ddsketch: bucket keys out of order or repeated');
    key += delta;
    if (!keyInRange(key, lnGamma)) throw new Error(`ddsketch: bucket key ${key} is out of range`);
    const c = r.uvar();
    if (c === 0) throw new Error('ddsketch: empty bucket in encoded sketch');
    add(key, c);
    total += c;
  }
  return total;
}

export function sketchToBytes(s: DDSketch): Uint8Array {
  const w = new ByteWriter();
  w.byte(VERSION);
  w.f64(s.alpha);
  w.uvar(s.zeros);
  writeStore(w, s.pos);
  writeStore(w, s.neg);
  return w.bytes();
}

export function sketchFromBytes(bytes: Uint8Array): DDSketch {
  const r = new ByteReader(bytes);
  const version = r.byte();
  if (version !== VERSION) throw new Error(`ddsketch: unknown sketch version ${version}`);
  const s = createSketch(r.f64());
  s.zeros = r.uvar();
  s.count = s.zeros + readStore(r, (k, c) => s.pos.set(k, c), s.lnGamma) + readStore(r, (k, c) => s.neg.set(k, c), s.lnGamma);
  if (!r.done()) throw new Error('ddsketch: trailing bytes after sketch');
  return s;
}

export function sketchToBase64(s: DDSketch): string {
  return Buffer.from(sketchToBytes(s)).toString('base64');
}

export function sketchFromBase64(text: string): DDSketch {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new Error('ddsketch: sketch is not base64');
  return sketchFromBytes(Buffer.from(text, 'base64'));
}

/** DDSketch as an Aggregator: result is the sketch itself (ask it with sketchQuantiles). */
export function ddsketch(alpha = DEFAULT_ALPHA): Aggregator<number, DDSketch, DDSketch> {
  return {
    create: () => createSketch(alpha),
    add: (acc, v) => sketchAdd(acc, v),
    merge: sketchMerge,
    result: (acc) => acc,
    serialize: sketchToBase64,
    deserialize: sketchFromBase64,
  };
}

/** A dense, growable count array over bucket keys [offset, offset + length). */
class DenseStore {
  counts = new Float64Array(0);
  offset = 0;
  /** Adds c at key k, growing the array (with headroom) when k is outside it. */
  add(k: number, c: number) {
    let i = k - this.offset;
    if (i < 0 || i >= this.counts.length) {
      this.grow(k);
      i = k - this.offset;
    }
    this.counts[i] += c;
  }
  private grow(k: number) {
    const n = this.counts.length;
    if (n === 0) {
      this.counts = new Float64Array(256);
      this.offset = k - 128;
      return;
    }
    const lo = Math.min(this.offset, k);
    const hi = Math.max(this.offset + n, k + 1);
    const span = hi - lo;
    const size = Math.max(span + 64, n * 2);
    const newOffset = k < this.offset ? hi - size : lo;
    const next = new Float64Array(size);
    next.set(this.counts, this.offset - newOffset);
    this.counts = next;
    this.offset = newOffset;
  }
  toMap(): Map<number, number> {
    const m = new Map<number, number>();
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i] !== 0) m.set(i + this.offset, this.counts[i]);
    return m;
  }
}

/**
 * Merges many encoded sketches (the base64 text stored in QuestDB) without building a sketch per
 * row: each one is decoded straight into dense count arrays. The result equals
 * sketchFromBase64(a) merged with every other one, and corrupt input throws exactly as
 * sketchFromBase64 does; after a throw the accumulator must be discarded.
 */
export class SketchAccumulator {
  private alpha = NaN;
  private lnGamma = NaN;
  private zeros = 0;
  private count = 0;
  private readonly pos = new DenseStore();
  private readonly neg = new DenseStore();
  /** Encoded sketches merged so far. */
  merged = 0;
  private readonly addPos = (k: number, c: number) => this.pos.add(k, c);
  private readonly addNeg = (k: number, c: number) => this.neg.add(k, c);

  addBase64(text: string): void {
    if (!BASE64_RE.test(text)) throw new Error('ddsketch: sketch is not base64');
    this.addBytes(Buffer.from(text, 'base64'));
  }

  addBytes(bytes: Uint8Array): void {
    const r = new ByteReader(bytes);
    const version = r.byte();
    if (version !== VERSION) throw new Error(`ddsketch: unknown sketch version ${version}`);
    const alpha = r.f64();
    if (this.merged === 0) {
      if (!(alpha > 0 && alpha < 1)) throw new Error(`ddsketch: relative accuracy must be in (0, 1), got ${alpha}`);
      this.alpha = alpha;
      this.lnGamma = Math.log((1 + alpha) / (1 - alpha));
    } else if (alpha !== this.alpha) {
      throw new Error(`ddsketch: cannot merge relative accuracy ${this.alpha} with ${alpha}`);
    }
    const zeros = r.uvar();
    const n = zeros + readStore(r, this.addPos, this.lnGamma) + readStore(r, this.addNeg, this.lnGamma);
    if (!r.done()) throw new Error('ddsketch: trailing bytes after sketch');
    this.zeros += zeros;
    this.count += n;
    this.merged++;
  }

  /** The merged sketch, or null when nothing was added. */
  result(): DDSketch | null {
    if (this.merged === 0) return null;
    const s = createSketch(this.alpha);
    s.zeros = this.zeros;
    s.count = this.count;
    s.pos = this.pos.toMap();
    s.neg = this.neg.toMap();
    return s;
  }
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
