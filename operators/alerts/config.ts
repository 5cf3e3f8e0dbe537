/**
 * Alert rules as a pipeline file writes them (`alerts:`), validated with zod: durations as "20s"
 * or ms, hysteresis on the clear side, unique names. Errors name the path
 * ("alerts: 0.resolve: resolve (6) must be on the clear side of threshold (5) for op \">\"").
 */
import { z } from 'zod';
import { durationSchema } from '../keyed/config.js';
import type { AlertRule } from './machine.js';

export const alertRuleSchema = z
  .object({
    name: z.string().min(1, 'must not be empty').max(64),
    field: z.string().min(1, 'must not be empty'),
    op: z.enum(['>', '>=', '<', '<='], { message: 'op must be one of > >= < <=' }),
    threshold: z.number().refine(Number.isFinite, 'must be a finite number'),
    /** The condition must hold this long (event time) before the alert fires. */
    for: durationSchema.default(0),
    resolve: z.number().refine(Number.isFinite, 'must be a finite number').optional(),
    severity: z.enum(['info', 'warning', 'critical']).default('warning'),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.resolve === undefined) return;
    const wrongSide = a.op.startsWith('>') ? a.resolve > a.threshold : a.resolve < a.threshold;
    if (wrongSide) ctx.addIssue({ code: 'custom', path: ['resolve'], message: `resolve (${a.resolve}) must be on the clear side of threshold (${a.threshold}) for op "${a.op}"` });
  })
  .transform(
    (a): AlertRule & { forMs: number; severity: NonNullable<AlertRule['severity']> } => ({
      name: a.name,
      field: a.field,
      op: a.op,
      threshold: a.threshold,
      forMs: a.for,
      ...(a.resolve !== undefined ? { resolve: a.resolve } : {}),
      severity: a.severity,
    }),
  );

export const alertRulesSchema = z.array(alertRuleSchema).superRefine((rules, ctx) => {
  const seen = new Set<string>();
  rules.forEach((r, i) => {
    if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `alert name "${r.name}" is used twice` });
    seen.add(r.name);
  });
});

export type AlertRuleConfig = z.input<typeof alertRuleSchema>;
