import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AlertMachine, holds, type AlertOp, type AlertRule, type AlertTransition } from './machine.js';
import { corrupt, corruptionArb, restoresCleanly } from '../keyed/testing/snapshots.js';

interface Obs {
  ts: number;
  value: number | null;
}

/**
 * Brute force without a pending state: keep the in-order observations with data; at each one,
 * if not firing, fire when the run of consecutive observations meeting the condition that ends
 * here started at least `for` ago; if firing, resolve when `value op resolve` fails.
 */
function oracle(rule: AlertRule, key: string, observations: Obs[]): AlertTransition[] {
  const kept: { ts: number; value: number }[] = [];
  let newest = -Infinity;
  for (const o of observations) {
    if (o.value === null || !Number.isFinite(o.value)) continue;
    if (o.ts < newest) continue;
    newest = o.ts;
    kept.push({ ts: o.ts, value: o.value });
  }
  const out: AlertTransition[] = [];
  const base = { rule: rule.name, key, severity: rule.severity ?? 'warning', field: rule.field, threshold: rule.threshold } as const;
  let firing = false;
  kept.forEach((o, j) => {
    if (firing) {
      if (!holds(rule.op, o.value, rule.resolve ?? rule.threshold)) {
        firing = false;
        out.push({ ...base, state: 'resolved', value: o.value, since: o.ts, at: o.ts });
      }
      return;
    }
    if (!holds(rule.op, o.value, rule.threshold)) return;
    // Not firing, so the last transition (if any) was a resolve, whose value fails the condition
    // (resolve is on the clear side): the run cannot reach back into a firing period.
    let i = j;
    while (i > 0 && holds(rule.op, kept[i - 1].value, rule.threshold)) i--;
    if (o.ts - kept[i].ts >= (rule.forMs ?? 0)) {
      firing = true;
      out.push({ ...base, state: 'firing', value: o.value, since: kept[i].ts, at: o.ts });
    }
  });
  return out;
}

const OPS: AlertOp[] = ['>', '>=', '<', '<='];

const ruleArb: fc.Arbitrary<AlertRule> = fc
  .record({
    op: fc.constantFrom(...OPS),
    threshold: fc.integer({ min: 3, max: 7 }),
    band: fc.integer({ min: 0, max: 3 }),
    forMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 })),
    severity: fc.constantFrom('info', 'warning', 'critical', undefined),
  })
  .map(({ op, threshold, band, forMs, severity }) => ({
    name: 'r',
    field: 'f',
    op,
    threshold,
    ...(band ? { resolve: op.startsWith('>') ? threshold - band : threshold + band } : {}),
    forMs,
    ...(severity ? { severity } : {}),
  }));

const obsArb = fc.array(
  fc.record({
    dt: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 15 }) }, { weight: 2, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -20, max: -1 }) }),
    value: fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 0, max: 10 }) }, { weight: 1, arbitrary: fc.constantFrom(null, NaN) }),
  }),
  { maxLength: 80 },
);

const timeline = (raw: { dt: number; value: number | null }[]): Obs[] => {
  let ts = 1000;
  return raw.map((r) => ({ ts: (ts += r.dt), value: r.value }));
};

function run(rule: AlertRule, observations: Obs[]): AlertTransition[] {
  const m = new AlertMachine(rule);
  return observations.flatMap((o) => m.observe('svc-a', o.ts, o.value) ?? []);
}

describe('AlertMachine: examples', () => {
  const errorRate: AlertRule = { name: 'error_rate_high', field: 'error_rate', op: '>', threshold: 0.05, resolve: 0.04, forMs: 20_000, severity: 'critical' };

  it('fires once the condition has held for `for`, resolves below the resolve threshold', () => {
    const m = new AlertMachine(errorRate);
    const seen = [
      [0, 0.01],
      [10_000, 0.06],
      [20_000, 0.07],
      [30_000, 0.08],
      [40_000, 0.045], // in the band: still firing
      [50_000, 0.03],
    ].map(([ts, v]) => m.observe('bridge-1', ts, v));
    expect(seen.slice(0, 3)).toEqual([null, null, null]);
    expect(seen[3]).toEqual({ rule: 'error_rate_high', key: 'bridge-1', state: 'firing', severity: 'critical', field: 'error_rate', value: 0.08, threshold: 0.05, since: 10_000, at: 30_000 });
    expect(seen[4]).toBeNull();
    expect(seen[5]).toEqual({ rule: 'error_rate_high', key: 'bridge-1', state: 'resolved', severity: 'critical', field: 'error_rate', value: 0.03, threshold: 0.05, since: 50_000, at: 50_000 });
  });

  it('a dip below the threshold restarts the `for` clock', () => {
    const m = new AlertMachine(errorRate);
    const out = [0, 10_000, 15_000, 20_000, 30_000, 40_000].map((ts, i) => m.observe('b', ts, i === 2 ? 0.045 : 0.06));
    expect(out.findIndex((t) => t !== null)).toBe(5);
    expect(out[5]).toMatchObject({ since: 20_000, at: 40_000 });
  });

  it('no flapping inside the hysteresis band, in either direction', () => {
    const cacheLow: AlertRule = { name: 'cache_hit_low', field: 'cache_hit_rate', op: '<', threshold: 0.8, resolve: 0.85, severity: 'info' };
    const m = new AlertMachine(cacheLow);
    const values = [0.9, 0.82, 0.79, 0.84, 0.81, 0.79, 0.84, 0.83, 0.86, 0.82, 0.81];
    const out = values.map((v, i) => m.observe('b', i, v)).filter((t) => t !== null);
    expect(out.map((t) => [t!.state, t!.at])).toEqual([
      ['firing', 2],
      ['resolved', 8],
    ]);
  });

  it('for 0 fires at the first observation meeting the condition', () => {
    const m = new AlertMachine({ name: 'slow', field: 'read_p95', op: '>=', threshold: 10 });
    expect(m.observe('b', 5, 10)).toMatchObject({ state: 'firing', since: 5, at: 5, severity: 'warning' });
    expect(m.observe('b', 6, 9.99)).toMatchObject({ state: 'resolved' });
  });

  it('ignores older observations and values without data', () => {
    const m = new AlertMachine({ name: 'x', field: 'f', op: '>', threshold: 1 });
    expect(m.observe('k', 10, 5)?.state).toBe('firing');
    expect(m.observe('k', 9, 0)).toBeNull();
    expect(m.outOfOrder).toBe(1);
    expect(m.observe('k', 11, null)).toBeNull();
    expect(m.observe('k', 11, NaN)).toBeNull();
    expect(m.firing).toBe(true);
  });

  it('refuses rules that cannot work, naming the rule', () => {
    const base: AlertRule = { name: 'lat', field: 'p95', op: '>', threshold: 5 };
    expect(() => new AlertMachine({ ...base, resolve: 6 })).toThrow('alert "lat": resolve (6) must be on the clear side of threshold (5) for op ">"');
    expect(() => new AlertMachine({ ...base, op: '<', resolve: 4 })).toThrow('resolve (4) must be on the clear side of threshold (5) for op "<"');
    expect(() => new AlertMachine({ ...base, forMs: -1 })).toThrow('alert "lat": forMs must be a finite number of ms >= 0, got -1');
    expect(() => new AlertMachine({ ...base, threshold: NaN })).toThrow('alert "lat": threshold must be a finite number, got NaN');
    expect(() => new AlertMachine({ ...base, op: '=>' as AlertOp })).toThrow('alert "lat": op must be one of > >= < <=, got "=>"');
  });
});

describe('AlertMachine: event time must be a number', () => {
  it('refuses a non-finite ts and stays as it was: NaN used to fire at once (NaN - since < for is false), Infinity to hide every later observation', () => {
    const m = new AlertMachine({ name: 'lat', field: 'p95', op: '>', threshold: 5, forMs: 30 });
    expect(() => m.observe('svc-a', NaN, 9)).toThrow('alert "lat": ts of "svc-a" must be a finite number, got NaN');
    expect(m.active).toBe(false);
    expect(m.observe('svc-a', 0, 9)).toBeNull();
    expect(() => m.observe('svc-a', NaN, 9)).toThrow('got NaN');
    expect(m.observe('svc-a', 20, 9)).toBeNull();
    expect(m.observe('svc-a', 30, 9)).toMatchObject({ state: 'firing', since: 0, at: 30 });
    expect(() => m.observe('svc-a', Infinity, 9)).toThrow('got Infinity');
    expect(m.observe('svc-a', 40, 1)).toMatchObject({ state: 'resolved', at: 40 });
    expect(m.outOfOrder).toBe(0);
  });
});

describe('AlertMachine against brute force', () => {
  it('transitions equal the oracle over random observation sequences (any op, band, for; disorder and gaps)', () => {
    fc.assert(
      fc.property(ruleArb, obsArb, (rule, raw) => {
        const obs = timeline(raw);
        expect(run(rule, obs)).toEqual(oracle(rule, 'svc-a', obs));
      }),
      { numRuns: 500 },
    );
  });

  it('alternates firing/resolved, fires only on the condition after `for`, never resolves inside the band', () => {
    fc.assert(
      fc.property(ruleArb, obsArb, (rule, raw) => {
        const obs = timeline(raw);
        const out = run(rule, obs);
        const resolveAt = rule.resolve ?? rule.threshold;
        out.forEach((t, i) => {
          expect(t.state).toBe(i % 2 === 0 ? 'firing' : 'resolved');
          if (t.state === 'firing') {
            expect(holds(rule.op, t.value, rule.threshold)).toBe(true);
            expect(t.at - t.since).toBeGreaterThanOrEqual(rule.forMs ?? 0);
          } else {
            expect(holds(rule.op, t.value, resolveAt)).toBe(false); // left the band on the clear side
          }
        });
      }),
      { numRuns: 300 },
    );
  });
});

describe('AlertMachine snapshots', () => {
  const observeAll = (m: AlertMachine, obs: Obs[]) => obs.map((o) => [m.observe('svc-a', o.ts, o.value), m.active, m.firing, m.activeSince, m.outOfOrder]);

  it('cut a random run anywhere, snapshot, restore into another machine of the rule (fresh or used): the rest gives the same transitions and states; snapshot -> restore -> snapshot is the same text', () => {
    fc.assert(
      fc.property(ruleArb, obsArb, fc.nat(), obsArb, (rule, raw, cutAt, prior) => {
        const obs = timeline(raw);
        const cut = cutAt % (obs.length + 1);
        const original = new AlertMachine(rule);
        observeAll(original, obs.slice(0, cut));
        const text = original.snapshot();
        const restored = new AlertMachine(rule);
        observeAll(restored, timeline(prior));
        restored.restore(text);
        expect(restored.snapshot()).toBe(text);
        expect(observeAll(restored, obs.slice(cut))).toEqual(observeAll(original, obs.slice(cut)));
        expect(restored.snapshot()).toBe(original.snapshot());
      }),
      { numRuns: 300 },
    );
  });

  it('a corrupted snapshot is refused with an "alert snapshot:" Error that leaves the machine as it was, or restores a state that behaves as its own snapshot does', () => {
    fc.assert(
      fc.property(ruleArb, obsArb, fc.array(corruptionArb, { minLength: 1, maxLength: 3 }), obsArb, (rule, raw, corruptions, after) => {
        const original = new AlertMachine(rule);
        observeAll(original, timeline(raw));
        let text = original.snapshot();
        for (const c of corruptions) text = corrupt(text, c);
        const target = new AlertMachine(rule);
        const before = target.snapshot();
        if (!restoresCleanly('alert', text, (t) => target.restore(t))) {
          expect(target.snapshot()).toBe(before);
          return;
        }
        const copy = new AlertMachine(rule);
        copy.restore(target.snapshot());
        expect(observeAll(copy, timeline(after))).toEqual(observeAll(target, timeline(after)));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses another rule (saying what differs) and states the rule cannot reach', () => {
    const rule: AlertRule = { name: 'lat', field: 'p95', op: '>', threshold: 5, resolve: 4, forMs: 30 };
    const m = new AlertMachine(rule);
    m.observe('svc-a', 0, 9);
    const parsed = JSON.parse(m.snapshot());
    expect(parsed).toEqual({ format: 'weir.alert/1', spec: { name: 'lat', field: 'p95', op: '>', threshold: 5, forMs: 30, resolve: 4, severity: 'warning' }, state: ['pending', 0, 0, 0] });
    const edit = (state: unknown[]) => JSON.stringify({ ...parsed, state });
    expect(() => new AlertMachine({ ...rule, forMs: 10 }).restore(m.snapshot())).toThrow('alert snapshot: taken by an operator built with another spec: spec.forMs: snapshot has 30, this operator has 10');
    expect(() => new AlertMachine(rule).restore(edit(['pending', 0, 30, 0]))).toThrow('alert snapshot: state: pending since 0 with the newest observation at 30 is not a state of a rule with for = 30 ms');
    expect(() => new AlertMachine(rule).restore(edit(['firing', 10, 30, 0]))).toThrow('alert snapshot: state: firing since 10 with the newest observation at 30 is not a state of a rule with for = 30 ms');
    expect(() => new AlertMachine(rule).restore(edit(['fired', 0, 0, 0]))).toThrow('alert snapshot: state phase must be one of ok, pending, firing, got "fired"');
    expect(() => new AlertMachine(rule).restore(edit(['ok', 0, 0, -1]))).toThrow('alert snapshot: state outOfOrder must be a whole number >= 0, got -1');
    expect(() => new AlertMachine(rule).restore(edit(['pending', 0, '-Infinity', 0]))).toThrow('alert snapshot: state lastTs must be a finite number, got -Infinity');
    new AlertMachine(rule).restore(edit(['ok', 0, '-Infinity', 0]));
  });
});
