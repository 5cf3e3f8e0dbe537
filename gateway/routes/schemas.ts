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
    sum: num,
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

export const liveResultSchema = {
  type: 'object',
  // A declared pipeline's results carry its own fields (see docs/pipelines.md).
  additionalProperties: { type: ['number', 'null'] },
  properties: {
    pipeline: { type: 'string' },
    metric: { type: 'string' },
    key: { type: 'string' },
    window: { type: 'string' },
    start: { type: 'integer', description: 'window start, ms since epoch' },
    end: { type: 'integer' },
    final: { type: 'boolean', description: 'false: partial figures of an open window' },
    revision: { type: 'integer', description: '0 = on-time firing, > 0 = late correction, -1 = partial' },
    count: { type: 'integer' },
    rate: { type: 'number', description: 'count per second of window length' },
    sum: num,
    min: num,
    max: num,
    mean: num,
    stddev: nullableNum,
    p50: num,
    p90: num,
    p95: num,
    p99: num,
    p999: num,
    emittedAt: { type: 'integer', description: 'wall time the engine produced the result' },
  },
} as const;

export const byProp = {
  type: 'string',
  pattern: '^[a-z][a-z0-9_]{0,47}$',
  description: `default pipeline: one of ${RESULT_FIELDS.join(', ')}; a declared pipeline: any of its fields`,
} as const;
