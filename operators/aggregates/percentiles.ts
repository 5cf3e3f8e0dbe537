/**
 * Percentiles of a window's values as { p50, p90, ... } (one field per configured quantile, null
 * when the window is empty), from one of three sketches:
 *
 * - 'ddsketch' (default, ddsketch.ts): value within `accuracy` (relative, default 0.5 %) of the
 *   exact value at rank floor(q·(n − 1)); any finite value; exact merges.
 * - 'hdr' (hdr.ts, hdr-histogram-js): value within 10^−digits relative plus half the resolution
 *   absolute of the same exact value; exact merges.
 * - 'tdigest' (tdigest.ts, the `tdigest` package): rank error at most δ (plus ties); merges
 *   approximate.
 *
 * Every estimate is clamped into the window's exact [min, max], which can only shrink the error.
 *
 *   const p = percentiles({ impl: 'hdr', q: [0.5, 0.99], digits: 3, resolution: 0.01 });
 *   p.result(acc); // { p50: 12.34, p99: 98.1 }
 */
import type { Aggregator } from '../aggregate.js';
import type { Sample } from '../sample.js';
import { StateReader } from './codec.js';
import { createSketch, DEFAULT_ALPHA, sketchAdd, sketchFromBase64, sketchMerge, sketchQuantiles, sketchToBase64, type DDSketch } from './ddsketch.js';
import { hdrQuantiles, type HdrOptions } from './hdr.js';
import type { QuantileSketch } from './quantile-sketch.js';
import { tdigestQuantiles, type TDigestOptions } from './tdigest.js';

export type PercentileImpl = 'ddsketch' | 'hdr' | 'tdigest';

export type PercentilesOptions = {
  /** Quantiles in [0, 1] (default 0.5, 0.9, 0.95, 0.99). */
  q?: readonly number[];
} & (
  | { impl?: 'ddsketch'; /** DDSketch relative accuracy α in (0, 1) (default 0.005). */ accuracy?: number }
  | ({ impl: 'hdr' } & HdrOptions)
  | ({ impl: 'tdigest' } & TDigestOptions)
);

/** One estimate per configured quantile, keyed by quantileName; null when empty. */
export type Quantiles = Record<string, number | null>;

export interface PercentilesState<S = unknown> {
  /** Exact extremes (Infinity / -Infinity when empty), to clamp the estimates. */
  min: number;
  max: number;
  sketch: S;
}

export const DEFAULT_QUANTILES: readonly number[] = [0.5, 0.9, 0.95, 0.99];

/** "p50" for 0.5, "p95" for 0.95, "p999" for 0.999, "p0" for 0, "p100" for 1 (as pipeline columns name them). */
export function quantileName(q: number): string {
  if (q === 1) return 'p100';
  if (q === 0) return 'p0';
  return 'p' + String(q).replace(/^0\./, '').padEnd(2, '0');
}

/** DDSketch behind the QuantileSketch interface. */
export function ddsketchQuantiles(alpha = DEFAULT_ALPHA): QuantileSketch<DDSketch> {
  createSketch(alpha); // validates alpha
  return {
    name: 'ddsketch',
    create: () => createSketch(alpha),
    add: (s, v) => void sketchAdd(s, v),
    merge: (a, b) => void sketchMerge(a, b),
    quantiles: sketchQuantiles,
    serialize: sketchToBase64,
    deserialize(text: string, fail: (what: string) => never) {
      let s: DDSketch;
      try {
        s = sketchFromBase64(text);
      } catch (err) {
        return fail((err as Error).message);
      }
      if (s.alpha !== alpha) fail(`the sketch has relative accuracy ${s.alpha}, this aggregator ${alpha}`);
      return s;
    },
  };
}

/** The percentiles aggregator for the chosen sketch. */
export function percentiles(options: PercentilesOptions = {}): Aggregator<Sample, PercentilesState, Quantiles> {
  const qs = options.q ?? DEFAULT_QUANTILES;
  let sketch: QuantileSketch<unknown>;
  if (options.impl === 'hdr') sketch = hdrQuantiles(options) as QuantileSketch<unknown>;
  else if (options.impl === 'tdigest') sketch = tdigestQuantiles(options) as QuantileSketch<unknown>;
  else if (options.impl === undefined || options.impl === 'ddsketch') sketch = ddsketchQuantiles(options.accuracy) as QuantileSketch<unknown>;
  else throw new Error(`percentiles: impl must be ddsketch, hdr or tdigest, got ${JSON.stringify((options as { impl: unknown }).impl)}`);
  return percentilesWith(sketch, qs);
}

/** The percentiles aggregator over any QuantileSketch. */
export function percentilesWith<S>(sketch: QuantileSketch<S>, qs: readonly number[] = DEFAULT_QUANTILES): Aggregator<Sample, PercentilesState<S>, Quantiles> {
  if (qs.length === 0) throw new Error('percentiles: name at least one quantile');
  for (const q of qs) if (!(q >= 0 && q <= 1)) throw new Error(`percentiles: each quantile must be in [0, 1], got ${q}`);
  const names = qs.map(quantileName);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new Error(`percentiles: quantile ${dup} is listed twice`);
  const label = `percentiles (${sketch.name})`;

  return {
    create: () => ({ min: Infinity, max: -Infinity, sketch: sketch.create() }),
    add(acc, s) {
      const v = s.value + 0; // -0 becomes 0: JSON has no -0, so states round-trip exactly
      if (v < acc.min) acc.min = v;
      if (v > acc.max) acc.max = v;
      sketch.add(acc.sketch, v);
      return acc;
    },
    merge(a, b) {
      if (b.min < a.min) a.min = b.min;
      if (b.max > a.max) a.max = b.max;
      sketch.merge(a.sketch, b.sketch);
      return a;
    },
    result(acc) {
      const out: Quantiles = {};
      const empty = acc.min > acc.max;
      const est = empty ? [] : sketch.quantiles(acc.sketch, qs);
      names.forEach((name, i) => {
        const e = est[i];
        out[name] = empty || Number.isNaN(e) ? null : e < acc.min ? acc.min : e > acc.max ? acc.max : e;
      });
      return out;
    },
    serialize: (acc) => JSON.stringify(acc.min > acc.max ? [null, null, sketch.serialize(acc.sketch)] : [acc.min, acc.max, sketch.serialize(acc.sketch)]),
    deserialize(text) {
      const r: StateReader = new StateReader(label, text);
      const [min, max, inner] = r.tuple(['min', 'max', 'sketch']);
      if (typeof inner !== 'string') r.fail(`field 3 (sketch) must be a string, got ${JSON.stringify(inner)?.slice(0, 40)}`);
      const s = sketch.deserialize(inner, (what) => r.fail(`field 3 (sketch): ${what}`));
      const sketchEmpty = Number.isNaN(sketch.quantiles(s, [0])[0]);
      if (min === null && max === null) {
        if (!sketchEmpty) r.fail('min and max are null but the sketch holds values');
        return { min: Infinity, max: -Infinity, sketch: s };
      }
      if (sketchEmpty) r.fail('min and max are set but the sketch is empty');
      const lo = r.number(min, 'field 1 (min)');
      const hi = r.number(max, 'field 2 (max)');
      if (lo > hi) r.fail(`min ${lo} is above max ${hi}`);
      return { min: lo, max: hi, sketch: s };
    },
  };
}
