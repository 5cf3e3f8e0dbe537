/**
 * Content-defined chunking (FastCDC-style gear hash, Xia et al., USENIX ATC 2016), used by
 * incremental checkpoints: a snapshot is cut where its *content* says, not every N bytes, so a
 * change in one key's state moves the cut points only around that key, and every chunk away from
 * it hashes as before and is not written again.
 *
 * Written here rather than taken from npm: the packages that exist are bindings to the Rust crate
 * (a native or WASM build for ~40 lines of arithmetic) with no releases in years. The gear table
 * is generated from a fixed seed: cut points must be the same in every process, or a restarted
 * engine would find every chunk "new" once.
 *
 * The hash is h = (h << 1) + GEAR[byte] (32 bits): bit k depends on the last k + 1 bytes, so
 * testing the top `bits` bits makes a cut depend on the last 32 bytes only. FastCDC's normalised
 * chunking: before the average size a cut needs 2 more zero bits (less likely), after it 2 fewer
 * (more likely), which narrows the spread of sizes around the average.
 */

export interface CdcOptions {
  /** No cut before this many bytes (the gear hash is not even computed there). */
  min: number;
  /** Expected size: a power of two. */
  avg: number;
  /** A cut is forced at this size. */
  max: number;
}

export const DEFAULT_CDC: CdcOptions = { min: 2 * 1024, avg: 8 * 1024, max: 64 * 1024 };

const GEAR = (() => {
  // mulberry32, seed "WEIR"
  let a = 0x57454952;
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    t[i] = (x ^ (x >>> 14)) >>> 0;
  }
  return t;
})();

/** The end offsets of the chunks of `data` (the last one is data.length; none for empty data). */
export function cdcBoundaries(data: Uint8Array, o: CdcOptions = DEFAULT_CDC): number[] {
  if (!(o.min >= 64 && o.avg > o.min && o.max >= o.avg)) throw new Error(`cdc: need 64 <= min < avg <= max, got ${JSON.stringify(o)}`);
  const bits = Math.round(Math.log2(o.avg));
  if (2 ** bits !== o.avg) throw new Error(`cdc: avg must be a power of two, got ${o.avg}`);
  // top-bit masks: a cut when the top `n` bits of h are zero
  const shiftS = 32 - Math.min(31, bits + 2);
  const shiftL = 32 - Math.max(1, bits - 2);
  const out: number[] = [];
  const n = data.length;
  let start = 0;
  while (start < n) {
    const remaining = n - start;
    if (remaining <= o.min) {
      out.push(n);
      break;
    }
    const end = Math.min(n, start + o.max);
    const normal = Math.min(end, start + o.avg);
    let h = 0;
    let i = start + o.min;
    let cut = end;
    for (; i < normal; i++) {
      h = ((h << 1) + GEAR[data[i]]) >>> 0;
      if (h >>> shiftS === 0) {
        cut = i + 1;
        break;
      }
    }
    if (cut === end && i >= normal) {
      for (; i < end; i++) {
        h = ((h << 1) + GEAR[data[i]]) >>> 0;
        if (h >>> shiftL === 0) {
          cut = i + 1;
          break;
        }
      }
    }
    out.push(cut);
    start = cut;
  }
  return out;
}
