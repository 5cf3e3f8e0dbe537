/**
 * Gateway benchmark: query latency and live delivery on the real stack (nats-server + QuestDB
 * from scripts/stack.ts, the engine + gateway as `npm start` runs them, via test/harness.ts).
 * One stack for the whole suite; each part gets a fresh engine process (own consumer, stream
 * purged in between) with the config it needs.
 *
 *  A. percentiles over 24 h of 1-minute windows: Weir merges the stored sketches
 *     (GET /v1/percentiles: first call, cached, and uncached with `to` shifted 1 ms a call)
 *     vs QuestDB approx_percentile over the same raw events (bench_raw_events, ILP/HTTP);
 *     answers checked against the exact quantiles computed here.
 *  B. live queries at 100k keys of one metric: /v1/latest, /v1/top (p99, count), /v1/percentiles
 *     (1 h of 10 s rows), and the engine request-reply alone (weir.api.default.latest|topk), quiet
 *     (no events, top-K answered from its cache) and while results flow (paced events, partials
 *     every 1 s, firings every 10 s). Top-K cache misses are forced by asking a larger k each call.
 *     Peer, same client, same run: a bare node:http server and a bare NATS responder (the floor
 *     this machine puts under any answer).
 *  C. window close -> subscriber: 50k events/s paced, 1 s windows, one SSE subscriber
 *     (finalOnly); latency = receive wall time - emittedAt of revision-0 finals; every
 *     (key, window) that had events must arrive exactly once.
 *     The same results on a plain NATS subscription separate the engine's part from the gateway's.
 *  D. fan-out: 100 SSE subscribers, then 100 SSE + 100 WebSocket, on one metric under a paced load
 *     (20k events/s, 200 keys, 1 s windows); every subscriber must get every final exactly once.
 *
 * The producers run in a child process (this file with --gw-producer) so that their pacing and
 * JSON building do not stall the client whose latency is measured.
 *
 *   npm run build && BENCH_ONLY=gateway npx tsx benchmarks/bench.ts     (BENCH_SCALE=0.2 for a quick run)
 *   npx tsx benchmarks/gateway.ts                                       (this suite alone)
 * Knobs: BENCH_GW_PARTS (default ABCD), BENCH_GW_WS (WebSocket subscribers in D, default 100; 0 =
 * SSE only), BENCH_GW_PROFILE=<dir> (CPU profile of each engine's main thread, written there on
 * exit), BENCH_GW_DEBUG=1 (per-window latencies in C and D).
 */
import http from 'node:http';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { rng } from './producer.js';

const SELF = fileURLToPath(import.meta.url);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Producer (child process)
// ---------------------------------------------------------------------------------------------

interface ProducerJob {
  natsUrl: string;
  metric: string;
  keys: number;
  /** Events per second. */
  rate: number;
  /** Upper bound on the run; a 'stop' message ends it earlier. */
  seconds: number;
  batch: number;
  /** Keys in turn (every key in every window at enough rate) or at random. */
  roundRobin: boolean;
  seed: number;
  /** Track which (window, key) had events, windows of windowMs from baseStart. */
  track?: { baseStart: number; windowMs: number; windows: number };
}

interface ProducerResult {
  events: number;
  messages: number;
  seconds: number;
  rate: number;
  firstTs: number;
  lastTs: number;
  /** windows x keys, 1 where the (window, key) had events. */
  bitmap?: Uint8Array;
  outOfRange: number;
}

async function runProducer(job: ProducerJob, stopped: () => boolean): Promise<ProducerResult> {
  const nc = await connect({ servers: job.natsUrl, noAsyncTraces: true });
  const js = jetstream(nc);
  const subject = `weir.events.${job.metric}`;
  const rand = rng(job.seed);
  const enc = new TextEncoder();
  const tr = job.track;
  const bitmap = tr ? new Uint8Array(tr.windows * job.keys) : undefined;
  let outOfRange = 0;
  let inflight: Promise<unknown>[] = [];
  let events = 0;
  let messages = 0;
  let rr = 0;
  let firstTs = 0;
  let lastTs = 0;
  const t0 = performance.now();
  const deadline = t0 + job.seconds * 1000;
  while (!stopped() && performance.now() < deadline) {
    const ts = Date.now();
    if (!firstTs) firstTs = ts;
    lastTs = ts;
    const w = tr ? Math.floor((ts - tr.baseStart) / tr.windowMs) : 0;
    const parts: string[] = new Array(job.batch);
    for (let j = 0; j < job.batch; j++) {
      const k = job.roundRobin ? rr++ % job.keys : Math.floor(rand() * job.keys);
      // Skewed, non-negative values: a lognormal-ish latency in ms.
      const v = Math.round(Math.exp(3 + 0.8 * gauss(rand)) * 1000) / 1000;
      parts[j] = `{"key":"k${k}","value":${v},"ts":${ts}}`;
      if (bitmap) {
        if (w >= 0 && w < tr!.windows) bitmap[w * job.keys + k] = 1;
        else outOfRange++;
      }
    }
    inflight.push(js.publish(subject, enc.encode(`[${parts.join(',')}]`)));
    events += job.batch;
    messages++;
    if (inflight.length >= 256) {
      const done = inflight.slice(0, 128);
      inflight = inflight.slice(128);
      await Promise.all(done);
    }
    const due = t0 + (events / job.rate) * 1000 - performance.now();
    if (due >= 1) await sleep(due);
  }
  await Promise.all(inflight);
  const seconds = (performance.now() - t0) / 1000;
  await nc.drain();
  return { events, messages, seconds, rate: events / seconds, firstTs, lastTs, bitmap, outOfRange };
}

/** Box-Muller: a standard normal from a uniform source. */
function gauss(rand: () => number): number {
  let u = 0;
  while (u === 0) u = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

class ProducerHandle {
  private constructor(
    private readonly child: ChildProcess,
    readonly done: Promise<ProducerResult>,
  ) {}

  static start(job: ProducerJob): ProducerHandle {
    const child = fork(SELF, ['--gw-producer'], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const done = new Promise<ProducerResult>((resolve, reject) => {
      child.once('message', (m: { result?: ProducerResult; error?: string }) => (m.result ? resolve(m.result) : reject(new Error(`producer: ${m.error}`))));
      child.once('exit', (code) => reject(new Error(`producer exited with ${code} before reporting`)));
    });
    child.send({ cmd: 'run', job });
    return new ProducerHandle(child, done);
  }

  async stop(): Promise<ProducerResult> {
    if (this.child.connected) this.child.send({ cmd: 'stop' });
    return this.done;
  }
}

/**
 * Peer for the live queries (child process, --gw-peer): a bare node:http server and a bare NATS
 * responder that answer a fixed JSON body of the size of a /v1/latest answer. Measured with the
 * same client in the same run, they show the floor this (shared) machine puts under any answer.
 */
async function runPeer(natsUrl: string): Promise<void> {
  const body = JSON.stringify({ results: [{ pipeline: 'default', metric: 'gw_live', key: 'k12345', window: '10s', start: 0, end: 10000, final: true, revision: 0, count: 2, rate: 0.2, sum: 61.2, min: 20.1, max: 41.1, mean: 30.6, stddev: 14.8, p50: 20.1, p90: 41.1, p95: 41.1, p99: 41.1, p999: 41.1, emittedAt: 0 }] });
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const pnc = await connect({ servers: natsUrl, noAsyncTraces: true });
  pnc.subscribe('bench.peer.echo', { callback: (_e, m) => void m.respond(body) });
  await pnc.flush();
  process.send!({ port: (server.address() as { port: number }).port });
}

if (process.argv.includes('--gw-peer')) {
  process.once('message', (m: { natsUrl: string }) => void runPeer(m.natsUrl));
}

if (process.argv.includes('--gw-producer')) {
  let stop = false;
  process.on('message', (m: { cmd: string; job?: ProducerJob }) => {
    if (m.cmd === 'stop') stop = true;
    if (m.cmd === 'run')
      runProducer(m.job!, () => stop).then(
        (result) => process.send!({ result }, () => process.exit(0)),
        (err) => process.send!({ error: String((err as Error).stack ?? err) }, () => process.exit(1)),
      );
  });
}

// ---------------------------------------------------------------------------------------------
// Measuring helpers
// ---------------------------------------------------------------------------------------------

interface Stats {
  n: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))];
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s[s.length - 1], mean: s.reduce((a, b) => a + b, 0) / s.length };
}

/** Latencies in whole ms (Date.now() differences), counted: exact percentiles for millions of samples. */
class MsHistogram {
  private readonly counts = new Float64Array(120_001);
  n = 0;
  record(ms: number) {
    this.counts[Math.max(0, Math.min(120_000, ms))]++;
    this.n++;
  }
  merge(o: MsHistogram) {
    for (let i = 0; i < o.counts.length; i++) this.counts[i] += o.counts[i];
    this.n += o.n;
  }
  quantile(q: number): number {
    if (!this.n) return NaN;
    const rank = Math.floor(q * (this.n - 1));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen > rank) return i;
    }
    return NaN;
  }
  get max(): number {
    for (let i = this.counts.length - 1; i >= 0; i--) if (this.counts[i]) return i;
    return NaN;
  }
}

/** Sequential keep-alive GETs on one socket. */
function httpClient(base: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const u = new URL(base);
  const get = (path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: u.hostname, port: u.port, path, agent, method: 'GET' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  return { get, close: () => agent.destroy() };
}

/** Runs `fn` warm-up + n times in sequence; returns the n durations in ms. `fn` throws on a bad answer. */
async function timed(n: number, warm: number, fn: (i: number) => Promise<void>): Promise<number[]> {
  for (let i = 0; i < warm; i++) await fn(-1 - i);
  const out: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    out[i] = performance.now() - t;
  }
  return out;
}

/** Receives window results and checks them off a windows x keys bitmap. */
class FinalsReceiver {
  readonly seen: Uint8Array;
  readonly lat = new MsHistogram();
  finals = 0;
  corrections = 0;
  partials = 0;
  unexpected = 0;
  duplicates = 0;
  /** Highest latency seen per window (-1: none). */
  readonly maxByWindow: Int32Array;
  constructor(
    private readonly baseStart: number,
    private readonly windowMs: number,
    private readonly windows: number,
    private readonly keys: number,
  ) {
    this.seen = new Uint8Array(windows * keys);
    this.maxByWindow = new Int32Array(windows).fill(-1);
  }
  onJson(json: string, now = Date.now()) {
    const r = JSON.parse(json) as { key: string; start: number; final: boolean; revision: number; emittedAt: number };
    if (!r.final) {
      this.partials++;
      return;
    }
    if (r.revision > 0) {
      this.corrections++;
      return;
    }
    this.finals++;
    const ms = now - r.emittedAt;
    this.lat.record(ms);
    const w = (r.start - this.baseStart) / this.windowMs;
    const k = Number(r.key.slice(1));
    if (!Number.isInteger(w) || w < 0 || w >= this.windows || !Number.isInteger(k) || k < 0 || k >= this.keys) {
      this.unexpected++;
      return;
    }
    if (this.seen[w * this.keys + k]++) this.duplicates++;
    if (ms > this.maxByWindow[w]) this.maxByWindow[w] = ms;
  }
  /** (window, key) pairs expected but not received; received but not expected. */
  compare(expected: Uint8Array): { missing: number; extra: number } {
    let missing = 0;
    let extra = 0;
    for (let i = 0; i < expected.length; i++) {
      if (expected[i] && !this.seen[i]) missing++;
      else if (!expected[i] && this.seen[i]) extra++;
    }
    return { missing, extra: extra + this.unexpected };
  }
}

/** A server-sent-events subscriber; calls onData with the JSON of each `event: result`. */
function sseSubscribe(base: string, path: string, onData: (json: string) => void): { ready: Promise<void>; close: () => void; errors: string[] } {
  const u = new URL(base);
  const errors: string[] = [];
  let req: http.ClientRequest;
  const ready = new Promise<void>((resolve, reject) => {
    req = http.get({ host: u.hostname, port: u.port, path, agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE ${path}: HTTP ${res.statusCode}`));
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk: string) => {
        buf += chunk;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          if (block.startsWith('event: result\ndata: ')) onData(block.slice(20));
          else if (block.startsWith('event: ready')) resolve();
          else if (block.startsWith('event: error')) errors.push(block);
        }
      });
      res.on('error', (e) => errors.push(String(e)));
    });
    req.on('error', (e) => {
      errors.push(String(e));
      reject(e);
    });
  });
  return { ready, close: () => req.destroy(), errors };
}

async function wsSubscribe(base: string, path: string, onData: (json: string) => void): Promise<{ close: () => void; errors: string[] }> {
  const { default: WebSocket } = await import('ws');
  const errors: string[] = [];
  const ws = new WebSocket(base.replace(/^http/, 'ws') + path);
  ws.on('message', (d) => onData(String(d)));
  ws.on('error', (e) => errors.push(String(e)));
  ws.on('close', (code) => code !== 1005 && code !== 1000 && errors.push(`closed ${code}`));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { close: () => ws.close(), errors };
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : String(x));
const fmt = (s: Stats) => `p50 ${f1(s.p50)} / p99 ${f1(s.p99)} / max ${f1(s.max)} ms (n=${s.n})`;

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

export interface GatewayBenchRow {
  figure: string;
  value: string;
  goal: string;
}

export async function gatewayBench(opts: { scale?: number; say?: (line: string) => void } = {}): Promise<GatewayBenchRow[]> {
  const { startStack } = await import('../scripts/stack.js');
  const { startEngine, waitFor, pgPool } = await import('../test/harness.js');
  type Engine = Awaited<ReturnType<typeof startEngine>>;
  const SCALE = opts.scale ?? Number(process.env.BENCH_SCALE ?? 1);
  const say = opts.say ?? ((l: string) => process.stdout.write(l + '\n'));
  const rows: GatewayBenchRow[] = [];
  const row = (figure: string, value: string, goal = '') => rows.push({ figure, value, goal });
  const parts = (process.env.BENCH_GW_PARTS ?? 'ABCD').toUpperCase();
  const fireConfig = {
    pipeline: { windows: [{ name: '1s', size: '1s', table: 'weir_agg_1s' }], maxOutOfOrderness: '500ms', allowedLateness: '2s', idleTimeout: '2s' },
  };
  const profileDir = process.env.BENCH_GW_PROFILE;
  const engineEnv: Record<string, string> = { WEIR_LOG_LEVEL: 'warn' };
  if (profileDir) {
    // Node 20 refuses --cpu-prof in NODE_OPTIONS: preload a hook that profiles the engine's main thread with the inspector.
    const { writeFileSync, mkdirSync } = await import('node:fs');
    mkdirSync(profileDir, { recursive: true });
    const hook = `${profileDir}/weir-cpu-prof-hook.cjs`;
    writeFileSync(
      hook,
      `const { isMainThread } = require('node:worker_threads');
if (isMainThread) {
  const s = new (require('node:inspector').Session)();
  s.connect();
  s.post('Profiler.enable');
  s.post('Profiler.setSamplingInterval', { interval: 200 });
  s.post('Profiler.start');
  process.on('exit', () => s.post('Profiler.stop', (err, r) => { if (!err) require('node:fs').writeFileSync(${JSON.stringify(profileDir)} + '/engine-' + process.pid + '.cpuprofile', JSON.stringify(r.profile)); }));
}
`,
    );
    engineEnv.NODE_OPTIONS = `--require ${hook}`;
  }

  const { loadavg, cpus } = await import('node:os');
  const load0 = loadavg()[0];
  const stack = await startStack({ questdbHeap: '2g' });
  const nc: NatsConnection = await connect({ servers: stack.natsUrl, noAsyncTraces: true });
  const pool = pgPool(stack);
  let engine: Engine | null = null;
  const startPhaseEngine = async (consumer: string, config: Record<string, unknown>) => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.purge('WEIR_EVENTS').catch(() => undefined);
    return startEngine(stack, { ...config, stream: { consumer } }, engineEnv);
  };
  const stopEngine = async () => {
    if (engine) await engine.stop();
    engine = null;
  };
  const gatewayMetric = async (name: string) => (await engine!.metrics())[name] ?? 0;

  try {
    // =========================================================================================
    if (parts.includes('A')) {
      say('A. percentiles over 24 h of 1-minute windows: merged sketches vs QuestDB approx_percentile');
      engine = await startPhaseEngine('gwbench_hist', {
        pipeline: { windows: [{ name: '1m', size: '1m', table: 'weir_agg_1m' }], allowedLateness: '1s', maxOutOfOrderness: '1s', idleTimeout: '2s' },
      });
      const perMin = Math.max(20, Math.round(300 * SCALE));
      const others = ['k1', 'k2', 'k3', 'k4'];
      const otherPerMin = Math.max(5, Math.round(perMin / 5));
      const to = Math.floor(Date.now() / 60_000) * 60_000 - 120_000;
      const from = to - 24 * 3_600_000;
      const rand = rng(42);
      const mainValues = new Float64Array(1440 * perMin);
      let nMain = 0;
      let total = 0;
      const js = jetstream(nc);
      const { Sender } = await import('@questdb/nodejs-client');
      const ilpPort = new URL(stack.questdbHttp).port;
      await questdbExecHttp(stack.questdbHttp, 'CREATE TABLE IF NOT EXISTS bench_raw_events (ts TIMESTAMP, key SYMBOL, value DOUBLE) TIMESTAMP(ts) PARTITION BY DAY WAL');
      const sender = await Sender.fromConfig(`http::addr=127.0.0.1:${ilpPort};auto_flush=off;request_timeout=60000;retry_timeout=10000`);
      const t0 = performance.now();
      let batch: string[] = [];
      let inflight: Promise<unknown>[] = [];
      let ilpRows = 0;
      const publishBatch = async () => {
        if (!batch.length) return;
        inflight.push(js.publish('weir.events.gw_hist', `[${batch.join(',')}]`));
        batch = [];
        if (inflight.length >= 512) {
          await Promise.all(inflight);
          inflight = [];
        }
      };
      for (let m = 0; m < 1440; m++) {
        // A daily cycle in the level, lognormal noise around it: skewed, non-negative latencies.
        const mu = Math.log(40) + 0.5 * Math.sin((2 * Math.PI * m) / 1440);
        const evs: { ts: number; key: string; v: number }[] = [];
        for (let j = 0; j < perMin; j++) evs.push({ ts: from + m * 60_000 + Math.floor((j * 60_000) / perMin), key: 'main', v: Math.round(Math.exp(mu + 0.9 * gauss(rand)) * 1000) / 1000 });
        for (const key of others)
          for (let j = 0; j < otherPerMin; j++) evs.push({ ts: from + m * 60_000 + Math.floor(((j + 0.5) * 60_000) / otherPerMin), key, v: Math.round(Math.exp(mu + 0.5 * gauss(rand)) * 1000) / 1000 });
        evs.sort((a, b) => a.ts - b.ts);
        for (const e of evs) {
          if (e.key === 'main') mainValues[nMain++] = e.v;
          batch.push(`{"key":"${e.key}","value":${e.v},"ts":${e.ts}}`);
          if (batch.length === 500) await publishBatch();
          sender.table('bench_raw_events').symbol('key', e.key).floatColumn('value', e.v);
          await sender.at(e.ts, 'ms');
          total++;
          if (++ilpRows === 50_000) {
            await sender.flush();
            ilpRows = 0;
          }
        }
      }
      await publishBatch();
      await Promise.all(inflight);
      await sender.flush();
      await sender.close();
      say(`    generated ${total} events (${nMain} for key "main", ${perMin}/min; 4 other keys ${otherPerMin}/min) over 1440 minutes; JetStream + ILP in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const tWait = performance.now();
      await waitFor(
        'weir_agg_1m to hold 1440 rows for key main and bench_raw_events every raw event',
        async () => {
          const a = await pool.query(`SELECT count() n, sum(count) c FROM weir_agg_1m WHERE metric = 'gw_hist' AND key = 'main'`);
          const b = await pool.query(`SELECT count() n FROM bench_raw_events`);
          return a.rows[0].n === 1440 && a.rows[0].c === nMain && b.rows[0].n === total ? true : undefined;
        },
        180_000,
        250,
      );
      say(`    engine rows and raw rows complete ${((performance.now() - tWait) / 1000).toFixed(1)} s after publishing`);

      // Exact quantiles, rank floor(q (n - 1)), the definition Weir's sketch bound refers to.
      const sorted = Float64Array.from(mainValues.subarray(0, nMain)).sort();
      const QS = [0.5, 0.9, 0.99];
      const exact = QS.map((q) => sorted[Math.floor(q * (nMain - 1))]);
      const client = httpClient(engine.http);
      const pct = (toMs: number) => `/v1/percentiles?metric=gw_hist&key=main&window=1m&from=${from}&to=${toMs}&q=0.5,0.9,0.99`;
      let weirAnswer: number[] = [];
      let weirCount = 0;
      let weirWindows = 0;
      const weirCall = async (toMs: number) => {
        const r = await client.get(pct(toMs));
        if (r.status !== 200) throw new Error(`percentiles: HTTP ${r.status} ${r.body}`);
        const a = JSON.parse(r.body) as { count: number; windows: number; quantiles: { value: number }[] };
        weirAnswer = a.quantiles.map((x) => x.value);
        weirCount = a.count;
        weirWindows = a.windows;
      };
      // Let the gateway see a durable watermark past the range for 5 s, so the answer may be cached for good.
      await waitFor(
        'the durable watermark to pass the range',
        async () => {
          const st = (await nc.request('weir.api.default.status', '{}', { timeout: 2000 })).json<{ watermark: number }>();
          return st.watermark > to + 120_000 ? true : undefined;
        },
        60_000,
        250,
      );
      await sleep(6_000);
      // One tiny query first so the gateway's PG connection exists; then the first call for the range.
      await client.get(`/v1/percentiles?metric=gw_hist&key=k1&window=1m&from=${to - 60_000}&to=${to}`);
      let t = performance.now();
      await weirCall(to);
      const weirCold = performance.now() - t;
      const checkAnswer = () => {
        if (weirCount !== nMain || weirWindows !== 1440) throw new Error(`Weir merged ${weirWindows} windows / ${weirCount} events, want 1440 / ${nMain}`);
      };
      checkAnswer();
      const hits0 = await gatewayMetric('weir_history_cache_requests_total{result="hit"}');
      const nWarm = Math.max(100, Math.round(1000 * SCALE));
      const warm = stats(await timed(nWarm, 20, () => weirCall(to)));
      const hits = (await gatewayMetric('weir_history_cache_requests_total{result="hit"}')) - hits0;
      const nUncached = Math.max(10, Math.round(40 * SCALE));
      let shift = 1;
      const uncached = stats(await timed(nUncached, 3, () => weirCall(to + shift++)));
      checkAnswer();
      const weirErr = weirAnswer.map((v, i) => Math.abs(v - exact[i]) / exact[i]);

      // What the uncached call spends in QuestDB: the same fetch of the 1440 sketch rows, from here.
      const fetchSql = `SELECT sketch, min, max, count FROM weir_agg_1m WHERE metric = $1 AND key = $2 AND ts >= $3 AND ts < $4 LIMIT 50000`;
      let sketchBytes = 0;
      const fetchOnly = stats(
        await timed(nUncached, 3, async () => {
          const r = await pool.query(fetchSql, ['gw_hist', 'main', new Date(from), new Date(to)]);
          sketchBytes = r.rows.reduce((a: number, x: { sketch: string }) => a + x.sketch.length, 0);
        }),
      );

      // QuestDB over the raw events.
      const sql = `SELECT approx_percentile(value, 0.5, 3) p50, approx_percentile(value, 0.9, 3) p90, approx_percentile(value, 0.99, 3) p99 FROM bench_raw_events WHERE key = $1 AND ts >= $2 AND ts < $3`;
      let qdbAnswer: number[] = [];
      const qdbCall = async () => {
        const r = await pool.query(sql, ['main', new Date(from), new Date(to)]);
        qdbAnswer = [r.rows[0].p50, r.rows[0].p90, r.rows[0].p99];
      };
      t = performance.now();
      await qdbCall();
      const qdbFirst = performance.now() - t;
      const qdb = stats(await timed(nUncached, 3, qdbCall));
      const qdbErr = qdbAnswer.map((v, i) => Math.abs(v - exact[i]) / exact[i]);
      client.close();

      const errs = (e: number[]) => e.map((x, i) => `p${QS[i] * 100} ${(x * 100).toFixed(3)} %`).join(', ');
      say(`    exact (n=${nMain}): ${exact.map((v, i) => `p${QS[i] * 100}=${v}`).join(' ')}`);
      say(`    Weir   : ${weirAnswer.map((v) => v.toFixed(3)).join(' ')}  rel. error ${errs(weirErr)} (bound 0.5 %)`);
      say(`    QuestDB: ${qdbAnswer.map((v) => v.toFixed(3)).join(' ')}  rel. error ${errs(qdbErr)}`);
      say(`    Weir first call ${f1(weirCold)} ms; cached ${fmt(warm)} (${hits}/${nWarm + 20} cache hits); uncached (1440 sketches merged) ${fmt(uncached)}`);
      say(`    of which the fetch of the 1440 sketch rows (${(sketchBytes / 1024).toFixed(0)} KiB base64) over PG, timed from here: ${fmt(fetchOnly)}`);
      say(`    QuestDB approx_percentile x3 over ${nMain} raw rows: first ${f1(qdbFirst)} ms, then ${fmt(qdb)}`);
      const within = weirErr.every((e) => e <= 0.005);
      row('24 h percentiles, Weir first call', `${f1(weirCold)} ms`, '');
      row('24 h percentiles, Weir cached', `p50 ${f1(warm.p50)} ms, p99 ${f1(warm.p99)} ms`, `${(qdb.p50 / warm.p50).toFixed(0)}x faster than QuestDB (p50); goal >= 10x`);
      row('24 h percentiles, Weir uncached (merge 1440 sketches)', `p50 ${f1(uncached.p50)} ms, p99 ${f1(uncached.p99)} ms`, `${(qdb.p50 / uncached.p50).toFixed(2)}x vs QuestDB (p50); goal >= 10x`);
      row('  of which fetching the 1440 sketch rows from QuestDB', `p50 ${f1(fetchOnly.p50)} ms, p99 ${f1(fetchOnly.p99)} ms (${(sketchBytes / 1024).toFixed(0)} KiB)`, '');
      row('24 h percentiles, QuestDB approx_percentile(value, q, 3) x3', `p50 ${f1(qdb.p50)} ms, p99 ${f1(qdb.p99)} ms (first ${f1(qdbFirst)} ms)`, 'peer');
      row('24 h percentiles, Weir rel. error vs exact', errs(weirErr), `bound 0.5 %: ${within ? 'met' : 'NOT met'}`);
      row('24 h percentiles, QuestDB rel. error vs exact', errs(qdbErr), 'precision 3');
      await stopEngine();
    }

    // =========================================================================================
    const liveKeys = Math.max(1000, Math.round(100_000 * SCALE));
    if (parts.includes('B')) {
      say(`B. live queries at ${liveKeys} keys of one metric`);
      engine = await startPhaseEngine('gwbench_live', { pipeline: { windows: [{ name: '10s', size: '10s', table: 'weir_agg_10s' }], allowedLateness: '2s' } });
      const js = jetstream(nc);
      const rand = rng(7);
      let inflight: Promise<unknown>[] = [];
      let loadStart = Infinity;
      let loadEnd = 0;
      for (let rep = 0; rep < 2; rep++) {
        for (let k0 = 0; k0 < liveKeys; k0 += 500) {
          const ts = Date.now();
          loadStart = Math.min(loadStart, ts);
          loadEnd = ts;
          const parts: string[] = [];
          for (let k = k0; k < Math.min(liveKeys, k0 + 500); k++) parts.push(`{"key":"k${k}","value":${Math.round(Math.exp(3 + 0.8 * gauss(rand)) * 1000) / 1000},"ts":${ts}}`);
          inflight.push(js.publish('weir.events.gw_live', `[${parts.join(',')}]`));
          if (inflight.length >= 256) {
            await Promise.all(inflight);
            inflight = [];
          }
        }
      }
      await Promise.all(inflight);
      const client = httpClient(engine.http);
      const tLoad = performance.now();
      await waitFor(
        `/v1/catalog to show ${liveKeys} keys`,
        async () => {
          const c = JSON.parse((await client.get('/v1/catalog')).body) as { metrics: { metric: string; keys: number }[] };
          return c.metrics.find((m) => m.metric === 'gw_live')?.keys === liveKeys ? true : undefined;
        },
        120_000,
        200,
      );
      say(`    ${2 * liveKeys} events published; the catalog showed ${liveKeys} keys ${((performance.now() - tLoad) / 1000).toFixed(1)} s later`);
      // Quiet: every window of the load fired and left the open state (watermark past end + lateness).
      const lastEnd = Math.floor(loadEnd / 10_000) * 10_000 + 10_000;
      await waitFor(
        'the load windows to fire',
        async () => {
          const c = JSON.parse((await client.get('/v1/catalog')).body) as { watermark: number };
          return c.watermark >= lastEnd + 2_000 ? true : undefined;
        },
        60_000,
        200,
      );
      await sleep(1500);

      const N = Math.max(200, Math.round(2000 * SCALE));
      const W = Math.max(50, Math.round(200 * SCALE));
      const keyRand = rng(11);
      const randKey = () => `k${Math.floor(keyRand() * liveKeys)}`;
      const ok = (r: { status: number; body: string }, what: string) => {
        if (r.status !== 200) throw new Error(`${what}: HTTP ${r.status} ${r.body.slice(0, 300)}`);
        return r.body;
      };
      let topCandidates = 0;
      const natsReq = async (op: string, body: unknown) => {
        const m = await nc.request(`weir.api.default.${op}`, JSON.stringify(body), { timeout: 5000 });
        const a = m.json<{ error?: string }>();
        if (a.error) throw new Error(`${op}: ${a.error}`);
        return a;
      };
      const peerChild = fork(SELF, ['--gw-peer'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const peerPort = await new Promise<number>((resolve, reject) => {
        peerChild.once('message', (m: { port: number }) => resolve(m.port));
        peerChild.once('exit', (c) => reject(new Error(`peer exited ${c}`)));
        peerChild.send({ natsUrl: stack.natsUrl });
      });
      const peerClient = httpClient(`http://127.0.0.1:${peerPort}`);
      const suite = async (label: string) => {
        const res: Record<string, Stats> = {};
        res['peer: bare node:http server, same client'] = stats(await timed(N, W, async () => void ok(await peerClient.get('/'), 'peer')));
        res['peer: bare NATS responder, same client'] = stats(
          await timed(N, W, async () => {
            await nc.request('bench.peer.echo', '{}', { timeout: 5000 });
          }),
        );
        res['GET /v1/latest (random key)'] = stats(
          await timed(N, W, async () => {
            const a = JSON.parse(ok(await client.get(`/v1/latest?metric=gw_live&key=${randKey()}`), 'latest')) as { results: unknown[] };
            if (a.results.length !== 1) throw new Error(`latest: ${a.results.length} results`);
          }),
        );
        for (const by of ['p99', 'count']) {
          res[`GET /v1/top?k=10&by=${by}`] = stats(
            await timed(N, W, async () => {
              const a = JSON.parse(ok(await client.get(`/v1/top?metric=gw_live&k=10&by=${by}`), 'top')) as { entries: unknown[]; candidates: number };
              if (a.entries.length !== 10) throw new Error(`top: ${a.entries.length} entries`);
              topCandidates = a.candidates;
            }),
          );
        }
        res['NATS weir.api latest (engine alone)'] = stats(
          await timed(N, W, async () => {
            await natsReq('latest', { metric: 'gw_live', key: randKey() });
          }),
        );
        res['NATS weir.api topk by=p99 (engine alone)'] = stats(
          await timed(N, W, async () => {
            await natsReq('topk', { metric: 'gw_live', window: '10s', by: 'p99', k: 10, order: 'desc', scope: 'current' });
          }),
        );
        // A larger k than any cached answer misses the top-K cache: a full scan of the metric's keys.
        const M = Math.max(50, Math.round(150 * SCALE));
        res[`NATS weir.api topk, cache miss (k=11..${10 + M})`] = stats(
          await timed(M, 0, async (i) => {
            await natsReq('topk', { metric: 'gw_live', window: '10s', by: 'max', k: 11 + i, order: 'desc', scope: 'current' });
          }),
        );
        res[`GET /v1/top, cache miss (k=11..${10 + M})`] = stats(
          await timed(M, 0, async (i) => {
            ok(await client.get(`/v1/top?metric=gw_live&k=${11 + i}&by=mean`), 'top');
          }),
        );
        res[`GET /v1/top, cache hit (k=${10 + M})`] = stats(
          await timed(M, 5, async () => {
            ok(await client.get(`/v1/top?metric=gw_live&k=${10 + M}&by=mean`), 'top');
          }),
        );
        for (const [k, s] of Object.entries(res)) say(`    ${label.padEnd(8)} ${k.padEnd(44)} ${fmt(s)}`);
        return res;
      };
      say(`    quiet (no events; every window fired; top-K answered from its cache):`);
      const quiet = await suite('quiet');
      say(`    top-K candidates (keys in the newest window): ${topCandidates}`);

      // Percentiles for one key over the last hour of 10 s rows (QuestDB), first call then cached.
      await waitFor(
        'the 10 s rows of k1 in QuestDB',
        async () => ((await pool.query(`SELECT count() n FROM weir_agg_10s WHERE metric = 'gw_live' AND key = 'k1'`)).rows[0].n >= 1 ? true : undefined),
        60_000,
        200,
      );
      const pTo = lastEnd;
      const pFrom = pTo - 3_600_000;
      const pPath = (to: number) => `/v1/percentiles?metric=gw_live&key=k1&window=10s&from=${pFrom}&to=${to}`;
      let t = performance.now();
      const firstBody = JSON.parse(ok(await client.get(pPath(pTo)), 'percentiles')) as { count: number };
      const pFirst = performance.now() - t;
      if (firstBody.count !== 2) throw new Error(`percentiles of k1: count ${firstBody.count}, want 2`);
      const hits0 = await gatewayMetric('weir_history_cache_requests_total{result="hit"}');
      const pCached = stats(await timed(N, W, async () => void ok(await client.get(pPath(pTo)), 'percentiles')));
      const hits = (await gatewayMetric('weir_history_cache_requests_total{result="hit"}')) - hits0;
      let sh = 1;
      const pUncached = stats(await timed(Math.max(50, Math.round(300 * SCALE)), 5, async () => void ok(await client.get(pPath(pTo + sh++)), 'percentiles')));
      say(`    quiet    GET /v1/percentiles 1 h of k1: first call ${f1(pFirst)} ms; cached ${fmt(pCached)} (${hits}/${N + W} hits); uncached (QuestDB) ${fmt(pUncached)}`);

      // Flowing: paced events to random keys; partials every 1 s and firings every 10 s reach the view.
      const flowRate = Math.max(1000, Math.round(5000 * SCALE));
      const trickle = ProducerHandle.start({ natsUrl: stack.natsUrl, metric: 'gw_live', keys: liveKeys, rate: flowRate, seconds: 600, batch: 100, roundRobin: false, seed: 3 });
      await sleep(4000);
      const resultsBefore = (await natsReq('status', {})) as { liveKeys: number };
      say(`    flowing (${flowRate} events/s to random keys, partials every 1 s, 10 s windows firing):`);
      const flowing = await suite('flowing');
      const prod = await trickle.stop();
      say(`    trickle: ${prod.events} events at ${Math.round(prod.rate)}/s; live entries ${resultsBefore.liveKeys}`);
      client.close();
      peerClient.close();
      peerChild.kill();

      const two = (name: string) => {
        const q = quiet[name];
        const f = flowing[name];
        const goal = name.startsWith('GET /v1/latest') || (name.startsWith('GET /v1/top?') && !name.includes('miss')) ? `goal p99 < 2 ms: quiet ${q.p99 < 2 ? 'met' : 'NOT met'}, flowing ${f.p99 < 2 ? 'met' : 'NOT met'}` : '';
        row(`${liveKeys} keys, ${name}`, `quiet p50 ${f1(q.p50)} / p99 ${f1(q.p99)} / max ${f1(q.max)}; flowing p50 ${f1(f.p50)} / p99 ${f1(f.p99)} / max ${f1(f.max)} ms`, goal);
      };
      for (const name of Object.keys(quiet)) two(name);
      row(`GET /v1/percentiles, 1 h of one key (10 s rows)`, `first ${f1(pFirst)} ms; cached p50 ${f1(pCached.p50)} / p99 ${f1(pCached.p99)} ms; uncached p50 ${f1(pUncached.p50)} / p99 ${f1(pUncached.p99)} ms`, '');
      await stopEngine();
    }

    // =========================================================================================
    const deliveryRun = async (opts: { metric: string; rate: number; keys: number; seconds: number; sse: number; ws: number }) => {
      const windowMs = 1000;
      const baseStart = Math.floor(Date.now() / windowMs) * windowMs;
      const windows = opts.seconds + 30;
      const receivers: { rx: FinalsReceiver; kind: string; close: () => void; errors: string[] }[] = [];
      const path = `?metric=${opts.metric}&finalOnly=true`;
      for (let i = 0; i < opts.sse; i++) {
        const rx = new FinalsReceiver(baseStart, windowMs, windows, opts.keys);
        const s = sseSubscribe(engine!.http, `/v1/stream${path}`, (j) => rx.onJson(j));
        await s.ready;
        receivers.push({ rx, kind: 'sse', close: s.close, errors: s.errors });
      }
      for (let i = 0; i < opts.ws; i++) {
        const rx = new FinalsReceiver(baseStart, windowMs, windows, opts.keys);
        const s = await wsSubscribe(engine!.http, `/v1/ws${path}`, (j) => rx.onJson(j));
        receivers.push({ rx, kind: 'ws', close: s.close, errors: s.errors });
      }
      // The same results straight off NATS (no gateway): separates the engine's part of the latency.
      const direct = new FinalsReceiver(baseStart, windowMs, windows, opts.keys);
      const dsub = nc.subscribe(`weir.results.default.${opts.metric}.*`, { callback: (_e, m) => direct.onJson(m.string()) });
      const tStart = Date.now();
      const prod = await ProducerHandle.start({
        natsUrl: stack.natsUrl,
        metric: opts.metric,
        keys: opts.keys,
        rate: opts.rate,
        seconds: opts.seconds,
        batch: 100,
        roundRobin: true,
        seed: 5,
        track: { baseStart, windowMs, windows },
      }).done;
      const expected = prod.bitmap!;
      let want = 0;
      for (const b of expected) want += b;
      // The last windows close once the source is idle (idleTimeout 2 s + out-of-orderness 0.5 s).
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && [...receivers.map((r) => r.rx), direct].some((rx) => rx.finals < want)) await sleep(100);
      await sleep(500);
      const tEnd = Date.now();
      dsub.unsubscribe();
      for (const r of receivers) r.close();
      const all = new MsHistogram();
      let missing = 0;
      let extra = 0;
      let dups = 0;
      let worstMissing = 0;
      let corrections = 0;
      let total = 0;
      for (const r of receivers) {
        const c = r.rx.compare(expected);
        missing += c.missing;
        extra += c.extra;
        dups += r.rx.duplicates;
        corrections += r.rx.corrections;
        worstMissing = Math.max(worstMissing, c.missing);
        total += r.rx.finals;
        all.merge(r.rx.lat);
      }
      const errors = receivers.flatMap((r) => r.errors);
      if (process.env.BENCH_GW_DEBUG) {
        const first = receivers[0].rx;
        say(`    per window, max latency ms (subscriber 0 / NATS direct): ${Array.from({ length: windows }, (_, w) => w)
          .filter((w) => first.maxByWindow[w] >= 0 || direct.maxByWindow[w] >= 0)
          .map((w) => `${first.maxByWindow[w]}/${direct.maxByWindow[w]}`)
          .join(' ')}`);
      }
      return { prod, want, all, direct, directMissing: direct.compare(expected).missing, missing, extra, dups, worstMissing, corrections, total, errors, seconds: (tEnd - tStart) / 1000 };
    };

    if (parts.includes('C')) {
      const fireSeconds = Math.max(8, Math.round(30 * SCALE));
      const fireRate = 50_000;
      const fireKeys = 1000;
      say(`C. window close -> SSE subscriber at ${fireRate} events/s, ${fireKeys} keys, 1 s windows, ${fireSeconds} s`);
      engine ??= await startPhaseEngine('gwbench_fire', fireConfig);
      const r = await deliveryRun({ metric: 'gw_fire', rate: fireRate, keys: fireKeys, seconds: fireSeconds, sse: 1, ws: 0 });
      const lat = r.all;
      const d = r.direct.lat;
      say(`    producer: ${r.prod.events} events in ${r.prod.seconds.toFixed(1)} s = ${Math.round(r.prod.rate)} events/s (target ${fireRate})`);
      say(`    finals: expected ${r.want} (key, window) pairs, received ${r.total}, missing ${r.missing}, unexpected ${r.extra}, duplicates ${r.dups}, corrections ${r.corrections}${r.errors.length ? `, errors: ${r.errors.join('; ')}` : ''}`);
      say(`    close -> SSE subscriber: p50 ${lat.quantile(0.5)} ms, p99 ${lat.quantile(0.99)} ms, max ${lat.max} ms`);
      say(`    close -> plain NATS subscriber (no gateway): p50 ${d.quantile(0.5)} ms, p99 ${d.quantile(0.99)} ms, max ${d.max} ms, missing ${r.directMissing}`);
      row(`window close -> SSE subscriber, ${fireKeys} keys x 1 s windows, ${fireRate} events/s`, `p50 ${lat.quantile(0.5)} / p99 ${lat.quantile(0.99)} / max ${lat.max} ms (n=${lat.n})`, `goal p99 < 50 ms: ${lat.quantile(0.99) < 50 ? 'met' : 'NOT met'}`);
      row('  same results on a plain NATS subscription', `p50 ${d.quantile(0.5)} / p99 ${d.quantile(0.99)} / max ${d.max} ms`, 'engine part of the latency');
      row('  finals missing / duplicated (must be 0)', `${r.missing} / ${r.dups} of ${r.want}`, r.missing === 0 && r.dups === 0 ? 'met' : 'NOT met');
      row('  producer achieved rate', `${Math.round(r.prod.rate)} events/s`, `target ${fireRate}`);
    }

    if (parts.includes('D')) {
      const fanSse = 100;
      const fanWs = Number(process.env.BENCH_GW_WS ?? 100);
      const fanKeys = 200;
      const fanRate = 20_000;
      const fanSeconds = Math.max(8, Math.round(15 * SCALE));
      engine ??= await startPhaseEngine('gwbench_fire', fireConfig);
      // SSE alone, then SSE + WebSocket together.
      for (const ws of fanWs > 0 ? [0, fanWs] : [0]) {
        say(`D. fan-out: ${fanSse} SSE + ${ws} WebSocket subscribers, ${fanRate} events/s over ${fanKeys} keys, 1 s windows, ${fanSeconds} s`);
        const r = await deliveryRun({ metric: `gw_fan${ws}`, rate: fanRate, keys: fanKeys, seconds: fanSeconds, sse: fanSse, ws });
        const subs = fanSse + ws;
        const lat = r.all;
        const d = r.direct.lat;
        const perSec = r.total / r.prod.seconds;
        say(`    producer: ${Math.round(r.prod.rate)} events/s; expected ${r.want} finals per subscriber x ${subs} = ${r.want * subs}; delivered ${r.total} (${Math.round(perSec)}/s over the producer's ${r.prod.seconds.toFixed(1)} s)`);
        say(`    missing ${r.missing} (worst subscriber ${r.worstMissing}), unexpected ${r.extra}, duplicates ${r.dups}${r.errors.length ? `, errors: ${r.errors.slice(0, 3).join('; ')}` : ''}`);
        say(`    close -> subscriber across all: p50 ${lat.quantile(0.5)} ms, p99 ${lat.quantile(0.99)} ms, max ${lat.max} ms; plain NATS subscriber p50 ${d.quantile(0.5)} / p99 ${d.quantile(0.99)} ms`);
        row(`fan-out to ${fanSse} SSE${ws ? ` + ${ws} WS` : ''}, ${fanKeys} keys x 1 s windows, ${fanRate} events/s`, `${Math.round(perSec)} deliveries/s; p50 ${lat.quantile(0.5)} / p99 ${lat.quantile(0.99)} / max ${lat.max} ms`, '');
        row('  same results on a plain NATS subscription', `p50 ${d.quantile(0.5)} / p99 ${d.quantile(0.99)} / max ${d.max} ms`, 'engine + bench-client part');
        row('  missing per subscriber (must be 0)', `total ${r.missing}, worst subscriber ${r.worstMissing}, duplicates ${r.dups}`, r.missing === 0 && r.dups === 0 ? 'met' : 'NOT met');
      }
    }
    await stopEngine();
    row('machine', `${cpus().length} cores; load average (1 min) ${load0.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end`, 'shared: other processes compete for the CPU');
  } finally {
    await stopEngine().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await nc.close().catch(() => undefined);
    await stack.stop();
  }
  return rows;
}

async function questdbExecHttp(base: string, sql: string): Promise<void> {
  const res = await fetch(`${base}/exec?query=${encodeURIComponent(sql)}`);
  const body = (await res.json()) as { error?: string };
  if (!res.ok || body.error) throw new Error(`QuestDB: ${body.error ?? res.status}`);
}

export function printRows(rows: GatewayBenchRow[], say: (l: string) => void): void {
  const w1 = Math.max(...rows.map((r) => r.figure.length));
  const w2 = Math.max(...rows.map((r) => r.value.length));
  for (const r of rows) say(`  ${r.figure.padEnd(w1)}  ${r.value.padEnd(w2)}  ${r.goal}`);
}

if (!process.argv.includes('--gw-producer') && !process.argv.includes('--gw-peer') && import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const say = (l: string) => process.stdout.write(l + '\n');
  say(`Weir gateway benchmark (scale ${Number(process.env.BENCH_SCALE ?? 1)}), ${new Date().toISOString()}`);
  const rows = await gatewayBench({ say });
  say('\ngateway summary');
  printRows(rows, say);
  process.exit(0);
}
