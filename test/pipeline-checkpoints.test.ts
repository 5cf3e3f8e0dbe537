/**
 * Checkpoints of declared pipelines on the real stack (docs/pipelines.md, "Delivery"): a rolling
 * pipeline (1 min panes, 5 and 30 min, debounced) and a tumbling one with alerts run in the engine;
 * events are published, a checkpoint covers them, the engine is killed (-9), more events are
 * published, and the restarted engine must
 *   (a) resume from the checkpoint: `restoredFrom` is the stream sequence of the last message
 *       before the kill, and it processes exactly the events published after it;
 *   (b) end with the rows and weir_alerts of an uninterrupted run over all the events (the same
 *       PipelineRuntime fed everything in one go), counts checked against brute force: nothing
 *       lost, nothing duplicated.
 * Then garbage is written to one pipeline's checkpoint key while the engine is down: that runner
 * says so loudly, reads the whole stream again, and the rows are the same once more; the other
 * pipeline restores as before. Last, the checkpoint store alone on the real bucket: a payload
 * of several KV values goes in chunks and comes back.
 *
 * The watermark follows event time only (idleTimeout longer than the test), and events come in
 * event-time order, so no event is ever late and the uninterrupted run is well defined; a last
 * event far ahead, which the pipelines' `where` drops, closes every window.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { rng } from '../benchmarks/producer.js';
import { CheckpointStore, type PipelineCheckpoint } from '../engine/pipeline/checkpoint.js';
import { PipelineRuntime, type KeyedSample, type PipelineResult } from '../engine/pipeline/runtime.js';
import type { AlertEvent } from '../engine/pipeline/sink.js';
import { parsePipeline, type PipelineInput } from '../engine/pipeline/spec.js';
import { startEngine, waitFor } from './harness.js';
import { useRealStack } from './real-stack.js';
import { alertRows, firstLines, tableRows, untilNoDiff, walApplied, type DbRow } from './shipped/live.js';

const MIN = 60_000;

const ROLL: PipelineInput = {
  name: 'ck_roll',
  source: { metrics: ['ck_a'], where: { tags: { env: 'prod' } } },
  window: { type: 'rolling', pane: '1m', sizes: ['5m', '30m'] },
  aggregates: { n: { fn: 'count' }, total: { fn: 'sum' }, hi: { fn: 'max' } },
  debounce: { wait: '200ms', maxWait: '1s' },
};

const TUM: PipelineInput = {
  name: 'ck_tum',
  source: { metrics: ['ck_a', 'ck_b'], where: { tags: { env: 'prod' } } },
  window: { type: 'tumbling', size: '1m' },
  trigger: { early: '1s' },
  aggregates: { n: { fn: 'count', metric: 'ck_a' }, total: { fn: 'sum', metric: 'ck_a' }, b: { fn: 'sum', metric: 'ck_b' } },
  alerts: [
    { name: 'busy', field: 'n', op: '>', threshold: 6, for: '2m', resolve: 4 },
    { name: 'quiet', field: 'total', op: '<', threshold: 60, severity: 'info' },
  ],
};

const COLUMNS = { ck_roll: ['n', 'total', 'hi'], ck_tum: ['n', 'total', 'b'] } as const;
type Name = keyof typeof COLUMNS;

interface Ev extends KeyedSample {
  tags: Record<string, string>;
}

interface Published {
  seq: number;
  metric: string;
  events: number;
}

/** 80 minutes of events of 6 keys, 2 h ago, in event-time order: 0-10 per key and minute on ck_a, a few on ck_b. */
function makeEvents(base: number): Ev[] {
  const rand = rng(5);
  const out: Ev[] = [];
  for (let m = 0; m < 80; m++)
    for (let k = 0; k < 6; k++) {
      const n = Math.floor(rand() * 11);
      for (let i = 0; i < n; i++) out.push({ metric: 'ck_a', key: `k${k}`, ts: base + m * MIN + Math.floor(rand() * MIN), value: Math.round(rand() * 30), tags: { env: rand() < 0.9 ? 'prod' : 'dev' } });
      if (rand() < 0.3) out.push({ metric: 'ck_b', key: `k${k}`, ts: base + m * MIN + Math.floor(rand() * MIN), value: Math.round(rand() * 5), tags: { env: 'prod' } });
    }
  return out.sort((a, b) => a.ts - b.ts);
}

/** What an uninterrupted run gives: the newest row of every (key, window, start), and every alert transition. */
function uninterrupted(input: PipelineInput, events: Ev[]): { rows: Map<string, PipelineResult>; alerts: AlertEvent[] } {
  const rt = new PipelineRuntime(parsePipeline(input));
  const reads = new Set(input.source.metrics);
  const mine = events.filter((e) => reads.has(e.metric));
  const maxTs = Math.max(...mine.map((e) => e.ts));
  const outs = [rt.process(mine, -Infinity, maxTs - 1000, 0), rt.tick(maxTs - 1000, 1e12)];
  const rows = new Map<string, PipelineResult>();
  const alerts: AlertEvent[] = [];
  for (const o of outs) {
    for (const r of o.results) rows.set(`${r.key}|${r.window}|${r.start}`, r);
    alerts.push(...o.alerts);
  }
  return { rows, alerts };
}

function rowsDiff(name: Name, got: DbRow[], want: Map<string, PipelineResult>): string[] {
  const diffs: string[] = [];
  const seen = new Set<string>();
  for (const r of got) {
    const id = `${r.key}|${r.window}|${r.ts}`;
    if (seen.has(id)) diffs.push(`${name} ${id}: duplicated`);
    seen.add(id);
    const w = want.get(id);
    if (!w) {
      diffs.push(`${name} ${id}: not in the uninterrupted run`);
      continue;
    }
    const g = { end: r.window_end, final: r.final, ...Object.fromEntries(COLUMNS[name].map((c) => [c, r[c] ?? null])) };
    const e = { end: w.end, final: w.final, ...Object.fromEntries(COLUMNS[name].map((c) => [c, w[c] ?? null])) };
    if (JSON.stringify(g) !== JSON.stringify(e)) diffs.push(`${name} ${id}: got ${JSON.stringify(g)}, want ${JSON.stringify(e)}`);
  }
  for (const id of want.keys()) if (!seen.has(id)) diffs.push(`${name} ${id}: missing`);
  return diffs;
}

const alertId = (a: { ts: number; window: string; rule: string; key: string; state: string; value: number; since: number }) => `${a.ts}|${a.window}|${a.rule}|${a.key}|${a.state}|${a.value}|${a.since}`;

describe('declared pipelines: checkpoints on the real stack', () => {
  const ctx = useRealStack();

  it('kill -9 after a checkpoint: the restart resumes from it and the rows and alerts equal an uninterrupted run; a corrupt checkpoint falls back to a full replay with the same rows', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-checkpoints-'));
    for (const p of [ROLL, TUM]) writeFileSync(path.join(dir, `${p.name}.json`), JSON.stringify(p));
    const env = { WEIR_PIPELINES: 'ck_roll,ck_tum', WEIR_PIPELINES_DIR: dir };
    const config = { pipeline: { maxOutOfOrderness: '1s', idleTimeout: '1h' }, pipelines: { checkpointInterval: '1s', tick: '100ms' } };
    ctx.engine = await startEngine(ctx.stack, config, env);

    const base = Math.floor((Date.now() - 3 * 60 * MIN) / MIN) * MIN;
    const events = makeEvents(base);
    // the closer: far ahead in event time, dropped by `where`, so the watermark passes every window
    const closer: Ev = { metric: 'ck_a', key: 'closer', ts: base + 150 * MIN, value: 0, tags: { env: 'closer' } };
    const js = jetstream(ctx.nc);
    const published: Published[] = [];
    // in event-time order: runs of one metric, at most 40 events a message
    const publish = async (evs: Ev[]) => {
      for (let i = 0; i < evs.length; ) {
        const metric = evs[i].metric;
        let j = i + 1;
        while (j < evs.length && j - i < 40 && evs[j].metric === metric) j++;
        const ack = await js.publish(`weir.events.${metric}`, JSON.stringify(evs.slice(i, j).map(({ metric: _m, ...e }) => e)));
        published.push({ seq: ack.seq, metric, events: j - i });
        i = j;
      }
    };
    type Status = {
      caughtUp: boolean;
      lastSeq: number;
      restoredFrom: number;
      restoreError?: string;
      eventsThisRun: number;
      events: number;
      checkpointSeq: number;
      checkpoints: number;
      checkpointBytes: number;
      checkpointSnapshotMs: number;
      consumer: string;
      ackedSeq: number;
    };
    const status = async (name: Name) => (await ctx.nc.request(`weir.api.${name}.status`, '{}', { timeout: 3000 })).json<Status>();
    const reads = (name: Name) => new Set(name === 'ck_roll' ? ROLL.source.metrics : TUM.source.metrics);
    const lastSeqOf = (name: Name) => Math.max(...published.filter((p) => reads(name).has(p.metric)).map((p) => p.seq));
    const eventsAfter = (name: Name, seq: number) => published.filter((p) => p.seq > seq && reads(name).has(p.metric)).reduce((n, p) => n + p.events, 0);

    // Phase 1: 60 % of the events, then a checkpoint that covers them.
    const cut = Math.floor(events.length * 0.6);
    await publish(events.slice(0, cut));
    const covered: Record<Name, number> = { ck_roll: 0, ck_tum: 0 };
    for (const name of ['ck_roll', 'ck_tum'] as const) {
      const upTo = lastSeqOf(name);
      const st = await waitFor(`${name} to checkpoint up to seq ${upTo}`, async () => {
        const s = await status(name);
        return s.checkpointSeq >= upTo ? s : undefined;
      }, 30_000, 100);
      covered[name] = st.checkpointSeq;
      expect(st.checkpointSeq).toBe(upTo);
      // acks follow checkpoints: the durable consumer's ack floor is the checkpoint's position
      const acked = await waitFor(`${name} to ack up to seq ${upTo}`, async () => {
        const info = await (await jetstreamManager(ctx.nc)).consumers.info('WEIR_EVENTS', `weir-pipeline-${name}`);
        return info.ack_floor.stream_seq >= upTo ? info : undefined;
      }, 30_000, 100);
      expect(acked.ack_floor.stream_seq).toBe(upTo);
      expect(acked.config.ack_policy).toBe('all');
      expect((await status(name)).ackedSeq).toBe(upTo);
    }
    expect(await ctx.engine.stop('SIGKILL')).toBe('SIGKILL');

    // Phase 2 while the engine is down: the rest, and the closer.
    await publish([...events.slice(cut), closer]);
    ctx.engine = await startEngine(ctx.stack, config, env);
    const all = [...events, closer];
    const want = { ck_roll: uninterrupted(ROLL, all), ck_tum: uninterrupted(TUM, all) };

    const caughtUp = async (name: Name) =>
      waitFor(`${name} to read up to seq ${lastSeqOf(name)}`, async () => {
        const s = await status(name);
        return s.caughtUp && s.lastSeq >= lastSeqOf(name) ? s : undefined;
      }, 60_000, 100);
    for (const name of ['ck_roll', 'ck_tum'] as const) {
      const st = await caughtUp(name);
      // (a) resumed from the checkpoint, and read only what came after it
      expect(st.restoredFrom, name).toBe(covered[name]);
      expect(st.eventsThisRun, name).toBe(eventsAfter(name, covered[name]));
      expect(st.events, name).toBe(all.filter((e) => reads(name).has(e.metric)).length);
    }

    // (b) the rows and alerts of an uninterrupted run
    const check = async (what: string) => {
      for (const name of ['ck_roll', 'ck_tum'] as const) {
        const diffs = await untilNoDiff(async () => {
          if (!(await walApplied(ctx.pool, `weir_p_${name}`)) || !(await walApplied(ctx.pool, 'weir_alerts'))) return ['WAL not applied yet'];
          const d = rowsDiff(name, await tableRows(ctx.pool, name), want[name].rows);
          const gotAlerts = (await alertRows(ctx.pool, name)).map((a) => alertId({ ...a, window: (a as unknown as { window: string }).window })).sort();
          const wantAlerts = want[name].alerts.map((a) => alertId({ ...a, ts: a.at })).sort();
          if (JSON.stringify(gotAlerts) !== JSON.stringify(wantAlerts)) d.push(`${name} alerts: got ${gotAlerts.length} [${gotAlerts.slice(0, 5).join(', ')}...], want ${wantAlerts.length} [${wantAlerts.slice(0, 5).join(', ')}...]`);
          return d;
        }, 60_000);
        expect(diffs, `${what}: ${name}\n${firstLines(diffs)}`).toEqual([]);
      }
    };
    // brute force of the counts, so that the reference itself is right
    const prod = events.filter((e) => e.tags.env === 'prod');
    for (const [id, r] of want.ck_tum.rows) {
      const n = prod.filter((e) => e.metric === 'ck_a' && e.key === r.key && e.ts >= r.start && e.ts < r.end).length;
      expect(r.n, id).toBe(n);
      expect(r.final, id).toBe(true);
    }
    for (const [id, r] of want.ck_roll.rows) expect(r.n, id).toBe(prod.filter((e) => e.metric === 'ck_a' && e.key === r.key && e.ts >= r.start && e.ts < r.end).length);
    expect(want.ck_roll.rows.size).toBeGreaterThan(400);
    expect(want.ck_tum.alerts.length).toBeGreaterThan(5);
    await check('after kill -9 and a restart from the checkpoint');

    // A corrupt checkpoint of ck_tum while the engine is down: loud log, full replay, same rows.
    await waitFor('ck_tum to checkpoint the rest', async () => ((await status('ck_tum')).checkpointSeq >= lastSeqOf('ck_tum') ? true : undefined), 30_000, 100);
    const rollCovered = (await waitFor('ck_roll to checkpoint the rest', async () => {
      const s = await status('ck_roll');
      return s.checkpointSeq >= lastSeqOf('ck_roll') ? s : undefined;
    }, 30_000, 100)).checkpointSeq;
    expect(await ctx.engine.stop('SIGKILL')).toBe('SIGKILL');
    const kv = await new Kvm(js).open('WEIR_CHECKPOINTS');
    await kv.put('pipeline.ck_tum', 'garbage, not a checkpoint');
    ctx.engine = await startEngine(ctx.stack, config, env);
    const tum = await caughtUp('ck_tum');
    expect(tum.restoredFrom).toBe(0);
    expect(tum.restoreError).toMatch(/pipeline checkpoint pipeline\.ck_tum: no record line/);
    expect(tum.eventsThisRun).toBe(all.filter((e) => reads('ck_tum').has(e.metric)).length);
    expect(ctx.engine.output()).toMatch(/PIPELINE ck_tum: CHECKPOINT NOT USED, READING THE WHOLE STREAM AGAIN/);
    const roll = await caughtUp('ck_roll');
    expect(roll.restoredFrom).toBe(rollCovered);
    expect(roll.eventsThisRun).toBe(0);
    await check('after a full replay of ck_tum (corrupt checkpoint)');
  });

  it('QuestDB down: the runner stops taking events at sink.maxPendingRows and catches up after; a NATS restart positions its consumer again; the rows equal an uninterrupted run', async () => {
    await ctx.engine?.stop('SIGKILL');
    const BP: PipelineInput = {
      name: 'ck_bp',
      source: { metrics: ['ck_c'], where: { tags: { env: 'prod' } } },
      window: { type: 'tumbling', size: '1m' },
      aggregates: { n: { fn: 'count' }, total: { fn: 'sum' }, hi: { fn: 'max' } },
    };
    const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-backpressure-'));
    writeFileSync(path.join(dir, 'ck_bp.json'), JSON.stringify(BP));
    const env = { WEIR_PIPELINES: 'ck_bp', WEIR_PIPELINES_DIR: dir };
    const config = { pipeline: { maxOutOfOrderness: '1s', idleTimeout: '1h' }, pipelines: { checkpointInterval: '1s', tick: '100ms' }, sink: { maxPendingRows: 30 } };
    ctx.engine = await startEngine(ctx.stack, config, env);
    const base = Math.floor((Date.now() - 3 * 60 * MIN) / MIN) * MIN;
    const events = makeEvents(base).filter((e) => e.metric === 'ck_a').map((e) => ({ ...e, metric: 'ck_c' }));
    const closer: Ev = { metric: 'ck_c', key: 'closer', ts: base + 150 * MIN, value: 0, tags: { env: 'closer' } };
    const js = jetstream(ctx.nc);
    let lastSeq = 0;
    const publish = async (evs: Ev[]) => {
      for (let i = 0; i < evs.length; i += 5) {
        const body = JSON.stringify(evs.slice(i, i + 5).map(({ metric: _m, ...e }) => e));
        // through a NATS restart: retry until JetStream stores it (the msg id keeps it once)
        const id = `ck_bp-${evs[i].key}-${evs[i].ts}-${i}`;
        const ack = await waitFor('a publish to be stored', async () => js.publish('weir.events.ck_c', body, { msgID: id }).catch(() => undefined), 60_000, 200);
        lastSeq = ack.seq;
      }
    };
    type Status = { caughtUp: boolean; lastSeq: number; backpressure: boolean; backpressurePauses: number; pendingRows: number; repositions: number; ackedSeq: number; checkpointSeq: number };
    const status = async () => (await ctx.nc.request('weir.api.ck_bp.status', '{}', { timeout: 3000 })).json<Status>();
    const caughtUp = () => waitFor(`ck_bp to read up to seq ${lastSeq}`, async () => {
      const s = await status().catch(() => undefined);
      return s && s.caughtUp && s.lastSeq >= lastSeq ? s : undefined;
    }, 120_000, 200);

    const a = Math.floor(events.length * 0.3);
    const b = Math.floor(events.length * 0.7);
    await publish(events.slice(0, a));
    await caughtUp();

    // QuestDB away: rows pile up to the bound, then the runner stops taking messages
    await ctx.stack.stopQuestdb();
    await publish(events.slice(a, b));
    const paused = await waitFor('ck_bp to stop taking events (back-pressure)', async () => {
      const s = await status();
      return s.backpressure ? s : undefined;
    }, 60_000, 200);
    expect(paused.pendingRows).toBeGreaterThanOrEqual(30);
    await new Promise((r) => setTimeout(r, 1500));
    const still = await status();
    expect(still.backpressure).toBe(true);
    expect(still.lastSeq).toBe(paused.lastSeq);
    expect(still.lastSeq).toBeLessThan(lastSeq);
    const info = await (await jetstreamManager(ctx.nc)).consumers.info('WEIR_EVENTS', 'weir-pipeline-ck_bp');
    expect(info.num_pending + info.num_ack_pending).toBeGreaterThan(0);
    // /readyz and /metrics say so
    const metrics = await ctx.engine.metrics();
    expect(metrics['weir_pipeline_backpressure_active{pipeline="ck_bp"}']).toBe(1);
    expect(metrics['weir_pipeline_pending_rows{pipeline="ck_bp"}']).toBeGreaterThanOrEqual(30);
    const notReady = await waitFor('/readyz to report ck_bp not writing', async () => {
      const r = await fetch(`${ctx.engine!.http}/readyz`);
      const body = (await r.json()) as { pipelines?: { pipeline: string; questdbWrites: boolean }[] };
      return r.status === 503 && body.pipelines?.find((p) => p.pipeline === 'ck_bp')?.questdbWrites === false ? body : undefined;
    }, 30_000, 250);
    expect(notReady.pipelines).toHaveLength(1);
    await ctx.stack.startQuestdb();
    const resumed = await caughtUp();
    expect(resumed.backpressurePauses).toBeGreaterThanOrEqual(1);
    expect(resumed.backpressure).toBe(false);

    // NATS restarted: the runner positions its consumer again after the last message it processed
    await ctx.stack.stopNats();
    await ctx.stack.startNats();
    await publish([...events.slice(b), closer]);
    const done = await caughtUp();
    expect(done.repositions).toBeGreaterThanOrEqual(1);
    const ready = await waitFor('/readyz 200 with ck_bp ready', async () => {
      const r = await fetch(`${ctx.engine!.http}/readyz`);
      const body = (await r.json()) as { pipelines?: { pipeline: string; ready: boolean }[] };
      return r.status === 200 ? body : undefined;
    }, 60_000, 250);
    expect(ready.pipelines).toEqual([{ pipeline: 'ck_bp', ready: true, nats: true, consuming: true, questdbWrites: true }]);
    const after = await ctx.engine.metrics();
    expect(after['weir_pipeline_consumer_repositions_total{pipeline="ck_bp"}']).toBeGreaterThanOrEqual(1);
    expect(after['weir_pipeline_checkpoint_sequence{pipeline="ck_bp"}']).toBeGreaterThan(0);

    const want = uninterrupted(BP, [...events, closer]).rows;
    expect(want.size).toBeGreaterThan(400);
    const diffs = await untilNoDiff(async () => {
      if (!(await walApplied(ctx.pool, 'weir_p_ck_bp'))) return ['WAL not applied yet'];
      const got = await tableRows(ctx.pool, 'ck_bp');
      const d: string[] = [];
      const seen = new Set<string>();
      for (const r of got) {
        const id = `${r.key}|${r.window}|${r.ts}`;
        if (seen.has(id)) d.push(`${id}: duplicated`);
        seen.add(id);
        const w = want.get(id);
        if (!w) d.push(`${id}: not in the uninterrupted run`);
        else if (r.n !== w.n || r.total !== w.total || r.hi !== w.hi || r.final !== w.final) d.push(`${id}: got n=${r.n} total=${r.total} hi=${r.hi} final=${r.final}, want n=${w.n} total=${w.total} hi=${w.hi} final=${w.final}`);
      }
      for (const id of want.keys()) if (!seen.has(id)) d.push(`${id}: missing`);
      return d;
    }, 90_000);
    expect(diffs, firstLines(diffs)).toEqual([]);
  });

  it('a checkpoint larger than a KV value goes in chunks of the real bucket and comes back; the next one after a small change writes only a few chunks; slots are reused', async () => {
    const js = jetstream(ctx.nc);
    const store = await CheckpointStore.open(ctx.nc, js, 'ck_big');
    const max = ctx.nc.info!.max_payload;
    // a keyed state of random entries (barely compressible), about 3 max payloads of gzip
    const entries = Array.from({ length: Math.ceil((max * 3 * 1.4) / 60) }, (_, i) => [`key-${i}`, randomBytes(24).toString('hex')]);
    const cp = (seq: number): PipelineCheckpoint => ({
      pipeline: 'ck_big',
      seq,
      stream: 'x',
      watermark: seq,
      counters: { events: seq, results: 0, alerts: 0, rowsWritten: 0, flushFailures: 0 },
      at: 1_795_000_000_000 + seq,
      runtime: JSON.stringify(entries),
      view: '[]',
    });
    const first = await store.save(cp(1));
    expect(first.chunks).toBeGreaterThanOrEqual(3);
    expect(first.chunksWritten).toBe(first.chunks);
    expect(await (await CheckpointStore.open(ctx.nc, js, 'ck_big')).load()).toEqual(cp(1));
    entries[10][1] = 'changed';
    entries.push(['key-new', 'added']);
    const second = await store.save(cp(2));
    expect(second.chunksWritten).toBeLessThanOrEqual(4);
    expect(second.written).toBeLessThan(first.written / 3);
    expect(await (await CheckpointStore.open(ctx.nc, js, 'ck_big')).load()).toEqual(cp(2));
    // a restarted store (load, then save) goes on from the stored chunks
    const again = await CheckpointStore.open(ctx.nc, js, 'ck_big');
    await again.load();
    entries[20][1] = 'changed too';
    expect((await again.save(cp(3))).chunksWritten).toBeLessThanOrEqual(3);
    expect(await (await CheckpointStore.open(ctx.nc, js, 'ck_big')).load()).toEqual(cp(3));
    const kv = await new Kvm(js).open('WEIR_CHECKPOINTS');
    const keys: string[] = [];
    for await (const k of await kv.keys('pipeline.ck_big.>')) keys.push(k);
    expect(keys.every((k) => /^pipeline\.ck_big\.c\.\d+$/.test(k))).toBe(true);
    expect(keys.length).toBeLessThanOrEqual(2 * first.chunks);
  });
});
