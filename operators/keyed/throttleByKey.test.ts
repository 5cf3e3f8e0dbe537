import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Subject } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { KeyedThrottle, throttleByKey, type ThrottleOptions } from './throttleByKey.js';
import { canonical, runOnVirtualTime, type Ev, type Out } from './testing/timeline.js';


const KEYS = ['f1', 'f2', 'f3'];

const scenario = fc
  .record({
    waitMs: fc.integer({ min: 1, max: 20 }),
    edges: fc.constantFrom([true, true], [true, false], [false, true]),
    raw: fc.array(fc.record({ gap: fc.nat({ max: 25 }), k: fc.nat({ max: 2 }) }), { maxLength: 80 }),
    keyCount: fc.integer({ min: 1, max: KEYS.length }),
    tail: fc.option(fc.integer({ min: 0, max: 60 }), { freq: 3 }),
  })
  .map(({ waitMs, edges: [leading, trailing], raw, keyCount, tail }) => {
    let t = 0;
    const events: Ev[] = raw.map((r, id) => ({ t: (t += r.gap % (2 * waitMs + 1)), key: KEYS[r.k % keyCount], id }));
    const opts: ThrottleOptions = { waitMs, leading, trailing };
    return { opts, events, end: tail === null ? null : t + tail };
  });


/**
 * The documented semantics, key by key: a value with no open window opens [t, t + wait); values
 * inside replace the held one; at the window's end the held value (with trailing) is emitted and
 * opens the next window, otherwise the key is idle. Completion emits what is held.
 */
function oracle(events: Ev[], end: number | null, o: ThrottleOptions): Out[] {
  const leading = o.leading ?? true;
  const trailing = o.trailing ?? true;
  const out: Out[] = [];
  for (const key of new Set(events.map((e) => e.key))) {
    const evs = events.filter((e) => e.key === key);
    let i = 0;
    let done = false;
    while (i < evs.length && !done) {
      const first = evs[i++];
      let start = first.t;
      let held: Ev | null = null;
      if (leading) out.push({ ...first });
      else held = first;
      for (;;) {
        const close = start + o.waitMs;
        while (i < evs.length && evs[i].t < close) held = evs[i++];
        if (end !== null && close > end) {
          if (trailing && held) out.push({ ...held, t: end });
          done = true;
          break;
        }
        if (!(trailing && held)) break;
        out.push({ ...held, t: close });
        held = null;
        start = close;
      }
    }
  }
  return canonical(out);
}

function runOperator(events: Ev[], end: number | null, o: ThrottleOptions): { out: Out[]; completedAt: number | null } {
  return runOnVirtualTime(events, end, (scheduler) => throttleByKey((e) => e.key, o, scheduler));
}

describe('throttleByKey: examples (marbles, 1 frame = 1 ms)', () => {
  const ts = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
  const values = { a: { key: 'x', n: 1 }, b: { key: 'x', n: 2 }, c: { key: 'x', n: 3 }, d: { key: 'y', n: 4 } };

  it('leading and trailing (the defaults): first value at once, the window\'s last at its end, windows do not drift', () => {
    ts().run(({ cold, expectObservable }) => {
      // x every 2 ms from 0 to 14, wait 5: a at 0, then the held value at 5, 10, 15
      const source = cold('a-b-c-a-b-c-a-b 20ms |', values);
      expectObservable(source.pipe(throttleByKey((v) => v.key, { waitMs: 5 }))).toBe('a 4ms c 4ms b 4ms b 19ms |', values);
    });
  });

  it('keys are independent', () => {
    ts().run(({ cold, expectObservable }) => {
      const source = cold('a-d-b 20ms |', values);
      // x: a at 0, b held -> 5; y: d at 2
      expectObservable(source.pipe(throttleByKey((v) => v.key, { waitMs: 5 }))).toBe('a-d--b 19ms |', values);
    });
  });

  it('trailing only: the last value of each window at its end', () => {
    ts().run(({ cold, expectObservable }) => {
      const source = cold('a-b-c 20ms a|', values);
      expectObservable(source.pipe(throttleByKey((v) => v.key, { waitMs: 5, leading: false }))).toBe('5ms c 20ms (a|)', values);
    });
  });

  it('leading only: the first value of a window, the rest dropped', () => {
    ts().run(({ cold, expectObservable }) => {
      const source = cold('a-b-c-a 20ms |', values);
      // a at 0; window ends at 5 (b, c dropped); a at 6 opens a new window
      expectObservable(source.pipe(throttleByKey((v) => v.key, { waitMs: 5, trailing: false }))).toBe('a 5ms a 20ms |', values);
    });
  });

  it('complete flushes held values; error drops them', () => {
    ts().run(({ cold, expectObservable }) => {
      expectObservable(cold('a-b|', values).pipe(throttleByKey((v) => v.key, { waitMs: 50 }))).toBe('a--(b|)', values);
      expectObservable(cold('a-b#', values).pipe(throttleByKey((v) => v.key, { waitMs: 50 }))).toBe('a--#', values);
    });
  });

  it('unsubscribing cancels the timer', () => {
    const scheduler = new TestScheduler(() => undefined);
    const src = new Subject<{ key: string }>();
    const sub = src.pipe(throttleByKey((v) => v.key, { waitMs: 10 }, scheduler)).subscribe();
    src.next({ key: 'a' });
    expect(scheduler.actions).toHaveLength(1);
    sub.unsubscribe();
    expect(scheduler.actions).toHaveLength(0);
  });

  it('refuses options that cannot work', () => {
    expect(() => throttleByKey(String, { waitMs: -1 })).toThrow(/throttleByKey: waitMs must be a positive finite number of ms, got -1/);
    expect(() => throttleByKey(String, { waitMs: 1, leading: false, trailing: false })).toThrow(/nothing would ever be emitted/);
  });
});

describe('throttleByKey: against the timeline oracle', () => {
  it('the state machine matches the oracle, holds only keys with a value in the last 2 x waitMs, and forgets idle keys', () => {
    fc.assert(
      fc.property(scenario, ({ opts, events, end }) => {
        const gate = new KeyedThrottle<Ev>(opts);
        const out: Out[] = [];
        const emit = (e: Ev, at: number) => out.push({ ...e, t: at });
        for (const e of events) {
          gate.offer(e.t, e.key, e, emit);
          const recent = new Set(events.filter((x) => x.id <= e.id && x.t > e.t - 2 * opts.waitMs).map((x) => x.key));
          expect(gate.size).toBeLessThanOrEqual(recent.size);
        }
        if (end !== null) gate.flush(end, emit);
        else gate.advance(1e12, emit);
        expect(canonical(out)).toEqual(oracle(events, end, opts));
        expect(gate.size).toBe(0);
      }),
      { numRuns: 400 },
    );
  });

  it('the RxJS operator on virtual time matches the oracle', () => {
    fc.assert(
      fc.property(scenario, ({ opts, events, end }) => {
        const r = runOperator(events, end, opts);
        expect(r.out).toEqual(oracle(events, end, opts));
        expect(r.completedAt).toBe(end);
      }),
      { numRuns: 200 },
    );
  });

  it('a key emits at most once per waitMs (until completion), and with trailing every value is emitted or replaced within waitMs', () => {
    fc.assert(
      fc.property(scenario, ({ opts, events }) => {
        const { out } = runOperator(events, null, opts);
        for (const key of KEYS) {
          const times = out.filter((o) => o.key === key).map((o) => o.t);
          for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBeGreaterThanOrEqual(opts.waitMs);
        }
        if (opts.trailing)
          for (const e of events) {
            const covering = out.find((o) => o.key === e.key && o.id >= e.id);
            expect(covering).toBeDefined();
            expect(covering!.t - e.t).toBeLessThanOrEqual(opts.waitMs);
          }
      }),
      { numRuns: 200 },
    );
  });
});
