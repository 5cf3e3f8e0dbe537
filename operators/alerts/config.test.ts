import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseConfig } from '../keyed/config.js';
import { alertRulesSchema } from './config.js';
import { AlertEvaluator } from './evaluator.js';

describe('alert config', () => {
  it('parses the bridge_ops alerts and builds an evaluator', () => {
    const p = parse(readFileSync(new URL('../../config/pipelines/bridge_ops.yaml', import.meta.url), 'utf8')) as { alerts: unknown };
    const rules = parseConfig(alertRulesSchema, p.alerts, 'bridge_ops.yaml: alerts');
    expect(rules[0]).toEqual({ name: 'error_rate_high', field: 'error_rate', op: '>', threshold: 0.05, resolve: 0.04, forMs: 20_000, severity: 'critical' });
    expect(rules[2]).toMatchObject({ op: '<', threshold: 0.8, resolve: 0.85, forMs: 0, severity: 'info' });
    expect(new AlertEvaluator(rules).size).toBe(0);
  });

  it('defaults: for 0, severity warning, no resolve', () => {
    expect(parseConfig(alertRulesSchema, [{ name: 'a', field: 'x', op: '>=', threshold: 1 }], 'alerts')).toEqual([{ name: 'a', field: 'x', op: '>=', threshold: 1, forMs: 0, severity: 'warning' }]);
  });

  const ok = { name: 'slow', field: 'lat_p95', op: '>', threshold: 5 };
  it.each([
    [[{ ...ok, resolve: 6 }], /alerts: 0\.resolve: resolve \(6\) must be on the clear side of threshold \(5\) for op ">"/],
    [[{ ...ok, op: '<', resolve: 4 }], /alerts: 0\.resolve: resolve \(4\) must be on the clear side/],
    [[ok, { ...ok }], /alerts: 1\.name: alert name "slow" is used twice/],
    [[{ ...ok, op: '=>' }], /alerts: 0\.op: op must be one of > >= < <=/],
    [[{ ...ok, for: '20 s' }], /alerts: 0\.for: duration must look like/],
    [[{ ...ok, severity: 'fatal' }], /alerts: 0\.severity: /],
    [[{ ...ok, threshold: '5' }], /alerts: 0\.threshold: /],
    [[{ ...ok, hold: '5s' }], /alerts: 0: .*hold/],
  ])('refuses %j naming the path', (input, message) => {
    expect(() => parseConfig(alertRulesSchema, input, 'alerts')).toThrow(message);
  });
});
