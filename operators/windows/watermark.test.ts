import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Watermark } from './watermark.js';

type Op = { t: 'observe'; ts: number; dt: number } | { t: 'idle'; dt: number } | { t: 'touch'; dt: number };

/** Processing time moves forward by dt >= 0 before each operation (as a real clock does). */
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('observe' as const), ts: fc.integer({ min: -10_000, max: 100_000 }), dt: fc.integer({ min: 0, max: 3_000 }) }),
  fc.record({ t: fc.constant('idle' as const), dt: fc.integer({ min: 0, max: 3_000 }) }),
  fc.record({ t: fc.constant('touch' as const), dt: fc.integer({ min: 0, max: 3_000 }) }),
);
const opts = fc.record({ maxOutOfOrdernessMs: fc.integer({ min: 0, max: 5_000 }), idleTimeoutMs: fc.integer({ min: 1, max: 10_000 }) });
const initial = fc.oneof(fc.constant(-Infinity), fc.integer({ min: -10_000, max: 50_000 }));

describe('Watermark', () => {
  it('follows the model: observe = max(prev, ts - lag); idleAdvance only after idleTimeout since the last observe/touch', () => {
    fc.assert(
      fc.property(opts, initial, fc.integer({ min: 0, max: 1e6 }), fc.array(op, { maxLength: 60 }), (o, init, t0, ops) => {
        const wm = new Watermark(o, init);
        expect(wm.value).toBe(init);
        let model = init;
        let lastActive = -Infinity; // processing time of the last observe/touch
        let now = t0;
        for (const step of ops) {
          now += step.dt;
          const prev = wm.value;
          if (step.t === 'observe') {
            model = Math.max(model, step.ts - o.maxOutOfOrdernessMs);
            lastActive = now;
            expect(wm.observe(step.ts, now)).toBe(model);
          } else if (step.t === 'touch') {
            lastActive = now;
            wm.touch(now);
          } else {
            const moved = wm.idleAdvance(now);
            if (now - lastActive < o.idleTimeoutMs) {
              // not idle long enough: nothing happens
              expect(moved).toBe(false);
            } else {
              model = Math.max(model, now - o.idleTimeoutMs - o.maxOutOfOrdernessMs);
              expect(moved).toBe(model > prev);
            }
          }
          expect(wm.value).toBe(model);
          expect(wm.value).toBeGreaterThanOrEqual(prev); // never decreases
        }
      }),
      { numRuns: 300 },
    );
  });

  it('never decreases, even with processing time that jumps backwards', () => {
    const anyOp = fc.oneof(
      fc.record({ t: fc.constant('observe' as const), ts: fc.integer({ min: -1e6, max: 1e6 }), now: fc.integer({ min: -1e6, max: 1e6 }) }),
      fc.record({ t: fc.constant('idle' as const), now: fc.integer({ min: -1e6, max: 1e6 }) }),
      fc.record({ t: fc.constant('touch' as const), now: fc.integer({ min: -1e6, max: 1e6 }) }),
    );
    fc.assert(
      fc.property(opts, initial, fc.array(anyOp, { maxLength: 60 }), (o, init, ops) => {
        const wm = new Watermark(o, init);
        for (const step of ops) {
          const prev = wm.value;
          if (step.t === 'observe') wm.observe(step.ts, step.now);
          else if (step.t === 'touch') wm.touch(step.now);
          else expect(wm.idleAdvance(step.now)).toBe(wm.value > prev);
          expect(wm.value).toBeGreaterThanOrEqual(prev);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('idle advance: nothing strictly before the timeout, exactly now - idle - lag at and after it', () => {
    fc.assert(
      fc.property(opts, fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 20_000 }), (o, t, ts, wait) => {
        const wm = new Watermark(o);
        wm.observe(ts, t);
        const after = wm.value;
        expect(after).toBe(ts - o.maxOutOfOrdernessMs);
        const now = t + wait;
        const moved = wm.idleAdvance(now);
        if (wait < o.idleTimeoutMs) {
          expect(moved).toBe(false);
          expect(wm.value).toBe(after);
        } else {
          expect(wm.value).toBe(Math.max(after, now - o.idleTimeoutMs - o.maxOutOfOrdernessMs));
          expect(moved).toBe(wm.value !== after);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('touch restarts the idle clock without moving event time', () => {
    fc.assert(
      fc.property(opts, fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 1e6 }), (o, t, ts) => {
        const wm = new Watermark(o);
        wm.observe(ts, t);
        const v = wm.value;
        const touchAt = t + o.idleTimeoutMs; // idle long enough here...
        wm.touch(touchAt);
        expect(wm.value).toBe(v);
        // ...but the touch resets the clock: one ms before the timeout since the touch, nothing moves
        expect(wm.idleAdvance(touchAt + o.idleTimeoutMs - 1)).toBe(false);
        expect(wm.value).toBe(v);
        wm.idleAdvance(touchAt + o.idleTimeoutMs);
        expect(wm.value).toBe(Math.max(v, touchAt - o.maxOutOfOrdernessMs));
      }),
    );
  });

  it('a fresh watermark (never observed) advances on the first idle tick', () => {
    fc.assert(
      fc.property(opts, fc.integer({ min: 0, max: 1e9 }), (o, now) => {
        const wm = new Watermark(o);
        expect(wm.value).toBe(-Infinity);
        expect(wm.idleAdvance(now)).toBe(true);
        expect(wm.value).toBe(now - o.idleTimeoutMs - o.maxOutOfOrdernessMs);
      }),
    );
  });
});
