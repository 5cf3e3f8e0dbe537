/**
 * Integration-test harness: the real engine as a child process (`node dist/engine/main.js`,
 * exactly what `npm start` runs) against the real stack started by scripts/stack.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { questdbPool } from '../gateway/questdb.js';
import { freePort, type Stack } from '../scripts/stack.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface EngineProcess {
  proc: ChildProcess;
  http: string;
  /** gRPC address host:port. */
  grpc: string;
  output: () => string;
  /** Sends a signal and resolves with the exit code (or the signal name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  /** Scrapes /metrics (pass an admin token when auth is on). */
  metrics(token?: string): Promise<Record<string, number>>;
}

/** Starts the engine + gateway against the stack with an optional config file; resolves once /readyz is 200. */
export async function startEngine(stack: Stack, config: Record<string, unknown> = {}, extraEnv: Record<string, string> = {}): Promise<EngineProcess> {
  const port = await freePort();
  const grpcPort = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-engine-'));
  const cfgPath = path.join(dir, 'config.json');
  writeFileSync(cfgPath, JSON.stringify(config));
  const proc = spawn(process.execPath, [process.env.WEIR_TEST_ENGINE_MAIN ?? path.join(ROOT, 'dist/engine/main.js')], {
    cwd: ROOT,
    env: { ...process.env, ...stack.env, WEIR_HTTP_PORT: String(port), WEIR_GRPC_PORT: String(grpcPort), WEIR_CONFIG: cfgPath, WEIR_LOG_LEVEL: 'info', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  const http = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`engine exited early (${proc.exitCode}):\n${out}`);
    try {
      const r = await fetch(`${http}/readyz`);
      if (r.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`engine not ready after 60 s:\n${out}`);
    }
    await sleep(200);
  }
  return {
    proc,
    http,
    grpc: `127.0.0.1:${grpcPort}`,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    async metrics(token?: string) {
      const text = await (await fetch(`${http}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} })).text();
      const m: Record<string, number> = {};
      for (const line of text.split('\n')) {
        const match = /^(weir_[a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+)$/.exec(line);
        if (match) m[match[1] + (match[2] ?? '')] = Number(match[3]);
      }
      return m;
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns a value (not undefined) or the time is up; then throws with `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

/** A PG-wire pool to the stack's QuestDB, with the gateway's type parsers (UTC timestamps, LONG as number). */
export function pgPool(stack: Stack): pg.Pool {
  return questdbPool(stack.questdbPg);
}
