/**
 * Fault injection on the real stack, shared by test/faults.test.ts (CI) and scripts/soak.ts
 * (`npm run soak`): a publisher that keeps going through outages without duplicating, the
 * engine process under test (kill -9 and restart, peak RSS), and one round of faults over one
 * seeded event set, checked row by row against the brute-force oracle. Plain code, no vitest.
 */
import { readFileSync } from 'node:fs';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type pg from 'pg';
import { rng } from '../benchmarks/producer.js';
import type { Stack } from '../scripts/stack.js';
import { sleep, startEngine, waitFor, type EngineProcess } from './harness.js';
import { countsPerTable, diffRows, eventsPerTable, oracle, workload, type Ev, type Msg, type RowDiff, type Workload } from './oracle.js';

/**
 * The engine's config under fault injection. The watermark follows event time only (no idle
 * advance), so the rows are a function of the stream alone; a small buffer for QuestDB and small
 * fetches make the back-pressure bound easy to reach; a fast stream check finds a deleted
 * stream quickly.
 */
export const FAULTS_CONFIG = {
  pipeline: { idleTimeout: '1h' },
  workers: 2,
  fetch: { batch: 50 },
  sink: { maxPendingRows: 300 },
  stream: { checkInterval: '1s' },
};

/** Event-time span of one round's workload. */
export const ROUND_SPAN_MS = 240_000;

/**
 * One round's event set: 40k good events over 4 minutes of event time for 60 keys of the given
 * metrics, 1-20 to a message, out of order with late corrections, ~2 % bad events and a few
 * events past the allowed lateness.
 */
export function roundWorkload(seed: number, base: number, metrics: string[]): Workload {
  const keys = Array.from({ length: 60 }, (_, i) => `node-${i}`);
  return workload({
    seed,
    base,
    metrics,
    keys,
    hot: keys.slice(0, 4),
    events: 40_000,
    spanMs: ROUND_SPAN_MS,
    maxPerMessage: 20,
    tooLate: { afterMessages: 1000, probability: 0.005 },
  });
}

/**
 * Publishes messages in order through JetStream, a window of `concurrency` at a time, at most
 * `perSecond` messages a second. A publish that fails (NATS away, JetStream not ready) is
 * retried until it is stored. Each message carries Nats-Msg-Id `<prefix>:<index>`, so a retry
 * of a publish that was in fact stored is dropped by JetStream: the stream holds each message
 * once, which is what the oracle counts.
 */
export class Publisher {
  /** Messages stored (acked by JetStream). */
  published = 0;
  /** Failed publish attempts that were retried. */
  retries = 0;
  private stopped = false;
  private readonly js: JetStreamClient;
  private readonly enc = new TextEncoder();

  constructor(
    nc: NatsConnection,
    private readonly idPrefix: string,
  ) {
    this.js = jetstream(nc, { timeout: 5000 });
  }

  stop(): void {
    this.stopped = true;
  }

  async publishOne(m: Msg, id: string): Promise<void> {
    for (;;) {
      try {
        await this.js.publish(m.subject, this.enc.encode(m.body), { msgID: id });
        return;
      } catch (err) {
        if (this.stopped) throw err;
        this.retries++;
        await sleep(250);
      }
    }
  }

  async run(messages: Msg[], perSecond: number, concurrency = 16): Promise<void> {
    const t0 = Date.now();
    for (let i = 0; i < messages.length && !this.stopped; i += concurrency) {
      const chunk = messages.slice(i, i + concurrency);
      await Promise.all(chunk.map((m, j) => this.publishOne(m, `${this.idPrefix}:${i + j}`)));
      this.published += chunk.length;
      const due = t0 + (this.published / perSecond) * 1000 - Date.now();
      if (due > 0) await sleep(due);
    }
  }
}

/** Peak resident set of a process so far (VmHWM, bytes), or 0 once it is gone. */
export function peakRss(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The engine process under test: restarted after each kill -9; tracks the peak RSS of every incarnation. */
export class EngineUnderTest {
  crashes = 0;
  peakRssBytes = 0;
  /** Output of the incarnations killed so far (the current one is in `current.output()`). */
  readonly pastOutput: string[] = [];
  private sampler: NodeJS.Timeout;

  private constructor(
    private readonly stack: Stack,
    private readonly config: Record<string, unknown>,
    public current: EngineProcess,
  ) {
    this.sampler = setInterval(() => this.sample(), 500);
  }

  static async start(stack: Stack, config: Record<string, unknown>): Promise<EngineUnderTest> {
    return new EngineUnderTest(stack, config, await startEngine(stack, config));
  }

  private sample() {
    this.peakRssBytes = Math.max(this.peakRssBytes, peakRss(this.current.proc.pid));
  }

  /** kill -9, then a new engine process against the same servers (resolves once /readyz is 200). */
  async crashAndRestart(): Promise<void> {
    this.sample();
    await this.current.stop('SIGKILL');
    this.crashes++;
    this.pastOutput.push(this.current.output());
    this.current = await startEngine(this.stack, this.config);
  }

  async metrics(): Promise<Record<string, number>> {
    return this.current.metrics();
  }

  async readyz(): Promise<{ status: number; body: Record<string, unknown> }> {
    const r = await fetch(`${this.current.http}/readyz`, { signal: AbortSignal.timeout(10_000) });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  }

  output(): string {
    return [...this.pastOutput, this.current.output()].join('\n--- restart ---\n');
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | string> {
    clearInterval(this.sampler);
    this.sample();
    return this.current.stop(signal);
  }
}

/** Distinct (Weir-Source-Seq, Weir-Index) pairs, and messages, in the dead-letter stream under `subjects`. */
export async function deadLetters(nc: NatsConnection, subjects: string[]): Promise<{ distinct: number; messages: number }> {
  const jsm = await jetstreamManager(nc);
  let messages = 0;
  for (const s of subjects) {
    const info = await jsm.streams.info('WEIR_DEADLETTER', { subjects_filter: s });
    messages += Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  }
  const ids = new Set<string>();
  if (messages > 0) {
    const consumer = await jetstream(nc).consumers.get('WEIR_DEADLETTER', { filter_subjects: subjects });
    for (let i = 0; i < messages; i++) {
      const m = await consumer.next({ expires: 5000 });
      if (!m) break;
      ids.add(`${m.headers?.get('Weir-Source-Seq')}:${m.headers?.get('Weir-Index')}`);
    }
    await consumer.delete().catch(() => undefined);
  }
  return { distinct: ids.size, messages };
}

export interface Check {
  what: string;
  ok: boolean;
  detail: string;
}

/** The checks of a round, and the function that records one and logs it ("ok" or "FAIL"). */
export function checkRecorder(log: (line: string) => void): { checks: Check[]; check: (what: string, ok: boolean, detail?: string) => void } {
  const checks: Check[] = [];
  const check = (what: string, ok: boolean, detail = '') => {
    checks.push({ what, ok, detail });
    log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? `: ${detail}` : ''}`);
  };
  return { checks, check };
}

export interface RoundOptions {
  stack: Stack;
  /** A connection of the test's own (reconnects forever): publishing and JetStream checks. */
  nc: NatsConnection;
  pool: pg.Pool;
  engine: EngineUnderTest;
  work: Workload;
  metrics: string[];
  /** Event time past every window of the workload, for the sentinel that moves the watermark. */
  sentinelTs: number;
  /** Seed of the fault schedule (which moments the kills hit). */
  seed: number;
  /** Publishing pace, messages per second. */
  perSecond: number;
  /** Kill QuestDB and nats-server with SIGKILL instead of stopping them with SIGTERM. */
  hardStops?: boolean;
  /** Nats-Msg-Id prefix, unique per round. */
  idPrefix: string;
  log: (line: string) => void;
}

export interface RoundReport {
  messages: number;
  events: number;
  bad: number;
  tooLate: number;
  crashes: number;
  questdbOutages: number;
  natsOutages: number;
  publishRetries: number;
  /** Most rows the engine held for QuestDB while it was down. */
  peakPendingRows: number;
  diff: RowDiff;
  dlq: { distinct: number; messages: number };
  late: { distinct: number; messages: number };
  checks: Check[];
  seconds: number;
}

/**
 * One round: publishes the workload at a steady pace while, in turn,
 *   1. the engine is killed (-9) at a random moment and restarted;
 *   2. QuestDB is stopped: the engine must buffer up to its bound, then stop fetching
 *      (back-pressure, /readyz 503), and catch up once QuestDB is back;
 *   3. the engine is killed again while it catches up, and restarted;
 *   4. nats-server is stopped and started again on the same data dir: /readyz 503 meanwhile, then
 *      the engine reconnects and resumes;
 *   5. the engine is killed a third time, right after that, and restarted.
 * Then a sentinel event moves the watermark past every window, and every row of both tables
 * is compared with the oracle. Conditions are awaited with bounded timeouts, never assumed from
 * elapsed time.
 */
export async function faultRound(o: RoundOptions): Promise<RoundReport> {
  const t0 = Date.now();
  const rand = rng(o.seed);
  const { checks, check } = checkRecorder(o.log);
  const { messages } = o.work;
  const n = messages.length;
  const pub = new Publisher(o.nc, o.idPrefix);
  const publishing = pub.run(messages, o.perSecond);
  let publishError: unknown = null;
  publishing.catch((err) => (publishError = err));
  const until = async (fraction: number) =>
    waitFor(`${Math.round(fraction * 100)} % of the messages published`, async () => (publishError ? Promise.reject(publishError) : pub.published >= fraction * n ? true : undefined), 600_000, 100);
  const crashesBefore = o.engine.crashes;
  let questdbOutages = 0;
  let natsOutages = 0;
  let peakPendingRows = 0;
  const hard = o.hardStops ? 'SIGKILL' : 'SIGTERM';

  try {
    // 1. kill -9 at a random moment while events flow.
    await until(0.08 + rand() * 0.15);
    await sleep(rand() * 1500);
    o.log(`kill -9 the engine (${pub.published}/${n} published)`);
    await o.engine.crashAndRestart();

    // 2. QuestDB away: consume up to the bound, then stop fetching.
    await until(0.35);
    o.log(`stopping QuestDB (${hard}, ${pub.published}/${n} published)`);
    await o.stack.stopQuestdb(hard);
    questdbOutages++;
    const paused = await waitFor(
      'back-pressure (weir_backpressure_active 1) while QuestDB is down',
      async () => {
        const m = await o.engine.metrics();
        peakPendingRows = Math.max(peakPendingRows, m.weir_sink_pending_rows ?? 0);
        return m.weir_backpressure_active === 1 ? m : undefined;
      },
      120_000,
      200,
    ).catch((err) => {
      check('the engine stops fetching once its buffer for QuestDB is full', false, (err as Error).message);
      return null;
    });
    const ready = await waitFor('/readyz to report QuestDB writes failing', async () => {
      const r = await o.engine.readyz();
      return r.status === 503 && r.body.questdbWrites === false ? r : undefined;
    }, 30_000, 250).catch(() => o.engine.readyz());
    check('/readyz is 503 and reports QuestDB writes failing while QuestDB is down', ready.status === 503 && ready.body.questdbWrites === false, JSON.stringify(ready.body));
    if (paused) {
      // While paused the engine fetches nothing: what is published meanwhile stays in the stream.
      const jsm = await jetstreamManager(o.nc);
      const info = await waitFor(
        'messages left in the stream during the outage',
        async () => {
          const i = await jsm.consumers.info('WEIR_EVENTS', 'weir-engine');
          return i.num_pending > 0 ? i : undefined;
        },
        120_000,
        250,
      );
      const after = await o.engine.metrics();
      peakPendingRows = Math.max(peakPendingRows, after.weir_sink_pending_rows ?? 0);
      check(
        'the engine stops fetching once its buffer for QuestDB is full',
        after.weir_messages_total === paused.weir_messages_total && after.weir_backpressure_active === 1 && info.num_pending > 0,
        `messages consumed ${paused.weir_messages_total} -> ${after.weir_messages_total}, left in the stream ${info.num_pending}, rows buffered ${after.weir_sink_pending_rows}`,
      );
    }
    await o.stack.startQuestdb();
    o.log('QuestDB is back');
    await waitFor('back-pressure to lift once QuestDB is back', async () => ((await o.engine.metrics()).weir_backpressure_active === 0 ? true : undefined), 120_000, 250);
    check('back-pressure lifts once QuestDB is back', true);

    // 3. kill -9 while the engine catches up.
    await sleep(rand() * 3000);
    o.log(`kill -9 the engine while it catches up (${pub.published}/${n} published)`);
    await o.engine.crashAndRestart();

    // 4. nats-server stopped and started again on the same data dir.
    await until(0.7);
    o.log(`stopping nats-server (${hard}, ${pub.published}/${n} published)`);
    await o.stack.stopNats(hard);
    natsOutages++;
    const down = await waitFor('/readyz to report NATS down', async () => {
      const r = await o.engine.readyz();
      return r.status === 503 && r.body.nats === false ? r : undefined;
    }, 30_000, 200).catch(() => null);
    check('/readyz is 503 with nats:false while nats-server is down', down !== null);
    await sleep(500 + rand() * 2000);
    await o.stack.startNats();
    o.log('nats-server is back');
    await waitFor('/readyz 200 after nats-server is back', async () => ((await o.engine.readyz()).status === 200 ? true : undefined), 120_000, 250);
    check('/readyz is 200 again once nats-server is back', true);

    // 5. kill -9 right after the reconnect.
    await sleep(rand() * 2000);
    o.log(`kill -9 the engine after the NATS restart (${pub.published}/${n} published)`);
    await o.engine.crashAndRestart();

    await publishing;
    // The sentinel (its own metric) moves the watermark past every window of the round.
    await pub.publishOne({ subject: `weir.events.${o.idPrefix.replace(/[^A-Za-z0-9_-]/g, '_')}_sentinel`, body: JSON.stringify({ key: 's', value: 1, ts: o.sentinelTs }) }, `${o.idPrefix}:sentinel`);
    o.log(`all ${n} messages published (${pub.retries} retried publishes); waiting for the rows`);
  } catch (err) {
    pub.stop();
    throw err;
  }

  const diff = await awaitRowsAndDiff(o.pool, o.work.good, o.metrics, o.log);
  check('rows lost 0', diff.lost.length === 0, diff.lost.slice(0, 5).join('; '));
  check('rows duplicated 0', diff.duplicated.length === 0, diff.duplicated.slice(0, 5).join('; '));
  check('no rows the oracle does not know', diff.extra.length === 0, diff.extra.slice(0, 5).join('; '));
  check('every row equals the oracle', diff.wrong.length === 0, diff.wrong.slice(0, 5).join('; '));

  const dlqSubjects = o.metrics.map((m) => `weir.dlq.${m}`);
  const lateSubjects = o.metrics.map((m) => `weir.late.${m}`);
  const dlq = await waitFor('every bad event in the dead-letter stream', async () => {
    const d = await deadLetters(o.nc, dlqSubjects);
    return d.distinct >= o.work.bad ? d : undefined;
  }, 30_000, 500).catch(async () => deadLetters(o.nc, dlqSubjects));
  check('every bad event is dead-lettered once', dlq.distinct === o.work.bad, `${dlq.distinct} distinct of ${o.work.bad} (${dlq.messages} messages)`);
  const late = await waitFor('every too-late event on weir.late', async () => {
    const d = await deadLetters(o.nc, lateSubjects);
    return d.distinct >= o.work.tooLate ? d : undefined;
  }, 30_000, 500).catch(async () => deadLetters(o.nc, lateSubjects));
  check('every too-late event is published on weir.late', late.distinct === o.work.tooLate, `${late.distinct} distinct of ${o.work.tooLate} (${late.messages} messages)`);

  return {
    messages: n,
    events: o.work.good.length,
    bad: o.work.bad,
    tooLate: o.work.tooLate,
    crashes: o.engine.crashes - crashesBefore,
    questdbOutages,
    natsOutages,
    publishRetries: pub.retries,
    peakPendingRows,
    diff,
    dlq,
    late,
    checks,
    seconds: (Date.now() - t0) / 1000,
  };
}

/**
 * Waits (bounded) until both tables hold every event of `good` in as many rows as the oracle
 * has windows (QuestDB applies WAL rows asynchronously), then compares every row.
 */
export async function awaitRowsAndDiff(pool: pg.Pool, good: Ev[], metrics: string[], log: (line: string) => void = () => {}, timeoutMs = 180_000): Promise<RowDiff> {
  const expected = oracle(good);
  const perTable = eventsPerTable(expected);
  const rowsPerTable = new Map<string, number>();
  for (const c of expected.values()) rowsPerTable.set(c.table, (rowsPerTable.get(c.table) ?? 0) + 1);
  await waitFor(
    'QuestDB to hold every event',
    async () => {
      const got = await countsPerTable(pool, metrics);
      for (const [t, want] of perTable) if (got.get(t)?.events !== want || got.get(t)?.rows !== rowsPerTable.get(t)) return undefined;
      return true;
    },
    timeoutMs,
    500,
  ).catch((err) => log(`(${(err as Error).message}; comparing what is there)`));
  return diffRows(pool, expected, metrics);
}

/** Waits until QuestDB has applied every committed WAL transaction of the tables (what PG-wire reads then show is final). */
export async function walApplied(pool: pg.Pool, tables: string[], timeoutMs = 60_000): Promise<void> {
  await waitFor(
    `QuestDB to apply the WAL of ${tables.join(', ')}`,
    async () => {
      const r = await pool.query('SELECT name, "writerTxn", "sequencerTxn" FROM wal_tables()');
      const lag = r.rows.filter((x) => tables.includes(x.name) && Number(x.writerTxn) < Number(x.sequencerTxn));
      return lag.length === 0 ? true : undefined;
    },
    timeoutMs,
    200,
  );
}
