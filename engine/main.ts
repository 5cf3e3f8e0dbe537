/**
 * `npm start`: runs the engine and the HTTP gateway against existing servers named by the
 * environment (WEIR_NATS_URL, WEIR_QUESTDB_HTTP, WEIR_QUESTDB_PG, WEIR_HTTP_PORT, WEIR_GRPC_PORT,
 * WEIR_CONFIG), plus the declared pipelines named by WEIR_PIPELINES (docs/pipelines.md). It never
 * provisions anything. SIGTERM/SIGINT: stop pulling, flush, commit, exit 0.
 */
import pino from 'pino';
import { loadConfig, type WeirConfig } from './config.js';
import { Engine } from './engine.js';
import { startGateway, type Gateway } from '../gateway/server.js';
import { questdbPool } from '../gateway/questdb.js';
import path from 'node:path';
import { loadPipelineDir } from './pipeline/load.js';
import { PipelineRunner } from './pipeline/runner.js';
import type { PipelineSpec } from './pipeline/spec.js';

const log = pino({ name: 'weir', level: process.env.WEIR_LOG_LEVEL ?? 'info' });

let config: WeirConfig;
try {
  config = loadConfig();
} catch (err) {
  log.fatal((err as Error).message);
  process.exit(2);
}
log.level = config.logLevel;

const engine = new Engine(config, log.child({ part: 'engine' }));
const pool = questdbPool(config.questdbPg);
let stopping: Promise<void> | null = null;

async function shutdown(signal: string, code = 0) {
  if (stopping) return stopping;
  log.info({ signal }, 'shutting down');
  stopping = (async () => {
    const guard = setTimeout(() => {
      log.error('shutdown took longer than 60 s; exiting');
      process.exit(1);
    }, 60_000);
    await gateway?.close().catch(() => undefined);
    await Promise.all(runners.map((r) => r.stop().catch((err) => log.error({ err, pipeline: r.name }, 'pipeline stop failed'))));
    await engine.stop().catch((err) => log.error({ err }, 'engine stop failed'));
    await pool.end().catch(() => undefined);
    clearTimeout(guard);
    log.flush?.();
    process.exit(code);
  })();
  return stopping;
}

process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

/** The declared pipelines named by config.pipelines.run (WEIR_PIPELINES), validated before anything starts. */
function chosenPipelines(): PipelineSpec[] {
  const run = config.pipelines.run;
  if (run !== 'all' && run.length === 0) return [];
  const specs = loadPipelineDir(path.resolve(config.pipelines.dir));
  if (run === 'all') return specs;
  return run.map((name) => {
    const spec = specs.find((s) => s.name === name);
    if (!spec) throw new Error(`WEIR_PIPELINES names "${name}", but ${config.pipelines.dir} has only ${specs.map((s) => s.name).join(', ')}`);
    return spec;
  });
}

const runners: PipelineRunner[] = [];
let pipelineSpecs: PipelineSpec[];
try {
  pipelineSpecs = chosenPipelines();
} catch (err) {
  log.fatal((err as Error).message);
  process.exit(2);
}

let gateway: Gateway | undefined;
try {
  await engine.start((err) => void shutdown(`fatal: ${err.message}`, 1));
  for (const spec of pipelineSpecs)
    runners.push(
      await PipelineRunner.start({
        spec,
        natsUrl: config.natsUrl,
        questdbHttp: config.questdbHttp,
        stream: config.stream.name,
        limits: { ...config.limits, maxFutureMs: config.pipeline.maxFuture },
        maxOutOfOrdernessMs: config.pipeline.maxOutOfOrderness,
        idleTimeoutMs: config.pipeline.idleTimeout,
        flushIntervalMs: config.flushInterval,
        tickMs: config.pipelines.tick,
        checkpointIntervalMs: config.pipelines.checkpointInterval,
        maxPendingRows: config.sink.maxPendingRows,
        log: log.child({ part: 'pipeline', pipeline: spec.name }),
      }),
    );
  gateway = await startGateway({ config, pool, engine, pipelines: () => runners, log: log.child({ part: 'gateway' }) });
  log.info({ http: `http://${config.httpHost}:${gateway.httpPort}`, grpc: `${config.httpHost}:${gateway.grpcPort}`, nats: config.natsUrl, questdb: config.questdbHttp, workers: config.workers }, 'weir is running');
} catch (err) {
  // A SIGTERM while NATS or QuestDB was awaited ends the start: the shutdown exits 0.
  if (stopping) await stopping;
  // One line that says what failed, e.g. "start failed: NATS at nats://… is unreachable: …".
  log.fatal({ err }, `start failed: ${(err as Error).message}`);
  await Promise.all(runners.map((r) => r.stop().catch(() => undefined)));
  await engine.stop().catch(() => undefined);
  process.exit(1);
}
