/**
 * HDR histogram quantiles (hdr-histogram-js) for any finite value.
 *
 * HDR records non-negative integers, so a value v is recorded as N = round(|v| / resolution) in
 * one histogram for v >= 0 and another for v < 0 (created on first use). Quantile q is the value
 * at 0-based rank floor(q · (n − 1)), as for DDSketch: the histogram returns the highest value of
 * that rank's bucket, so the estimate e satisfies
 *
 *   |e − v| <= 10^−digits · |v| + resolution · (1 + 10^−digits) / 2
 *
 * (relative error from the bucket width, absolute error from rounding to the resolution).
 * Magnitudes above resolution · (2^53 − 1) are recorded as that maximum. Merges add counts and
 * are exact. Counts per bucket are 32-bit.
 *
 * WebAssembly (`wasm: true`): recording is 3-4x faster and merging 5x (docs/operators-aggregates.md), but
 * WASM histograms live in WebAssembly memory, outside the garbage-collected heap, and must be
 * destroy()ed. The Aggregator contract has no destroy hook, so each WASM state is registered
 * with a FinalizationRegistry that destroys its histograms once the state is garbage-collected,
 * and `releaseHdr(state)` frees them at once when the caller knows the state is dead. Finalizers
 * run late (only after the JS heap is collected, never inside a synchronous loop) and WASM
 * memory never shrinks, so many short-lived WASM states inflate memory: measured, 10k dropped
 * states of 100 values grew RSS by ~550 MB (15-20 MB with releaseHdr), 200k by 3.4 GB. Hence JS
 * histograms are the default. Counts arrays are large either way: ~46 KB per JS state at 3 digits.
 */
import * as hdrjs from 'hdr-histogram-js';
import { rankOf, type QuantileSketch } from './quantile-sketch.js';

export interface HdrOptions {
  /** Significant decimal digits, 1..5 (default 3: 0.1 % relative error). */
  digits?: 1 | 2 | 3 | 4 | 5;
  /** The value of one recorded unit (default 0.001): smaller differences are rounded away. */
  resolution?: number;
  /** WebAssembly histograms (default false); see the module comment for their lifecycle. */
  wasm?: boolean;
}

export interface HdrState {
  pos: hdrjs.Histogram;
  /** Magnitudes of negative values; null until the first one. */
  neg: hdrjs.Histogram | null;
  /** WASM histograms this state owns (destroyed by the finalizer or releaseHdr); null for JS. */
  owned: hdrjs.Histogram[] | null;
}

export const DEFAULT_DIGITS = 3;
export const DEFAULT_RESOLUTION = 0.001;
const MAX_UNITS = Number.MAX_SAFE_INTEGER;

const finalizer = new FinalizationRegistry<hdrjs.Histogram[]>((owned) => {
  for (const h of owned) h.destroy();
});

/** Frees a WASM state's histograms now (no-op for JS states). The state must not be used after. */
export function releaseHdr(s: HdrState): void {
  if (!s.owned) return;
  finalizer.unregister(s.owned);
  for (const h of s.owned) h.destroy();
  s.owned.length = 0;
}

/** The bound of the module comment for one exact value v. */
export function hdrErrorBound(v: number, digits: number, resolution: number): number {
  const rel = 10 ** -digits;
  return rel * Math.abs(v) + (resolution * (1 + rel)) / 2;
}

export function hdrQuantiles(options: HdrOptions = {}): QuantileSketch<HdrState> {
  const { digits = DEFAULT_DIGITS, resolution = DEFAULT_RESOLUTION, wasm = false } = options;
  if (!Number.isInteger(digits) || digits < 1 || digits > 5) throw new Error(`hdr: digits must be an integer from 1 to 5, got ${digits}`);
  if (!(resolution > 0 && Number.isFinite(resolution))) throw new Error(`hdr: resolution must be a positive number, got ${resolution}`);
  if (wasm) hdrjs.initWebAssemblySync();
  // units / 1000 is the correctly rounded 12.345; units * 0.001 is 12.345000000000001.
  const perUnit = 1 / resolution;
  const toValue = Number.isInteger(perUnit) ? (units: number) => units / perUnit : (units: number) => units * resolution;

  const histogram = (): hdrjs.Histogram =>
    hdrjs.build({ numberOfSignificantValueDigits: digits, useWebAssembly: wasm, autoResize: true, bitBucketSize: 32 });
  const own = (s: HdrState, h: hdrjs.Histogram) => {
    if (!s.owned) return;
    if (s.owned.length === 0) finalizer.register(s, s.owned, s.owned);
    s.owned.push(h);
  };
  const state = (pos: hdrjs.Histogram, neg: hdrjs.Histogram | null): HdrState => {
    const s: HdrState = { pos, neg, owned: wasm ? [] : null };
    own(s, pos);
    if (neg) own(s, neg);
    return s;
  };
  const negOf = (s: HdrState) => {
    if (!s.neg) {
      s.neg = histogram();
      own(s, s.neg);
    }
    return s.neg;
  };
  /** The value at 0-based rank k of one histogram (k < totalCount). */
  const atRank = (h: hdrjs.Histogram, k: number) => h.getValueAtPercentile((100 * (k + 0.5)) / h.totalCount);

  return {
    name: 'hdr',
    create: () => state(histogram(), null),
    add(s, v) {
      const units = Math.min(MAX_UNITS, Math.round(Math.abs(v) / resolution));
      if (v < 0 && units > 0) negOf(s).recordValue(units);
      else s.pos.recordValue(units);
    },
    merge(a, b) {
      a.pos.add(b.pos);
      if (b.neg && b.neg.totalCount > 0) negOf(a).add(b.neg);
    },
    quantiles(s, qs) {
      const nNeg = s.neg ? s.neg.totalCount : 0;
      const n = nNeg + s.pos.totalCount;
      if (n === 0) return qs.map(() => NaN);
      return qs.map((q) => {
        const r = rankOf(q, n);
        // Ascending values: negatives from the largest magnitude down, then the positives.
        return r < nNeg ? -toValue(atRank(s.neg!, nNeg - 1 - r)) : toValue(atRank(s.pos, r - nNeg));
      });
    },
    serialize: (s) =>
      `${resolution}|${hdrjs.encodeIntoCompressedBase64(s.pos)}|${s.neg && s.neg.totalCount > 0 ? hdrjs.encodeIntoCompressedBase64(s.neg) : ''}`,
    deserialize(text: string, fail: (what: string) => never) {
      const parts = text.split('|');
      if (parts.length !== 3) fail('expected "<resolution>|<histogram of values >= 0>|<histogram of negative values, or empty>"');
      if (Number(parts[0]) !== resolution) fail(`the state has resolution ${parts[0]}, this aggregator ${resolution}`);
      const decode = (b64: string, which: string) => {
        if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) fail(`the ${which} histogram is not base64`);
        // Checked on a JS decode even for WASM states: WasmHistogram's numberOfSignificantValueDigits
        // reads undefined (hdr-histogram-js 3.0.1), so WASM states decode twice.
        let h: hdrjs.Histogram;
        try {
          h = hdrjs.decodeFromCompressedBase64(b64, 32, false);
        } catch (err) {
          return fail(`the ${which} histogram does not decode (${(err as Error).message})`);
        }
        if (h.numberOfSignificantValueDigits !== digits) fail(`the ${which} histogram has ${h.numberOfSignificantValueDigits} significant digits, this aggregator ${digits}`);
        if (!Number.isSafeInteger(h.totalCount) || h.totalCount < 0) fail(`the ${which} histogram has a total count of ${h.totalCount}`);
        if (wasm) h = hdrjs.decodeFromCompressedBase64(b64, 32, true);
        h.autoResize = true;
        return h;
      };
      const pos = decode(parts[1], 'non-negative');
      let neg: hdrjs.Histogram | null = null;
      try {
        neg = parts[2] === '' ? null : decode(parts[2], 'negative');
      } catch (err) {
        pos.destroy();
        throw err;
      }
      return state(pos, neg);
    },
  };
}
