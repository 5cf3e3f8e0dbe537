/**
 * Start during an outage, on the real stack (issue 5; docs/faults.md "Start during an outage").
 * An engine started while nats-server or QuestDB is stopped retries for `startupTimeout`, logging
 * each attempt with the service and its URL, then exits 1 with one line naming what stayed
 * unreachable; started while both are down and they come back within the timeout, it starts
 * and its rows equal the brute-force oracle.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { freePort } from '../scripts/stack.js';
import { awaitRowsAndDiff, Publisher } from './faults-kit.js';
import { ROOT, waitFor } from './harness.js';
import { workload } from './oracle.js';
import { useRealStack, type RealStack } from './real-stack.js';

interface Started {
  proc: ChildProcess;
  http: string;
  output: () => string;
  exited: Promise<number | string>;
}

/** The engine process (`node dist/engine/main.js`), not waiting for anything: it may be meant to fail. */
async function spawnEngine(ctx: RealStack, config: Record<string, unknown>): Promise<Started> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-startup-'));
  const cfgPath = path.join(dir, 'config.json');
  writeFileSync(cfgPath, JSON.stringify(config));
  const proc = spawn(process.execPath, [process.env.WEIR_TEST_ENGINE_MAIN ?? path.join(ROOT, 'dist/engine/main.js')], {
    cwd: ROOT,
    env: { ...process.env, ...ctx.stack.env, WEIR_HTTP_PORT: String(port), WEIR_GRPC_PORT: '0', WEIR_CONFIG: cfgPath, WEIR_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  return { proc, http: `http://127.0.0.1:${port}`, output: () => out, exited };
}

/** The engine's log lines (pino JSON) that parse. */
function logLines(out: string): { level: number; msg: string; service?: string; url?: string; attempt?: number }[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });
}

/** Waits (bounded) for the process to exit; SIGKILLs it and fails if it does not. */
async function exitCode(e: Started, withinMs: number): Promise<number | string> {
  const timer = setTimeout(() => e.proc.kill('SIGKILL'), withinMs);
  const code = await e.exited;
  clearTimeout(timer);
  return code;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('engine start during an outage', () => {
  const ctx = useRealStack();
  // Short, so that the test is quick; the default is 30 s (docs/configuration.md).
  const FAIL_AFTER = { startupTimeout: '4s', workers: 1 };

  it('nats-server stopped: retries, logging each attempt, then exits 1 naming NATS and its URL', async () => {
    await ctx.stack.stopNats();
    const e = await spawnEngine(ctx, FAIL_AFTER);
    // Bounded: startupTimeout plus the process start and a last attempt; SIGKILL (a fail) past it.
    const code = await exitCode(e, 60_000);
    const lines = logLines(e.output());
    const url = ctx.stack.natsUrl;
    expect(code, e.output()).toBe(1);
    const attempts = lines.filter((l) => l.level === 40 && l.service === 'NATS' && l.url === url);
    expect(attempts.length, e.output()).toBeGreaterThanOrEqual(2);
    expect(attempts[0].msg).toMatch(new RegExp(`^NATS at ${esc(url)} is unreachable \\(.*ECONNREFUSED.*\\); attempt 1, retrying`));
    const fatal = lines.filter((l) => l.level === 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0].msg).toMatch(new RegExp(`^start failed: NATS at ${esc(url)} is unreachable: .*ECONNREFUSED.* \\(\\d+ attempts within startupTimeout 4 s\\)$`));
    // QuestDB was up: only NATS is named.
    expect(e.output()).not.toMatch(/QuestDB at \S+ is unreachable/);
  }, 90_000);

  it('QuestDB stopped: retries, then exits 1 naming QuestDB and its URL', async () => {
    await ctx.stack.startNats();
    await ctx.stack.stopQuestdb();
    const e = await spawnEngine(ctx, FAIL_AFTER);
    const code = await exitCode(e, 60_000);
    const lines = logLines(e.output());
    const url = ctx.stack.questdbHttp;
    expect(code, e.output()).toBe(1);
    expect(lines.filter((l) => l.level === 40 && l.service === 'QuestDB' && l.url === url).length, e.output()).toBeGreaterThanOrEqual(2);
    const fatal = lines.filter((l) => l.level === 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0].msg).toMatch(new RegExp(`^start failed: QuestDB at ${esc(url)} is unreachable: .*ECONNREFUSED.* \\(\\d+ attempts within startupTimeout 4 s\\)$`));
    expect(e.output()).not.toMatch(/NATS at \S+ is unreachable/);
  }, 90_000);

  it('both stopped, back within startupTimeout: the engine starts and its rows equal the oracle', async () => {
    await ctx.stack.stopNats(); // QuestDB is still stopped
    const e = await spawnEngine(ctx, { startupTimeout: '3m', workers: 1, pipeline: { idleTimeout: '1h' } });
    try {
      const attempted = (service: string) => logLines(e.output()).some((l) => l.level === 40 && l.service === service && (l.attempt ?? 0) >= 2);
      await waitFor('attempts at both services', async () => (attempted('NATS') && attempted('QuestDB') ? true : undefined), 60_000, 100);
      // Not half up meanwhile: the HTTP port does not serve (no /readyz 200 from a part of the engine).
      await expect(fetch(`${e.http}/healthz`)).rejects.toThrow();
      await ctx.stack.startNats();
      await ctx.stack.startQuestdb();
      await waitFor(
        'the engine to be ready',
        async () => {
          if (e.proc.exitCode !== null) throw new Error(`engine exited (${e.proc.exitCode}):\n${e.output()}`);
          return (await fetch(`${e.http}/readyz`).catch(() => null))?.status === 200 ? true : undefined;
        },
        120_000,
        200,
      );
      expect(logLines(e.output()).filter((l) => l.level >= 50), e.output()).toEqual([]);

      const base = Math.floor(Date.now() / 60_000) * 60_000 - 20 * 60_000;
      const work = workload({ seed: 31, base, metrics: ['boot_latency', 'boot_temp'], keys: ['a', 'b', 'c', 'd', 'e'], hot: ['a'], events: 5000, spanMs: 120_000 });
      const nc = await connect({ servers: ctx.stack.natsUrl, noAsyncTraces: true });
      try {
        const pub = new Publisher(nc, 'boot');
        await pub.run(work.messages, Infinity, 64);
        await pub.publishOne({ subject: 'weir.events.boot_sentinel', body: JSON.stringify({ key: 's', value: 1, ts: base + 120_000 + 180_000 }) }, 'boot:sentinel');
      } finally {
        await nc.close();
      }
      const diff = await awaitRowsAndDiff(ctx.pool, work.good, ['boot_latency', 'boot_temp'], () => {}, 120_000);
      expect(diff.expected).toBeGreaterThan(20);
      expect(diff.lost).toEqual([]);
      expect(diff.duplicated).toEqual([]);
      expect(diff.extra).toEqual([]);
      expect(diff.wrong).toEqual([]);
    } finally {
      e.proc.kill('SIGTERM');
      expect(await exitCode(e, 60_000)).toBe(0);
    }
  }, 240_000);
});
