/**
 * Types for the `tdigest` package (0.1.x, plain JavaScript, no bundled types): only what
 * operators/aggregates/tdigest.ts uses. Read from node_modules/tdigest/tdigest.js.
 */
declare module 'tdigest' {
  export interface Centroid {
    mean: number;
    n: number;
  }

  export class TDigest {
    /**
     * @param delta the compression: the largest share of the mass one centroid may hold near the
     *   median (default 0.01); `false` keeps every distinct value (discrete mode).
     * @param K recompress when there are more than K / delta centroids (default 25; 0 never).
     * @param CX how often cumulative counts are refreshed during ingest (default 1.1).
     */
    constructor(delta?: number | false, K?: number, CX?: number);
    delta: number;
    K: number;
    /** Total weight pushed. */
    n: number;
    /** Number of centroids. */
    size(): number;
    /** Adds a value (or each value of an array) with weight n (default 1). */
    push(x: number | number[], n?: number): void;
    /** Adds centroids as weighted points. */
    push_centroid(c: Centroid | Centroid[]): void;
    /** Centroids in increasing mean order. */
    toArray(everything?: boolean): Centroid[];
    /** Interpolated value at fraction p in [0, 1]; undefined when empty. */
    percentile(p: number): number | undefined;
    percentile(p: number[]): (number | undefined)[];
    /** Re-digests the centroids in random order. */
    compress(): void;
  }

  export class Digest extends TDigest {
    constructor(config?: { mode?: 'auto' | 'disc' | 'cont'; delta?: number; ratio?: number; thresh?: number });
  }
}
