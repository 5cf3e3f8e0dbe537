import { readFileSync } from 'node:fs';
import os from 'node:os';
import { z } from 'zod';
import { parseDuration } from '../operators/windows/assign.js';

const duration = (where: string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    try {
      return parseDuration(v, where);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

const windowSpec = z.object({
  name: z.string().regex(/^[0-9a-z]+$/, 'window name: lowercase letters and digits, e.g. 10s'),
  size: duration('windows[].size'),
  table: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'table: a lowercase SQL identifier'),
});

/** The engine's configuration; every field has a documented default (docs/configuration.md). */
export const configSchema = z
  .object({
    natsUrl: z.string().default('nats://127.0.0.1:4222'),
    questdbHttp: z.string().default('http://127.0.0.1:9000'),
    questdbPg: z.string().default('postgres://admin:quest@127.0.0.1:8812/qdb'),
    httpPort: z.number().int().min(0).max(65535).default(8080),
    httpHost: z.string().default('127.0.0.1'),
    grpcPort: z.number().int().min(0).max(65535).default(50051),
    stream: z
      .object({
        name: z.string().default('WEIR_EVENTS'),
        subjects: z.array(z.string()).default(['weir.events.>']),
        /** Stream retention by age; old events are still in the stream for replay until then. */
        maxAge: duration('stream.maxAge').prefault('7d'),
        consumer: z.string().default('weir-engine'),
        deadLetterStream: z.string().default('WEIR_DEADLETTER'),
        /** How often the engine checks that its streams still exist (a deleted one is recreated, loudly). */
        checkInterval: duration('stream.checkInterval').prefault('5s'),
      })
      .prefault({}),
    pipeline: z
      .object({
        name: z.string().regex(/^[A-Za-z0-9_-]+$/).prefault('default'),
        windows: z
          .array(windowSpec)
          .min(1)
          .default([
            { name: '10s', size: 10_000, table: 'weir_agg_10s' },
            { name: '1m', size: 60_000, table: 'weir_agg_1m' },
          ] as never),
        /** The watermark lags the max event time by this much (bounded out-of-orderness). */
        maxOutOfOrderness: duration('pipeline.maxOutOfOrderness').prefault('2s'),
        /** Corrections (upserts) are accepted for this long after a window fires. */
        allowedLateness: duration('pipeline.allowedLateness').prefault('30s'),
        /** With no events for this long (and the stream drained), the watermark follows the clock. */
        idleTimeout: duration('pipeline.idleTimeout').prefault('3s'),
        /** Events further than this ahead of the clock go to the DLQ (they would close every window). */
        maxFuture: duration('pipeline.maxFuture').prefault('1h'),
        /** DDSketch relative accuracy of the percentiles. */
        sketchAccuracy: z.number().gt(0).lt(0.5).default(0.005),
      })
      .prefault({}),
    limits: z
      .object({
        maxPayloadBytes: z.number().int().positive().default(1_048_576),
        maxEventsPerMessage: z.number().int().positive().default(10_000),
        maxKeyLength: z.number().int().positive().default(256),
        maxTags: z.number().int().nonnegative().default(32),
        /**
         * Distinct keys of one metric in one window of the default pipeline (its state is per
         * metric, key and window until the window is final): an event that would open one more is
         * dead-lettered with a reason, the series already open go on. 0 turns the bound off.
         */
        maxSeriesPerWindow: z.number().int().nonnegative().default(100_000),
        /**
         * Distinct (metric, key) series over all metrics in one window of the default pipeline:
         * the same refusal once a window holds this many, whatever the metric. 0 turns it off.
         */
        maxSeriesTotal: z.number().int().nonnegative().default(200_000),
      })
      .prefault({}),
    workers: z.number().int().min(1).max(256).default(Math.max(1, os.availableParallelism())),
    fetch: z
      .object({
        batch: z.number().int().positive().default(1000),
        maxBytes: z.number().int().positive().default(8 * 1024 * 1024),
        /** How long the source waits to fill a batch before handing it to the workers. */
        lingerMs: z.number().int().min(0).max(1000).default(2),
      })
      .prefault({}),
    /** Live results: the engine's in-memory view (Latest, TopK) and weir.results.<pipeline>.<metric>.<key>. */
    results: z
      .object({
        /** Publish window results on NATS and serve the live view over request-reply. */
        enabled: z.boolean().default(true),
        /** Partial updates of open windows this often ("0s" turns them off; firings are always sent). */
        partialInterval: duration('results.partialInterval').prefault('1s'),
        /** Keys whose newest window ended longer ago than this (in event time) leave the live view. */
        retention: duration('results.retention').prefault('10m'),
      })
      .prefault({}),
    gateway: z
      .object({
        /**
         * API tokens. With none, auth is off (local dev). With any, every API call needs
         * `Authorization: Bearer <token>` (HTTP), `authorization` metadata (gRPC) or `access_token`
         * (SSE/WebSocket query) holding a token with the route's scope.
         */
        tokens: z
          .array(
            z
              .object({
                name: z.string().min(1),
                token: z.string().min(16, 'token: at least 16 characters'),
                scopes: z.array(z.enum(['read', 'subscribe', 'publish', 'admin'])).min(1),
                /** Requests per second (token bucket refill) and burst; 0 = unlimited. */
                ratePerSec: z.number().min(0).default(0),
                burst: z.number().int().min(0).default(0),
                maxSubscriptions: z.number().int().positive().optional(),
              })
              .strict(),
          )
          .default([])
          .superRefine((tokens, ctx) => {
            // Rate and subscription limits are kept per token name, and the value identifies the caller.
            const names = new Set<string>();
            const values = new Set<string>();
            tokens.forEach((t, i) => {
              if (names.has(t.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `token name "${t.name}" is used twice; names must be unique` });
              if (values.has(t.token)) ctx.addIssue({ code: 'custom', path: [i, 'token'], message: `token "${t.name}" has the same value as an earlier token` });
              names.add(t.name);
              values.add(t.token);
            });
          }),
        limits: z
          .object({
            maxRange: duration('gateway.limits.maxRange').prefault('31d'),
            maxRows: z.number().int().positive().default(50_000),
            maxQuantiles: z.number().int().positive().default(32),
            maxTopK: z.number().int().positive().default(1000),
            maxSubscriptions: z.number().int().positive().default(1000),
            maxPublishEvents: z.number().int().positive().default(10_000),
            /** A subscriber this many messages behind is disconnected with an error (never silently skipped). */
            subscriberBuffer: z.number().int().positive().default(10_000),
          })
          .prefault({}),
        /** History answers (QuestDB) cached until the watermark passes the range. */
        cacheEntries: z.number().int().min(0).default(2000),
        /** Time to wait for the engine's live state over request-reply. */
        liveTimeout: duration('gateway.liveTimeout').prefault('2s'),
      })
      .prefault({}),
    /** Declared pipelines (docs/pipelines.md) run beside the default pipeline. */
    pipelines: z
      .object({
        /** Directory of pipeline files (YAML or JSON). */
        dir: z.string().default('config/pipelines'),
        /** Names of the pipelines to run; empty runs none. WEIR_PIPELINES=films,bridge_ops or "all". */
        run: z.union([z.literal('all'), z.array(z.string())]).default([]),
        /** Processing-time tick of every pipeline: early triggers, debounce, idle watermark. */
        tick: duration('pipelines.tick').prefault('250ms'),
        /** How often each pipeline checkpoints its state and stream position (and once more when it stops). */
        checkpointInterval: duration('pipelines.checkpointInterval')
          .refine((v) => v > 0, 'pipelines.checkpointInterval must be longer than 0')
          .prefault('10s'),
      })
      .strict()
      .prefault({}),
    sink: z
      .object({
        /**
         * Back-pressure bound: window rows QuestDB has not acknowledged yet, over all workers.
         * At this many the engine stops fetching events until QuestDB takes rows again.
         */
        maxPendingRows: z.number().int().positive().default(500_000),
      })
      .prefault({}),
    /** How often windows rows are flushed to QuestDB and the commit point advanced. */
    flushInterval: duration('flushInterval').prefault('500ms'),
    /**
     * How long the engine keeps retrying NATS and QuestDB when they are unreachable at start,
     * logging each attempt; then it exits 1 naming what stayed unreachable ("0s": one attempt).
     */
    startupTimeout: duration('startupTimeout').prefault('30s'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).prefault('info'),
  })
  .strict();

export type WeirConfig = z.output<typeof configSchema>;
export type WeirConfigInput = z.input<typeof configSchema>;

/** Validates a config object; throws an Error listing every problem with its path. */
export function parseConfig(input: unknown, source = 'config'): WeirConfig {
  const r = configSchema.safeParse(input ?? {});
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  - ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw new Error(`invalid ${source}:\n${lines.join('\n')}`);
  }
  const names = new Set<string>();
  for (const w of r.data.pipeline.windows) {
    if (names.has(w.name)) throw new Error(`invalid ${source}:\n  - pipeline.windows: window name "${w.name}" appears twice`);
    names.add(w.name);
  }
  return r.data;
}

/**
 * Loads the config: the file named by WEIR_CONFIG (JSON), then the environment variables of
 * contract v1 on top (WEIR_NATS_URL, WEIR_QUESTDB_HTTP, WEIR_QUESTDB_PG, WEIR_HTTP_PORT,
 * WEIR_GRPC_PORT), then `overrides`.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: WeirConfigInput = {}): WeirConfig {
  let fromFile: Record<string, unknown> = {};
  const path = env.WEIR_CONFIG;
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`WEIR_CONFIG=${path}: cannot read: ${(err as Error).message}`);
    }
    try {
      fromFile = JSON.parse(text);
    } catch (err) {
      throw new Error(`WEIR_CONFIG=${path}: not valid JSON: ${(err as Error).message}`);
    }
  }
  const fromEnv: Record<string, unknown> = {};
  if (env.WEIR_NATS_URL) fromEnv.natsUrl = env.WEIR_NATS_URL;
  if (env.WEIR_QUESTDB_HTTP) fromEnv.questdbHttp = env.WEIR_QUESTDB_HTTP;
  if (env.WEIR_QUESTDB_PG) fromEnv.questdbPg = env.WEIR_QUESTDB_PG;
  for (const [name, field] of [
    ['WEIR_HTTP_PORT', 'httpPort'],
    ['WEIR_GRPC_PORT', 'grpcPort'],
    ['WEIR_WORKERS', 'workers'],
  ] as const) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const n = Number(v);
    if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got "${v}"`);
    fromEnv[field] = n;
  }
  if (env.WEIR_LOG_LEVEL) fromEnv.logLevel = env.WEIR_LOG_LEVEL;
  if (env.WEIR_PIPELINES !== undefined || env.WEIR_PIPELINES_DIR !== undefined) {
    const filePipelines = (fromFile.pipelines ?? {}) as Record<string, unknown>;
    const run = env.WEIR_PIPELINES === undefined ? filePipelines.run : env.WEIR_PIPELINES.trim() === 'all' ? 'all' : env.WEIR_PIPELINES.split(',').map((x) => x.trim()).filter(Boolean);
    fromEnv.pipelines = { ...filePipelines, ...(run !== undefined ? { run } : {}), ...(env.WEIR_PIPELINES_DIR ? { dir: env.WEIR_PIPELINES_DIR } : {}) };
  }
  return parseConfig({ ...fromFile, ...fromEnv, ...overrides }, path ? `config (${path})` : 'config');
}
