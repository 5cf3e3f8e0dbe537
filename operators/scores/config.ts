/**
 * The `score:` block of a pipeline, validated with zod: normalisers per metric, components
 * (weighted metrics), profiles (weighted components) and the default top-K. Errors name the path
 * ("score: profiles.critics.acclaim: \"acclaim\" is not a component (opinion, awards)").
 * The output is a `ScoreSpec` for `new ScoreBoard(...)`.
 */
import { z } from 'zod';
import type { NormaliserSpec } from './normalise.js';
import type { ScoreSpec } from './scoreboard.js';

const KINDS = ['minmax', 'log', 'capped', 'zscore', 'rank'] as const;
const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const positive = finite.refine((v) => v > 0, 'must be greater than 0');
const name = z.string().min(1, 'a name must not be empty');

/** One of `{ minmax: { min?, max? } }`, `{ log: { max } }`, `{ capped: { cap } }`, `{ zscore: { clip? } }`, `{ rank: {} }`. */
export const normaliserSchema = z
  .object({
    minmax: z
      .object({ min: finite.optional(), max: finite.optional() })
      .strict()
      .refine((b) => b.min === undefined || b.max === undefined || b.max > b.min, { message: 'max must be greater than min', path: ['max'] })
      .optional(),
    log: z.object({ max: positive }).strict().optional(),
    capped: z.object({ cap: positive }).strict().optional(),
    zscore: z.object({ clip: positive.optional() }).strict().optional(),
    rank: z.object({}).strict().optional(),
  })
  .strict()
  .superRefine((n, ctx) => {
    const given = KINDS.filter((k) => n[k] !== undefined);
    if (given.length !== 1) ctx.addIssue({ code: 'custom', message: `choose exactly one of ${KINDS.join(', ')}${given.length ? ` (got ${given.join(', ')})` : ''}` });
  })
  .transform((n) => n as NormaliserSpec);

const weights = (what: string) => z.record(name, finite).refine((w) => Object.keys(w).length > 0, `give at least one ${what} weight`);

export const scoreConfigSchema = z
  .object({
    normalise: z.record(name, normaliserSchema).default({}),
    components: z.record(name, weights('metric')).refine((c) => Object.keys(c).length > 0, 'define at least one component'),
    profiles: z.record(name, weights('component')).refine((p) => Object.keys(p).length > 0, 'define at least one profile'),
    topK: z.number().int().positive().max(10_000).default(50),
  })
  .strict()
  .superRefine((s, ctx) => {
    const components = Object.keys(s.components);
    const used = new Set(Object.values(s.components).flatMap((w) => Object.keys(w)));
    for (const m of Object.keys(s.normalise))
      if (!used.has(m)) ctx.addIssue({ code: 'custom', path: ['normalise', m], message: `"${m}" is not used by any component` });
    for (const [p, w] of Object.entries(s.profiles))
      for (const c of Object.keys(w))
        if (!(c in s.components)) ctx.addIssue({ code: 'custom', path: ['profiles', p, c], message: `"${c}" is not a component (${components.join(', ')})` });
  })
  .transform((s): ScoreSpec & { topK: number } => s);

export type ScoreConfig = z.input<typeof scoreConfigSchema>;
