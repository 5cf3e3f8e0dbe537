/**
 * Per-file real stack for integration tests: registers beforeAll/afterAll that start nats-server
 * and QuestDB (scripts/stack.ts), a NATS connection and a PG pool, and tear them down, killing
 * whatever engine the test left in `ctx.engine`. Kept apart from harness.ts, which the
 * benchmarks import outside vitest.
 */
import { afterAll, beforeAll } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type pg from 'pg';
import { startStack, type Stack } from '../scripts/stack.js';
import { pgPool, type EngineProcess } from './harness.js';

export interface RealStack {
  stack: Stack;
  nc: NatsConnection;
  pool: pg.Pool;
  engine?: EngineProcess;
}

export function useRealStack(): RealStack {
  const ctx = {} as RealStack;
  beforeAll(async () => {
    ctx.stack = await startStack();
    ctx.nc = await connect({ servers: ctx.stack.natsUrl, noAsyncTraces: true });
    ctx.pool = pgPool(ctx.stack);
  }, 180_000);
  afterAll(async () => {
    await ctx.engine?.stop('SIGKILL');
    await ctx.nc?.close();
    await ctx.pool?.end();
    await ctx.stack?.stop();
  });
  return ctx;
}
