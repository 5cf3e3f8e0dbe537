import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KeyedDebounce, type DebounceOptions } from './debounceByKey.js';
import { KeyedThrottle, type ThrottleOptions } from './throttleByKey.js';
import { jsonCodec, jsonDifference, type ValueCodec } from './snapshot.js';
import { corrupt, corruptionArb, restoresCleanly } from './testing/snapshots.js';

type Gate<T> = KeyedDebounce<T> | KeyedThrottle<T>;

type Op<T> = { kind: 'offer'; dt: number; key: string; value: T } | { kind: 'advance'; dt: number } | { kind: 'flush'; dt: number } | { kind: 'due' };

// JSON values as JSON gives them back (no -0).
const jsonArb = fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown);
const KEYS = ['k1', 'k2', 'k3', 'k4'];

const opsArb = <T>(value: fc.Arbitrary<T>): fc.Arbitrary<Op<T>[]> =>
  fc.array(
    fc.oneof(
      // now mostly moves forward; sometimes a step back, as a wall clock may
      { weight: 10, arbitrary: fc.record({ kind: fc.constant('offer' as const), dt: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 8, arbitrary: fc.integer({ min: 0, max: 12 }) }, { weight: 1, arbitrary: fc.integer({ min: -8, max: -1 }) }), key: fc.constantFrom(...KEYS), value }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), dt: fc.integer({ min: -3, max: 30 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('flush' as const), dt: fc.integer({ min: 0, max: 5 }) }) },
      { weight: 2, arbitrary: fc.constant({ kind: 'due' as const }) },
    ),
    { maxLength: 120 },
  );

/** Runs the ops from time `t0`: every emission (value, instant), nextDue and size, in order. */
function run<T>(gate: Gate<T>, ops: Op<T>[], t0 = 0): unknown[] {
  let t = t0;
  const out: unknown[] = [];
  const emit = (value: T, at: number) => out.push({ value, at });
  for (const op of ops) {
    if (op.kind === 'due') {
      out.push({ nextDue: gate.nextDue(), size: gate.size });
      continue;
    }
    t += op.dt;
    if (op.kind === 'offer') gate.offer(t, op.key, op.value, emit);
    else if (op.kind === 'advance') gate.advance(t, emit);
    else gate.flush(t, emit);
  }
  out.push({ nextDue: gate.nextDue(), size: gate.size });
  return out;
}
const endTime = (ops: Op<unknown>[]) => ops.reduce((t, op) => t + ('dt' in op ? op.dt : 0), 0);

const edgesArb = fc.constantFrom([true, true], [true, false], [false, true]);
const debounceSpecArb: fc.Arbitrary<DebounceOptions> = fc
  .record({ waitMs: fc.integer({ min: 1, max: 20 }), extra: fc.option(fc.integer({ min: 0, max: 30 })), edges: edgesArb })
  .map(({ waitMs, extra, edges: [leading, trailing] }) => ({ waitMs, ...(extra === null ? {} : { maxWaitMs: waitMs + extra }), leading, trailing }));
const throttleSpecArb: fc.Arbitrary<ThrottleOptions> = fc.record({ waitMs: fc.integer({ min: 1, max: 20 }), edges: edgesArb }).map(({ waitMs, edges: [leading, trailing] }) => ({ waitMs, leading, trailing }));

const GATES = [
  { name: 'debounce', spec: debounceSpecArb as fc.Arbitrary<DebounceOptions | ThrottleOptions>, build: <T>(o: DebounceOptions | ThrottleOptions): Gate<T> => new KeyedDebounce<T>(o as DebounceOptions) },
  { name: 'throttle', spec: throttleSpecArb as fc.Arbitrary<DebounceOptions | ThrottleOptions>, build: <T>(o: DebounceOptions | ThrottleOptions): Gate<T> => new KeyedThrottle<T>(o) },
];

for (const { name, spec: specArb, build } of GATES) {
  describe(`${name}: snapshots`, () => {
    it('cut a random run anywhere, snapshot, restore into another gate (fresh or used): the rest gives the same emissions in the same order, nextDue and size; snapshot -> restore -> snapshot is the same text', () => {
      fc.assert(
        fc.property(specArb, opsArb(jsonArb), fc.nat(), opsArb(jsonArb), (spec, ops, cutAt, prior) => {
          const cut = cutAt % (ops.length + 1);
          const original = build<unknown>(spec);
          run(original, ops.slice(0, cut));
          const text = original.snapshot();
          const restored = build<unknown>(spec);
          run(restored, prior, 7);
          restored.restore(text);
          expect(restored.snapshot()).toBe(text);
          const t = endTime(ops.slice(0, cut));
          expect(run(restored, ops.slice(cut), t)).toEqual(run(original, ops.slice(cut), t));
          expect(restored.snapshot()).toBe(original.snapshot());
        }),
        { numRuns: 300 },
      );
    });

    it('a snapshot restores into a gate with other random options only when they are the same once defaults are filled in', () => {
      fc.assert(
        fc.property(specArb, specArb, opsArb(fc.integer()), (specA, specB, ops) => {
          const a = build<number>(specA);
          run(a, ops);
          const b = build<number>(specB);
          const same = JSON.stringify(JSON.parse(a.snapshot()).spec) === JSON.stringify(JSON.parse(b.snapshot()).spec);
          if (same) b.restore(a.snapshot());
          else expect(() => b.restore(a.snapshot())).toThrow(new RegExp(`^${name} snapshot: taken by an operator built with another spec: spec\\.`));
        }),
        { numRuns: 200 },
      );
    });

    it('a corrupted snapshot is refused with a "' + name + ' snapshot:" Error that leaves the gate as it was, or restores a state that behaves as its own snapshot does', () => {
      fc.assert(
        fc.property(specArb, opsArb(fc.integer({ min: 0, max: 99 })), fc.array(corruptionArb, { minLength: 1, maxLength: 3 }), opsArb(fc.integer()), (spec, ops, corruptions, after) => {
          const original = build<number>(spec);
          run(original, ops);
          let text = original.snapshot();
          for (const c of corruptions) text = corrupt(text, c);
          const target = build<number>(spec);
          run(target, ops.slice(0, 8));
          const before = target.snapshot();
          if (!restoresCleanly(name, text, (s) => target.restore(s))) {
            expect(target.snapshot()).toBe(before);
            return;
          }
          const copy = build<number>(spec);
          copy.restore(target.snapshot());
          expect(copy.snapshot()).toBe(target.snapshot());
          const t = endTime(ops);
          expect(run(copy, after, t)).toEqual(run(target, after, t));
        }),
        { numRuns: 400 },
      );
    });
  });
}

describe('debounce and throttle snapshots: examples', () => {
  const emit = () => {};

  it('the format: options, then the waiting keys in heap order as [key, due, ...fields, held]', () => {
    const d = new KeyedDebounce<string>({ waitMs: 10, maxWaitMs: 25 });
    d.offer(0, 'a', 'x', emit);
    d.offer(3, 'b', 'y', emit);
    d.offer(5, 'a', 'z', emit);
    expect(JSON.parse(d.snapshot())).toEqual({
      format: 'weir.debounce/1',
      spec: { waitMs: 10, maxWaitMs: 25, leading: false, trailing: true },
      keys: [
        ['a', 10, 5, 0, ['z']],
        ['b', 13, 3, 3, ['y']],
      ],
    });
    const t = new KeyedThrottle<number>({ waitMs: 10 });
    t.offer(0, 'a', 1, emit);
    t.offer(2, 'a', 2, emit);
    t.offer(4, 'b', 3, emit);
    expect(JSON.parse(t.snapshot())).toEqual({ format: 'weir.throttle/1', spec: { waitMs: 10, leading: true, trailing: true }, keys: [['a', 10, [2]], ['b', 14, null]] });
    expect(JSON.parse(new KeyedDebounce({ waitMs: 10 }).snapshot()).spec.maxWaitMs).toBe('Infinity');
  });

  it('refuses another format, other options (saying what differs) and states the gate cannot hold', () => {
    const d = new KeyedDebounce<string>({ waitMs: 10, maxWaitMs: 25 });
    d.offer(0, 'a', 'x', emit);
    d.offer(3, 'b', 'y', emit);
    const parsed = JSON.parse(d.snapshot());
    const edit = (f: (s: typeof parsed) => void) => {
      const s = structuredClone(parsed);
      f(s);
      return JSON.stringify(s);
    };
    const fresh = () => new KeyedDebounce<string>({ waitMs: 10, maxWaitMs: 25 });
    expect(() => new KeyedThrottle<string>({ waitMs: 10 }).restore(d.snapshot())).toThrow('throttle snapshot: format "weir.debounce/1" is not weir.throttle/1');
    expect(() => new KeyedDebounce<string>({ waitMs: 10 }).restore(d.snapshot())).toThrow(
      'debounce snapshot: taken by an operator built with another spec: spec.maxWaitMs: snapshot has 25, this operator has "Infinity"',
    );
    expect(() => new KeyedDebounce<string>({ waitMs: 10, maxWaitMs: 25, leading: true }).restore(d.snapshot())).toThrow('spec.leading: snapshot has false, this operator has true');
    expect(() => fresh().restore(edit((s) => (s.keys[1][0] = 'a')))).toThrow('debounce snapshot: keys: key "a" appears twice');
    expect(() => fresh().restore(edit((s) => s.keys[0].splice(3, 1)))).toThrow('debounce snapshot: keys[0] ("a") must be [key, due, last, anchor, held], got 4 entries');
    expect(() => fresh().restore(edit((s) => (s.keys[0][1] = 'Infinity')))).toThrow('debounce snapshot: keys[0] ("a") due must be a finite number, got Infinity');
    expect(() => fresh().restore(edit((s) => (s.keys[0][4] = 'x')))).toThrow('debounce snapshot: keys[0] ("a") held value must be an array, got the string "x"');
    expect(() => fresh().restore(edit((s) => s.keys.reverse()))).toThrow('debounce snapshot: keys[1]: due 10 is earlier than its heap parent\'s (keys[0]: 13): not in heap order');
    expect(() => fresh().restore('')).toThrow(/^debounce snapshot: not JSON/);
    expect(() => fresh().restore('[]')).toThrow('debounce snapshot: the snapshot must be an object, got an array');
  });

  it('a state reached while the clock stepped back (a due after the key\'s deadline) restores and behaves the same', () => {
    const d = new KeyedDebounce<string>({ waitMs: 10, maxWaitMs: 25 });
    d.offer(100, 'a', 'x', emit);
    d.offer(50, 'a', 'y', emit); // Date.now() went back: last 50, due still 110
    const copy = new KeyedDebounce<string>({ waitMs: 10, maxWaitMs: 25 });
    copy.restore(d.snapshot());
    const outs = [d, copy].map((g) => {
      const out: [string, number][] = [];
      g.advance(200, (v, at) => out.push([v, at]));
      return out;
    });
    expect(outs[1]).toEqual(outs[0]);
  });

  it('held values that are not JSON are refused when the snapshot is taken; a codec carries them', () => {
    const d = new KeyedDebounce<unknown>({ waitMs: 10 });
    d.offer(0, 'a', new Date(5), emit);
    expect(() => d.snapshot()).toThrow('debounce snapshot: the value held for key "a" cannot be encoded: value is a Date, not plain JSON (pass a codec)');
    d.offer(1, 'a', { n: NaN }, emit);
    expect(() => d.snapshot()).toThrow('value.n is NaN, which JSON cannot hold (pass a codec)');
    d.offer(2, 'a', [1, undefined], emit);
    expect(() => d.snapshot()).toThrow('value[1] is undefined, which JSON cannot hold');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    d.offer(3, 'a', cyclic, emit);
    expect(() => d.snapshot()).toThrow('value.self is a cycle');

    const dates: ValueCodec<Date> = {
      encode: (v) => v.toISOString(),
      decode: (j) => {
        if (typeof j !== 'string' || Number.isNaN(Date.parse(j))) throw new Error(`not a date: ${JSON.stringify(j)}`);
        return new Date(j);
      },
    };
    const t = new KeyedThrottle<Date>({ waitMs: 10, leading: false });
    t.offer(0, 'a', new Date(86_400_000), emit);
    const text = t.snapshot(dates);
    const copy = new KeyedThrottle<Date>({ waitMs: 10, leading: false });
    copy.restore(text, dates);
    const out: [Date, number][] = [];
    copy.advance(10, (v, at) => out.push([v, at]));
    expect(out).toEqual([[new Date(86_400_000), 10]]);
    expect(() => copy.restore(text.replace('1970-01-02', 'then'), dates)).toThrow('throttle snapshot: keys[0] ("a") held value: not a date: "thenT00:00:00.000Z"');
  });

  it('jsonCodec passes JSON through; jsonDifference names the first difference', () => {
    expect(jsonCodec().encode({ a: [1, 'x', null, true, { b: -0 }] })).toEqual({ a: [1, 'x', null, true, { b: -0 }] });
    expect(jsonDifference({ a: 1, b: [1, 2] }, { a: 1, b: [1, 3] }, 'spec')).toBe('spec.b[1]: snapshot has 2, this operator has 3');
    expect(jsonDifference({ a: 1 }, { a: 1, b: 2 }, 'spec')).toBe('spec.b: snapshot has nothing, this operator has 2');
    expect(jsonDifference({ a: 1, b: 2 }, { b: 2, a: 1 }, 'spec')).toBe('spec: keys in another order (snapshot a, b; this operator b, a)');
    expect(jsonDifference([1], [1, 2], 'spec')).toBe('spec: snapshot has 1 entries, this operator 2');
    expect(jsonDifference({ a: 1 }, { a: 1 }, 'spec')).toBeUndefined();
  });
});
