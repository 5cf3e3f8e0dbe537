/**
 * The gRPC face of the gateway (@grpc/grpc-js): service weir.v1.Weir from proto/weir/v1/weir.proto
 * (loaded at start with @grpc/proto-loader; nothing is generated), the standard health service
 * (grpc-health-check) and server reflection (@grpc/reflection) on one port.
 *
 * Every method is a thin mapping onto WeirService, the query layer HTTP uses too, so both give the
 * same answers and the same errors: proto snake_case fields in, the service's camelCase objects
 * out (and back). ApiErrors become gRPC statuses (errors.ts GRPC_CODE) whose details start with
 * the field at fault, which also travels in the trailing metadata `weir-param`; anything else is
 * logged and answered INTERNAL with a generic message. Every call is timed in
 * weir_grpc_request_duration_seconds{method, code} (streams at their end).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type protobuf from 'protobufjs';
import descriptorNs from 'protobufjs/ext/descriptor.js';
import type { LiveResult } from '../engine/subjects.js';
import type { Principal, Scope } from './auth.js';
import { ApiError, BadRequest, GRPC_CODE } from './errors.js';
import type { GrpcDeps } from './server.js';
import type { PipelinePoint, PipelineSeriesAnswer, PublishAnswer, SeriesAnswer } from './service.js';

export const SERVICE_NAME = 'weir.v1.Weir';
export const PROTO_LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

/** proto/weir/v1/weir.proto, found from this module whether it runs from dist/gateway or gateway/. */
export function weirProtoPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here, i = 0; i < 4; i++, dir = path.dirname(dir)) {
    const p = path.join(dir, 'proto', 'weir', 'v1', 'weir.proto');
    if (existsSync(p)) return p;
  }
  throw new Error(`proto/weir/v1/weir.proto not found above ${here}`);
}

const IDEMPOTENCY_RE = /^[A-Za-z0-9_.:-]+$/;
const SHUTDOWN_GRACE_MS = 5_000;
const HEALTH_POLL_MS = 2_000;

// ---- messages as proto-loader gives them (keepCase, defaults, longs as Number) ----------------

interface EventMsg {
  metric: string;
  key: string;
  value?: number | null;
  ts?: number | null;
  tags: Record<string, string>;
  id: string;
}
interface PublishRequestMsg {
  events: EventMsg[];
  metric: string;
  idempotency_key: string;
}
interface PublishResponseMsg {
  accepted: number;
  messages: number;
  first_seq: number;
  last_seq: number;
  duplicate: boolean;
}
interface RangeMsg {
  metric: string;
  key: string;
  window: string;
  from: string;
  to: string;
}
interface SeriesRequestMsg extends RangeMsg {
  limit: number;
  pipeline: string;
}
interface PipelinePointMsg {
  ts: number;
  end: number;
  window: string;
  final: boolean;
  revision: number;
  emitted_at: number;
  fields: Record<string, number>;
}
interface PercentilesRequestMsg extends RangeMsg {
  q: number[];
}
interface LatestRequestMsg {
  pipeline: string;
  metric: string;
  key: string;
  window: string;
  final: boolean;
}
interface TopKRequestMsg {
  pipeline: string;
  metric: string;
  window: string;
  by: string;
  k: number;
  order: string;
  scope: string;
}
interface SubscribeRequestMsg {
  pipeline: string;
  metric: string;
  key: string;
  key_prefix: string;
  window: string;
  final_only: boolean;
}
/** Identity of a result, common to both pipelines. */
interface LiveIdentityMsg {
  pipeline: string;
  metric: string;
  key: string;
  window: string;
  start: number;
  end: number;
  final: boolean;
  revision: number;
  emitted_at: number;
}
/** The default pipeline's result: its figures in the typed fields, `fields` left empty. */
type DefaultLiveResultMsg = Omit<LiveResult, 'emittedAt' | 'stddev'> & { emitted_at: number; stddev?: number };
/** A declared pipeline's result: its own fields in the map, the typed figures left unset. */
type DeclaredLiveResultMsg = LiveIdentityMsg & { superseded: boolean; fields: Record<string, number> };
export type LiveResultMsg = DefaultLiveResultMsg | DeclaredLiveResultMsg;

// ---- mapping ----------------------------------------------------------------------------------

/** The service names parameters in camelCase (JSON); gRPC callers know them in snake_case. */
const snake = (param: string) => param.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());

/**
 * Numeric keys of a declared pipeline's flat result (docs/pipelines.md) that are not its fields: the
 * spec reserves these names (and `emittedAt` is not lowercase), so no field can take one. Every
 * other number is a field. (`superseded`, the tombstone flag, is a boolean, so never taken as one.)
 */
const DECLARED_IDENTITY = new Set(['start', 'end', 'revision', 'emittedAt']);

/**
 * A live result as a LiveResult message. The default pipeline's (`defaultPipeline`, the gateway's
 * own) keeps its figures in the typed fields. Any other pipeline is a declared one: its flat
 * result's numeric fields go in the `fields` map by name (null fields are left out: proto3 maps
 * hold no null), whatever their names, so a field called `count` or `p50` keeps its exact value
 * there and the typed figures stay unset.
 */
export function liveResultMsg(r: LiveResult, defaultPipeline: string): LiveResultMsg {
  if (r.pipeline === defaultPipeline) {
    const { emittedAt, stddev, ...rest } = r;
    return { ...rest, emitted_at: emittedAt, ...(stddev === null || stddev === undefined ? {} : { stddev }) };
  }
  const fields: Record<string, number> = {};
  for (const [k, v] of Object.entries(r as unknown as Record<string, unknown>)) if (typeof v === 'number' && !DECLARED_IDENTITY.has(k)) fields[k] = v;
  const { pipeline, metric, key, window, start, end, final, revision, emittedAt } = r;
  const superseded = (r as unknown as { superseded?: unknown }).superseded === true;
  return { pipeline, metric, key, window, start, end, final, revision, emitted_at: emittedAt, superseded, fields };
}

/** Proto events to the contract's JSON shape, for the service (and the engine's decoder) to validate. */
function eventsOf(events: EventMsg[]): Record<string, unknown>[] {
  return events.map((e, i) => {
    const where = `events[${i}]`;
    // JSON cannot carry these, so the decoder would only see null: say what was really sent.
    if (e.value === undefined || e.value === null) throw new BadRequest(where, `${where}: event.value is required`);
    if (!Number.isFinite(e.value)) throw new BadRequest(where, `${where}: event.value must be a finite number, got ${e.value}`);
    const o: Record<string, unknown> = { key: e.key, value: e.value };
    if (e.metric) o.metric = e.metric;
    if (e.ts !== undefined && e.ts !== null) o.ts = e.ts;
    if (e.tags && Object.keys(e.tags).length > 0) o.tags = e.tags;
    if (e.id) o.id = e.id;
    return o;
  });
}

/** A declared pipeline's row: null fields are left out of the map (proto3 maps hold no null). */
function pipelinePointMsg(p: PipelinePoint): PipelinePointMsg {
  const fields: Record<string, number> = {};
  for (const [k, v] of Object.entries(p.fields)) if (v !== null) fields[k] = v;
  return { ts: p.ts, end: p.end, window: p.window, final: p.final, revision: p.revision, emitted_at: p.emittedAt, fields };
}

/** QuerySeries: a declared pipeline's rows go in pipeline_points, the default pipeline's in points. */
function seriesResponse(a: SeriesAnswer | PipelineSeriesAnswer): unknown {
  if (!('pipeline' in a)) return a;
  const { points, window, ...rest } = a;
  return { ...rest, window: window ?? '', points: [], pipeline_points: points.map(pipelinePointMsg) };
}

function publishResponse(a: PublishAnswer): PublishResponseMsg {
  return { accepted: a.accepted, messages: a.messages, first_seq: a.firstSeq, last_seq: a.lastSeq, duplicate: a.duplicate };
}

function idempotencyKey(v: string): string | undefined {
  if (!v) return undefined;
  if (v.length > 128 || !IDEMPOTENCY_RE.test(v))
    throw new BadRequest('idempotency_key', 'idempotency_key must be at most 128 characters of letters, digits, "_", ".", ":" or "-"');
  return v;
}

const statusName = (code: number) => (grpc.status as unknown as Record<number, string>)[code] ?? String(code);

type StatusError = Error & { code: number; details: string; metadata: grpc.Metadata };

const isStatusError = (e: unknown): e is StatusError => e instanceof Error && typeof (e as StatusError).code === 'number' && (e as StatusError).metadata instanceof grpc.Metadata;

function statusError(code: number, details: string, metadata = new grpc.Metadata()): StatusError {
  return Object.assign(new Error(details), { code, details, metadata });
}

/** Marks a request whose bytes did not decode as the method's message; the value says why. */
const UNDECODABLE = Symbol('undecodable request');

/**
 * The service with request decoding that never throws. grpc-js answers bytes that are not the
 * request message with INTERNAL "Error deserializing request" (the gRPC convention), which this
 * API keeps for its own bugs; here they become a marked request, which `decoded` refuses as
 * INVALID_ARGUMENT saying what the protobuf decoder found.
 */
function decodeLeniently(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(service)) {
    const type = (m as { requestType?: { type?: { name?: string } } }).requestType?.type?.name ?? `${name}Request`;
    const requestDeserialize = (buf: Buffer) => {
      try {
        return m.requestDeserialize(buf);
      } catch (err) {
        return { [UNDECODABLE]: `the request is not a valid weir.v1.${type} message (protobuf: ${(err as Error).message})` };
      }
    };
    out[name] = { ...m, requestDeserialize };
  }
  return out;
}

/** The request, or a BadRequest when its bytes did not decode (no field to name). */
function decoded<T>(req: T): T {
  const why = (req as { [UNDECODABLE]?: string })[UNDECODABLE];
  if (why !== undefined) throw new BadRequest('', why);
  return req;
}

// ---- reflection descriptors ------------------------------------------------------------------

interface FieldDesc {
  name: string;
  typeName?: string;
  oneofIndex?: number;
  proto3Optional?: boolean;
}
interface MessageDesc {
  name: string;
  field?: FieldDesc[];
  nestedType?: MessageDesc[];
  oneofDecl?: { name: string }[];
  options?: { mapEntry?: boolean };
}

/** protoc's name of the implicit message of a map field: foo_bar -> FooBarEntry. */
const mapEntryName = (field: string) =>
  field
    .split('_')
    .filter(Boolean)
    .map((s) => s[0].toUpperCase() + s.slice(1))
    .join('') + 'Entry';

function fixMessage(m: MessageDesc): void {
  const nested = m.nestedType ?? [];
  for (const n of nested) fixMessage(n);
  const fields = m.field ?? [];
  for (const f of fields) {
    const entry = nested.find((n) => n.options?.mapEntry && n.name === f.typeName);
    if (entry) entry.name = f.typeName = mapEntryName(f.name);
    if (f.oneofIndex !== undefined && m.oneofDecl?.[f.oneofIndex]?.name === `_${f.name}` && fields.filter((x) => x.oneofIndex === f.oneofIndex).length === 1)
      f.proto3Optional = true;
  }
}

/**
 * The file descriptors proto-loader builds (protobufjs toDescriptor) name map entries "Tags"
 * instead of protoc's "TagsEntry" and drop proto3_optional, so strict reflection clients refuse
 * them (grpcurl: "is an invalid map: incorrect implicit map entry name"; fullstorydev/grpcurl#519).
 * This returns the package definition with those two things corrected, for reflection only.
 */
export function fixDescriptorsForReflection(pkg: protoLoader.PackageDefinition): protoLoader.PackageDefinition {
  const FileDescriptorProto = (descriptorNs as unknown as { FileDescriptorProto: protobuf.Type }).FileDescriptorProto;
  const fixed = new Map<Buffer, Buffer>();
  const fix = (buf: Buffer): Buffer => {
    let out = fixed.get(buf);
    if (!out) {
      const file = FileDescriptorProto.toObject(FileDescriptorProto.decode(buf)) as { messageType?: MessageDesc[] };
      for (const m of file.messageType ?? []) fixMessage(m);
      out = Buffer.from(FileDescriptorProto.encode(FileDescriptorProto.fromObject(file)).finish());
      fixed.set(buf, out);
    }
    return out;
  };
  const result: protoLoader.PackageDefinition = {};
  for (const [name, def] of Object.entries(pkg)) {
    const d = def as { fileDescriptorProtos?: Buffer[] };
    result[name] = (d.fileDescriptorProtos ? { ...def, fileDescriptorProtos: d.fileDescriptorProtos.map(fix) } : def) as (typeof pkg)[string];
  }
  return result;
}

// ---- the server -------------------------------------------------------------------------------

export async function startGrpcServer(deps: GrpcDeps): Promise<{ port: number; setServing(ok: boolean): void; close(): Promise<void> }> {
  const { config, service, auth, metrics, log } = deps;
  const packageDefinition = protoLoader.loadSync([weirProtoPath(), healthProtoPath], PROTO_LOADER_OPTIONS);
  const weir = (grpc.loadPackageDefinition(packageDefinition) as unknown as { weir: { v1: { Weir: grpc.ServiceClientConstructor } } }).weir.v1.Weir;

  /** An error as a gRPC status: ApiErrors keep their meaning and name the field, the rest is INTERNAL. */
  const toStatus = (err: unknown, method: string): StatusError => {
    if (err instanceof ApiError) {
      const md = new grpc.Metadata();
      md.set('weir-error', err.code);
      const param = snake(err.param);
      let details = err.message;
      if (param) {
        md.set('weir-param', param);
        if (!details.startsWith(`${param}:`) && !details.startsWith(`${err.param}:`)) details = `${param}: ${details}`;
      }
      if (err.retryAfter !== undefined) md.set('retry-after', String(err.retryAfter));
      return statusError(GRPC_CODE[err.code], details, md);
    }
    log.error({ err, method }, 'gRPC call failed');
    return statusError(grpc.status.INTERNAL, 'internal error (logged by the gateway)');
  };

  const record = (method: string, code: number, t0: bigint) =>
    metrics.grpcDuration.observe({ method, code: statusName(code) }, Number(process.hrtime.bigint() - t0) / 1e9);

  const authorization = (md: grpc.Metadata): string | undefined => {
    const v = md.get('authorization')[0];
    return v === undefined ? undefined : String(v);
  };

  function unary<Req, Res>(method: string, scope: Scope, run: (req: Req, p: Principal) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const t0 = process.hrtime.bigint();
      (async () => {
        const p = await auth.admit(authorization(call.metadata), scope);
        return run(decoded(call.request), p);
      })().then(
        (res) => {
          record(method, grpc.status.OK, t0);
          callback(null, res);
        },
        (err) => {
          const st = toStatus(err, method);
          record(method, st.code, t0);
          callback(st);
        },
      );
    };
  }

  const publishOne = (req: PublishRequestMsg) => service.publish(eventsOf(req.events ?? []), req.metric || undefined, idempotencyKey(req.idempotency_key));

  /** Client streaming: one request at a time, each stored by JetStream before the next is read. */
  const publishStream: grpc.handleClientStreamingCall<PublishRequestMsg, PublishResponseMsg> = (call, callback) => {
    const method = 'PublishStream';
    const t0 = process.hrtime.bigint();
    const totals: PublishResponseMsg = { accepted: 0, messages: 0, first_seq: 0, last_seq: 0, duplicate: false };
    let done = false;
    let busy = false;
    let ended = false;
    let index = 0;
    const finish = (err: unknown, extra?: Record<string, string>) => {
      if (done) return;
      done = true;
      if (err === null) {
        record(method, grpc.status.OK, t0);
        callback(null, totals);
        return;
      }
      const st = toStatus(err, method);
      for (const [k, v] of Object.entries(extra ?? {})) st.metadata.set(k, v);
      record(method, st.code, t0);
      callback(st);
    };
    let principal: Principal;
    try {
      principal = auth.authenticate(authorization(call.metadata));
      auth.require(principal, 'publish');
    } catch (err) {
      finish(err);
      return;
    }
    call.on('data', (req: PublishRequestMsg) => {
      if (done) return;
      call.pause();
      busy = true;
      const i = index++;
      (async () => {
        await auth.consume(principal);
        return publishOne(decoded(req));
      })().then(
        (a) => {
          busy = false;
          totals.accepted += a.accepted;
          totals.messages += a.messages;
          if (!totals.first_seq) totals.first_seq = a.firstSeq;
          if (a.lastSeq) totals.last_seq = a.lastSeq;
          totals.duplicate ||= a.duplicate;
          if (ended) finish(null);
          else call.resume();
        },
        (err) => finish(err, { 'weir-request-index': String(i), 'weir-accepted': String(totals.accepted) }),
      );
    });
    call.on('end', () => {
      ended = true;
      if (!busy) finish(null);
    });
    call.on('error', (err) => {
      if (!done) log.debug({ err: err.message }, 'PublishStream read failed');
    });
    call.on('cancelled', () => {
      if (done) return;
      done = true;
      record(method, grpc.status.CANCELLED, t0);
    });
  };

  /** Open Subscribe calls, ended with UNAVAILABLE on shutdown (tryShutdown waits for every call). */
  const subscribers = new Set<(err: unknown) => void>();
  const subscriberBuffer = config.gateway.limits.subscriberBuffer;
  const defaultPipeline = config.pipeline.name;
  const toLive = (r: LiveResult) => liveResultMsg(r, defaultPipeline);

  const subscribe: grpc.handleServerStreamingCall<SubscribeRequestMsg, LiveResultMsg> = (call) => {
    const method = 'Subscribe';
    const t0 = process.hrtime.bigint();
    let done = false;
    let counted = false;
    let unsubscribe: (() => void) | undefined;
    let release: (() => void) | undefined;
    // Results waiting while grpc-js's own buffer is full (write returned false, no 'drain' yet).
    let queue: LiveResultMsg[] = [];
    let head = 0;
    let blocked = false;

    const cleanup = (code: number) => {
      if (done) return false;
      done = true;
      unsubscribe?.();
      release?.();
      queue = [];
      subscribers.delete(fail);
      if (counted) metrics.subscriptions.dec({ transport: 'grpc' });
      record(method, code, t0);
      return true;
    };
    function fail(err: unknown) {
      const st = isStatusError(err) ? err : toStatus(err, method);
      if (cleanup(st.code) && !call.cancelled) call.emit('error', st);
    }
    const write = (m: LiveResultMsg) => {
      metrics.delivered.inc({ transport: 'grpc' });
      if (!call.write(m)) blocked = true;
    };
    const deliver = (r: LiveResult) => {
      if (done) return;
      const m = toLive(r);
      if (!blocked) return write(m);
      queue.push(m);
      if (queue.length - head + call.writableLength > subscriberBuffer) {
        metrics.dropped.inc({ transport: 'grpc' });
        fail(statusError(grpc.status.RESOURCE_EXHAUSTED, `subscriber too slow: more than ${subscriberBuffer} results queued; resubscribe and read the gap with QuerySeries`));
      }
    };
    call.on('drain', () => {
      blocked = false;
      while (!done && !blocked && head < queue.length) write(queue[head++]);
      if (head === queue.length) {
        queue = [];
        head = 0;
      } else if (head > 1024 && head * 2 > queue.length) {
        queue = queue.slice(head);
        head = 0;
      }
    });
    call.on('cancelled', () => cleanup(grpc.status.CANCELLED));
    call.on('close', () => cleanup(grpc.status.OK));
    call.on('error', () => cleanup(grpc.status.UNKNOWN));

    (async () => {
      const p = await auth.admit(authorization(call.metadata), 'subscribe');
      const q = decoded(call.request);
      const filter = service.parseFilter({ pipeline: q.pipeline, metric: q.metric, key: q.key, keyPrefix: q.key_prefix, window: q.window, finalOnly: q.final_only });
      if (done || call.cancelled) return;
      release = auth.holdSubscription(p);
      unsubscribe = service.subscribe(filter, (_raw, result) => {
        const r = result();
        if (r) deliver(r);
      });
      metrics.subscriptions.inc({ transport: 'grpc' });
      counted = true;
      subscribers.add(fail);
      // Headers now, so a client knows the subscription is in place before the first result.
      call.sendMetadata(new grpc.Metadata());
    })().catch(fail);
  };

  const server = new grpc.Server();
  server.addService(decodeLeniently(weir.service), {
    Publish: unary<PublishRequestMsg, PublishResponseMsg>('Publish', 'publish', async (req) => publishResponse(await publishOne(req))),
    PublishStream: publishStream,
    QuerySeries: unary<SeriesRequestMsg, unknown>('QuerySeries', 'read', async (req) =>
      seriesResponse(await service.series({ pipeline: req.pipeline, metric: req.metric, key: req.key, window: req.window, from: req.from, to: req.to, limit: req.limit })),
    ),
    Percentiles: unary<PercentilesRequestMsg, unknown>('Percentiles', 'read', async (req) => {
      const a = await service.percentiles({ metric: req.metric, key: req.key, window: req.window, from: req.from, to: req.to, q: req.q });
      const { relativeAccuracy, ...rest } = a;
      return { ...rest, relative_accuracy: relativeAccuracy };
    }),
    Latest: unary<LatestRequestMsg, unknown>('Latest', 'read', async (req) => {
      const a = await service.latest({ pipeline: req.pipeline, metric: req.metric, key: req.key, window: req.window, final: req.final });
      return { results: a.results.map(toLive) };
    }),
    TopK: unary<TopKRequestMsg, unknown>('TopK', 'read', async (req) => {
      const a = await service.topK({ pipeline: req.pipeline, metric: req.metric, window: req.window, by: req.by, k: req.k, order: req.order, scope: req.scope });
      return { ...a, start: a.start ?? undefined, entries: a.entries.map(toLive) };
    }),
    Catalog: unary<{ pipeline: string }, unknown>('Catalog', 'read', async (req) => {
      const a = await service.catalog({ pipeline: req.pipeline });
      return { ...a, windows: a.windows.map((w) => ({ name: w.name, size_ms: w.sizeMs })) };
    }),
    Subscribe: subscribe,
  } as grpc.UntypedServiceImplementation);

  // Health: '' and weir.v1.Weir follow deps.ready() (the /readyz rule), polled; setServing(false) pins NOT_SERVING.
  const health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE_NAME]: 'NOT_SERVING' });
  health.addToServer(server);
  let forcedDown = false;
  let serving: boolean | null = null;
  const setStatus = (ok: boolean) => {
    if (serving === ok) return;
    serving = ok;
    const s = ok ? 'SERVING' : 'NOT_SERVING';
    health.setStatus('', s);
    health.setStatus(SERVICE_NAME, s);
    log.debug({ status: s }, 'gRPC health');
  };
  let polling = false;
  const poll = async () => {
    if (polling || forcedDown) return;
    polling = true;
    try {
      const ok = await deps.ready().catch(() => false);
      if (!forcedDown) setStatus(ok);
    } finally {
      polling = false;
    }
  };
  const timer = setInterval(() => void poll(), HEALTH_POLL_MS);
  timer.unref();
  void poll();

  // Reflection over Weir and Health (the package definition holds both files).
  new ReflectionService(fixDescriptorsForReflection(packageDefinition)).addToServer(server);

  const host = config.httpHost.includes(':') && !config.httpHost.startsWith('[') ? `[${config.httpHost}]` : config.httpHost;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${deps.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  log.info({ address: `${host}:${port}` }, 'gRPC server listening');

  let closing: Promise<void> | null = null;
  return {
    port,
    setServing(ok: boolean) {
      forcedDown = !ok;
      if (ok) void poll();
      else setStatus(false);
    },
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        forcedDown = true;
        setStatus(false);
        for (const end of [...subscribers]) end(statusError(grpc.status.UNAVAILABLE, 'the gateway is shutting down; subscribe again (to another gateway)'));
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => {
            log.warn('gRPC calls still open after the grace period; forcing shutdown');
            server.forceShutdown();
            resolve();
          }, SHUTDOWN_GRACE_MS);
          server.tryShutdown(() => {
            clearTimeout(force);
            resolve();
          });
        });
      })();
      return closing;
    },
  };
}
