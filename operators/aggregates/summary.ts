import type { Aggregator } from '../aggregate.js';
import { addMoment, emptyMoments, mergeMoments, momentsResult, moments, type Moments } from './stats.js';
import {
  createSketch,
  DEFAULT_ALPHA,
  sketchAdd,
  sketchFromBase64,
  sketchMerge,
  sketchQuantiles,
  sketchToBase64,
  type DDSketch,
} from './ddsketch.js';

/** The quantiles the default pipeline reports, in column order. */
export const SUMMARY_QUANTILES = [0.5, 0.9, 0.95, 0.99, 0.999] as const;

/** Moments plus a quantile sketch: everything a default-pipeline window row holds. */
export interface Summary {
  moments: Moments;
  sketch: DDSketch;
}

/** One window's figures, as written to weir_agg_* and served by the gateway. */
export interface SummaryResult {
  count: number;
  sum: number;
  min: number;
  max: number;
  mean: number;
  stddev: number | null;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  /** The serialised sketch (base64 DDSketch), mergeable across windows. */
  sketch: string;
}

/** Quantiles of a sketch, clamped into the exact [min, max] (clamping can only shrink the error). */
export function clampedQuantiles(sketch: DDSketch, min: number, max: number, qs: readonly number[]): number[] {
  return sketchQuantiles(sketch, qs).map((v) => (v < min ? min : v > max ? max : v));
}

/** The figures of a summary without the serialised sketch (live partial results: no encoding cost). */
export type SummaryFigures = Omit<SummaryResult, 'sketch'>;

export function summaryFigures(acc: Summary): SummaryFigures {
  const m = momentsResult(acc.moments);
  const [p50, p90, p95, p99, p999] = clampedQuantiles(acc.sketch, m.min, m.max, SUMMARY_QUANTILES);
  return { count: m.count, sum: m.sum, min: m.min, max: m.max, mean: m.mean, stddev: m.stddev, p50, p90, p95, p99, p999 };
}

export function summaryAggregator(alpha = DEFAULT_ALPHA): Aggregator<number, Summary, SummaryResult> {
  return {
    create: () => ({ moments: emptyMoments(), sketch: createSketch(alpha) }),
    add(acc, v) {
      addMoment(acc.moments, v);
      sketchAdd(acc.sketch, v);
      return acc;
    },
    merge(a, b) {
      mergeMoments(a.moments, b.moments);
      sketchMerge(a.sketch, b.sketch);
      return a;
    },
    result(acc) {
      return { ...summaryFigures(acc), sketch: sketchToBase64(acc.sketch) };
    },
    serialize(acc) {
      return `${moments.serialize(acc.moments)}|${sketchToBase64(acc.sketch)}`;
    },
    deserialize(text) {
      const bar = text.lastIndexOf('|');
      if (bar < 0) throw new Error('summary: expected "<moments>|<sketch>"');
      return { moments: moments.deserialize(text.slice(0, bar)), sketch: sketchFromBase64(text.slice(bar + 1)) };
    },
  };
}
