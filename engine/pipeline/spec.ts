/**
 * The declarative pipeline format: what users write in config/pipelines/*.yaml (or .json), and
 * the same shape typed for TypeScript users (`definePipeline`). A pipeline reads events from
 * weir.events.<metric> subjects, filters them, keys them, windows them, aggregates each window
 * into named fields, and may then debounce, score and rank, compute trends and raise alerts.
 * Results go to a QuestDB table and to live subjects.
 *
 *   source -> where -> keyBy -> window (+ trigger, lateness) -> aggregates
 *          -> debounce -> score / top-K -> trend -> alerts -> sinks
 *
 * Validation names the file and the path of every problem ("films.yaml: score.profiles.popular.
 * acclaim: unknown component"). Cross-field rules (a score weight names a field that exists, a
 * window has the parameters of its type, ...) are checked here too, so an invalid pipeline never
 * reaches the engine.
 */
import { z } from 'zod';
import { parseDuration } from '../../operators/windows/assign.js';
import { quantileName } from '../../operators/aggregates/percentiles.js';

const NAME_RE = /^[a-z][a-z0-9_]{0,47}$/;
const FIELD_RE = /^[a-z][a-z0-9_]{0,47}$/;
const METRIC_RE = /^[A-Za-z0-9_:-]+$/;

const name = (what: string) => z.string().regex(NAME_RE, `${what} must be lowercase letters, digits and "_", starting with a letter (at most 48)`);
const field = z.string().regex(FIELD_RE, 'a field name must be lowercase letters, digits and "_", starting with a letter');
const metric = z.string().regex(METRIC_RE, 'a metric is letters, digits, "_", "-" or ":"');

/** A duration as "500ms", "10s", "1m", "2h", "7d", or a number of ms; parsed to ms. */
const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDuration(v, 'duration');
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});
const positiveDuration = duration.refine((v) => v > 0, 'must be longer than 0');

const source = z
  .object({
    /** Metrics read (subjects weir.events.<metric>). "*" reads every metric. */
    metrics: z.array(z.union([metric, z.literal('*')])).min(1, 'name at least one metric (or "*")'),
    /** Optional filter: every listed tag must equal the value (or one of the values); value within [min, max]. */
    where: z
      .object({
        tags: z.record(z.string(), z.union([z.string(), z.array(z.string()).min(1)])).optional(),
        value: z.object({ min: z.number().optional(), max: z.number().optional() }).strict().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** 'key' (the event key), 'tag:<name>' (a tag's value; events without it are skipped and counted), or 'metric'. */
const keyPart = z.string().regex(/^(key|metric|tag:[A-Za-z0-9_.:-]+)$/, 'keyBy must be "key", "metric" or "tag:<name>"');
/** One part, or several joined with "|" into the key (e.g. [tag:variant, tag:source] -> "B|home"). */
const keyBy = z
  .union([keyPart, z.array(keyPart).min(1).max(4)])
  .default('key')
  .transform((k) => (Array.isArray(k) ? k : [k]));

const window = z.discriminatedUnion('type', [
  z.object({ type: z.literal('tumbling'), size: positiveDuration }).strict(),
  z.object({ type: z.literal('sliding'), size: positiveDuration, slide: positiveDuration }).strict(),
  z.object({ type: z.literal('session'), gap: positiveDuration, maxDuration: positiveDuration.optional() }).strict(),
  z.object({ type: z.literal('rolling'), pane: positiveDuration, sizes: z.array(positiveDuration).min(1) }).strict(),
  z.object({ type: z.literal('global') }).strict(),
]);

const trigger = z
  .object({
    /** Partial results of open windows every this much processing time (windows that changed). */
    early: positiveDuration.optional(),
    /** Fire a window each time it received this many events since its last firing. */
    count: z.number().int().positive().optional(),
  })
  .strict();

export const AGGREGATE_FNS = ['count', 'sum', 'min', 'max', 'mean', 'variance', 'stddev', 'rate', 'ewma', 'first', 'last', 'distinct', 'percentiles', 'ratio'] as const;

/**
 * One output field: `fn` and its options. `metric` limits the inputs to events of that metric
 * (default: every event of the pipeline). Options other than fn/metric are checked against the
 * aggregator's own schema when the pipeline is built (operators/aggregates/registry.ts).
 */
const aggregate = z
  .object({
    fn: z.enum(AGGREGATE_FNS, { message: `fn must be one of ${AGGREGATE_FNS.join(', ')}` }),
    metric: metric.optional(),
  })
  .catchall(z.unknown());

const normaliser = z.union([
  z.object({ minmax: z.object({ min: z.number().optional(), max: z.number().optional() }).strict() }).strict(),
  z.object({ log: z.object({ max: z.number().positive() }).strict() }).strict(),
  z.object({ capped: z.object({ cap: z.number().positive() }).strict() }).strict(),
  z.object({ zscore: z.object({ clip: z.number().positive().optional() }).strict() }).strict(),
  z.object({ rank: z.object({}).strict() }).strict(),
]);

const score = z
  .object({
    /** How each aggregate field used by a component maps to 0..1. Fields used without one are used as they are. */
    normalise: z.record(field, normaliser).default({}),
    /** Component scores: weighted sums of (normalised) fields. */
    components: z.record(field, z.record(field, z.number())).refine((c) => Object.keys(c).length > 0, 'define at least one component'),
    /** Profiles: named weight sets over components; each profile gets a total and a top-K. */
    profiles: z.record(field, z.record(field, z.number())).refine((p) => Object.keys(p).length > 0, 'define at least one profile'),
    /** How many entities each profile's ranking keeps ready. */
    topK: z.number().int().positive().max(10_000).default(50),
  })
  .strict();

const trend = z
  .object({
    /** The aggregate field compared with the previous window. */
    field,
    /** |percent change| below this (a fraction, 0.05 = 5 %) is "flat". */
    threshold: z.number().min(0).default(0.05),
    /** How many top movers (rising and falling) to keep. */
    movers: z.number().int().positive().max(10_000).default(10),
  })
  .strict();

const alert = z
  .object({
    name: name('alert name'),
    /** The field the rule watches: an aggregate, a component or profile score, or trend_pct. */
    field,
    op: z.enum(['>', '>=', '<', '<=']),
    threshold: z.number(),
    /** The condition must hold this long before the alert fires (0: at once). */
    for: duration.default(0),
    /** Resolve only once the value crosses this (hysteresis); default: the threshold itself. */
    resolve: z.number().optional(),
    severity: z.enum(['info', 'warning', 'critical']).default('warning'),
  })
  .strict();

const pipelineObject = z
  .object({
    name: name('name'),
    description: z.string().max(2000).optional(),
    source,
    keyBy,
    window,
    trigger: trigger.optional(),
    allowedLateness: duration.default(0),
    aggregates: z.record(field, aggregate).refine((a) => Object.keys(a).length > 0, 'define at least one aggregate'),
    debounce: z
      .object({ wait: positiveDuration, maxWait: positiveDuration.optional(), leading: z.boolean().default(false), trailing: z.boolean().default(true) })
      .strict()
      .optional(),
    score: score.optional(),
    trend: trend.optional(),
    alerts: z.array(alert).default([]),
    sinks: z
      .object({
        /** Rows in QuestDB table weir_p_<name> (upserts keyed by window start, key and window). */
        table: z.boolean().default(true),
        /** Results on weir.results.<name>.<window>.<key> and in the live view (Latest, TopK). */
        live: z.boolean().default(true),
      })
      .strict()
      .default({ table: true, live: true }),
  })
  .strict();

export const pipelineSchema = pipelineObject.superRefine((p, ctx) => crossCheck(p, ctx));

export type PipelineSpec = z.output<typeof pipelineSchema>;
export type PipelineInput = z.input<typeof pipelineSchema>;

/** Typed identity for TypeScript users: `export default definePipeline({...})`. Validated when loaded. */
export function definePipeline(spec: PipelineInput): PipelineInput {
  return spec;
}

/** Rules that span fields. */
export { quantileName };

export const DEFAULT_QUANTILES = [0.5, 0.9, 0.95, 0.99];

/**
 * The output columns of an aggregate: its own name, or for percentiles one column per quantile
 * (`<name>_p50`, ...).
 */
export function aggregateColumns(name: string, a: { fn: string; q?: unknown }): string[] {
  if (a.fn !== 'percentiles') return [name];
  const qs = Array.isArray(a.q) ? (a.q as unknown[]).filter((x): x is number => typeof x === 'number') : DEFAULT_QUANTILES;
  return qs.map((q) => `${name}_${quantileName(q)}`);
}

/** Names a result already uses for its identity: an aggregate, component or profile may not take them. */
export const RESERVED_FIELDS = ['pipeline', 'metric', 'key', 'window', 'start', 'end', 'final', 'revision', 'emitted_at', 'emittedat', 'ts', 'window_end', 'superseded', 'trend_pct', 'trend_dir'];

function crossCheck(spec: z.output<typeof pipelineObject>, ctx: z.RefinementCtx) {
  const fields = new Set(Object.entries(spec.aggregates).flatMap(([n, a]) => aggregateColumns(n, a)));
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  const reserved = (path: (string | number)[], n: string) => RESERVED_FIELDS.includes(n) && issue(path, `"${n}" is reserved (${RESERVED_FIELDS.join(', ')})`);
  for (const n of Object.keys(spec.aggregates)) reserved(['aggregates', n], n);
  for (const c of fields) if (!Object.hasOwn(spec.aggregates, c)) reserved(['aggregates'], c);
  for (const n of Object.keys(spec.score?.components ?? {})) reserved(['score', 'components', n], n);
  for (const n of Object.keys(spec.score?.profiles ?? {})) reserved(['score', 'profiles', n], n);
  const w = spec.window;
  if (w.type === 'sliding') {
    if (w.slide > w.size) issue(['window', 'slide'], `slide (${w.slide} ms) must not exceed size (${w.size} ms)`);
    else if (w.size % w.slide !== 0) issue(['window', 'slide'], `size (${w.size} ms) must be a multiple of slide (${w.slide} ms)`);
  }
  if (w.type === 'rolling') {
    w.sizes.forEach((s, i) => {
      if (s % w.pane !== 0) issue(['window', 'sizes', i], `each size must be a whole number of panes (${w.pane} ms), got ${s} ms`);
    });
    if (new Set(w.sizes).size !== w.sizes.length) issue(['window', 'sizes'], 'sizes repeat');
  }
  const reads = new Set(spec.source.metrics);
  for (const [f, a] of Object.entries(spec.aggregates)) {
    if (a.metric !== undefined && !reads.has('*') && !reads.has(a.metric))
      issue(['aggregates', f, 'metric'], `metric "${a.metric}" is not read by source.metrics (${spec.source.metrics.join(', ')})`);
  }
  const scoreFields = new Set<string>(fields);
  if (spec.score) {
    const s = spec.score;
    for (const f of Object.keys(s.normalise)) if (!fields.has(f)) issue(['score', 'normalise', f], `"${f}" is not an aggregate of this pipeline (${[...fields].join(', ')})`);
    for (const [c, weights] of Object.entries(s.components)) {
      if (fields.has(c)) issue(['score', 'components', c], `component "${c}" has the name of an aggregate field`);
      for (const f of Object.keys(weights)) if (!fields.has(f)) issue(['score', 'components', c, f], `"${f}" is not an aggregate of this pipeline (${[...fields].join(', ')})`);
      scoreFields.add(c);
    }
    for (const [pr, weights] of Object.entries(s.profiles)) {
      if (fields.has(pr) || pr in s.components) issue(['score', 'profiles', pr], `profile "${pr}" has the name of a field or component`);
      for (const c of Object.keys(weights)) if (!(c in s.components)) issue(['score', 'profiles', pr, c], `"${c}" is not a component (${Object.keys(s.components).join(', ')})`);
      scoreFields.add(pr);
    }
  }
  if (spec.trend) {
    if (!fields.has(spec.trend.field)) issue(['trend', 'field'], `"${spec.trend.field}" is not an aggregate of this pipeline (${[...fields].join(', ')})`);
    if (w.type === 'global') issue(['trend'], 'a trend compares consecutive windows; a global window has only one');
    if (w.type === 'session') issue(['trend'], 'a trend compares a window with the one a period before; session windows have no period');
    scoreFields.add('trend_pct');
  }
  const alertNames = new Set<string>();
  spec.alerts.forEach((a, i) => {
    if (!scoreFields.has(a.field)) issue(['alerts', i, 'field'], `"${a.field}" is not a field of this pipeline (${[...scoreFields].join(', ')})`);
    if (alertNames.has(a.name)) issue(['alerts', i, 'name'], `alert name "${a.name}" is used twice`);
    alertNames.add(a.name);
    if (a.resolve !== undefined) {
      const wrongSide = a.op.startsWith('>') ? a.resolve > a.threshold : a.resolve < a.threshold;
      if (wrongSide) issue(['alerts', i, 'resolve'], `resolve (${a.resolve}) must be on the clear side of threshold (${a.threshold}) for op "${a.op}"`);
    }
  });
  if (spec.sinks && !spec.sinks.table && !spec.sinks.live) issue(['sinks'], 'a pipeline with neither a table nor live results has no output');
}

/** Validates a parsed pipeline object; throws one Error listing every problem as "<where>: <path>: <message>". */
export function parsePipeline(input: unknown, where = 'pipeline'): PipelineSpec {
  const r = pipelineSchema.safeParse(input);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `  - ${where}: ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  throw new PipelineError(where, `invalid pipeline ${where}:\n${lines.join('\n')}`);
}

export class PipelineError extends Error {
  constructor(
    readonly where: string,
    message: string,
  ) {
    super(message);
    this.name = 'PipelineError';
  }
}
