/**
 * A live view served over NATS request-reply: weir.api.<pipeline>.latest|topk|status, JSON in
 * and out, in queue group "weir-engine" (several processes of one pipeline share the load).
 * Errors come back as {"error", "param"}. Used by the default pipeline (engine.ts) and by every
 * declared pipeline (pipeline/runner.ts).
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { LiveView, TopAnswer, TopQuery, ViewResult } from './live-view.js';
import { apiSubject } from './subjects.js';

export class LiveApiError extends Error {
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(message);
  }
}

export interface LiveApiOptions<R extends ViewResult, F extends string> {
  nc: NatsConnection;
  pipeline: string;
  view: LiveView<R, F>;
  windows: ReadonlySet<string>;
  /** Fields top-K may rank by; `defaultBy` when the request names none. */
  fields: readonly F[];
  defaultBy: F;
  status: () => unknown;
  onRequest?: () => void;
  /**
   * Answers a top-K from another index than the view (a score profile's ranking); undefined
   * falls back to the view. Called after the request is validated.
   */
  top?: (q: TopQuery<F>) => TopAnswer<R> | undefined;
}

/** Subscribes the three operations; returns the subscriptions (unsubscribe them to stop). */
export function serveLiveApi<R extends ViewResult, F extends string>(o: LiveApiOptions<R, F>): Subscription[] {
  const subs: Subscription[] = [];
  const serve = (op: 'latest' | 'topk' | 'status', handle: (req: Record<string, unknown>) => unknown) => {
    subs.push(
      o.nc.subscribe(apiSubject(o.pipeline, op), {
        queue: 'weir-engine',
        callback: (err, msg) => {
          if (err || !msg.reply) return;
          o.onRequest?.();
          let out: unknown;
          try {
            const req = msg.data.length ? JSON.parse(new TextDecoder().decode(msg.data)) : {};
            if (typeof req !== 'object' || req === null || Array.isArray(req)) throw new LiveApiError('', 'request must be a JSON object');
            out = handle(req as Record<string, unknown>);
          } catch (e) {
            out = e instanceof LiveApiError ? { error: e.message, param: e.param } : { error: `bad request: ${(e as Error).message}`, param: '' };
          }
          msg.respond(JSON.stringify(out));
        },
      }),
    );
  };
  const str = (req: Record<string, unknown>, name: string, required: boolean): string | undefined => {
    const v = req[name];
    if (v === undefined || v === null || v === '') {
      if (required) throw new LiveApiError(name, `${name} is required`);
      return undefined;
    }
    if (typeof v !== 'string') throw new LiveApiError(name, `${name} must be a string`);
    return v;
  };
  const windowOf = (req: Record<string, unknown>, required: boolean) => {
    const w = str(req, 'window', required);
    if (w !== undefined && !o.windows.has(w)) throw new LiveApiError('window', `window must be one of ${[...o.windows].join(', ')}, got "${w}"`);
    return w;
  };
  serve('latest', (req) => {
    const metric = str(req, 'metric', true)!;
    const key = str(req, 'key', true)!;
    const window = windowOf(req, false);
    return { results: req.final === true ? o.view.latestFinal(metric, key, window) : o.view.latest(metric, key, window) };
  });
  serve('topk', (req) => {
    const metric = str(req, 'metric', true)!;
    const window = windowOf(req, true)!;
    const by = str(req, 'by', false) ?? o.defaultBy;
    if (!(o.fields as readonly string[]).includes(by)) throw new LiveApiError('by', `by must be one of ${o.fields.join(', ')}, got "${by}"`);
    const k = req.k ?? 10;
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > 10_000) throw new LiveApiError('k', `k must be an integer in [1, 10000], got ${JSON.stringify(k)}`);
    const order = str(req, 'order', false) ?? 'desc';
    if (order !== 'asc' && order !== 'desc') throw new LiveApiError('order', `order must be asc or desc, got "${order}"`);
    const scope = str(req, 'scope', false) ?? 'current';
    if (scope !== 'current' && scope !== 'final') throw new LiveApiError('scope', `scope must be current or final, got "${scope}"`);
    const q: TopQuery<F> = { metric, window, by: by as TopQuery<F>['by'], k, order, scope };
    return o.top?.(q) ?? o.view.topK(q);
  });
  serve('status', () => o.status());
  return subs;
}
