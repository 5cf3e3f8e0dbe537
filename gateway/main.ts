/**
 * A gateway in its own process (`node dist/gateway/main.js`): HTTP and gRPC against the engine
 * of the configured pipeline over NATS (live state, subscriptions) and QuestDB (history). Run as
 * many as you like; they share nothing. Same environment variables as `npm start`.
 */
import pino from 'pino';
import { loadConfig } from '../engine/config.js';
import { questdbPool } from './questdb.js';
import { startGateway } from './server.js';

const log = pino({ name: 'weir-gateway', level: process.env.WEIR_LOG_LEVEL ?? 'info' });
let config;
try {
  config = loadConfig();
} catch (err) {
  log.fatal((err as Error).message);
  process.exit(2);
}
const pool = questdbPool(config.questdbPg);
const gw = await startGateway({ config, pool, log }).catch((err) => {
  log.fatal({ err }, 'gateway start failed');
  process.exit(1);
});
log.info({ http: `http://${config.httpHost}:${gw.httpPort}`, grpc: `${config.httpHost}:${gw.grpcPort}` }, 'weir gateway is running');
const stop = async () => {
  await gw.close();
  await pool.end().catch(() => undefined);
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
