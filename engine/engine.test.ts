/**
 * The engine's commit rule, without servers: a failed checkpoint save keeps the batches for the
 * next attempt; a commit records which windows are complete in QuestDB (`durable`) and the
 * stream it counts in; acks go only to the consumer the message came from.
 */
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import type { StreamInfo } from '@nats-io/jetstream';
import { Watermark } from '../operators/windows/watermark.js';
import { parseConfig } from './config.js';
import { Engine } from './engine.js';
import { checkpointApplies, type Checkpoint } from './source.js';

interface Rec {
  id: number;
  lastSeq: number;
  lastMsg: { ack(): void } | null;
  gen: number;
  maxFinal: number;
  wmNext: number;
  workersPending: number;
  publishesPending: number;
  failed: boolean;
}

/** An engine with its commit state set by hand (no NATS, no workers). */
function engineWith(opts: { flushedWm: number; records: Rec[]; save: (c: Checkpoint) => Promise<void>; gen?: number; streamId?: string }) {
  const e = new Engine(parseConfig({}), pino({ level: 'silent' }));
  const x = e as unknown as Record<string, unknown>;
  x.workers = [{ flushedWm: opts.flushedWm, pendingRows: 0, inflight: 0, writeFailing: false }];
  x.queue = opts.records;
  x.recordById = new Map(opts.records.map((r) => [r.id, r]));
  x.checkpoints = { save: opts.save };
  x.watermark = new Watermark({ maxOutOfOrdernessMs: 2000, idleTimeoutMs: 3_600_000 }, opts.flushedWm);
  x.natsConnected = true;
  x.gen = opts.gen ?? 1;
  x.streamId = opts.streamId ?? '2026-11-23T10:00:00.000000001Z';
  return { e, queue: () => x.queue as Rec[] };
}

function rec(id: number, lastSeq: number, maxFinal: number, acks: number[], gen = 1): Rec {
  return { id, lastSeq, lastMsg: { ack: () => acks.push(lastSeq) }, gen, maxFinal, wmNext: maxFinal - 50_000, workersPending: 0, publishesPending: 0, failed: false };
}

describe('Engine.commit', () => {
  it('keeps the batches when the checkpoint cannot be saved, and commits them at the next attempt', async () => {
    const acks: number[] = [];
    const saved: Checkpoint[] = [];
    let fail = true;
    const { e, queue } = engineWith({
      flushedWm: 100_000,
      records: [rec(1, 10, 90_000, acks), rec(2, 20, 95_000, acks), rec(3, 30, 150_000, acks)],
      save: async (c) => {
        if (fail) throw new Error('NATS is away');
        saved.push(c);
      },
    });
    await e.commit();
    expect(queue().map((r) => r.id)).toEqual([1, 2, 3]);
    expect(acks).toEqual([]);
    expect(e.counters.committedSeq).toBe(0);

    fail = false;
    await e.commit();
    expect(queue().map((r) => r.id)).toEqual([3]);
    expect(saved).toHaveLength(1);
    expect(saved[0]).toMatchObject({ seq: 20, wm: 45_000, durable: 100_000, stream: '2026-11-23T10:00:00.000000001Z' });
    expect(acks).toEqual([20]);
    expect(e.counters.committedSeq).toBe(20);
  });

  it('acks only a message of the current consumer (a later ack covers the others)', async () => {
    const acks: number[] = [];
    const { e } = engineWith({ flushedWm: 100_000, gen: 2, records: [rec(1, 10, 90_000, acks, 1)], save: async () => undefined });
    await e.commit();
    expect(acks).toEqual([]);
    expect(e.counters.committedSeq).toBe(10);
  });

  it('never lowers durable below what the checkpoint it restored had', async () => {
    const saved: Checkpoint[] = [];
    const { e } = engineWith({ flushedWm: 100_000, records: [rec(1, 10, 90_000, [])], save: async (c) => void saved.push(c) });
    (e as unknown as { durable: number }).durable = 250_000;
    await e.commit();
    expect(saved[0].durable).toBe(250_000);
  });
});

describe('checkpointApplies', () => {
  const stream = (created: string, lastSeq: number) => ({ created, state: { last_seq: lastSeq } }) as unknown as StreamInfo;
  const ck = (seq: number, s?: string): Checkpoint => ({ seq, wm: 0, at: '', ...(s ? { stream: s } : {}) });

  it('a checkpoint names the stream its position counts in', () => {
    expect(checkpointApplies(ck(50, 'A'), stream('A', 40))).toBe(true);
    expect(checkpointApplies(ck(50, 'A'), stream('B', 900))).toBe(false);
  });

  it('an older checkpoint without the name applies unless the stream is shorter than its position', () => {
    expect(checkpointApplies(ck(50), stream('B', 50))).toBe(true);
    expect(checkpointApplies(ck(50), stream('B', 0))).toBe(false);
  });
});
