/**
 * `npm run dev`: the whole of Weir on this machine in one command. It provisions and starts
 * nats-server (JetStream) and QuestDB on the default ports if free (else free ones), with data
 * under .weir/dev, then runs the engine and gateway (`npm start`'s code) against them and a
 * sample producer publishing live events. Ctrl-C stops everything cleanly.
 *
 * `WEIR_PIPELINES=<name>[,<name>] npm run dev` (or `all`) also runs those shipped pipelines
 * (config/pipelines) and publishes their live load (scripts/load), after their history when the
 * stream holds none of their events yet; it prints curl commands to look at their results.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { startStack } from './stack.js';
import { rng } from '../benchmarks/producer.js';
import { LOADS, PIPELINES as LOADABLE, startLoad, type LoadHandle } from './load/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const say = (s: string) => process.stdout.write(s + '\n');

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer().once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
const pick = async (p: number) => ((await portFree(p)) ? p : 0);

say('weir dev: provisioning nats-server and QuestDB (first run downloads them)…');
const stack = await startStack({
  dir: path.join(root, '.weir', 'dev'),
  natsPort: await pick(4222),
  questdbHttpPort: await pick(9000),
  questdbPgPort: await pick(8812),
  questdbIlpPort: await pick(9009),
  log: (l) => say(`  ${l}`),
});
const httpPort = (await portFree(8080)) ? 8080 : 18080;
const engine = spawn(process.execPath, [path.join(root, 'dist/engine/main.js')], {
  cwd: root,
  env: { ...process.env, ...stack.env, WEIR_HTTP_PORT: String(httpPort), WEIR_LOG_LEVEL: process.env.WEIR_LOG_LEVEL ?? 'warn' },
  stdio: 'inherit',
});

const http = `http://127.0.0.1:${httpPort}`;
for (let i = 0; i < 300; i++) {
  const ok = await fetch(`${http}/readyz`).then((r) => r.ok, () => false);
  if (ok) break;
  if (engine.exitCode !== null) throw new Error(`engine exited with ${engine.exitCode}`);
  await new Promise((r) => setTimeout(r, 200));
}

// Sample data: 3 metrics x 20 keys, ~500 events/s in real time.
const nc = await connect({ servers: stack.natsUrl });
const js = jetstream(nc);
const rand = rng(1);
const metrics = ['http_latency_ms', 'cache_hit', 'queue_depth'];
const timer = setInterval(() => {
  const ts = Date.now();
  for (const metric of metrics) {
    const batch = Array.from({ length: 17 }, () => {
      const key = `svc-${Math.floor(rand() * 20)}`;
      const value = metric === 'http_latency_ms' ? Math.round(5 + rand() * rand() * 400) : metric === 'cache_hit' ? (rand() < 0.9 ? 1 : 0) : Math.floor(rand() * 100);
      return { key, value, ts };
    });
    void js.publish(`weir.events.${metric}`, JSON.stringify(batch)).catch(() => undefined);
  }
}, 100);

// Shipped pipelines named by WEIR_PIPELINES: their live load (200 events/s each).
const env = process.env.WEIR_PIPELINES?.trim() ?? '';
const named = env === 'all' ? LOADABLE : env.split(',').map((x) => x.trim()).filter(Boolean);
const loads: LoadHandle[] = [];
const tries: string[] = [];
if (named.length) {
  const subjects = (await (await jetstreamManager(nc)).streams.info('WEIR_EVENTS', { subjects_filter: 'weir.events.>' })).state.subjects ?? {};
  for (const name of named) {
    const load = LOADS[name];
    if (!load) {
      tries.push(`  ${name}: no load generator (scripts/load has ${LOADABLE.join(', ')}); publish to its metrics yourself`);
      continue;
    }
    const fresh = load.metrics.every((m) => !subjects[`weir.events.${m}`]);
    loads.push(startLoad(name, nc, { rate: 200, seed: 1, history: fresh, onError: (err) => say(`load ${name}: ${err.message}`) }));
    tries.push(`  ${name}: ${load.summary}${fresh ? ' (history first)' : ''}`, ...load.examples(Date.now()).map((p) => `                    curl '${http}${p}'`));
  }
  tries.push(`  alerts            nats sub 'weir.alerts.>'   (table weir_alerts in the QuestDB console)`);
}

say(`
Weir is running.
  HTTP gateway      ${http}   (OpenAPI: ${http}/docs, metrics: ${http}/metrics)
  try               curl '${http}/v1/series?metric=http_latency_ms&key=svc-1&window=10s'
                    curl '${http}/v1/percentiles?metric=http_latency_ms&key=svc-1&q=0.5,0.99'
  QuestDB console   ${stack.questdbHttp}   (tables weir_agg_10s, weir_agg_1m)
  NATS              ${stack.natsUrl}   (publish JSON to weir.events.<metric>)
  sample producer   3 metrics x 20 keys, ~500 events/s${tries.length ? `\n  pipelines (load 200 events/s each; rows in weir_p_<name>):\n${tries.join('\n')}` : ''}
Ctrl-C stops everything.`);

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  await Promise.all(loads.map((l) => l.stop()));
  await nc.drain().catch(() => undefined);
  engine.kill('SIGTERM');
  await new Promise((r) => engine.once('exit', r));
  await stack.stop();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());
engine.once('exit', (code) => {
  if (!stopping) {
    say(`engine exited (${code}); stopping the stack`);
    void stack.stop().then(() => process.exit(code ?? 1));
  }
});
