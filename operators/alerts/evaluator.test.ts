import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { from, lastValueFrom, toArray } from 'rxjs';
import { AlertEvaluator, alertTransitions, type FieldObservation } from './evaluator.js';
import { AlertMachine, type AlertRule, type AlertTransition } from './machine.js';
import { corrupt, corruptionArb, restoresCleanly } from '../keyed/testing/snapshots.js';

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

describe('AlertEvaluator snapshots', () => {
  type Op =
    | { kind: 'row'; key: string; dt: number; error_rate: number | null | undefined; read_p95: number | null | undefined; cache_hit_rate: number | null | undefined }
    | { kind: 'value'; rule: number; key: string; dt: number; value: number | null }
    | { kind: 'firing' }
    | { kind: 'size' };
  const KEYS = ['bridge-1', 'bridge-2', 'bridge-3'];
  const field = fc.option(fc.oneof(fc.integer({ min: 0, max: 9 }), fc.constant(NaN)), { freq: 5, nil: undefined }).chain((v) => (v === undefined ? fc.constantFrom(undefined, null) : fc.constant(v)));
  const dt = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 10 }) }, { weight: 1, arbitrary: fc.integer({ min: -15, max: -1 }) });
  const opsArb: fc.Arbitrary<Op[]> = fc.array(
    fc.oneof(
      { weight: 10, arbitrary: fc.record({ kind: fc.constant('row' as const), key: fc.constantFrom(...KEYS), dt, error_rate: field, read_p95: field, cache_hit_rate: field }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('value' as const), rule: fc.nat({ max: RULES.length - 1 }), key: fc.constantFrom(...KEYS), dt, value: fc.option(fc.integer({ min: 0, max: 9 }), { freq: 6 }) }) },
      { weight: 2, arbitrary: fc.constant({ kind: 'firing' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'size' as const }) },
    ),
    { maxLength: 150 },
  );

  /** Runs the ops from event time `ts0`; every output (transitions, firing lists, sizes) in order. */
  function run(ev: AlertEvaluator, ops: Op[], ts0 = 0): unknown[] {
    let ts = ts0;
    const out: unknown[] = [];
    for (const op of ops) {
      if (op.kind === 'row') {
        ts += op.dt;
        ev.observe({ key: op.key, ts, values: { error_rate: op.error_rate, read_p95: op.read_p95, cache_hit_rate: op.cache_hit_rate } }, (t) => out.push(t));
        out.push('row');
      } else if (op.kind === 'value') {
        ts += op.dt;
        out.push(ev.observeValue(RULES[op.rule].name, op.key, ts, op.value));
      } else if (op.kind === 'firing') out.push(ev.firing());
      else out.push(ev.size);
    }
    return out;
  }
  const endTs = (ops: Op[]) => ops.reduce((ts, op) => ts + ('dt' in op ? op.dt : 0), 0);

  it('cut a random run anywhere, snapshot, restore into another evaluator (fresh or used): the rest gives the same transitions, firing lists and sizes; snapshot -> restore -> snapshot is the same text', () => {
    fc.assert(
      fc.property(opsArb, fc.nat(), opsArb, (ops, cutAt, prior) => {
        const cut = cutAt % (ops.length + 1);
        const original = new AlertEvaluator(RULES);
        run(original, ops.slice(0, cut));
        const text = original.snapshot();
        const restored = new AlertEvaluator(RULES);
        run(restored, prior, 50);
        restored.restore(text);
        expect(restored.snapshot()).toBe(text);
        const ts = endTs(ops.slice(0, cut));
        expect(run(restored, ops.slice(cut), ts)).toEqual(run(original, ops.slice(cut), ts));
        expect(restored.snapshot()).toBe(original.snapshot());
      }),
      { numRuns: 300 },
    );
  });

  it('a corrupted snapshot is refused with an "alerts snapshot:" Error that leaves the evaluator as it was, or restores a state that behaves as its own snapshot does', () => {
    fc.assert(
      fc.property(opsArb, fc.array(corruptionArb, { minLength: 1, maxLength: 3 }), opsArb, (ops, corruptions, after) => {
        const original = new AlertEvaluator(RULES);
        run(original, ops);
        let text = original.snapshot();
        for (const c of corruptions) text = corrupt(text, c);
        const target = new AlertEvaluator(RULES);
        run(target, ops.slice(0, 10));
        const before = target.snapshot();
        if (!restoresCleanly('alerts', text, (t) => target.restore(t))) {
          expect(target.snapshot()).toBe(before);
          return;
        }
        const copy = new AlertEvaluator(RULES);
        copy.restore(target.snapshot());
        expect(copy.snapshot()).toBe(target.snapshot());
        expect(run(copy, after, endTs(ops))).toEqual(run(target, after, endTs(ops)));
      }),
      { numRuns: 400 },
    );
  });

  it('refuses another format, other rules (saying what differs), unknown rule names and ok machines', () => {
    const ev = new AlertEvaluator(RULES);
    ev.observe({ key: 'b1', ts: 0, values: { error_rate: 9, read_p95: 9 } }, () => {});
    const parsed = JSON.parse(ev.snapshot());
    expect(parsed.machines).toEqual({ error_rate_high: [['b1', 'pending', 0, 0, 0]], read_p95_slow: [['b1', 'firing', 0, 0, 0]], cache_hit_low: [] });
    const edit = (f: (s: typeof parsed) => void) => {
      const s = structuredClone(parsed);
      f(s);
      return JSON.stringify(s);
    };
    const fresh = () => new AlertEvaluator(RULES);
    expect(() => fresh().restore(edit((s) => (s.format = 'weir.alert/1')))).toThrow('alerts snapshot: format "weir.alert/1" is not weir.alerts/1');
    expect(() => new AlertEvaluator([RULES[1], RULES[0], RULES[2]]).restore(ev.snapshot())).toThrow(
      'alerts snapshot: taken by an operator built with another spec: spec.rules[0].name: snapshot has "error_rate_high", this operator has "read_p95_slow"',
    );
    expect(() => new AlertEvaluator([{ ...RULES[0], severity: 'info' }, RULES[1], RULES[2]]).restore(ev.snapshot())).toThrow(
      'spec.rules[0].severity: snapshot has "critical", this operator has "info"',
    );
    expect(() => fresh().restore(edit((s) => (s.machines.nope = [])))).toThrow('alerts snapshot: machines.nope: no rule of that name (error_rate_high, read_p95_slow, cache_hit_low)');
    expect(() => fresh().restore(edit((s) => delete s.machines.cache_hit_low))).toThrow('alerts snapshot: machines.cache_hit_low is missing');
    expect(() => fresh().restore(edit((s) => (s.machines.read_p95_slow[0][1] = 'ok')))).toThrow('alerts snapshot: machines.read_p95_slow[0] ("b1") phase must be one of pending, firing, got "ok"');
    expect(() => fresh().restore(edit((s) => s.machines.read_p95_slow.push(s.machines.read_p95_slow[0])))).toThrow('alerts snapshot: machines.read_p95_slow: key "b1" appears twice');
    const copy = fresh();
    copy.restore(ev.snapshot());
    expect(copy.firing()).toEqual([{ rule: 'read_p95_slow', key: 'b1', since: 0 }]);
    expect(copy.observeValue('error_rate_high', 'b1', 20, 9)).toMatchObject({ state: 'firing', since: 0, at: 20 });
  });
});
