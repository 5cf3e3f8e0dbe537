import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { parseConfig } from '../engine/config.js';
import { Auth, SCOPES, type Principal, type Scope } from './auth.js';
import { ApiError } from './errors.js';

// ---- helpers ---------------------------------------------------------------------------------

interface TokenSpec {
  name: string;
  token: string;
  scopes: Scope[];
  ratePerSec?: number;
  burst?: number;
  maxSubscriptions?: number;
}

const authOf = (tokens: TokenSpec[]) => new Auth(parseConfig({ gateway: { tokens } }));
const tok = (n: number) => `token-${String(n).padStart(4, '0')}-0123456789abcdef`;

/** The ApiError `fn` throws (sync or async), or a failure when it throws nothing or something else. */
async function apiErrorOf(fn: () => unknown): Promise<ApiError> {
  let thrown: unknown;
  try {
    await fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected an ApiError').toBeInstanceOf(ApiError);
  return thrown as ApiError;
}

/** All non-empty subsets of the scopes. */
const SCOPE_SETS: Scope[][] = [];
for (let mask = 1; mask < 1 << SCOPES.length; mask++) SCOPE_SETS.push(SCOPES.filter((_, i) => mask & (1 << i)));

// ---- tests -----------------------------------------------------------------------------------

describe('Auth: authentication', () => {
  it('is off without tokens: anyone is an anonymous principal with every scope, unlimited', async () => {
    const auth = authOf([]);
    expect(auth.enabled).toBe(false);
    for (const header of [undefined, null, '', 'Bearer whatever', 'x']) {
      const p = auth.authenticate(header);
      expect([...p.scopes].sort()).toEqual([...SCOPES].sort());
      for (const s of SCOPES) {
        expect(() => auth.require(p, s)).not.toThrow();
        await expect(auth.admit(header, s)).resolves.toBe(p);
      }
    }
    const p = auth.authenticate(undefined);
    for (let i = 0; i < 1_000; i++) await auth.consume(p);
    const releases = Array.from({ length: 100 }, () => auth.holdSubscription(p));
    releases.forEach((r) => r());
  });

  it('401 for a missing or unknown token; "Bearer x" and bare "x" both accepted', async () => {
    const specs: TokenSpec[] = [
      { name: 'reader', token: tok(1), scopes: ['read'] },
      { name: 'writer', token: tok(2), scopes: ['publish'] },
    ];
    const auth = authOf(specs);
    expect(auth.enabled).toBe(true);
    for (const s of specs) {
      for (const header of [s.token, `Bearer ${s.token}`, `bearer ${s.token}`, `Bearer   ${s.token}  `, ` ${s.token}`]) {
        expect(auth.authenticate(header).name, JSON.stringify(header)).toBe(s.name);
      }
    }
    const bad = [undefined, null, '', ' ', 'Bearer', 'Bearer ', tok(3), tok(1).slice(0, -1), tok(1) + 'x', tok(1).toUpperCase(), `Basic ${tok(1)}`, `Bearer ${tok(1)} ${tok(1)}`];
    for (const header of bad) {
      const err = await apiErrorOf(() => auth.authenticate(header));
      expect({ status: err.statusCode, code: err.code }, JSON.stringify(header)).toEqual({ status: 401, code: 'unauthenticated' });
      const viaAdmit = await apiErrorOf(() => auth.admit(header, 'read'));
      expect(viaAdmit.statusCode).toBe(401);
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        fc.pre(!specs.some((t) => s.replace(/^Bearer\s+/i, '').trim() === t.token));
        expect(() => auth.authenticate(s)).toThrow(ApiError);
        try {
          auth.authenticate(s);
        } catch (err) {
          expect((err as ApiError).statusCode).toBe(401);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('Auth: scopes', () => {
  it('each scope set allows exactly its scopes, admin implies all; 403 names the missing scope', async () => {
    const specs: TokenSpec[] = SCOPE_SETS.map((scopes, i) => ({ name: `t${i}`, token: tok(i), scopes }));
    const auth = authOf(specs);
    for (const s of specs) {
      const p = auth.authenticate(`Bearer ${s.token}`);
      expect([...p.scopes].sort()).toEqual([...s.scopes].sort());
      for (const scope of SCOPES) {
        const allowed = s.scopes.includes(scope) || s.scopes.includes('admin');
        if (allowed) {
          expect(() => auth.require(p, scope), `${s.scopes} needs ${scope}`).not.toThrow();
          await expect(auth.admit(s.token, scope)).resolves.toBe(p);
        } else {
          const err = await apiErrorOf(() => auth.require(p, scope));
          expect({ status: err.statusCode, code: err.code }).toEqual({ status: 403, code: 'forbidden' });
          expect(err.message).toContain(`"${scope}"`);
          expect(err.message).toContain(`"${s.name}"`);
          expect((await apiErrorOf(() => auth.admit(s.token, scope))).statusCode).toBe(403);
        }
      }
    }
  });
});

describe('Auth: rate limits', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Calls that pass before the first refusal (at most `cap`), and that refusal. */
  async function drain(auth: Auth, p: Principal, cap: number): Promise<{ passed: number; err: ApiError | null }> {
    for (let i = 0; i < cap; i++) {
      try {
        await auth.consume(p);
      } catch (err) {
        expect(err).toBeInstanceOf(ApiError);
        return { passed: i, err: err as ApiError };
      }
    }
    return { passed: cap, err: null };
  }

  it('with ratePerSec r and burst b exactly b calls pass at once (ceil(r) without a burst), then 429 with retryAfter >= 1; the budget comes back', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom(0.5, 1, 2.5, 10, 100, 1_000), fc.integer({ min: 1, max: 200 })),
        fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 50 })),
        async (r, b) => {
          const auth = authOf([{ name: 'limited', token: tok(1), scopes: ['read'], ratePerSec: r, burst: b }]);
          const p = auth.authenticate(tok(1));
          const budget = Math.max(1, b || Math.ceil(r));
          const first = await drain(auth, p, budget + 5);
          expect(first.passed, `r=${r} b=${b}`).toBe(budget);
          expect(first.err).not.toBeNull();
          expect({ status: first.err!.statusCode, code: first.err!.code }).toEqual({ status: 429, code: 'rate_limited' });
          expect(first.err!.retryAfter).toBeGreaterThanOrEqual(1);
          expect(Number.isInteger(first.err!.retryAfter)).toBe(true);
          // the whole budget is renewed after budget / r seconds, not before
          expect(first.err!.retryAfter).toBeLessThanOrEqual(Math.max(1, Math.ceil(budget / r)));
          // refusals do not spend anything more, admit refuses the same way
          expect((await apiErrorOf(() => auth.admit(tok(1), 'read'))).statusCode).toBe(429);
          vi.advanceTimersByTime(Math.ceil((budget / r) * 1000) + 1);
          const second = await drain(auth, p, budget + 5);
          expect(second.passed, `after the refill, r=${r} b=${b}`).toBe(budget);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('tokens are limited independently; an unlimited token is never refused; a 403 spends nothing', async () => {
    const auth = authOf([
      { name: 'a', token: tok(1), scopes: ['read'], ratePerSec: 1, burst: 3 },
      { name: 'b', token: tok(2), scopes: ['read', 'publish'], ratePerSec: 1, burst: 2 },
      { name: 'free', token: tok(3), scopes: ['admin'] },
    ]);
    // a asks for a scope it lacks many times: refused with 403, budget untouched
    for (let i = 0; i < 10; i++) expect((await apiErrorOf(() => auth.admit(tok(1), 'publish'))).statusCode).toBe(403);
    for (let i = 0; i < 3; i++) await auth.admit(tok(1), 'read');
    expect((await apiErrorOf(() => auth.admit(tok(1), 'read'))).statusCode).toBe(429);
    // b is untouched by a's exhaustion
    await auth.admit(tok(2), 'read');
    await auth.admit(`Bearer ${tok(2)}`, 'publish');
    const err = await apiErrorOf(() => auth.admit(tok(2), 'read'));
    expect(err.statusCode).toBe(429);
    expect(err.message).toContain('"b"');
    for (let i = 0; i < 2_000; i++) await auth.admit(tok(3), 'publish');
  });
});

describe('Auth: subscriptions', () => {
  it('holdSubscription enforces maxSubscriptions per token; release frees one slot, twice frees it once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.record({ who: fc.nat({ max: 2 }), op: fc.constantFrom('hold', 'hold', 'release', 'release-twice'), pick: fc.nat() }), { maxLength: 60, size: 'max' }),
        (max, ops) => {
          const auth = authOf([
            { name: 'x', token: tok(1), scopes: ['subscribe'], maxSubscriptions: max },
            { name: 'y', token: tok(2), scopes: ['subscribe'], maxSubscriptions: max + 1 },
            { name: 'z', token: tok(3), scopes: ['subscribe'] },
          ]);
          const ps = [tok(1), tok(2), tok(3)].map((t) => auth.authenticate(t));
          const limits = [max, max + 1, Infinity];
          const held: (() => void)[][] = [[], [], []];
          for (const { who, op, pick } of ops) {
            if (op === 'hold') {
              if (held[who].length < limits[who]) held[who].push(auth.holdSubscription(ps[who]));
              else {
                let err: unknown;
                try {
                  auth.holdSubscription(ps[who]);
                } catch (e) {
                  err = e;
                }
                expect(err, `hold #${held[who].length + 1} of ${limits[who]}`).toBeInstanceOf(ApiError);
                expect({ status: (err as ApiError).statusCode, code: (err as ApiError).code }).toEqual({ status: 429, code: 'limit_exceeded' });
              }
            } else if (held[who].length) {
              const [release] = held[who].splice(pick % held[who].length, 1);
              release();
              if (op === 'release-twice') release();
            }
          }
          // the count the Auth keeps is the model's: exactly limit - held more holds succeed
          for (let who = 0; who < 2; who++) {
            for (let i = held[who].length; i < limits[who]; i++) auth.holdSubscription(ps[who]);
            expect(() => auth.holdSubscription(ps[who])).toThrow(ApiError);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a release called after the slot was reused does not free the new holder', () => {
    const auth = authOf([{ name: 'x', token: tok(1), scopes: ['subscribe'], maxSubscriptions: 1 }]);
    const p = auth.authenticate(tok(1));
    const r1 = auth.holdSubscription(p);
    r1();
    const r2 = auth.holdSubscription(p);
    r1();
    r1();
    expect(() => auth.holdSubscription(p)).toThrow(ApiError);
    r2();
    auth.holdSubscription(p);
  });
});
