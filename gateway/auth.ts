/**
 * API tokens with scopes, shared by HTTP and gRPC. Auth is off when no token is configured (the
 * local dev run) and on as soon as one is. `admin` implies every other scope. Each token may
 * carry a rate limit enforced with rate-limiter-flexible: a budget of `burst` requests (default
 * one second's worth) renewed every burst/ratePerSec seconds, so the long-run rate is
 * `ratePerSec`. Refusals say when to retry.
 */
import { timingSafeEqual } from 'node:crypto';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { WeirConfig } from '../engine/config.js';
import { ApiError } from './errors.js';

export type Scope = 'read' | 'subscribe' | 'publish' | 'admin';
export const SCOPES: readonly Scope[] = ['read', 'subscribe', 'publish', 'admin'];

export interface Principal {
  name: string;
  scopes: ReadonlySet<Scope>;
  maxSubscriptions?: number;
}

const ANONYMOUS: Principal = { name: 'anonymous', scopes: new Set(SCOPES) };

export class Auth {
  private readonly tokens: { token: Buffer; principal: Principal; limiter: RateLimiterMemory | null }[];
  private readonly subscriptions = new Map<string, number>();

  constructor(config: WeirConfig) {
    this.tokens = config.gateway.tokens.map((t) => ({
      token: Buffer.from(t.token),
      principal: { name: t.name, scopes: new Set(t.scopes as Scope[]), maxSubscriptions: t.maxSubscriptions },
      limiter: t.ratePerSec > 0 ? new RateLimiterMemory({ keyPrefix: `t:${t.name}`, points: Math.max(1, t.burst || Math.ceil(t.ratePerSec)), duration: Math.max(1, t.burst || Math.ceil(t.ratePerSec)) / t.ratePerSec }) : null,
    }));
  }

  get enabled(): boolean {
    return this.tokens.length > 0;
  }

  /** Reads a bearer token ("Bearer x" or "x"); with auth off everyone is an anonymous admin. */
  authenticate(authorization: string | undefined | null): Principal {
    if (!this.enabled) return ANONYMOUS;
    if (!authorization) throw new ApiError(401, 'unauthenticated', 'authorization', 'missing API token: send "Authorization: Bearer <token>" (HTTP), "authorization" metadata (gRPC) or access_token (SSE/WebSocket)');
    const raw = Buffer.from(authorization.replace(/^Bearer\s+/i, '').trim());
    for (const t of this.tokens) if (t.token.length === raw.length && timingSafeEqual(t.token, raw)) return t.principal;
    throw new ApiError(401, 'unauthenticated', 'authorization', 'unknown API token');
  }

  /** Throws 403 unless the principal holds `scope` (or admin). */
  require(p: Principal, scope: Scope): void {
    if (p.scopes.has(scope) || p.scopes.has('admin')) return;
    throw new ApiError(403, 'forbidden', 'authorization', `token "${p.name}" lacks the "${scope}" scope (it has: ${[...p.scopes].join(', ')})`);
  }

  /** Spends one request from the principal's budget; throws 429 with a retry time when it is empty. */
  async consume(p: Principal): Promise<void> {
    const t = this.tokens.find((x) => x.principal === p);
    if (!t?.limiter) return;
    try {
      await t.limiter.consume(p.name);
    } catch (res) {
      if (res instanceof RateLimiterRes) {
        const secs = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
        throw new ApiError(429, 'rate_limited', '', `token "${p.name}" is over its rate limit; retry in ${secs} s`, secs);
      }
      throw res;
    }
  }

  /** Authenticates, checks the scope and spends one request: the gate of every API call. */
  async admit(authorization: string | undefined | null, scope: Scope): Promise<Principal> {
    const p = this.authenticate(authorization);
    this.require(p, scope);
    await this.consume(p);
    return p;
  }

  /** Counts a subscription against the token's own limit; returns its release. */
  holdSubscription(p: Principal): () => void {
    const n = this.subscriptions.get(p.name) ?? 0;
    if (p.maxSubscriptions !== undefined && n >= p.maxSubscriptions)
      throw new ApiError(429, 'limit_exceeded', '', `token "${p.name}" already holds ${n} subscriptions, its limit is ${p.maxSubscriptions}`);
    this.subscriptions.set(p.name, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.subscriptions.set(p.name, (this.subscriptions.get(p.name) ?? 1) - 1);
    };
  }
}
