/**
 * `npm run load -- <pipeline|all> [--nats nats://127.0.0.1:4222] [--rate N] [--seconds S] [--seed K] [--history]`
 *
 * Publishes the live workload of a shipped pipeline (scripts/load/<pipeline>.ts) to NATS
 * JetStream in real time: N events per second (per pipeline with `all`), current timestamps,
 * JSON arrays of up to 100 events per message. Runs for S seconds, or until Ctrl-C.
 * `--history` first publishes the pipeline's history (100 days of tutor sessions, 7 days of film
 * clicks, the films' initial metrics).
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { PIPELINES, loadOf, startLoad, type LoadHandle } from './load/index.js';

export const USAGE = `usage: npm run load -- <pipeline|all> [--nats nats://127.0.0.1:4222] [--rate N] [--seconds S] [--seed K] [--history]
  pipeline    one of ${PIPELINES.join(', ')}, or all
  --nats      NATS server (default $WEIR_NATS_URL or nats://127.0.0.1:4222)
  --rate      events per second, per pipeline (default 1000)
  --seconds   stop after this long (default: run until Ctrl-C)
  --seed      seed of the generators (default 1)
  --history   publish the pipeline's history first`;

export interface LoadArgs {
  pipelines: string[];
  nats: string;
  rate: number;
  seconds: number | undefined;
  seed: number;
  history: boolean;
}

/** Parses the command line; throws an Error with a message fit for the user. */
export function parseLoadArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): LoadArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        nats: { type: 'string' },
        rate: { type: 'string' },
        seconds: { type: 'string' },
        seed: { type: 'string' },
        history: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new Error((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) throw new Error('');
  if (positionals.length === 0) throw new Error('name a pipeline (or all)');
  if (positionals.length > 1) throw new Error(`name one pipeline (or all), got ${positionals.join(' ')}`);
  const name = positionals[0];
  const pipelines = name === 'all' ? [...PIPELINES] : [loadOf(name).pipeline];
  /** A number option: > 0, or >= 0 with allowZero; integer when asked. */
  const num = (opt: string, v: string | undefined, o: { integer?: boolean; allowZero?: boolean } = {}): number | undefined => {
    if (v === undefined) return undefined;
    const x = Number(v);
    const ok = v.trim() !== '' && Number.isFinite(x) && (!o.integer || Number.isInteger(x)) && (o.allowZero ? x >= 0 : x > 0);
    if (!ok) throw new Error(`--${opt} must be ${o.integer ? 'an integer' : 'a number'} ${o.allowZero ? '>= 0' : '> 0'}, got "${v}"`);
    return x;
  };
  const nats = values.nats ?? env.WEIR_NATS_URL ?? 'nats://127.0.0.1:4222';
  if (!/^(nats|tls|ws|wss):\/\/[^\s/]+/.test(nats) && !/^[^\s:/]+:\d+$/.test(nats)) throw new Error(`--nats must be a server URL like nats://127.0.0.1:4222, got "${nats}"`);
  return {
    pipelines,
    nats,
    rate: num('rate', values.rate) ?? 1000,
    seconds: num('seconds', values.seconds),
    seed: num('seed', values.seed, { integer: true, allowZero: true }) ?? 1,
    history: values.history ?? false,
  };
}

async function main(): Promise<void> {
  let args: LoadArgs;
  try {
    args = parseLoadArgs(process.argv.slice(2));
  } catch (err) {
    const m = (err as Error).message;
    process.stderr.write(m ? `load: ${m}\n${USAGE}\n` : `${USAGE}\n`);
    process.exit(m ? 2 : 0);
  }
  let nc;
  try {
    nc = await connect({ servers: args.nats, noAsyncTraces: true, maxReconnectAttempts: 3 });
  } catch (err) {
    process.stderr.write(`load: cannot connect to NATS at ${args.nats}: ${(err as Error).message}\n(is the stack running? npm run dev, or npm run stack)\n`);
    process.exit(1);
  }
  const say = (s: string) => process.stdout.write(s + '\n');
  const handles: LoadHandle[] = args.pipelines.map((p) =>
    startLoad(p, nc, { rate: args.rate, seed: args.seed, history: args.history, onError: (err) => process.stderr.write(`load ${p}: publish failed: ${err.message}\n`) }),
  );
  for (const p of args.pipelines) say(`load ${p}: ${loadOf(p).summary}; ${args.rate} events/s${args.history ? ', history first' : ''}`);
  const started = Date.now();
  const report = setInterval(() => {
    const s = ((Date.now() - started) / 1000).toFixed(0);
    say(`${s}s  ` + handles.map((h) => `${h.pipeline}: ${h.published.events} events / ${h.published.messages} msgs`).join('  '));
  }, 5000);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(report);
    const done = await Promise.all(handles.map((h) => h.stop()));
    handles.forEach((h, i) => say(`load ${h.pipeline}: published ${done[i].events} events in ${done[i].messages} messages`));
    await nc.drain().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  if (args.seconds !== undefined) setTimeout(() => void stop(), args.seconds * 1000);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
