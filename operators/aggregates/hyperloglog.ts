/**
 * HyperLogLog (Flajolet et al. 2007) with 64-bit hashes and Ertl's improved raw estimator
 * ("New cardinality estimation algorithms for HyperLogLog sketches", 2017, algorithms 6-8),
 * which needs neither bias tables nor a switch to linear counting and is unbiased from 0 to
 * far beyond 2^40 distinct items.
 *
 * m = 2^p registers; the relative standard error of the estimate is about 1.04 / sqrt(m)
 * (p = 12: 1.6 %, p = 14: 0.81 %). Merge is the register-wise max, so it is exact: the sketch of
 * a ∪ b is the merge of the sketches of a and b, whatever the order. Serialised registers take
 * 6 bits each (p = 12: 3 KB, 4 KB as base64).
 *
 * Items are hashed with MurmurHash3 (x86, 32-bit) under two seeds, giving 64 bits: the top p
 * bits pick the register, the other 64 - p bits give the rank.
 */

export interface Hll {
  readonly p: number;
  /** Register values, 0..(64 - p + 1). */
  readonly registers: Uint8Array;
}

export const MIN_PRECISION = 4;
export const MAX_PRECISION = 18;

export function hllCreate(p: number): Hll {
  if (!Number.isInteger(p) || p < MIN_PRECISION || p > MAX_PRECISION) throw new Error(`hyperloglog: precision must be an integer in [${MIN_PRECISION}, ${MAX_PRECISION}], got ${p}`);
  return { p, registers: new Uint8Array(1 << p) };
}

/** The documented relative standard error for precision p. */
export function hllStandardError(p: number): number {
  return 1.04 / Math.sqrt(2 ** p);
}

/** Adds an item by its 64-bit hash (two unsigned 32-bit halves). */
export function hllAddHash(h: Hll, hi: number, lo: number): void {
  const p = h.p;
  const idx = hi >>> (32 - p);
  const rest = (hi << p) >>> 0;
  const rank = rest !== 0 ? Math.clz32(rest) + 1 : 32 - p + (lo === 0 ? 32 : Math.clz32(lo)) + 1;
  if (rank > h.registers[idx]) h.registers[idx] = rank;
}

/** Merges b into a (same precision required). */
export function hllMerge(a: Hll, b: Hll): Hll {
  if (a.p !== b.p) throw new Error(`hyperloglog: cannot merge precision ${a.p} with ${b.p}`);
  const ra = a.registers;
  const rb = b.registers;
  for (let i = 0; i < ra.length; i++) if (rb[i] > ra[i]) ra[i] = rb[i];
  return a;
}

/** The cardinality estimate (not rounded). */
export function hllEstimate(h: Hll): number {
  const m = h.registers.length;
  const q = 64 - h.p;
  const c = new Float64Array(q + 2);
  for (const r of h.registers) c[r]++;
  let z = m * tau(1 - c[q + 1] / m);
  for (let k = q; k >= 1; k--) z = 0.5 * (z + c[k]);
  z += m * sigma(c[0] / m);
  return (m * m) / (2 * Math.LN2 * z);
}

function sigma(x: number): number {
  if (x === 1) return Infinity;
  let y = 1;
  let z = x;
  for (;;) {
    x *= x;
    const prev = z;
    z += x * y;
    y += y;
    if (z === prev) return z;
  }
}

function tau(x: number): number {
  if (x === 0 || x === 1) return 0;
  let y = 1;
  let z = 1 - x;
  for (;;) {
    x = Math.sqrt(x);
    const prev = z;
    y *= 0.5;
    z -= (1 - x) ** 2 * y;
    if (z === prev) return z / 3;
  }
}

// ---- hashing ----------------------------------------------------------------------------------

const SEED_HI = 0x9747b28c;
const SEED_LO = 0x5bd1e995;

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 of a string's UTF-16LE bytes. */
function murmurString(s: string, seed: number): number {
  let h = seed;
  const n = s.length;
  let i = 0;
  for (; i + 1 < n; i += 2) h = mix(h, s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16));
  if (i < n) {
    let k = s.charCodeAt(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
  }
  return fmix(h ^ (n * 2));
}

/** Adds a string item. */
export function hllAddString(h: Hll, s: string): void {
  hllAddHash(h, murmurString(s, SEED_HI), murmurString(s, SEED_LO));
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/** Adds a number item (by its IEEE-754 bits; -0 counts as 0). */
export function hllAddNumber(h: Hll, x: number): void {
  f64[0] = x + 0;
  const a = u32[0];
  const b = u32[1];
  hllAddHash(h, fmix(mix(mix(SEED_HI, a), b) ^ 8), fmix(mix(mix(SEED_LO, a), b) ^ 8));
}

// ---- 6-bit packed registers -------------------------------------------------------------------

/** Registers packed 6 bits each, little-endian bit order. */
export function hllToBytes(h: Hll): Uint8Array {
  const out = new Uint8Array(Math.ceil((h.registers.length * 6) / 8));
  let bit = 0;
  for (const r of h.registers) {
    const byte = bit >>> 3;
    const shift = bit & 7;
    out[byte] |= (r << shift) & 0xff;
    if (shift > 2) out[byte + 1] |= r >>> (8 - shift);
    bit += 6;
  }
  return out;
}

/** The inverse of hllToBytes; `fail` reports what is wrong. */
export function hllFromBytes(p: number, bytes: Uint8Array, fail: (what: string) => never): Hll {
  const h = hllCreate(p);
  const m = h.registers.length;
  const expected = Math.ceil((m * 6) / 8);
  if (bytes.length !== expected) fail(`precision ${p} needs ${expected} bytes of registers, got ${bytes.length}`);
  const maxRank = 64 - p + 1;
  let bit = 0;
  for (let i = 0; i < m; i++) {
    const byte = bit >>> 3;
    const shift = bit & 7;
    let r = bytes[byte] >>> shift;
    if (shift > 2) r |= bytes[byte + 1] << (8 - shift);
    r &= 0x3f;
    if (r > maxRank) fail(`register ${i} holds ${r}, more than the largest rank ${maxRank} at precision ${p}`);
    h.registers[i] = r;
    bit += 6;
  }
  return h;
}
