/**
 * The aggregates a pipeline file can name, each with a zod schema for its options and a factory.
 * `aggregatorFor(name, options, where)` validates and builds one; a bad option throws an Error
 * naming where it is ("films.yaml: aggregates.p.q[1]: each quantile must be in [0, 1], got 1.5").
 * Options are the aggregate's fields other than `fn` and `metric`. docs/operators-aggregates.md
 * lists every aggregate, its options and its output.
 *
 *   const agg = aggregatorFor('percentiles', { impl: 'hdr', q: [0.5, 0.99] }, 'films.yaml: aggregates.latency');
 */
import { z } from 'zod';
import type { Aggregator } from '../aggregate.js';
import type { Sample } from '../sample.js';
import { parseDuration } from '../windows/assign.js';
import { distinct } from './distinct.js';
import { ewma } from './ewma.js';
import { first, last } from './first-last.js';
import { MAX_PRECISION, MIN_PRECISION } from './hyperloglog.js';
import { DEFAULT_QUANTILES, percentiles, quantileName } from './percentiles.js';
import { rate } from './rate.js';
import { ratio } from './ratio.js';
import { count, max, mean, min, sum } from './scalar.js';
import { stddev, variance } from './spread.js';

/** What an aggregate reads out: a number, null (no value), or named numbers (percentiles). */
export type AggregateValue = number | null | Record<string, number | null>;

export type AnyAggregator = Aggregator<Sample, unknown, AggregateValue>;

export interface AggregateDef<O = unknown> {
  /** Validates (and fills defaults of) the options. */
  options: z.ZodType<O>;
  create(options: O): AnyAggregator;
}

function define<S extends z.ZodType>(options: S, create: (o: z.output<S>) => AnyAggregator): AggregateDef<z.output<S>> {
  return { options: options as unknown as z.ZodType<z.output<S>>, create };
}

/** A strict options object whose unknown keys are reported with the list of known ones. */
function optionsOf<T extends z.ZodRawShape>(label: string, shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys')
        return `unknown option${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')}; ${label} takes ${known.length ? known.join(', ') : 'no options'}`;
      if (iss.code === 'invalid_type') return `options must be a mapping of option names to values${known.length ? ` (${known.join(', ')})` : ''}`;
      return undefined;
    },
  });
}

const none = (label: string) => optionsOf(label, {});

/** "500ms", "10s", "1m", "2h", "7d" or a number of ms, > 0. `what` says what the duration is for. */
const duration = (name: string, what: string, example: string) =>
  z
    .union([z.string(), z.number()], {
      error: (iss) =>
        iss.input === undefined
          ? `${name} is required: ${what}, e.g. ${example}`
          : `${name} must be a duration like ${example} or a number of ms, got ${JSON.stringify(iss.input)}`,
    })
    .transform((v, ctx) => {
      try {
        const ms = parseDuration(v, name);
        if (ms > 0) return ms;
        ctx.addIssue({ code: 'custom', message: `${name} must be longer than 0, got ${JSON.stringify(v)}` });
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
      return z.NEVER;
    });

const quantiles = z
  .array(z.number({ error: (iss) => `each quantile must be a number in [0, 1], got ${JSON.stringify(iss.input)}` }).min(0, 'each quantile must be in [0, 1]').max(1, 'each quantile must be in [0, 1]'), {
    error: (iss) => `q must be a list of quantiles in [0, 1], e.g. [0.5, 0.99], got ${JSON.stringify(iss.input)}`,
  })
  .min(1, 'q must name at least one quantile')
  .max(64, 'q takes at most 64 quantiles')
  .superRefine((qs, ctx) => {
    const seen = new Map<string, number>();
    qs.forEach((q, i) => {
      const name = quantileName(q);
      if (seen.has(name)) ctx.addIssue({ code: 'custom', path: [i], message: `quantile ${q} repeats q[${seen.get(name)}] (both are ${name})` });
      seen.set(name, i);
    });
  })
  .default([...DEFAULT_QUANTILES]);

const metricName = z.string().min(1, 'a metric name cannot be empty');
const selector = (side: string) =>
  z
    .strictObject(
      {
        metric: z.union([metricName, z.array(metricName).min(1, 'list at least one metric')], { error: `${side}.metric must be a metric name or a list of them` }).optional(),
        tags: z
          .record(z.string(), z.union([z.string(), z.array(z.string()).min(1, 'list at least one tag value')], { error: `each tag of ${side}.tags must be a value or a list of values` }), {
            error: `${side}.tags must map tag names to values`,
          })
          .optional(),
      },
      {
        error: (iss) =>
          iss.code === 'unrecognized_keys'
            ? `unknown key${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')}; ${side} takes metric and tags`
            : iss.code === 'invalid_type'
              ? `${side} is required: which samples it counts, e.g. { metric: clicks } or { tags: { status: hit } }`
              : undefined,
      },
    )
    .refine((s) => s.metric !== undefined || (s.tags !== undefined && Object.keys(s.tags).length > 0), `${side} must name a metric or tags`);

const countOrSum = (label: string) => z.enum(['count', 'sum'], { error: `${label}: of must be "count" or "sum"` }).default('count');

const percentileVariants = z.discriminatedUnion(
  'impl',
  [
    optionsOf('percentiles with impl ddsketch', {
      impl: z.literal('ddsketch'),
      q: quantiles,
      accuracy: z.number({ error: 'accuracy must be a number in (0, 1), e.g. 0.005' }).gt(0, 'accuracy must be in (0, 1)').lt(1, 'accuracy must be in (0, 1)').default(0.005),
    }),
    optionsOf('percentiles with impl hdr', {
      impl: z.literal('hdr'),
      q: quantiles,
      digits: z
        .number({ error: 'digits must be an integer from 1 to 5' })
        .int('digits must be an integer from 1 to 5')
        .min(1, 'digits must be from 1 to 5')
        .max(5, 'digits must be from 1 to 5')
        .default(3) as z.ZodDefault<z.ZodType<1 | 2 | 3 | 4 | 5>>,
      resolution: z.number({ error: 'resolution must be a positive number (the value of one recorded unit)' }).positive('resolution must be positive').default(0.001),
      wasm: z.boolean({ error: 'wasm must be true or false' }).default(false),
    }),
    optionsOf('percentiles with impl tdigest', {
      impl: z.literal('tdigest'),
      q: quantiles,
      delta: z.number({ error: 'delta must be a number in (0, 1), e.g. 0.01' }).gt(0, 'delta must be in (0, 1)').lt(1, 'delta must be in (0, 1)').default(0.01),
    }),
  ],
  {
    error: (iss) => {
      const input = iss.input;
      const impl = input !== null && typeof input === 'object' && 'impl' in input ? input.impl : input;
      return `impl must be ddsketch, hdr or tdigest, got ${JSON.stringify(impl)}`;
    },
  },
);

const percentileOptions = z.preprocess(
  (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) && !('impl' in v) ? { ...v, impl: 'ddsketch' } : v),
  percentileVariants,
);

/** Every aggregate a pipeline can name. */
export const AGGREGATES = {
  count: define(none('count'), () => count),
  sum: define(none('sum'), () => sum),
  min: define(none('min'), () => min),
  max: define(none('max'), () => max),
  mean: define(none('mean'), () => mean),
  variance: define(none('variance'), () => variance),
  stddev: define(none('stddev'), () => stddev),
  rate: define(
    optionsOf('rate', {
      window: duration('window', "the window's length (pipeline code passes the window size)", '10s'),
      per: duration('per', 'the unit of the rate', '1s').default(1000),
      of: countOrSum('rate'),
    }),
    (o) => rate({ windowMs: o.window, perMs: o.per, of: o.of }),
  ),
  ewma: define(optionsOf('ewma', { halfLife: duration('halfLife', 'how much older a sample weighs half', '1m') }), (o) => ewma({ halfLifeMs: o.halfLife })),
  first: define(none('first'), () => first),
  last: define(none('last'), () => last),
  distinct: define(
    optionsOf('distinct', {
      of: z
        .string({ error: 'of must be "value", "metric" or "tag:<name>"' })
        .regex(/^(value|metric|tag:.+)$/, 'of must be "value", "metric" or "tag:<name>"')
        .default('value') as z.ZodDefault<z.ZodType<'value' | 'metric' | `tag:${string}`>>,
      exactUpTo: z
        .number({ error: 'exactUpTo must be a whole number' })
        .int('exactUpTo must be a whole number')
        .min(0, 'exactUpTo cannot be negative')
        .max(1_000_000, 'exactUpTo above 1000000 would keep too many items per window')
        .default(1000),
      precision: z
        .number({ error: `precision must be a whole number from ${MIN_PRECISION} to ${MAX_PRECISION}` })
        .int(`precision must be a whole number from ${MIN_PRECISION} to ${MAX_PRECISION}`)
        .min(MIN_PRECISION, `precision must be at least ${MIN_PRECISION}`)
        .max(MAX_PRECISION, `precision must be at most ${MAX_PRECISION}`)
        .default(12),
    }),
    (o) => distinct(o),
  ),
  percentiles: define(percentileOptions, (o) => percentiles(o)),
  ratio: define(optionsOf('ratio', { numerator: selector('numerator'), denominator: selector('denominator'), of: countOrSum('ratio') }), (o) => ratio(o)),
};

export type AggregateName = keyof typeof AGGREGATES;

export const AGGREGATE_NAMES = Object.keys(AGGREGATES) as AggregateName[];

/** One problem with an aggregate's options: the path below the options ('q[1]') and what is wrong. */
export interface OptionIssue {
  path: string;
  message: string;
}

/** Bad options for an aggregate; the message has one line per problem, each starting with where it is. */
export class AggregateOptionsError extends Error {
  constructor(
    readonly where: string,
    readonly issues: readonly OptionIssue[],
  ) {
    super(issues.map((i) => `${where}${i.path}: ${i.message}`).join('\n'));
    this.name = 'AggregateOptionsError';
  }
}

function pathText(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
}

/**
 * Validates `options` for aggregate `name` and builds the aggregator. Throws an
 * AggregateOptionsError naming `where` (e.g. "films.yaml: aggregates.latency") and the option.
 */
export function aggregatorFor(name: string, options: unknown, where: string): AnyAggregator {
  if (!Object.hasOwn(AGGREGATES, name)) {
    throw new AggregateOptionsError(where, [{ path: '', message: `unknown aggregate "${name}"; one of ${AGGREGATE_NAMES.join(', ')}` }]);
  }
  const def = AGGREGATES[name as AggregateName] as AggregateDef;
  const parsed = def.options.safeParse(options ?? {});
  if (!parsed.success) {
    const issues: OptionIssue[] = [];
    for (const i of parsed.error.issues) {
      // One line per unknown key, so each names its own path.
      if (i.code === 'unrecognized_keys') {
        // The schema's message lists every unknown key; each line names its own.
        const tail = i.message.includes('; ') ? i.message.slice(i.message.indexOf('; ')) : '';
        for (const k of i.keys) issues.push({ path: pathText([...i.path, k]), message: `unknown ${i.path.length ? 'key' : 'option'} "${k}"${tail}` });
      }
      else issues.push({ path: pathText(i.path), message: i.message });
    }
    throw new AggregateOptionsError(where, issues);
  }
  try {
    return def.create(parsed.data);
  } catch (err) {
    throw new AggregateOptionsError(where, [{ path: '', message: (err as Error).message }]);
  }
}
