/**
 * `npm start`: runs the engine and the HTTP gateway against existing servers named by the
 * environment (WEIR_NATS_URL, WEIR_QUESTDB_HTTP, WEIR_QUESTDB_PG, WEIR_HTTP_PORT, WEIR_GRPC_PORT,
 * WEIR_CONFIG). It never provisions anything. SIGTERM/SIGINT: stop pulling, flush, commit, exit 0.
 */
import pino from 'pino';
import { loadConfig } from './config.js';
import { Engine } from './engine.js';
import { startGateway, type Gateway } from '../gateway/server.js';
import { questdbPool } from '../gateway/questdb.js';

const log = pino({ name: 'weir', level: process.env.WEIR_LOG_LEVEL ?? 'info' });

let config;
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

let gateway: Gateway | undefined;
try {
  await engine.start((err) => void shutdown(`fatal: ${err.message}`, 1));
  gateway = await startGateway({ config, pool, engine, log: log.child({ part: 'gateway' }) });
  log.info({ http: `http://${config.httpHost}:${gateway.httpPort}`, grpc: `${config.httpHost}:${gateway.grpcPort}`, nats: config.natsUrl, questdb: config.questdbHttp, workers: config.workers }, 'weir is running');
} catch (err) {
  log.fatal({ err }, 'start failed');
  await engine.stop().catch(() => undefined);
  process.exit(1);
}
