import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Subject } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { debounceByKey, KeyedDebounce, type DebounceOptions } from './debounceByKey.js';
import { canonical, runOnVirtualTime, type Ev, type Out } from './testing/timeline.js';

// ---- timelines ---------------------------------------------------------------------------------


const KEYS = ['t1', 't2', 't3', 't4'];

/** Event times advance by gaps around the wait, so bursts, quiet periods and ties all occur. */
const timeline = (wait: number) =>
  fc
    .record({
      raw: fc.array(fc.record({ gap: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 * wait + 2 }), fc.constant(wait)), k: fc.nat({ max: 3 }) }), { maxLength: 80 }),
      keyCount: fc.integer({ min: 1, max: KEYS.length }),
      tail: fc.option(fc.integer({ min: 0, max: 4 * wait }), { freq: 3 }),
    })
    .map(({ raw, keyCount, tail }) => {
      let t = 0;
      const events: Ev[] = raw.map((r, id) => ({ t: (t += r.gap), key: KEYS[r.k % keyCount], id }));
      // null: the source never completes; otherwise it completes `tail` ms after the last event
      return { events, end: tail === null ? null : t + tail };
    });

const debounceOpts: fc.Arbitrary<DebounceOptions> = fc
  .record({
    waitMs: fc.integer({ min: 1, max: 20 }),
    extra: fc.option(fc.integer({ min: 0, max: 40 }), { freq: 2 }),
    edges: fc.constantFrom([false, true], [true, true], [true, false]),
  })
  .map(({ waitMs, extra, edges: [leading, trailing] }) => ({ waitMs, ...(extra === null ? {} : { maxWaitMs: waitMs + extra }), leading, trailing }));

const scenario = debounceOpts.chain((opts) => timeline(opts.waitMs).map((tl) => ({ opts, ...tl })));

/** Emissions in a canonical order: by time, then key; one key's emissions at one instant keep their order. */

// ---- oracle: walk each key's events along the timeline -------------------------------------------

/**
 * The documented semantics, key by key, without timers or heaps: a burst starts at an event,
 * absorbs every event before its deadline min(last + wait, anchor + maxWait), and at the
 * deadline either ends (quiet) or, under maxWait, emits and goes on. Completion at `end` emits
 * what is held (with trailing).
 */
function oracle(events: Ev[], end: number | null, o: DebounceOptions): Out[] {
  const wait = o.waitMs;
  const maxWait = o.maxWaitMs ?? Infinity;
  const leading = o.leading ?? false;
  const trailing = o.trailing ?? true;
  const out: Out[] = [];
  for (const key of new Set(events.map((e) => e.key))) {
    const evs = events.filter((e) => e.key === key);
    let i = 0;
    let done = false;
    while (i < evs.length && !done) {
      const first = evs[i++];
      let anchor = first.t;
      let last = first.t;
      let held: Ev | null = null;
      if (leading) out.push({ t: first.t, key, id: first.id });
      else held = first;
      for (;;) {
        const quietAt = last + wait;
        const maxAt = anchor + maxWait;
        const deadline = Math.min(quietAt, maxAt);
        if (i < evs.length && evs[i].t < deadline) {
          held = evs[i++];
          last = held.t;
          continue;
        }
        if (end !== null && deadline > end) {
          if (trailing && held) out.push({ t: end, key, id: held.id });
          done = true;
          break;
        }
        if (quietAt <= maxAt) {
          if (trailing && held) out.push({ t: deadline, key, id: held.id });
          break;
        }
        if (!trailing) break;
        if (held) out.push({ t: deadline, key, id: held.id });
        held = null;
        anchor = deadline;
      }
    }
  }
  return canonical(out);
}

// ---- drivers ------------------------------------------------------------------------------------

/** The state machine alone, told the time at each event; also checks the state bound after each event. */
function runMachine(events: Ev[], end: number | null, o: DebounceOptions): { out: Out[]; maxOverBound: number; finalSize: number } {
  const gate = new KeyedDebounce<Ev>(o);
  const out: Out[] = [];
  const emit = (e: Ev, at: number) => out.push({ t: at, key: e.key, id: e.id });
  let maxOverBound = 0;
  for (const e of events) {
    gate.offer(e.t, e.key, e, emit);
    // every waiting key had a value within the last waitMs
    const recent = new Set(events.filter((x) => x.id <= e.id && x.t > e.t - o.waitMs).map((x) => x.key));
    maxOverBound = Math.max(maxOverBound, gate.size - recent.size);
  }
  if (end !== null) gate.flush(end, emit);
  else gate.advance(1e12, emit);
  return { out: canonical(out), maxOverBound, finalSize: gate.size };
}

/** The RxJS operator on a TestScheduler: events are scheduled at their times, emissions stamped with virtual now. */
function runOperator(events: Ev[], end: number | null, o: DebounceOptions): { out: Out[]; completedAt: number | null } {
  return runOnVirtualTime(events, end, (scheduler) => debounceByKey((e) => e.key, o, scheduler));
}

// ---- tests --------------------------------------------------------------------------------------

describe('debounceByKey: examples (marbles, 1 frame = 1 ms)', () => {
  const testScheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
  const ev = (key: string, n: number) => ({ key, n });
  const values = { a: ev('x', 1), b: ev('x', 2), c: ev('x', 3), d: ev('y', 4), e: ev('y', 5), f: ev('x', 6) };

  it('a burst of one key gives one emission, its last value, waitMs after the last event', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a-b-c 20ms |', values);
      expectObservable(source.pipe(debounceByKey((v) => v.key, { waitMs: 5 }))).toBe('9ms c 15ms |', values);
    });
  });

  it('keys are independent: a burst of y does not delay x', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a-d-e-e-e-e 20ms |', { ...values });
      // x quiet from 0: emits at 5; y's burst (2..10) emits e at 15
      expectObservable(source.pipe(debounceByKey((v) => v.key, { waitMs: 5 }))).toBe('5ms a 9ms e 15ms |', values);
    });
  });

  it('a value exactly waitMs after the previous one starts a new burst', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a----b 20ms |', values);
      expectObservable(source.pipe(debounceByKey((v) => v.key, { waitMs: 5 }))).toBe('5ms a 4ms b 15ms |', values);
    });
  });

  it('leading and trailing: first value at once, last one when quiet; a single value is emitted once', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a-b-c 20ms f 20ms |', values);
      // a at 0 (leading), c at 9 (trailing); f at 25 alone: leading only
      expectObservable(source.pipe(debounceByKey((v) => v.key, { waitMs: 5, leading: true, trailing: true }))).toBe('a 8ms c 15ms f 20ms |', values);
    });
  });

  it('maxWaitMs bounds the delay under a continuous stream', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      // x every 2 ms from 0 to 20: without maxWait one emission at 25; with maxWait 7, every 7 ms
      const source = cold('a-b-a-b-a-b-a-b-a-b-a 20ms |', values);
      const out = source.pipe(debounceByKey((v) => v.key, { waitMs: 5, maxWaitMs: 7 }));
      // held at 7: b (6); at 14: a (12); at 21: b... the value at 20 is a, held at 21 -> a; quiet at 25: nothing held
      expectObservable(out).toBe('7ms b 6ms a 6ms a 19ms |', values);
    });
  });

  it('on complete, held values are emitted at once, then complete', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a-d-|', values);
      expectObservable(source.pipe(debounceByKey((v) => v.key, { waitMs: 50 }))).toBe('----(ad|)', values);
    });
  });

  it('on error, held values are dropped and the error propagates', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a-d-#', values, new Error('broker gone'));
      expectObservable(source.pipe(debounceByKey((v) => v.key, { waitMs: 50 }))).toBe('----#', undefined, new Error('broker gone'));
    });
  });

  it('unsubscribing cancels the timers', () => {
    const scheduler = new TestScheduler(() => undefined);
    const src = new Subject<{ key: string }>();
    const got: unknown[] = [];
    const sub = src.pipe(debounceByKey((v) => v.key, { waitMs: 10 }, scheduler)).subscribe((v) => got.push(v));
    src.next({ key: 'a' });
    src.next({ key: 'b' });
    expect(scheduler.actions).toHaveLength(1); // one timer for every waiting key
    sub.unsubscribe();
    expect(scheduler.actions).toHaveLength(0);
    scheduler.flush();
    expect(got).toEqual([]);
  });

  it('a key function that throws errors the stream', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a-d|', values);
      const keyOf = (v: { key: string }) => {
        if (v.key === 'y') throw new Error('no tutor id');
        return v.key;
      };
      expectObservable(source.pipe(debounceByKey(keyOf, { waitMs: 10 }))).toBe('--#', undefined, new Error('no tutor id'));
    });
  });

  it('uses the default scheduler in virtual time under run()', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('a 20ms |', values).pipe(debounceByKey((v) => v.key, { waitMs: 3 }))).toBe('3ms a 17ms |', values);
    });
  });

  it('refuses options that cannot work, naming the option', () => {
    expect(() => debounceByKey(String, { waitMs: 0 })).toThrow(/debounceByKey: waitMs must be a positive finite number of ms, got 0/);
    expect(() => debounceByKey(String, { waitMs: 10, maxWaitMs: 5 })).toThrow(/maxWaitMs must be a finite number of ms >= waitMs \(10\), got 5/);
    expect(() => debounceByKey(String, { waitMs: 10, leading: false, trailing: false })).toThrow(/nothing would ever be emitted/);
  });
});

describe('debounceByKey: a burst gives one recalculation', () => {
  it('1000 sessions of 10 tutors in bursts give one emission per burst, with the burst\'s last session', () => {
    const gate = new KeyedDebounce<Ev>({ waitMs: 2_000, maxWaitMs: 30_000 });
    const events: Ev[] = [];
    // each tutor: 5 bursts of 20 sessions 100 ms apart, bursts 10 s apart, tutors interleaved
    for (let b = 0; b < 5; b++)
      for (let s = 0; s < 20; s++) for (let k = 0; k < 10; k++) events.push({ t: b * 10_000 + s * 100 + k, key: `tutor${k}`, id: events.length });
    const out: Out[] = [];
    for (const e of events) gate.offer(e.t, e.key, e, (v, at) => out.push({ t: at, key: v.key, id: v.id }));
    gate.advance(1e9, (v, at) => out.push({ t: at, key: v.key, id: v.id }));
    expect(out).toHaveLength(50);
    for (const o of out) {
      const lastOfBurst = events.filter((e) => e.key === o.key && e.t <= o.t).at(-1)!;
      expect(o.id).toBe(lastOfBurst.id);
      expect(o.t).toBe(lastOfBurst.t + 2_000);
    }
    expect(gate.size).toBe(0);
  });

  it('property: trailing-only, no maxWait: one emission per maximal burst (gaps < waitMs), its last value, waitMs after it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }).chain((w) => timeline(w).map((tl) => ({ w, ...tl }))),
        ({ w, events, end }) => {
          const expected: Out[] = [];
          for (const key of new Set(events.map((e) => e.key))) {
            const evs = events.filter((e) => e.key === key);
            evs.forEach((e, i) => {
              const next = evs[i + 1];
              if (next === undefined || next.t - e.t >= w) expected.push({ t: end !== null && e.t + w > end ? end : e.t + w, key, id: e.id });
            });
          }
          expect(runOperator(events, end, { waitMs: w }).out).toEqual(canonical(expected));
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('debounceByKey: against the timeline oracle', () => {
  it('the state machine matches the oracle, and holds only keys with a value in the last waitMs', () => {
    fc.assert(
      fc.property(scenario, ({ opts, events, end }) => {
        const r = runMachine(events, end, opts);
        expect(r.out).toEqual(oracle(events, end, opts));
        expect(r.maxOverBound).toBeLessThanOrEqual(0);
        expect(r.finalSize).toBe(0);
      }),
      { numRuns: 400 },
    );
  });

  it('the RxJS operator on virtual time matches the oracle and completes when the source does', () => {
    fc.assert(
      fc.property(scenario, ({ opts, events, end }) => {
        const r = runOperator(events, end, opts);
        expect(r.out).toEqual(oracle(events, end, opts));
        expect(r.completedAt).toBe(end);
      }),
      { numRuns: 200 },
    );
  });

  it('maxWaitMs: every value is emitted or replaced by a newer emitted value of its key within maxWaitMs', () => {
    fc.assert(
      fc.property(
        scenario.filter((s) => s.opts.maxWaitMs !== undefined && s.opts.trailing !== false),
        ({ opts, events }) => {
          const { out } = runOperator(events, null, opts);
          for (const e of events) {
            const covering = out.find((o) => o.key === e.key && o.id >= e.id);
            expect(covering, `event ${e.id} of ${e.key} at ${e.t}`).toBeDefined();
            expect(covering!.t - e.t).toBeLessThanOrEqual(opts.maxWaitMs!);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('debounceByKey: live subjects', () => {
  it('emits to a subscriber on the async scheduler in real time', async () => {
    const src = new Subject<{ key: string; n: number }>();
    const got: number[] = [];
    const done = new Promise<void>((resolve) => src.pipe(debounceByKey((v) => v.key, { waitMs: 15 })).subscribe({ next: (v) => got.push(v.n), complete: resolve }));
    src.next({ key: 'a', n: 1 });
    src.next({ key: 'a', n: 2 });
    src.next({ key: 'b', n: 3 });
    await new Promise((r) => setTimeout(r, 60));
    expect(got.sort()).toEqual([2, 3]);
    src.next({ key: 'a', n: 4 });
    src.complete();
    await done;
    expect(got).toEqual([2, 3, 4]);
  });
});
