/**
 * Hostile HTTP requests for the gateway fuzz (gateway/http.fuzz.test.ts against stand-in backends,
 * test/hostile.test.ts against the real stack): query strings of known and unknown parameters with
 * hostile values, and the check every answer must pass.
 */
import fc from 'fast-check';
import { expect } from 'vitest';

export const NAMES = ['metric', 'key', 'window', 'from', 'to', 'limit', 'q', 'pipeline', 'k', 'by', 'order', 'scope', 'final', 'finalOnly', 'keyPrefix', 'access_token'];
export const hostileValue = fc.oneof(
  fc.constantFrom('', ' ', 'cpu', 'svc-a', '10s', '1m', '7d', 'count', 'p99', 'desc', 'asc', 'current', 'final', 'true', 'false', '0', '1', '-1', '10', '1000', '1001', '50000', '50001'),
  fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e400', '1e21', '0x10', '12abc', '9007199254740993', '-9007199254740991', '8640000000000001', '-8640000000000001', '253402300800000'),
  fc.constantFrom('1970-01-01T00:00:00Z', '9999-12-31T23:59:59Z', '+275760-09-13T00:00:00Z', '2026-02-30T00:00:00Z', '2026-11-23', '2026-11-23T10:00:00', 'yesterday', '0,0.5,1', '0.5,,0.9', '2', '-0.1', ','),
  fc.constantFrom('%00', 'a%00b', '%FF', '%ED%A0%80', '%C0%80', '%E2%80%AE', '%F0%9F%98%80', '%0A', '%0D%0A', '%7F', '%C2%85', '..%2F..', "'; DROP TABLE weir_agg_10s; --", '%22', '%5C'),
  fc.string({ unit: 'binary', maxLength: 12 }).map(encodeURIComponent),
  fc.integer({ min: 250, max: 300 }).map((n) => 'x'.repeat(n)),
  fc.integer({ min: 10_000, max: 40_000 }).map((n) => 'y'.repeat(n)),
);
export const queryString = fc
  .array(fc.tuple(fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }).map(encodeURIComponent) }), hostileValue), { maxLength: 7 })
  .map((pairs) => ({ pairs, text: pairs.map(([k, v]) => `${k}=${v}`).join('&') }));
export const GET_ROUTES = ['/v1/series', '/v1/percentiles', '/v1/latest', '/v1/top', '/v1/catalog'];

/** Parameters a route needs (a 400 may name one that the request left out); a declared pipeline's top-K needs window and by. */
export const REQUIRED: Record<string, string[]> = {
  '/v1/series': ['key', 'metric'],
  '/v1/percentiles': ['metric', 'key'],
  '/v1/latest': ['key', 'metric'],
  '/v1/top': ['metric', 'window', 'by'],
  '/v1/catalog': [],
};

export interface Answer {
  statusCode: number;
  body: string;
}

/**
 * Never a 5xx (the backends answer); a 4xx is the JSON error {error, param, message}, and a 400,
 * 413 or 415 names a parameter that `allowed` accepts.
 */
export function expectGoodAnswer(what: string, res: Answer, allowed: (param: string) => boolean): void {
  expect(res.statusCode, `${what}: ${res.statusCode} ${res.body.slice(0, 300)}`).toBeLessThan(500);
  if (res.statusCode < 400) return;
  let body: { error?: unknown; param?: unknown; message?: unknown };
  try {
    body = JSON.parse(res.body);
  } catch {
    throw new Error(`${what}: ${res.statusCode} with a body that is not JSON: ${res.body.slice(0, 200)}`);
  }
  expect(typeof body.error, what).toBe('string');
  expect(typeof body.message, what).toBe('string');
  expect((body.message as string).length, what).toBeGreaterThan(0);
  expect(typeof body.param, `${what}: ${res.body.slice(0, 300)}`).toBe('string');
  if (res.statusCode === 400 || res.statusCode === 413 || res.statusCode === 415)
    expect(allowed(body.param as string), `${what}: param "${String(body.param)}" of ${res.body.slice(0, 300)}`).toBe(true);
}

export function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The parameter names of a query string, decoded. */
export const namesOf = (pairs: [string, string][]) => new Set(pairs.map(([k]) => decodeURIComponentSafe(k)));
