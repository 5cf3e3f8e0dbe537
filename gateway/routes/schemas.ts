/** JSON schemas shared by routes (and so by the OpenAPI document). */
import { RESULT_FIELDS } from '../../engine/subjects.js';

const num = { type: 'number' } as const;
const nullableNum = { type: ['number', 'null'] } as const;

export const errorSchema = {
  type: 'object',
  properties: { error: { type: 'string' }, param: { type: 'string' }, message: { type: 'string' } },
} as const;

/** The error responses every API route may give. */
export const errorResponses = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema, 503: errorSchema } as const;

export const metricProp = { type: 'string', pattern: '^[A-Za-z0-9_:-]+$', maxLength: 256 } as const;
export const keyProp = { type: 'string', minLength: 1, maxLength: 256 } as const;
export const windowProp = { type: 'string', pattern: '^[0-9a-z]+$', maxLength: 16 } as const;
export const pipelineProp = { type: 'string', pattern: '^[A-Za-z0-9_-]+$', maxLength: 64 } as const;
export const tokenProp = { type: 'string', description: 'API token, for clients that cannot send an Authorization header (EventSource, WebSocket)' } as const;

export const pointSchema = {
  type: 'object',
  properties: {
    ts: { type: 'integer', description: 'window start, ms since epoch' },
    count: { type: 'integer' },
    rate: { type: 'number', description: 'count per second of window length' },
    // null when the window's sum is past ±1.8e308 (typed number, the serializer would write 0)
    sum: { type: ['number', 'null'], description: 'null when the sum is beyond the double range (±1.8e308)' },
    min: num,
    max: num,
    mean: num,
    stddev: nullableNum,
    p50: num,
    p90: num,
    p95: num,
    p99: num,
    p999: num,
  },
} as const;

/**
 * A figure of a live result: the default pipeline's aggregate, or a declared pipeline's field of the
 * same name. Typed number or null for both, so the serializer (fast-json-stringify) passes a
 * declared pipeline's value as it is: typed `integer` it would truncate a declared `count` of 2.5
 * to 2, typed `number` it would write a declared `p50` of null as 0.
 */
const figure = (description?: string) => ({ type: ['number', 'null'], ...(description ? { description } : {}) }) as const;

export const liveResultSchema = {
  type: 'object',
  description:
    "default pipeline: the figures count ... p999 (count an integer; stddev null below two events, sum null past ±1.8e308); a declared pipeline (see docs/pipelines.md): its own fields, " +
    'numbers or null, any of which may share a name with a default figure',
  // A declared pipeline's results carry its own fields.
  additionalProperties: { type: ['number', 'null'] },
  properties: {
    pipeline: { type: 'string' },
    metric: { type: 'string' },
    key: { type: 'string' },
    window: { type: 'string' },
    start: { type: 'integer', description: 'window start, ms since epoch' },
    end: { type: 'integer' },
    final: { type: 'boolean', description: 'false: partial figures of an open window' },
    revision: { type: 'integer', description: '0 = on-time firing, > 0 = late correction, -1 = partial (a declared pipeline: grows with each result of the window)' },
    count: figure('default pipeline: events in the window'),
    rate: figure('default pipeline: count per second of window length'),
    sum: figure(),
    min: figure(),
    max: figure(),
    mean: figure(),
    stddev: figure('default pipeline: null when count < 2'),
    p50: figure(),
    p90: figure(),
    p95: figure(),
    p99: figure(),
    p999: figure(),
    emittedAt: { type: 'integer', description: 'wall time the engine produced the result' },
  },
} as const;

export const byProp = {
  type: 'string',
  pattern: '^[a-z][a-z0-9_]{0,47}$',
  description: `default pipeline: one of ${RESULT_FIELDS.join(', ')}; a declared pipeline: any of its fields`,
} as const;
