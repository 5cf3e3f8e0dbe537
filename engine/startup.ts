/**
 * Start-up against services that may not be up yet (issue 5, docs/faults.md "Start during an
 * outage"). Like a Kafka Streams or Flink job whose broker is still coming up, the engine does
 * not give up on the first refused connection, nor does it wait silently forever: it retries
 * each service with back-off until `startupTimeout`, logging every failed attempt with the
 * service, its URL and the error, then fails with one error naming what stayed unreachable
 * (engine/main.ts logs it and exits 1, for the supervisor to act on).
 */
import type { Logger } from 'pino';

export interface Service {
  /** What it is, for people: "NATS", "QuestDB". */
  name: string;
  url: string;
}

export interface StartupOptions {
  /** Wall time (ms since epoch) after which no further attempt is made. */
  deadline: number;
  /** The configured bound (ms), for the messages. */
  timeoutMs: number;
  log: Pick<Logger, 'warn' | 'info'>;
  /** True once the engine is being stopped: the wait ends. */
  stopped?: () => boolean;
  /** Back-off before attempt n + 1 (ms); default 250, 500, 1000, then 2000. */
  backoff?: (n: number) => number;
}

/** A service that stayed unreachable until the start-up deadline. */
export class UnreachableError extends Error {
  constructor(
    readonly service: Service,
    readonly attempts: number,
    readonly lastError: string,
    timeoutMs: number,
  ) {
    super(`${service.name} at ${service.url} is unreachable: ${lastError} (${attempts} attempt${attempts === 1 ? '' : 's'} within startupTimeout ${timeoutMs / 1000} s)`);
    this.name = 'UnreachableError';
  }
}

/** The error of a failed attempt in one line, with the socket-level cause fetch() hides ("fetch failed"). */
export function describeError(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const msg = e?.message ?? String(err);
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause && !msg.includes(cause) ? `${msg} (${cause})` : msg;
}

/**
 * Runs `attempt` until it succeeds or the deadline passes. Each attempt gets the time left (at
 * least 1 s) as its own timeout, and is abandoned once that has passed. Every failure is logged
 * (warn) with the service, URL and error; the last one becomes an UnreachableError.
 */
export async function untilReachable<T>(service: Service, attempt: (timeoutMs: number) => Promise<T>, o: StartupOptions): Promise<T> {
  const backoff = o.backoff ?? ((n: number) => Math.min(2000, 250 * 2 ** Math.min(n - 1, 3)));
  for (let n = 1; ; n++) {
    const budget = Math.max(1000, o.deadline - Date.now());
    let timer: NodeJS.Timeout | undefined;
    try {
      const r = await Promise.race([
        attempt(budget),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${budget} ms`)), budget);
        }),
      ]);
      if (n > 1) o.log.info({ service: service.name, url: service.url, attempts: n }, `${service.name} at ${service.url} is reachable`);
      return r;
    } catch (err) {
      const reason = describeError(err);
      if (o.stopped?.()) throw new Error(`stopped while waiting for ${service.name} at ${service.url} (${reason})`);
      const left = o.deadline - Date.now();
      if (left <= 0) throw new UnreachableError(service, n, reason, o.timeoutMs);
      const wait = Math.min(left, backoff(n));
      o.log.warn(
        { service: service.name, url: service.url, attempt: n, err: reason, retryInMs: wait, startupTimeoutMs: o.timeoutMs },
        `${service.name} at ${service.url} is unreachable (${reason}); attempt ${n}, retrying in ${wait} ms until startupTimeout (${Math.ceil(left / 1000)} s left)`,
      );
      await new Promise((r) => setTimeout(r, wait));
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Waits for several services at once (each with its own attempts and log lines). Resolves with
 * their results in order once all are reachable; otherwise fails with one error naming every
 * service still unreachable at the deadline.
 */
export async function allReachable<T extends unknown[]>(waits: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(waits as Promise<unknown>[]);
  const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => s.reason as Error);
  if (failed.length === 1) throw failed[0];
  if (failed.length > 1) throw new Error(failed.map((e) => e.message).join('; '));
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as T;
}
