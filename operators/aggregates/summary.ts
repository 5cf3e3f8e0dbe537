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
  /** null only when the window's sum is beyond the double range (±1.8e308). */
  sum: number | null;
  min: number;
  max: number;
  mean: number;
  /** null below two events, or when the spread is beyond the double range. */
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

/**
 * The figures of a window. Every figure is finite or null, so that JSON (which turns Infinity and
 * NaN into null) and QuestDB (which reads them as null, and whose sums they poison) carry exactly
 * what is computed: `sum` is null past ±1.8e308, `stddev` below two events or past the range; the
 * others always fit. −0 is reported as 0 (JSON has no −0).
 */
export function summaryFigures(acc: Summary): SummaryFigures {
  const m = momentsResult(acc.moments);
  const [p50, p90, p95, p99, p999] = clampedQuantiles(acc.sketch, m.min, m.max, SUMMARY_QUANTILES);
  return {
    count: m.count,
    sum: Number.isFinite(m.sum) ? m.sum + 0 : null,
    min: m.min + 0,
    max: m.max + 0,
    mean: m.mean + 0,
    stddev: m.stddev,
    p50: p50 + 0,
    p90: p90 + 0,
    p95: p95 + 0,
    p99: p99 + 0,
    p999: p999 + 0,
  };
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
