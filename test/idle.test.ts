/**
 * Contract v1: with the default config, every window is written within 15 s (wall clock) of
 * its end even if no further event arrives: the watermark of an idle stream follows the clock.
 * Also: a SIGTERM after that leaves a checkpoint, and a restarted engine neither rewrites nor
 * loses the window.
 */
import { describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { sleep, startEngine, waitFor } from './harness.js';
import { useRealStack } from './real-stack.js';

describe('idle stream', () => {
  const ctx = useRealStack();

  it('writes the 10 s window within 15 s of its end with no further events', async () => {
    ctx.engine = await startEngine(ctx.stack, {});
    // Start right after a 10 s boundary so the window is still open while we publish.
    const now = Date.now();
    await sleep(10_000 - (now % 10_000) + 50);
    const start = Date.now() - (Date.now() % 10_000);
    const js = jetstream(ctx.nc);
    const values = [3, 1, 4, 1, 5, 9, 2, 6];
    await js.publish('weir.events.idle_test', JSON.stringify(values.map((value, i) => ({ key: 'quiet', value, ts: start + i * 100 }))));
    const end = start + 10_000;
    const seenAt = await waitFor(
      'the idle window row',
      async () => {
        const r = await ctx.pool.query(`SELECT count, sum, min, max FROM weir_agg_10s WHERE metric = 'idle_test' AND key = 'quiet' AND ts = $1`, [new Date(start)]);
        return r.rows.length ? { at: Date.now(), row: r.rows[0] } : undefined;
      },
      60_000,
      100,
    );
    expect(seenAt.row).toEqual({ count: 8, sum: 31, min: 1, max: 9 });
    expect(seenAt.at - end).toBeLessThanOrEqual(15_000);

    // Stop while the 1 min window is still open: the message is uncommitted and comes back on
    // restart; the 10 s row is re-emitted identically (upsert), never doubled.
    expect(await ctx.engine.stop('SIGTERM')).toBe(0);
    ctx.engine = await startEngine(ctx.stack, {});
    const oneMinute = await waitFor(
      'the 1 min window row after the restart',
      async () => {
        const r = await ctx.pool.query(`SELECT count, sum FROM weir_agg_1m WHERE metric = 'idle_test' AND key = 'quiet'`);
        return r.rows.length ? r.rows : undefined;
      },
      90_000,
      250,
    );
    expect(oneMinute).toEqual([{ count: 8, sum: 31 }]);
    const r = await ctx.pool.query(`SELECT count, sum FROM weir_agg_10s WHERE metric = 'idle_test'`);
    expect(r.rows).toEqual([{ count: 8, sum: 31 }]);
  }, 120_000);
});
