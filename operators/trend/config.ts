/**
 * The `trend:` options of a pipeline, validated with zod: the period between compared windows,
 * the flat threshold and how many movers to report. The period is usually the pipeline's window
 * size, which the pipeline passes in; errors name the path ("trend: threshold: ...").
 */
import { z } from 'zod';
import { positiveDurationSchema } from '../keyed/config.js';
import type { TrendOptions } from './trend.js';

export const trendConfigSchema = z
  .object({
    /** Distance between a window and its previous one ("1d", or ms). */
    period: positiveDurationSchema,
    /** |percent change| below this fraction (0.05 = 5 %) is flat. */
    threshold: z.number().min(0, 'must be a fraction >= 0 (0.05 is 5 %)').max(1e6).default(0.05),
    /** How many top movers (rising and falling each) to report. */
    movers: z.number().int().positive().max(10_000).default(10),
  })
  .strict()
  .transform((c): Required<TrendOptions> & { movers: number } => ({ periodMs: c.period, threshold: c.threshold, movers: c.movers }));

export type TrendConfig = z.input<typeof trendConfigSchema>;
