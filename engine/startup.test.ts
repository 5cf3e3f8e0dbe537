import { describe, expect, it } from 'vitest';
import { allReachable, describeError, UnreachableError, untilReachable } from './startup.js';

function recorder() {
  const lines: { obj: Record<string, unknown>; msg: string }[] = [];
  const log = {
    warn: (obj: Record<string, unknown>, msg: string) => lines.push({ obj, msg }),
    info: () => undefined,
  } as never;
  return { lines, log };
}

const refused = () => Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
const NATS = { name: 'NATS', url: 'nats://127.0.0.1:4222' };

describe('untilReachable', () => {
  it('retries a refused service and proceeds once it answers, logging each failed attempt with the service and URL', async () => {
    const { lines, log } = recorder();
    let calls = 0;
    const v = await untilReachable(
      NATS,
      async () => {
        if (++calls < 3) throw refused();
        return 'up';
      },
      { deadline: Date.now() + 60_000, timeoutMs: 60_000, log, backoff: () => 1 },
    );
    expect(v).toBe('up');
    expect(calls).toBe(3);
    expect(lines).toHaveLength(2);
    expect(lines[0].msg).toMatch(/^NATS at nats:\/\/127\.0\.0\.1:4222 is unreachable \(fetch failed \(ECONNREFUSED\)\); attempt 1/);
    expect(lines[1].obj).toMatchObject({ service: 'NATS', url: NATS.url, attempt: 2 });
  });

  it('gives up at the deadline with an error naming the service, its URL and the last error', async () => {
    const { log } = recorder();
    let calls = 0;
    const err = await untilReachable(
      { name: 'QuestDB', url: 'http://127.0.0.1:9000' },
      async () => {
        calls++;
        throw refused();
      },
      { deadline: Date.now() + 30, timeoutMs: 30, log, backoff: () => 5 },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(UnreachableError);
    expect(err.message).toMatch(/^QuestDB at http:\/\/127\.0\.0\.1:9000 is unreachable: fetch failed \(ECONNREFUSED\) \(\d+ attempts? within startupTimeout 0\.03 s\)$/);
    expect(err.attempts).toBe(calls);
    expect(calls).toBeGreaterThanOrEqual(1);
  });

  it('with no time left makes exactly one attempt', async () => {
    const { lines, log } = recorder();
    let calls = 0;
    await expect(
      untilReachable(NATS, async () => {
        calls++;
        throw new Error('connection refused');
      }, { deadline: Date.now() - 1, timeoutMs: 0, log }),
    ).rejects.toThrow(/NATS at nats:\/\/127\.0\.0\.1:4222 is unreachable: connection refused \(1 attempt within/);
    expect(calls).toBe(1);
    expect(lines).toHaveLength(0);
  });

  it('abandons an attempt that never answers (a black-holed address) once its time is up', async () => {
    const { log } = recorder();
    const err = await untilReachable(NATS, () => new Promise(() => undefined), { deadline: Date.now(), timeoutMs: 0, log }).catch((e) => e);
    expect(err).toBeInstanceOf(UnreachableError);
    expect((err as Error).message).toMatch(/no answer within 1000 ms/);
  });

  it('stops waiting when the engine is stopped', async () => {
    const { log } = recorder();
    await expect(
      untilReachable(NATS, async () => Promise.reject(refused()), { deadline: Date.now() + 60_000, timeoutMs: 60_000, log, stopped: () => true }),
    ).rejects.toThrow(/^stopped while waiting for NATS/);
  });
});

describe('allReachable', () => {
  it('names every service still unreachable', async () => {
    const a = Promise.reject(new Error('QuestDB at http://q is unreachable: x'));
    const b = Promise.reject(new Error('NATS at nats://n is unreachable: y'));
    await expect(allReachable([a, b])).rejects.toThrow('QuestDB at http://q is unreachable: x; NATS at nats://n is unreachable: y');
    await expect(allReachable([Promise.resolve(1), Promise.resolve('two')])).resolves.toEqual([1, 'two']);
    await expect(allReachable([Promise.resolve(1), Promise.reject(new Error('only this'))])).rejects.toThrow(/^only this$/);
  });

  it('describeError keeps the socket-level cause that fetch hides', () => {
    expect(describeError(refused())).toBe('fetch failed (ECONNREFUSED)');
    expect(describeError(new Error('connection refused: connect ECONNREFUSED 127.0.0.1:1'))).toBe('connection refused: connect ECONNREFUSED 127.0.0.1:1');
  });
});
