import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { from, lastValueFrom, toArray } from 'rxjs';
import { AlertEvaluator, alertTransitions, type FieldObservation } from './evaluator.js';
import { AlertMachine, type AlertRule, type AlertTransition } from './machine.js';

const RULES: AlertRule[] = [
  { name: 'error_rate_high', field: 'error_rate', op: '>', threshold: 5, resolve: 4, forMs: 20, severity: 'critical' },
  { name: 'read_p95_slow', field: 'read_p95', op: '>', threshold: 6, resolve: 3, severity: 'warning' },
  { name: 'cache_hit_low', field: 'cache_hit_rate', op: '<', threshold: 4, resolve: 6, forMs: 5, severity: 'info' },
];

describe('AlertEvaluator', () => {
  it('one machine per (rule, key) while pending or firing, none otherwise; transitions equal separate machines per (rule, key)', () => {
    const row = fc.record({
      key: fc.constantFrom('bridge-1', 'bridge-2', 'bridge-3'),
      dt: fc.integer({ min: 0, max: 10 }),
      error_rate: fc.option(fc.integer({ min: 0, max: 9 }), { freq: 5 }),
      read_p95: fc.option(fc.integer({ min: 0, max: 9 }), { freq: 5 }),
      cache_hit_rate: fc.option(fc.integer({ min: 0, max: 9 }), { freq: 5 }),
    });
    fc.assert(
      fc.property(fc.array(row, { maxLength: 120 }), (rows) => {
        const ev = new AlertEvaluator(RULES);
        const reference = new Map<string, AlertMachine>();
        let ts = 0;
        for (const r of rows) {
          ts += r.dt;
          const values: FieldObservation['values'] = { error_rate: r.error_rate ?? undefined, read_p95: r.read_p95 ?? undefined, cache_hit_rate: r.cache_hit_rate ?? undefined };
          const got: AlertTransition[] = [];
          ev.observe({ key: r.key, ts, values }, (t) => got.push(t));
          const expected: AlertTransition[] = [];
          for (const rule of RULES) {
            const v = values[rule.field];
            if (v === undefined) continue;
            const id = `${rule.name}/${r.key}`;
            if (!reference.has(id)) reference.set(id, new AlertMachine(rule));
            const t = reference.get(id)!.observe(r.key, ts, v);
            if (t) expected.push(t);
          }
          expect(got).toEqual(expected);
          expect(ev.size).toBe([...reference.values()].filter((m) => m.active).length);
          const firing = [...reference].filter(([, m]) => m.firing).map(([id, m]) => ({ rule: id.split('/')[0], key: id.split('/')[1], since: m.activeSince }));
          expect(ev.firing()).toEqual(firing.sort((a, b) => RULES.findIndex((x) => x.name === a.rule) - RULES.findIndex((x) => x.name === b.rule) || (a.key < b.key ? -1 : 1)));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('observeValue feeds one rule; unknown rules and duplicate names are refused', () => {
    const ev = new AlertEvaluator(RULES);
    expect(ev.observeValue('read_p95_slow', 'b', 1, 7)).toMatchObject({ state: 'firing', rule: 'read_p95_slow', key: 'b' });
    expect(() => ev.observeValue('nope', 'b', 1, 7)).toThrow('unknown alert rule "nope" (error_rate_high, read_p95_slow, cache_hit_low)');
    expect(() => new AlertEvaluator([RULES[0], RULES[0]])).toThrow('alert "error_rate_high": the name is used twice');
  });

  it('a non-finite ts is refused, machine or not (NaN fired at once past `for`; Infinity hid every later observation, so a firing alert never resolved); alertTransitions errors the stream', async () => {
    const ev = new AlertEvaluator(RULES);
    expect(ev.observeValue('error_rate_high', 'b', 0, 9)).toBeNull();
    expect(() => ev.observeValue('error_rate_high', 'b', NaN, 9)).toThrow('alert "error_rate_high": ts of "b" must be a finite number, got NaN');
    expect(() => ev.observeValue('error_rate_high', 'c', NaN, 1)).toThrow('alert "error_rate_high": ts of "c" must be a finite number, got NaN');
    expect(ev.observeValue('error_rate_high', 'b', 10, 9)).toBeNull();
    expect(ev.observeValue('error_rate_high', 'b', 20, 9)).toMatchObject({ state: 'firing', since: 0, at: 20 });
    expect(() => ev.observeValue('error_rate_high', 'b', Infinity, 9)).toThrow('got Infinity');
    expect(ev.observeValue('error_rate_high', 'b', 30, 1)).toMatchObject({ state: 'resolved', at: 30 });
    const rows: FieldObservation[] = [
      { key: 'b1', ts: 0, values: { read_p95: 7 } },
      { key: 'b1', ts: -Infinity, values: { read_p95: 7 } },
    ];
    await expect(lastValueFrom(from(rows).pipe(alertTransitions(new AlertEvaluator(RULES)), toArray()))).rejects.toThrow(
      'alert "read_p95_slow": ts of "b1" must be a finite number, got -Infinity',
    );
  });

  it('alertTransitions emits the transitions of a row stream', async () => {
    const rows: FieldObservation[] = [
      { key: 'b1', ts: 0, values: { read_p95: 7 } },
      { key: 'b1', ts: 10, values: { read_p95: 5 } },
      { key: 'b1', ts: 20, values: { read_p95: 2 } },
    ];
    const out = await lastValueFrom(from(rows).pipe(alertTransitions(new AlertEvaluator(RULES)), toArray()));
    expect(out.map((t) => [t.state, t.at])).toEqual([
      ['firing', 0],
      ['resolved', 20],
    ]);
  });
});
