/**
 * `npm run dev`: the whole of Weir on this machine in one command. It provisions and starts
 * nats-server (JetStream) and QuestDB on the default ports if free (else free ones), with data
 * under .weir/dev, then runs the engine and gateway (`npm start`'s code) against them and a
 * sample producer publishing live events. Ctrl-C stops everything cleanly.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { startStack } from './stack.js';
import { rng } from '../benchmarks/producer.js';

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

say(`
Weir is running.
  HTTP gateway      ${http}   (OpenAPI: ${http}/docs, metrics: ${http}/metrics)
  try               curl '${http}/v1/series?metric=http_latency_ms&key=svc-1&window=10s'
                    curl '${http}/v1/percentiles?metric=http_latency_ms&key=svc-1&q=0.5,0.99'
  QuestDB console   ${stack.questdbHttp}   (tables weir_agg_10s, weir_agg_1m)
  NATS              ${stack.natsUrl}   (publish JSON to weir.events.<metric>)
  sample producer   3 metrics x 20 keys, ~500 events/s
Ctrl-C stops everything.`);

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
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
