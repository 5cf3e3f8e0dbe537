/**
 * Declarative options of the keyed operators, as a pipeline file writes them (durations as
 * "2s" or ms), validated with zod and turned into the operators' own options. Errors name the
 * path ("debounce: maxWait: must be at least wait (2000 ms), got 1000 ms").
 */
import { z } from 'zod';
import { parseDuration } from '../windows/assign.js';
import type { DebounceOptions } from './debounceByKey.js';
import type { ThrottleOptions } from './throttleByKey.js';

/** A duration as "500ms", "10s", "1m", "2h", "7d", or a number of ms; parsed to ms. */
export const durationSchema = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDuration(v, 'duration');
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

export const positiveDurationSchema = durationSchema.refine((v) => v > 0, 'must be longer than 0');

/** `debounce: { wait, maxWait?, leading = false, trailing = true }` -> DebounceOptions. */
export const debounceConfigSchema = z
  .object({
    wait: positiveDurationSchema,
    maxWait: positiveDurationSchema.optional(),
    leading: z.boolean().default(false),
    trailing: z.boolean().default(true),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.maxWait !== undefined && c.maxWait < c.wait) ctx.addIssue({ code: 'custom', path: ['maxWait'], message: `must be at least wait (${c.wait} ms), got ${c.maxWait} ms` });
    if (!c.leading && !c.trailing) ctx.addIssue({ code: 'custom', path: ['trailing'], message: 'leading and trailing are both false, so nothing would ever be emitted' });
  })
  .transform((c): Required<Pick<DebounceOptions, 'waitMs' | 'leading' | 'trailing'>> & DebounceOptions => ({
    waitMs: c.wait,
    ...(c.maxWait !== undefined ? { maxWaitMs: c.maxWait } : {}),
    leading: c.leading,
    trailing: c.trailing,
  }));

/** `throttle: { wait, leading = true, trailing = true }` -> ThrottleOptions. */
export const throttleConfigSchema = z
  .object({
    wait: positiveDurationSchema,
    leading: z.boolean().default(true),
    trailing: z.boolean().default(true),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!c.leading && !c.trailing) ctx.addIssue({ code: 'custom', path: ['trailing'], message: 'leading and trailing are both false, so nothing would ever be emitted' });
  })
  .transform((c): Required<ThrottleOptions> => ({ waitMs: c.wait, leading: c.leading, trailing: c.trailing }));

export type DebounceConfig = z.input<typeof debounceConfigSchema>;
export type ThrottleConfig = z.input<typeof throttleConfigSchema>;

/**
 * Validates `input` with `schema`; throws one Error listing every problem as
 * "<where>: <path>: <message>".
 */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, where: string): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `  - ${where}: ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  throw new Error(`invalid ${where}:\n${lines.join('\n')}`);
}
