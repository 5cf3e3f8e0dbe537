import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LiveView, type TopAnswer, type TopQuery, type TopScope } from './live-view.js';
import { RESULT_FIELDS, type LiveResult, type ResultField } from './subjects.js';

// ---- generation ------------------------------------------------------------------------------

const WINDOWS = [
  { name: '10s', size: 10 },
  { name: '1m', size: 60 },
];
const METRICS = ['cpu', 'mem'];
/** Keys whose order is not insertion order; "B" < "a" < "aa" < "b" < "é" in code-unit order. */
const KEYS = ['b', 'a', 'é', 'B', 'aa', 'k:1', 'a-b'];
/** Few distinct values so that ties on the ranked field are frequent; -0 ties with 0. */
const VALUE = fc.constantFrom(0, -0, 1, 1, 2, 2, 2.5, -3, 7, 1e300, -1e300);
const ORDERS = ['desc', 'asc'] as const;
const SCOPES: TopScope[] = ['current', 'final'];

interface UpdateOp {
  kind: 'update';
  w: number;
  m: number;
  k: number;
  slot: number;
  final: boolean;
  revision: number;
  values: number[];
  nullStddev: boolean;
}
interface QueryOp {
  kind: 'query';
  w: number;
  m: number;
  by: ResultField;
  order: 'desc' | 'asc';
  scope: TopScope;
  k: number;
}
interface EvictOp {
  kind: 'evict';
  /** Horizon, on and between the window ends. */
  h: number;
}
type Op = UpdateOp | QueryOp | EvictOp | { kind: 'check' };

/** Per run, how many keys and window slots are in play: small runs collide a lot, large ones spread. */
const ops = (withEvict: boolean) =>
  fc
    .record({ nKeys: fc.integer({ min: 1, max: KEYS.length }), nSlots: fc.integer({ min: 1, max: 5 }), nCells: fc.integer({ min: 1, max: 4 }) })
    .chain(({ nKeys, nSlots, nCells }) => {
      // nCells < 4 keeps some runs on fewer (window, metric) pairs
      const wm = fc.nat({ max: nCells - 1 }).map((c) => ({ w: c % WINDOWS.length, m: Math.floor(c / WINDOWS.length) % METRICS.length }));
      const updateOp: fc.Arbitrary<Op> = fc
        .record({
          wm,
          k: fc.nat({ max: nKeys - 1 }),
          // starts on a grid of few slots: many updates share a window, some arrive for older windows
          slot: fc.nat({ max: nSlots - 1 }),
          final: fc.boolean(),
          revision: fc.nat({ max: 2 }),
          values: fc.array(VALUE, { minLength: RESULT_FIELDS.length, maxLength: RESULT_FIELDS.length }),
          nullStddev: fc.boolean(),
        })
        .map(({ wm, ...u }) => ({ kind: 'update' as const, ...wm, ...u }));
      const queryOp: fc.Arbitrary<Op> = fc
        .record({
          wm,
          by: fc.constantFrom(...RESULT_FIELDS),
          order: fc.constantFrom(...ORDERS),
          scope: fc.constantFrom(...SCOPES),
          k: fc.integer({ min: 1, max: KEYS.length + 2 }),
        })
        .map(({ wm, ...q }) => ({ kind: 'query' as const, ...wm, ...q }));
      const evictOp: fc.Arbitrary<Op> = fc.record({ kind: fc.constant('evict' as const), h: fc.integer({ min: 0, max: 5 * 60 + 10 }) });
      const kinds = [
        { weight: 20, arbitrary: updateOp },
        { weight: 8, arbitrary: queryOp },
        { weight: 1, arbitrary: fc.constant<Op>({ kind: 'check' }) },
        ...(withEvict ? [{ weight: 4, arbitrary: evictOp }] : []),
      ];
      return fc.array(fc.oneof(...kinds), { maxLength: 100, size: 'max' });
    });

let seq = 0;
function resultOf(op: UpdateOp): LiveResult {
  const { name, size } = WINDOWS[op.w];
  const start = op.slot * size;
  const r: Record<string, unknown> = {
    pipeline: 'p',
    metric: METRICS[op.m],
    key: KEYS[op.k],
    window: name,
    start,
    end: start + size,
    final: op.final,
    revision: op.final ? op.revision : 0,
    // unique per update: tells updates apart in the answers
    emittedAt: ++seq,
  };
  RESULT_FIELDS.forEach((f, i) => (r[f] = op.values[i]));
  if (op.nullStddev) r.stddev = null;
  return r as unknown as LiveResult;
}

// ---- brute-force oracle: every update is kept ------------------------------------------------

const cell = (window: string, metric: string, key: string) => `${window}\u0000${metric}\u0000${key}`;

class Oracle {
  /** (window, metric, key) -> all its updates, in arrival order. */
  readonly cells = new Map<string, LiveResult[]>();

  update(r: LiveResult) {
    const c = cell(r.window, r.metric, r.key);
    if (!this.cells.has(c)) this.cells.set(c, []);
    this.cells.get(c)!.push(r);
  }

  /** Highest start wins; on that start the last final if there is one, otherwise the last partial. */
  static latestOf(us: LiveResult[]): LiveResult {
    const max = Math.max(...us.map((u) => u.start));
    const top = us.filter((u) => u.start === max);
    const finals = top.filter((u) => u.final);
    return finals.length ? finals[finals.length - 1] : top[top.length - 1];
  }

  /** The newest-start final; on equal start the later one. */
  static lastFinalOf(us: LiveResult[]): LiveResult | null {
    const finals = us.filter((u) => u.final);
    if (!finals.length) return null;
    const max = Math.max(...finals.map((u) => u.start));
    const top = finals.filter((u) => u.start === max);
    return top[top.length - 1];
  }

  updatesOf(window: string, metric: string): LiveResult[][] {
    const out: LiveResult[][] = [];
    for (const us of this.cells.values()) if (us[0].window === window && us[0].metric === metric) out.push(us);
    return out;
  }

  /** Ranked candidates (all of them, before cutting to k). */
  top(window: string, metric: string, by: ResultField, order: 'desc' | 'asc', scope: TopScope): { start: number | null; ranked: LiveResult[] } {
    const cells = this.updatesOf(window, metric);
    const all = cells.flat().filter((u) => scope === 'current' || u.final);
    if (!all.length) return { start: null, ranked: [] };
    const start = Math.max(...all.map((u) => u.start));
    const picks = cells.map((us) => (scope === 'current' ? Oracle.latestOf(us) : Oracle.lastFinalOf(us)));
    const ranked = picks.filter((r): r is LiveResult => r !== null && r.start === start && r[by] !== null && r[by] !== undefined);
    ranked.sort((a, b) => {
      const va = a[by] as number;
      const vb = b[by] as number;
      if (va !== vb) return order === 'desc' ? (vb > va ? 1 : -1) : va > vb ? 1 : -1;
      return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
    });
    return { start, ranked };
  }

  expectedTop(q: TopQuery, top = this.top(q.window, q.metric, q.by, q.order, q.scope)): TopAnswer {
    return { window: q.window, start: top.start, final: q.scope === 'final', candidates: top.ranked.length, entries: top.ranked.slice(0, q.k) };
  }

  evictBefore(h: number): number {
    let n = 0;
    for (const [c, us] of this.cells) {
      if (Oracle.latestOf(us).end < h) {
        this.cells.delete(c);
        n++;
      }
    }
    return n;
  }
}

// ---- comparison ------------------------------------------------------------------------------

const brief = (a: TopAnswer, by: ResultField) => ({
  window: a.window,
  start: a.start,
  final: a.final,
  candidates: a.candidates,
  entries: a.entries.map((e) => `${e.key}=${e[by]}@${e.start}${e.final ? 'F' : 'P'}#${e.emittedAt}`),
});
const same = (a: TopAnswer, b: TopAnswer) =>
  a.window === b.window &&
  a.start === b.start &&
  a.final === b.final &&
  a.candidates === b.candidates &&
  a.entries.length === b.entries.length &&
  a.entries.every((e, i) => e.emittedAt === b.entries[i].emittedAt);

function expectTop(view: LiveView, oracle: Oracle, q: TopQuery, what: string, top?: ReturnType<Oracle['top']>) {
  const actual = view.topK(q);
  const expected = oracle.expectedTop(q, top);
  if (!same(actual, expected)) expect(brief(actual, q.by), `${what}: topK ${JSON.stringify(q)}`).toEqual(brief(expected, q.by));
}

function expectLatest(view: LiveView, oracle: Oracle, what: string) {
  for (const metric of METRICS)
    for (const key of KEYS) {
      const per = (window: string) => oracle.cells.get(cell(window, metric, key));
      const ids = (rs: LiveResult[]) => rs.map((r) => `${r.window}#${r.emittedAt}`).sort();
      const all = WINDOWS.map((w) => per(w.name)).filter((us): us is LiveResult[] => us !== undefined);
      expect(ids(view.latest(metric, key)), `${what}: latest(${metric}, ${key})`).toEqual(ids(all.map(Oracle.latestOf)));
      expect(ids(view.latestFinal(metric, key)), `${what}: latestFinal(${metric}, ${key})`).toEqual(
        ids(all.map(Oracle.lastFinalOf).filter((r): r is LiveResult => r !== null)),
      );
      for (const w of WINDOWS) {
        const us = per(w.name);
        expect(ids(view.latest(metric, key, w.name)), `${what}: latest(${metric}, ${key}, ${w.name})`).toEqual(ids(us ? [Oracle.latestOf(us)] : []));
        const lf = us ? Oracle.lastFinalOf(us) : null;
        expect(ids(view.latestFinal(metric, key, w.name)), `${what}: latestFinal(${metric}, ${key}, ${w.name})`).toEqual(ids(lf ? [lf] : []));
      }
    }
  expect(view.size, `${what}: size`).toBe(oracle.cells.size);
  const metrics = new Map<string, number>();
  for (const us of oracle.cells.values()) {
    const id = `${us[0].window}/${us[0].metric}`;
    metrics.set(id, (metrics.get(id) ?? 0) + 1);
  }
  expect(
    view
      .metrics()
      .map((m) => `${m.window}/${m.metric}=${m.keys}`)
      .sort(),
    `${what}: metrics()`,
  ).toEqual([...metrics].map(([id, n]) => `${id}=${n}`).sort());
}

/**
 * Every query shape: both scopes and orders, every ranked field, k from 1 to n + 2 going down
 * (a smaller k after a larger one is served from the cache) then up, each asked twice.
 */
function expectAllTops(view: LiveView, oracle: Oracle, what: string, scopes: TopScope[] = SCOPES) {
  const n = KEYS.length;
  for (const w of WINDOWS)
    for (const metric of METRICS)
      for (const scope of scopes)
        for (const order of ORDERS)
          for (const by of RESULT_FIELDS) {
            const q = (k: number): TopQuery => ({ metric, window: w.name, by, k, order, scope });
            const top = oracle.top(w.name, metric, by, order, scope);
            for (let k = n + 2; k >= 1; k--) expectTop(view, oracle, q(k), what, top);
            for (let k = 1; k <= n + 2; k++) {
              expectTop(view, oracle, q(k), what, top);
              expectTop(view, oracle, q(k), `${what} (repeated)`, top);
            }
          }
}

function run(list: Op[], opts: { finalScopeAfterEvict: boolean }) {
  const view = new LiveView();
  const oracle = new Oracle();
  let evicted = false;
  list.forEach((op, i) => {
    const what = `op ${i}`;
    const scopes: TopScope[] = evicted && !opts.finalScopeAfterEvict ? ['current'] : SCOPES;
    switch (op.kind) {
      case 'update': {
        const r = resultOf(op);
        view.update(r);
        oracle.update(r);
        break;
      }
      case 'query':
        if (scopes.includes(op.scope)) expectTop(view, oracle, { metric: METRICS[op.m], window: WINDOWS[op.w].name, by: op.by, k: op.k, order: op.order, scope: op.scope }, what);
        break;
      case 'evict': {
        const n = view.evictBefore(op.h);
        expect(n, `${what}: evictBefore(${op.h}) count`).toBe(oracle.evictBefore(op.h));
        expect(view.size, `${what}: size after evictBefore(${op.h})`).toBe(oracle.cells.size);
        evicted ||= n > 0;
        break;
      }
      case 'check':
        expectLatest(view, oracle, what);
        expectAllTops(view, oracle, what, scopes);
        break;
    }
  });
  expectLatest(view, oracle, 'end');
  expectAllTops(view, oracle, 'end', evicted && !opts.finalScopeAfterEvict ? ['current'] : SCOPES);
  return { view, oracle };
}

// ---- tests -----------------------------------------------------------------------------------

describe('LiveView vs brute force', () => {
  it('latest, latestFinal, metrics and topK (every field, scope, order, k; cached or not) follow the rules on random update streams', () => {
    fc.assert(
      fc.property(ops(false), (list) => {
        run(list, { finalScopeAfterEvict: true });
      }),
      { numRuns: 50, plugins: [fc.interruptAfterTimeLimit(6_000)] }, // the limit bounds shrinking time on failure
    );
  });

  it('evictBefore removes exactly the keys whose latest window ended before the horizon; latest and current top-K then match the remaining data', () => {
    fc.assert(
      fc.property(ops(true), (list) => {
        run(list, { finalScopeAfterEvict: false });
      }),
      { numRuns: 50, plugins: [fc.interruptAfterTimeLimit(6_000)] }, // the limit bounds shrinking time on failure
    );
  });

  it('after eviction, final-scope top-K ranks the newest fired window of the remaining keys', () => {
    fc.assert(
      fc.property(ops(true), (list) => {
        run(list, { finalScopeAfterEvict: true });
      }),
      { numRuns: 50, plugins: [fc.interruptAfterTimeLimit(6_000)] }, // the limit bounds shrinking time on failure
    );
  });

  it('the generator exercises ties, nulls, stale updates, partials after finals and evictions', () => {
    const samples = fc.sample(ops(true), { numRuns: 100, seed: 7 });
    const share = (pred: (l: Op[]) => boolean) => samples.filter(pred).length / samples.length;
    const updates = (l: Op[]) => l.filter((o): o is UpdateOp => o.kind === 'update');
    // a partial for a (window, key) cell after a final for the same start
    expect(
      share((l) => {
        const seen = new Set<string>();
        return updates(l).some((u) => {
          const c = `${u.w}/${u.m}/${u.k}/${u.slot}`;
          if (!u.final && seen.has(c)) return true;
          if (u.final) seen.add(c);
          return false;
        });
      }),
    ).toBeGreaterThan(0.5);
    // an update for an older window than one already seen for the cell
    expect(
      share((l) => {
        const max = new Map<string, number>();
        return updates(l).some((u) => {
          const c = `${u.w}/${u.m}/${u.k}`;
          const stale = (max.get(c) ?? -1) > u.slot;
          max.set(c, Math.max(max.get(c) ?? -1, u.slot));
          return stale;
        });
      }),
    ).toBeGreaterThan(0.5);
    expect(share((l) => l.some((o) => o.kind === 'evict') && updates(l).length > 20)).toBeGreaterThan(0.5);
    // ties on the ranked value among the candidates at the end (replayed through the oracle)
    const tied = (l: Op[]) => {
      const o = new Oracle();
      for (const u of updates(l)) o.update(resultOf(u));
      return WINDOWS.some((w) =>
        METRICS.some((m) =>
          RESULT_FIELDS.some((by) => {
            const vs = o.top(w.name, m, by, 'desc', 'current').ranked.map((r) => r[by]);
            return new Set(vs).size < vs.length;
          }),
        ),
      );
    };
    expect(share(tied)).toBeGreaterThan(0.5);
  });
});

describe('LiveView examples', () => {
  const mk = (key: string, start: number, final: boolean, count: number, extra: Partial<LiveResult> = {}): LiveResult => ({
    pipeline: 'p',
    metric: 'm',
    key,
    window: 'w',
    start,
    end: start + 10,
    final,
    revision: 0,
    count,
    rate: count / 10,
    sum: count,
    min: 0,
    max: count,
    mean: 1,
    stddev: null,
    p50: 0,
    p90: 0,
    p95: 0,
    p99: 0,
    p999: 0,
    emittedAt: ++seq,
    ...extra,
  });
  const q = (over: Partial<TopQuery> = {}): TopQuery => ({ metric: 'm', window: 'w', by: 'count', k: 10, order: 'desc', scope: 'current', ...over });

  it('a partial never replaces a final of the same window; a correction does; an older window never replaces a newer one', () => {
    const v = new LiveView();
    const f0 = mk('a', 10, true, 5);
    v.update(mk('a', 10, false, 3));
    v.update(f0);
    v.update(mk('a', 10, false, 99)); // stale partial after the firing
    expect(v.latest('m', 'a')).toEqual([f0]);
    const f1 = mk('a', 10, true, 6, { revision: 1 });
    v.update(f1);
    expect(v.latest('m', 'a')).toEqual([f1]);
    v.update(mk('a', 0, true, 1, { revision: 2 })); // correction of an older window
    expect(v.latest('m', 'a')).toEqual([f1]);
    expect(v.latestFinal('m', 'a')).toEqual([f1]);
    const p = mk('a', 20, false, 1);
    v.update(p);
    expect(v.latest('m', 'a')).toEqual([p]);
    expect(v.latestFinal('m', 'a')).toEqual([f1]);
    expect(v.size).toBe(1);
  });

  it('ties on the ranked value come out by key ascending in both orders; null values are not candidates', () => {
    const v = new LiveView();
    for (const k of ['d', 'b', 'c', 'a']) v.update(mk(k, 0, false, 1));
    v.update(mk('e', 0, false, 2));
    v.update(mk('z', 0, false, 1, { stddev: 1 }));
    expect(v.topK(q({ k: 3 })).entries.map((e) => e.key)).toEqual(['e', 'a', 'b']);
    expect(v.topK(q({ k: 3, order: 'asc' })).entries.map((e) => e.key)).toEqual(['a', 'b', 'c']);
    const sd = v.topK(q({ by: 'stddev' }));
    expect(sd.candidates).toBe(1);
    expect(sd.entries.map((e) => e.key)).toEqual(['z']);
    expect(v.topK(q({ scope: 'final' }))).toEqual({ window: 'w', start: null, final: true, candidates: 0, entries: [] });
    expect(v.topK(q({ metric: 'nope' }))).toEqual({ window: 'w', start: null, final: false, candidates: 0, entries: [] });
  });

  it('a cached top-K is not served after the metric was evicted entirely and came back', () => {
    const v = new LiveView();
    for (let i = 0; i < 3; i++) v.update(mk(`old${i}`, 0, false, i));
    expect(v.topK(q()).entries.map((e) => e.key)).toEqual(['old2', 'old1', 'old0']);
    expect(v.evictBefore(1_000)).toBe(3);
    expect(v.size).toBe(0);
    expect(v.topK(q())).toEqual({ window: 'w', start: null, final: false, candidates: 0, entries: [] });
    // as many updates as before the eviction: the metric's version counter is back where it was
    for (let i = 0; i < 3; i++) v.update(mk(`new${i}`, 2_000, false, i));
    const a = v.topK(q());
    expect(a.start).toBe(2_000);
    expect(a.entries.map((e) => e.key)).toEqual(['new2', 'new1', 'new0']);
  });

  it('after evicting the keys of the newest fired window, final scope ranks the newest fired window still held', () => {
    const v = new LiveView();
    v.update(mk('a', 100, true, 1)); // newest fired window, key a (ends 110)
    v.update(mk('b', 50, true, 2)); // b fired at 50 ...
    v.update(mk('b', 200, false, 3)); // ... and is live at 200
    expect(v.topK(q({ scope: 'final' })).start).toBe(100);
    expect(v.evictBefore(150)).toBe(1); // a is idle: gone
    expect(v.latestFinal('m', 'b').map((r) => r.start)).toEqual([50]);
    const a = v.topK(q({ scope: 'final' }));
    expect({ start: a.start, candidates: a.candidates, keys: a.entries.map((e) => e.key) }).toEqual({ start: 50, candidates: 1, keys: ['b'] });
    // with no fired window left at all, there is no final window to rank
    const w = new LiveView();
    w.update(mk('a', 10, false, 1));
    w.update(mk('b', 0, true, 1));
    expect(w.evictBefore(11)).toBe(1);
    expect(w.topK(q({ scope: 'final' }))).toEqual({ window: 'w', start: null, final: true, candidates: 0, entries: [] });
  });
});

describe('LiveView across window starts (rolling windows)', () => {
  type Row = { metric: string; key: string; window: string; start: number; end: number; final: boolean; rating: number };
  const row = (key: string, start: number, rating: number): Row => ({ metric: 'tutors', key, window: '7d', start, end: start + 7, final: false, rating });
  it('ranks every key by its newest row whatever its start; the default ranks only the newest window', () => {
    const rows = [row('a', 0, 4.9), row('b', 1, 3.0), row('c', 2, 4.1), row('a', 3, 4.5)];
    const across = new LiveView<Row, 'rating'>(true);
    const newest = new LiveView<Row, 'rating'>();
    for (const r of rows) {
      across.update(r);
      newest.update(r);
    }
    const q = { metric: 'tutors', window: '7d', by: 'rating' as const, k: 10, order: 'desc' as const, scope: 'current' as const };
    expect(across.topK(q).entries.map((e) => [e.key, e.rating])).toEqual([
      ['a', 4.5],
      ['c', 4.1],
      ['b', 3.0],
    ]);
    expect(newest.topK(q).entries.map((e) => e.key)).toEqual(['a']);
  });
});
