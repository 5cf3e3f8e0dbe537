/**
 * Fault injection on the real stack (issue 5, default pipeline). One seeded event set (out of
 * order, late corrections, events past the lateness, bad events) is published while the real
 * engine process is killed with SIGKILL three times, the real QuestDB process is stopped and
 * started, and the real nats-server is stopped and started on its data dir. Every row of
 * weir_agg_10s and weir_agg_1m must then equal the brute-force oracle: none lost, none
 * duplicated. Then the event and dead-letter streams are deleted under the engine.
 * scripts/soak.ts runs the same round in a loop (`npm run soak -- --minutes N`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { awaitRowsAndDiff, deadLetters, EngineUnderTest, FAULTS_CONFIG, faultRound, Publisher, ROUND_SPAN_MS, roundWorkload, walApplied } from './faults-kit.js';
import { waitFor } from './harness.js';
import { workload, type RowDiff } from './oracle.js';
import { useRealStack } from './real-stack.js';

const METRICS = ['fault_latency', 'fault_temp', 'fault_errors'];
const KEYS = Array.from({ length: 10 }, (_, i) => `node-${i}`);

function expectClean(d: RowDiff) {
  expect(d.lost, 'rows lost').toEqual([]);
  expect(d.duplicated, 'rows duplicated').toEqual([]);
  expect(d.extra, 'rows the oracle does not know').toEqual([]);
  expect(d.wrong, 'rows that differ from the oracle').toEqual([]);
}

describe('faults on the real stack', () => {
  const ctx = useRealStack();
  let nc: NatsConnection;
  let engine: EngineUnderTest | undefined;
  const lines: string[] = [];
  const log = (line: string) => lines.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
  const base = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
  const SPAN = ROUND_SPAN_MS;
  /** Event time where the next test's events start: past the watermark the previous one left (minute-aligned). */
  let nextBase = base + SPAN + 180_000;

  beforeAll(async () => {
    nc = await connect({ servers: ctx.stack.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 250, noAsyncTraces: true });
  });
  afterAll(async () => {
    await engine?.stop('SIGKILL');
    await nc?.close();
  });

  /** The engine the tests share (started here when a test runs alone, e.g. with -t). */
  async function running(): Promise<EngineUnderTest> {
    engine ??= await EngineUnderTest.start(ctx.stack, FAULTS_CONFIG);
    return engine;
  }

  /** Publishes a small workload after the previous one in event time, then its sentinel; returns the row diff. */
  async function publishAndDiff(seed: number, metric: string, idPrefix: string): Promise<RowDiff> {
    const b = nextBase;
    const work = workload({ seed, base: b, metrics: [metric], keys: KEYS, hot: KEYS.slice(0, 2), events: 2000, spanMs: 30_000 });
    nextBase = b + 240_000;
    const pub = new Publisher(nc, idPrefix);
    await pub.run(work.messages, 1000);
    await pub.publishOne({ subject: `weir.events.${metric}_sentinel`, body: JSON.stringify({ key: 's', value: 1, ts: b + 30_000 + 120_000 }) }, `${idPrefix}:sentinel`);
    return awaitRowsAndDiff(ctx.pool, work.good, [metric], log, 120_000);
  }

  it('kill -9 (3x), a QuestDB outage and a nats-server restart while publishing: every row equals the brute force', async () => {
    const work = roundWorkload(5, base, METRICS);
    expect(work.bad).toBeGreaterThan(10);
    expect(work.tooLate).toBeGreaterThan(3);
    engine = await EngineUnderTest.start(ctx.stack, FAULTS_CONFIG);
    try {
      const r = await faultRound({
        stack: ctx.stack,
        nc,
        pool: ctx.pool,
        engine,
        work,
        metrics: METRICS,
        sentinelTs: base + SPAN + 120_000,
        seed: 7,
        perSecond: 50,
        idPrefix: 'faults',
        log,
      });
      log(
        `round: ${r.messages} messages, ${r.events} events, ${r.crashes} kill -9, ${r.questdbOutages} QuestDB and ${r.natsOutages} NATS outages, ` +
          `${r.diff.expected} rows expected, ${r.diff.found} found, lost ${r.diff.lost.length}, duplicated ${r.diff.duplicated.length}, ` +
          `peak rows buffered ${r.peakPendingRows}, peak RSS ${(engine.peakRssBytes / 2 ** 20).toFixed(0)} MiB, ${r.seconds.toFixed(0)} s`,
      );
      expect(r.crashes).toBe(3);
      expectClean(r.diff);
      expect(r.diff.percentilesChecked).toBeGreaterThan(20);
      expect(r.checks.filter((c) => !c.ok)).toEqual([]);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- fault log ---\n${lines.join('\n')}\n--- engine output (tail) ---\n${engine.output().slice(-20_000)}`);
    }
    console.log(lines.join('\n'));
  }, 480_000);

  it('kill -9 after a commit does not let a replayed late correction replace a complete row', async () => {
    // R1 fills window W = [T0, T0+10 s) of key k and fires it; R2 corrects W (accepted: the
    // watermark is 40 s short of W's final time) and opens a later minute; R3 moves the
    // watermark past the final time of R1's windows only, so the engine commits R1 but not R2.
    // A restart then replays R2 from R1's checkpoint: the correction must not rebuild W (or its
    // minute) from itself alone and overwrite the complete rows.
    await running();
    const T0 = nextBase;
    nextBase = T0 + 300_000;
    const js = jetstream(nc);
    const send = async (events: { key: string; value: number; ts: number }[]) => {
      const before = (await engine!.metrics()).weir_messages_total;
      const ack = await js.publish('weir.events.replay_fix', JSON.stringify(events));
      // One message per source batch: wait until it is processed before the next is published.
      await waitFor('the engine to process the message', async () => ((await engine!.metrics()).weir_messages_total > before ? true : undefined), 30_000, 50);
      return ack.seq;
    };
    const r1 = await send([1, 2, 3, 4, 5].map((i) => ({ key: 'k', value: i, ts: T0 + i * 1000 })).concat([{ key: 'k2', value: 1, ts: T0 + 13_000 }]));
    await send([{ key: 'k', value: 100, ts: T0 + 2000 }, { key: 'k3', value: 1, ts: T0 + 65_000 }]);
    await send([{ key: 'k4', value: 1, ts: T0 + 95_000 }]);
    await waitFor('the engine to commit R1 (and only R1)', async () => {
      const m = await engine!.metrics();
      return m.weir_committed_sequence >= r1 ? m : undefined;
    }, 60_000, 100);
    await engine!.crashAndRestart();
    await js.publish('weir.events.replay_fix', JSON.stringify({ key: 's', value: 1, ts: T0 + 250_000 }));
    await waitFor('the replay and the sentinel to be processed and flushed', async () => {
      const m = await engine!.metrics();
      return m.weir_messages_total >= 3 && m.weir_watermark_ms >= T0 + 150_000 && m.weir_sink_pending_rows === 0 ? true : undefined;
    }, 60_000, 250);
    await walApplied(ctx.pool, ['weir_agg_10s', 'weir_agg_1m']);
    const r10 = await ctx.pool.query(`SELECT count, sum FROM weir_agg_10s WHERE metric = 'replay_fix' AND key = 'k'`);
    const r1m = await ctx.pool.query(`SELECT count, sum FROM weir_agg_1m WHERE metric = 'replay_fix' AND key = 'k'`);
    expect(r10.rows).toEqual([{ count: 6, sum: 115 }]);
    expect(r1m.rows).toEqual([{ count: 6, sum: 115 }]);
    expect((await engine!.metrics()).weir_replay_skipped_total).toBeGreaterThan(0);
  }, 180_000);

  it('recreates WEIR_EVENTS, loudly, when it vanishes under a running engine, and reads the new stream from its start', async () => {
    await running();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete('WEIR_EVENTS');
    const out = await waitFor('the engine to recreate the stream', async () => {
      const o = engine!.current.output();
      return /WEIR_EVENTS vanished/.test(o) ? o : undefined;
    }, 60_000);
    expect(out).toMatch(/"level":50.*WEIR_EVENTS vanished/);
    await waitFor('the stream to exist again', async () => ((await jsm.streams.info('WEIR_EVENTS')) ? true : undefined), 30_000);
    // New stream, sequences from 1 again: every event of it must still be counted.
    expectClean(await publishAndDiff(21, 'reborn_latency', 'reborn'));
    expect(engine!.current.proc.exitCode).toBeNull();
  }, 240_000);

  it('after a restart with a checkpoint of a deleted stream, reads the new stream from its start', async () => {
    // The engine has committed part of the stream recreated above; kill it, delete that
    // stream while no engine runs, and start again.
    await running();
    if ((await engine!.metrics()).weir_committed_sequence === 0) expectClean(await publishAndDiff(23, 'precommit_latency', 'precommit'));
    await waitFor('a commit', async () => ((await engine!.metrics()).weir_committed_sequence > 0 ? true : undefined), 30_000);
    await engine!.current.stop('SIGKILL');
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete('WEIR_EVENTS');
    await engine!.crashAndRestart();
    expect(engine!.current.output()).toMatch(/checkpoint .*belongs to a deleted stream/);
    expectClean(await publishAndDiff(22, 'renewed_latency', 'renewed'));
  }, 240_000);

  it('survives a vanished dead-letter stream: recreates it and the bad event lands in it', async () => {
    await running();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete('WEIR_DEADLETTER');
    const js = jetstream(nc);
    await js.publish('weir.events.dlqgone', JSON.stringify([{ key: 'a', value: 1, ts: nextBase }, { key: 'a', value: 'one' }]));
    const d = await waitFor('the bad event in the recreated dead-letter stream', async () => {
      const x = await deadLetters(nc, ['weir.dlq.dlqgone']);
      return x.distinct === 1 ? x : undefined;
    }, 60_000, 500);
    expect(d.distinct).toBe(1);
    expect(engine!.current.proc.exitCode).toBeNull();
    expect(engine!.current.output()).toMatch(/WEIR_DEADLETTER vanished/);
  }, 120_000);
});
