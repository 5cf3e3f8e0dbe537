import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { concat, from, lastValueFrom, throwError, toArray } from 'rxjs';
import { moments, type MomentsResult } from '../aggregates/stats.js';
import { parseDuration, tumblingStart, type TumblingSpec } from './assign.js';
import { TumblingWindows, tumblingWindows, type BatchStats, type EventBatch, type WindowEmission } from './tumbling.js';

// ---- scenario generation ---------------------------------------------------------------------

interface Ev {
  series: string;
  ts: number;
  value: number;
}
/** A step is a batch of events, or an idle advance of the watermark (an empty batch, as the engine sends). */
type Step = { kind: 'batch'; events: Ev[] } | { kind: 'idle'; jump: number; viaAdvance: boolean };

interface Scenario {
  specs: TumblingSpec[];
  allowedLatenessMs: number;
  maxOutOfOrdernessMs: number;
  steps: Step[];
  eventCount: number;
}

const SERIES = ['cpu\u0001a', 'cpu\u0001b', 'mem\u0001a', 'disk\u0001z'];

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    sizes: fc.uniqueArray(fc.integer({ min: 5, max: 200 }), { minLength: 1, maxLength: 3 }),
    allowedLatenessMs: fc.oneof(
      { weight: 1, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 30 }) },
      { weight: 3, arbitrary: fc.integer({ min: 50, max: 400 }) },
    ),
    maxOutOfOrdernessMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 100 })),
    seriesCount: fc.integer({ min: 1, max: SERIES.length }),
    t0: fc.integer({ min: -2_000, max: 2_000 }),
    disorder: fc.oneof(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 100, max: 400 })),
    raw: fc.array(
      fc.record({
        step: fc.integer({ min: 0, max: 10 }),
        jitter: fc.double({ min: -1, max: 1, noNaN: true }),
        s: fc.nat({ max: SERIES.length - 1 }),
        value: fc.integer({ min: -1_000, max: 1_000 }),
      }),
      { maxLength: 300, size: 'max' },
    ),
    batchSizes: fc.array(fc.integer({ min: 0, max: 25 }), { minLength: 1, maxLength: 60, size: 'max' }),
    idles: fc.array(fc.option(fc.record({ jump: fc.integer({ min: 1, max: 300 }), viaAdvance: fc.boolean() }), { freq: 4 }), {
      minLength: 60,
      maxLength: 60,
    }),
  })
  .map(({ sizes, allowedLatenessMs, maxOutOfOrdernessMs, seriesCount, t0, disorder, raw, batchSizes, idles }) => {
    // event times advance with a base clock; each is displaced by up to `disorder` ms (bounded disorder)
    let base = t0;
    const events: Ev[] = raw.map((r) => {
      base += r.step;
      return { series: SERIES[r.s % seriesCount], ts: base + Math.round(r.jitter * disorder), value: r.value };
    });
    const steps: Step[] = [];
    let i = 0;
    for (let b = 0; b < batchSizes.length && i < events.length; b++) {
      const idle = idles[b];
      if (idle) steps.push({ kind: 'idle', ...idle });
      steps.push({ kind: 'batch', events: events.slice(i, i + batchSizes[b]) });
      i += batchSizes[b];
    }
    if (i < events.length) steps.push({ kind: 'batch', events: events.slice(i) });
    return {
      specs: sizes.map((sizeMs) => ({ name: `${sizeMs}ms`, sizeMs })),
      allowedLatenessMs,
      maxOutOfOrdernessMs,
      steps,
      eventCount: events.length,
    };
  });

const FINAL_WM = 1e15;

// ---- driving the operator like the engine does -------------------------------------------------

interface StepRecord {
  batch: EventBatch;
  stats: BatchStats;
  emissions: WindowEmission<MomentsResult>[];
  size: number;
}

function toBatch(events: Ev[], wmBefore: number, maxOutOfOrdernessMs: number): EventBatch {
  const maxTs = events.reduce((m, e) => Math.max(m, e.ts), -Infinity);
  return {
    series: events.map((e) => e.series),
    ts: Float64Array.from(events.map((e) => e.ts)),
    values: Float64Array.from(events.map((e) => e.value)),
    wmBefore,
    wmAfter: Math.max(wmBefore, maxTs - maxOutOfOrdernessMs),
  };
}

function idleBatch(wm: number): EventBatch {
  return { series: [], ts: [], values: [], wmBefore: wm, wmAfter: wm };
}

/** The batches (with their watermarks) a scenario produces, ending with the final advance. */
function batchesOf(sc: Scenario): { batch: EventBatch; viaAdvance: boolean }[] {
  let wm = -Infinity;
  const out: { batch: EventBatch; viaAdvance: boolean }[] = [];
  for (const step of sc.steps) {
    if (step.kind === 'idle') {
      wm = (wm === -Infinity ? -3_000 : wm) + step.jump;
      out.push({ batch: idleBatch(wm), viaAdvance: step.viaAdvance });
    } else {
      const batch = toBatch(step.events, wm, sc.maxOutOfOrdernessMs);
      wm = batch.wmAfter;
      out.push({ batch, viaAdvance: false });
    }
  }
  out.push({ batch: idleBatch(FINAL_WM), viaAdvance: true });
  return out;
}

function runClass(sc: Scenario): StepRecord[] {
  const windows = new TumblingWindows({ specs: sc.specs, allowedLatenessMs: sc.allowedLatenessMs }, moments);
  return batchesOf(sc).map(({ batch, viaAdvance }) => {
    const emissions: WindowEmission<MomentsResult>[] = [];
    let stats: BatchStats;
    if (viaAdvance) {
      windows.advance(batch.wmAfter, (e) => emissions.push(e));
      stats = { assigned: 0, late: {} };
    } else stats = windows.process(batch, (e) => emissions.push(e));
    return { batch, stats, emissions, size: windows.size() };
  });
}

// ---- brute-force oracle ------------------------------------------------------------------------

interface OracleWindow {
  spec: number;
  start: number;
  end: number;
  series: string;
  values: number[];
  /** Last revision emitted, -1 before the first firing. */
  rev: number;
  touched: boolean;
}

interface OracleStep {
  assigned: number;
  late: number[];
  /** What must be emitted at the end of this step: key, revision and the values aggregated so far. */
  emissions: { key: string; revision: number; values: number[] }[];
  live: number;
}

const keyOf = (spec: string, start: number, series: string) => `${spec}|${start}|${series}`;

/** Processes every event in order with the lateness rule and the firing/correction/eviction rules. */
function oracle(sc: Scenario, batches: EventBatch[]) {
  const windows = new Map<string, OracleWindow>();
  const steps: OracleStep[] = [];
  for (const batch of batches) {
    const late = sc.specs.map(() => 0);
    let assigned = 0;
    for (let i = 0; i < batch.series.length; i++) {
      const ts = batch.ts[i];
      sc.specs.forEach((spec, s) => {
        const start = Math.floor(ts / spec.sizeMs) * spec.sizeMs;
        const end = start + spec.sizeMs;
        if (end + sc.allowedLatenessMs <= batch.wmBefore) {
          late[s]++;
          return;
        }
        const key = keyOf(spec.name, start, batch.series[i]);
        let w = windows.get(key);
        if (!w) windows.set(key, (w = { spec: s, start, end, series: batch.series[i], values: [], rev: -1, touched: false }));
        w.values.push(batch.values[i]);
        w.touched = true;
        assigned++;
      });
    }
    const emissions: OracleStep['emissions'] = [];
    let live = 0;
    for (const [key, w] of windows) {
      if (w.rev < 0 ? w.end <= batch.wmAfter : w.touched) emissions.push({ key, revision: ++w.rev, values: [...w.values] });
      w.touched = false;
      if (w.end + sc.allowedLatenessMs > batch.wmAfter) live++;
    }
    steps.push({ assigned, late, emissions, live });
  }
  return { windows, steps };
}

function feed(values: readonly number[]) {
  const acc = moments.create();
  for (const v of values) moments.add(acc, v);
  return acc;
}

/** Exact brute-force figures of integer values; variance exact via BigInt. */
function bruteForce(values: readonly number[]) {
  const n = values.length;
  const sum = values.reduce((a, b) => a + b, 0);
  let s1 = 0n;
  let s2 = 0n;
  for (const v of values) {
    s1 += BigInt(v);
    s2 += BigInt(v) * BigInt(v);
  }
  const variance = n < 2 ? null : Number(BigInt(n) * s2 - s1 * s1) / (n * (n - 1));
  return { count: n, sum, min: Math.min(...values), max: Math.max(...values), mean: sum / n, variance };
}

function expectMatchesBruteForce(r: MomentsResult, values: readonly number[], what: string) {
  const b = bruteForce(values);
  expect({ count: r.count, sum: r.sum, min: r.min, max: r.max, mean: r.mean }, what).toEqual({
    count: b.count,
    sum: b.sum,
    min: b.min,
    max: b.max,
    mean: b.mean,
  });
  if (b.variance === null) expect(r.stddev, what).toBeNull();
  else expect(Math.abs(r.variance! - b.variance), what).toBeLessThanOrEqual(1e-9 * b.variance + 1e-6);
}

const sortByKeyRev = <T extends { key: string; revision: number }>(xs: T[]) =>
  [...xs].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.revision - b.revision));

// ---- tests -----------------------------------------------------------------------------------

describe('TumblingWindows vs brute force', () => {
  it('emissions, late counts, revisions and eviction match the oracle on random disordered streams', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const records = runClass(sc);
        const { windows: owins, steps: osteps } = oracle(
          sc,
          records.map((r) => r.batch),
        );
        const sizeOf = new Map(sc.specs.map((s) => [s.name, s.sizeMs]));
        const totalLate = sc.specs.map(() => 0);
        let totalAssigned = 0;
        const byKey = new Map<string, { e: WindowEmission<MomentsResult>; wm: number }[]>();

        records.forEach((rec, i) => {
          const o = osteps[i];
          // per-step counters
          expect(rec.stats.assigned, `assigned at step ${i}`).toBe(o.assigned);
          for (const name of Object.keys(rec.stats.late)) expect(sizeOf.has(name), `late key ${name}`).toBe(true);
          sc.specs.forEach((spec, s) => expect(rec.stats.late[spec.name] ?? 0, `late ${spec.name} at step ${i}`).toBe(o.late[s]));
          totalAssigned += rec.stats.assigned;
          sc.specs.forEach((spec, s) => (totalLate[s] += rec.stats.late[spec.name] ?? 0));
          // exactly what fired or was corrected at this step, with the aggregate of everything accepted so far
          const actual = sortByKeyRev(rec.emissions.map((e) => ({ key: keyOf(e.window, e.start, e.series), revision: e.revision, result: e.result })));
          const expected = sortByKeyRev(o.emissions.map((x) => ({ key: x.key, revision: x.revision, result: moments.result(feed(x.values)) })));
          expect(actual, `emissions at step ${i} (wmBefore ${rec.batch.wmBefore}, wmAfter ${rec.batch.wmAfter})`).toEqual(expected);
          for (const e of rec.emissions) {
            expect(e.end - e.start).toBe(sizeOf.get(e.window));
            expect(e.start).toBe(Math.floor(e.start / sizeOf.get(e.window)!) * sizeOf.get(e.window)!);
            const k = keyOf(e.window, e.start, e.series);
            if (!byKey.has(k)) byKey.set(k, []);
            byKey.get(k)!.push({ e, wm: rec.batch.wmAfter });
          }
          // bounded memory: only windows not yet past end + allowed lateness are held
          expect(rec.size, `size() at step ${i}`).toBe(o.live);
        });

        // (a) the last emission of every window is the brute-force aggregate of its accepted events
        for (const [k, list] of byKey) {
          const w = owins.get(k)!;
          expect(w, `emitted window ${k} unknown to the oracle`).toBeDefined();
          expectMatchesBruteForce(list[list.length - 1].e.result, w.values, k);
        }
        // (b) exactly the windows with at least one accepted event were emitted
        expect([...byKey.keys()].sort()).toEqual([...owins.keys()].sort());
        // (c) late counts per spec; every (event, spec) pair is either assigned or late
        const oracleLate = sc.specs.map((_, s) => osteps.reduce((a, st) => a + st.late[s], 0));
        expect(totalLate).toEqual(oracleLate);
        expect(totalAssigned + totalLate.reduce((a, b) => a + b, 0)).toBe(sc.eventCount * sc.specs.length);
        // (d) revision 0 once per window, only once the watermark reached end; then 1, 2, ...
        for (const [k, list] of byKey) {
          list.forEach(({ e }, j) => expect(e.revision, `revision ${j} of ${k}`).toBe(j));
          expect(list[0].wm).toBeGreaterThanOrEqual(list[0].e.end);
        }
        // (e) after the final advance everything is evicted
        expect(records[records.length - 1].size).toBe(0);
      }),
      { numRuns: 150 },
    );
  });

  it('the scenario generator exercises late drops, corrections, idle advances and negative windows', () => {
    const samples = fc.sample(scenario, { numRuns: 200, seed: 42 }).map((sc) => ({ sc, records: runClass(sc) }));
    const share = (pred: (x: (typeof samples)[number]) => boolean) => samples.filter(pred).length / samples.length;
    expect(share(({ records }) => records.some((r) => Object.keys(r.stats.late).length > 0))).toBeGreaterThan(0.25);
    expect(share(({ records }) => records.some((r) => r.emissions.some((e) => e.revision > 0)))).toBeGreaterThan(0.25);
    expect(share(({ records }) => records.some((r) => r.emissions.some((e) => e.start < 0)))).toBeGreaterThan(0.25);
    expect(share(({ sc }) => sc.steps.some((s) => s.kind === 'idle'))).toBeGreaterThan(0.25);
    expect(share(({ sc }) => sc.specs.length > 1 && sc.eventCount > 50)).toBeGreaterThan(0.25);
  });

  it('with no disorder and no lateness nothing is late, and each window is emitted exactly once', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ step: fc.integer({ min: 0, max: 20 }), value: fc.integer({ min: -50, max: 50 }) }), { minLength: 1, maxLength: 200, size: 'max' }),
        fc.integer({ min: 1, max: 100 }),
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 50, size: 'max' }),
        (raw, size, batchSizes) => {
          let t = 0;
          const events: Ev[] = raw.map((r) => ({ series: 'x', ts: (t += r.step), value: r.value }));
          const steps: Step[] = [];
          for (let i = 0, b = 0; i < events.length; b++) {
            const n = batchSizes[b % batchSizes.length];
            steps.push({ kind: 'batch', events: events.slice(i, i + n) });
            i += n;
          }
          const sc: Scenario = { specs: [{ name: 'w', sizeMs: size }], allowedLatenessMs: 0, maxOutOfOrdernessMs: 0, steps, eventCount: events.length };
          const records = runClass(sc);
          const emissions = records.flatMap((r) => r.emissions);
          expect(records.every((r) => Object.keys(r.stats.late).length === 0)).toBe(true);
          const starts = [...new Set(events.map((e) => Math.floor(e.ts / size) * size))];
          expect(emissions.map((e) => e.start).sort((a, b) => a - b)).toEqual(starts.sort((a, b) => a - b));
          expect(emissions.every((e) => e.revision === 0)).toBe(true);
          expect(emissions.reduce((a, e) => a + e.result.count, 0)).toBe(events.length);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('tumblingStart and parseDuration', () => {
  it('tumblingStart is the epoch-aligned floor, negative timestamps included', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e13, max: 1e13 }), fc.integer({ min: 1, max: 1e7 }), (ts, size) => {
        const start = tumblingStart(ts, size);
        expect(start).toBeLessThanOrEqual(ts);
        expect(ts).toBeLessThan(start + size);
        expect(Number.isInteger(start / size)).toBe(true);
        expect(start + 0).toBe(Math.floor(ts / size) * size + 0); // +0: -0 and 0 are the same window
      }),
      { numRuns: 500 },
    );
    expect(tumblingStart(-1, 10)).toBe(-10);
    expect(tumblingStart(-10, 10)).toBe(-10);
    expect(tumblingStart(-11, 10)).toBe(-20);
    expect(tumblingStart(-9_999, 10_000)).toBe(-10_000);
    expect(tumblingStart(9, 10)).toBe(0);
    expect(tumblingStart(10, 10)).toBe(10);
  });

  it('parseDuration reads every unit, decimals and plain numbers', () => {
    const mult = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
    fc.assert(
      fc.property(fc.nat({ max: 100_000 }), fc.constantFrom(...(Object.keys(mult) as (keyof typeof mult)[])), (n, unit) => {
        expect(parseDuration(`${n}${unit}`)).toBe(n * mult[unit]);
        expect(parseDuration(` ${n}${unit}\n`)).toBe(n * mult[unit]);
        expect(parseDuration(n)).toBe(n);
      }),
    );
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1.5s')).toBe(1_500);
    expect(parseDuration('0.5m')).toBe(30_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(parseDuration(0)).toBe(0);
  });

  it('parseDuration rejects bad input with an Error naming the value and the setting', () => {
    for (const bad of ['', '10', 's', 'ms', '-5s', '5 s', '1w', '10S', 'abc', '1e3ms', '1.s', '.5s', '5s5', 'Infinity', 'NaN']) {
      expect(() => parseDuration(bad, 'pipeline.window'), JSON.stringify(bad)).toThrow(Error);
      expect(() => parseDuration(bad, 'pipeline.window')).toThrow(`"${bad}"`);
      expect(() => parseDuration(bad, 'pipeline.window')).toThrow('pipeline.window');
    }
    for (const bad of [-1, NaN, Infinity, -Infinity]) {
      expect(() => parseDuration(bad, 'idle'), String(bad)).toThrow(String(bad));
    }
    fc.assert(
      fc.property(fc.string(), (s) => {
        fc.pre(!/^\s*\d+(\.\d+)?(ms|s|m|h|d)\s*$/.test(s));
        expect(() => parseDuration(s)).toThrow(Error);
      }),
      { numRuns: 300 },
    );
  });
});

describe('tumblingWindows (RxJS operator)', () => {
  const opts = { specs: [{ name: '10ms', sizeMs: 10 }], allowedLatenessMs: 5 };
  const b = (events: [string, number, number][], wmBefore: number, wmAfter: number): EventBatch => ({
    series: events.map((e) => e[0]),
    ts: events.map((e) => e[1]),
    values: events.map((e) => e[2]),
    wmBefore,
    wmAfter,
  });

  it('fires, corrects, evicts and drops late events on a small hand-made stream', async () => {
    const batches = [
      b([['a', 1, 1], ['a', 2, 2], ['b', 9, 4]], -Infinity, 2), // nothing fires
      b([['a', 12, 5]], 2, 12), // [0,10) fires: a = {1,2}, b = {4}
      b([['a', 3, 10]], 12, 12), // within lateness (10 + 5 > 12): a of [0,10) is corrected
      b([['a', 25, 7]], 12, 25), // [10,20) fires with a = {5}; [0,10) evicted (15 <= 25)
      b([['a', 5, 100], ['b', 21, 1]], 25, 25), // ts 5 is late and dropped; b joins [20,30)
    ];
    const out = await lastValueFrom(from(batches).pipe(tumblingWindows(opts, moments), toArray()));
    expect(out).toHaveLength(batches.length);
    const brief = out.map((o) => o.emissions.map((e) => [e.start, e.series, e.revision, e.result.count, e.result.sum]));
    expect(brief[0]).toEqual([]);
    expect(brief[1].sort()).toEqual([
      [0, 'a', 0, 2, 3],
      [0, 'b', 0, 1, 4],
    ]);
    expect(brief[2]).toEqual([[0, 'a', 1, 3, 13]]);
    expect(brief[3]).toEqual([[10, 'a', 0, 1, 5]]);
    expect(brief[4]).toEqual([]);
    expect(out.map((o) => o.stats)).toEqual([
      { assigned: 3, late: {} },
      { assigned: 1, late: {} },
      { assigned: 1, late: {} },
      { assigned: 1, late: {} },
      { assigned: 1, late: { '10ms': 1 } },
    ]);
  });

  it('emits per batch exactly what the class emits, with fresh state per subscription', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (sc) => {
        // without the final advance, so that windows are still open when the stream completes
        const batches = batchesOf(sc)
          .map((x) => x.batch)
          .slice(0, -1);
        const expected = runClass({ ...sc, steps: sc.steps.map((s) => (s.kind === 'idle' ? { ...s, viaAdvance: false } : s)) }).slice(0, -1);
        const piped = from(batches).pipe(tumblingWindows({ specs: sc.specs, allowedLatenessMs: sc.allowedLatenessMs }, moments), toArray());
        const first = await lastValueFrom(piped);
        const second = await lastValueFrom(piped); // a second subscription starts from empty windows
        for (const out of [first, second]) {
          expect(out.map((o) => o.stats)).toEqual(expected.map((r) => r.stats));
          expect(out.map((o) => o.emissions)).toEqual(expected.map((r) => r.emissions));
        }
      }),
      { numRuns: 50 },
    );
  });

  it('propagates source errors', async () => {
    const source = concat(from([b([['a', 1, 1]], -Infinity, 1)]), throwError(() => new Error('source broke')));
    await expect(lastValueFrom(source.pipe(tumblingWindows(opts, moments), toArray()))).rejects.toThrow('source broke');
  });
});

// ---- live partials -----------------------------------------------------------------------------

describe('partials of open windows vs brute force', () => {
  /** Keeps every value in arrival order: its accumulator is exactly the events assigned so far. */
  const collect: import('../aggregate.js').Aggregator<number, number[], number[]> = {
    create: () => [],
    add: (acc, v) => (acc.push(v), acc),
    merge: (a, b) => (a.push(...b), a),
    result: (acc) => [...acc],
    serialize: (acc) => JSON.stringify(acc),
    deserialize: (text) => JSON.parse(text) as number[],
  };

  interface Visit {
    window: string;
    start: number;
    end: number;
    series: string;
    values: number[];
  }
  const visitKey = (v: { window: string; start: number; series: string }) => `${v.window}|${v.start}|${v.series}`;
  const sortVisits = <T extends { window: string; start: number; series: string }>(xs: T[]) =>
    [...xs].sort((a, b) => (visitKey(a) < visitKey(b) ? -1 : visitKey(a) > visitKey(b) ? 1 : 0));

  /**
   * Declarative model: every (event, spec) pair taken into a window is logged with the index of the
   * partials call it preceded. A call visits the windows the watermark has not reached (not fired)
   * that took an event since the previous call, with every value they took so far.
   */
  class Log {
    private readonly assigned: { key: string; window: string; start: number; end: number; series: string; value: number; epoch: number }[] = [];
    private epoch = 0;
    private wm = -Infinity;
    constructor(private readonly sc: Scenario) {}

    step(batch: EventBatch) {
      for (let i = 0; i < batch.series.length; i++)
        for (const spec of this.sc.specs) {
          const start = Math.floor(batch.ts[i] / spec.sizeMs) * spec.sizeMs;
          const end = start + spec.sizeMs;
          if (end + this.sc.allowedLatenessMs <= batch.wmBefore) continue; // late
          const series = batch.series[i];
          this.assigned.push({ key: visitKey({ window: spec.name, start, series }), window: spec.name, start, end, series, value: batch.values[i], epoch: this.epoch });
        }
      this.wm = Math.max(this.wm, batch.wmAfter);
    }

    partials(): Visit[] {
      const byKey = new Map<string, Visit & { fresh: boolean }>();
      for (const a of this.assigned) {
        let v = byKey.get(a.key);
        if (!v) byKey.set(a.key, (v = { window: a.window, start: a.start, end: a.end, series: a.series, values: [], fresh: false }));
        v.values.push(a.value);
        if (a.epoch === this.epoch) v.fresh = true;
      }
      this.epoch++;
      return sortVisits([...byKey.values()].filter((v) => v.fresh && v.end > this.wm).map(({ fresh: _, ...v }) => v));
    }
  }

  /** A scenario, and per step (batch, idle advance and the final advance) whether to ask for partials after it, and twice. */
  const withCalls = fc.tuple(scenario, fc.array(fc.nat({ max: 4 }), { minLength: 130, maxLength: 130 }));

  it('partials() visits exactly the open windows touched since the last call, with the aggregate of everything assigned so far', () => {
    fc.assert(
      fc.property(withCalls, ([sc, calls]) => {
        const windows = new TumblingWindows({ specs: sc.specs, allowedLatenessMs: sc.allowedLatenessMs, trackPartials: true }, collect);
        const plain = new TumblingWindows({ specs: sc.specs, allowedLatenessMs: sc.allowedLatenessMs }, collect);
        const log = new Log(sc);
        batchesOf(sc).forEach(({ batch, viaAdvance }, i) => {
          const emitted: WindowEmission<number[]>[] = [];
          const emittedPlain: WindowEmission<number[]>[] = [];
          if (viaAdvance) {
            windows.advance(batch.wmAfter, (e) => emitted.push(e));
            plain.advance(batch.wmAfter, (e) => emittedPlain.push(e));
          } else {
            windows.process(batch, (e) => emitted.push(e));
            plain.process(batch, (e) => emittedPlain.push(e));
          }
          log.step(batch);
          // tracking partials changes nothing else
          expect(emitted, `emissions at step ${i}`).toEqual(emittedPlain);
          const c = calls[i] ?? 0;
          if (c === 0) return;
          const visits: Visit[] = [];
          windows.partials((window, start, end, series, acc) => visits.push({ window, start, end, series, values: [...acc] }));
          expect(sortVisits(visits), `partials after step ${i} (wm ${batch.wmAfter})`).toEqual(log.partials());
          expect(new Set(visits.map(visitKey)).size, 'each window visited once').toBe(visits.length);
          // the untracked instance never visits anything
          plain.partials(() => expect.unreachable('partials without trackPartials'));
          if (c === 4) {
            windows.partials((window, start, _end, series) => expect.unreachable(`second call visited ${window}|${start}|${series}`));
            expect(log.partials()).toEqual([]);
          }
        });
      }),
      { numRuns: 100 },
    );
  });

  it('the generator asks for partials that visit windows, skip fired ones, and see corrections', () => {
    const samples = fc.sample(withCalls, { numRuns: 100, seed: 3 });
    let visited = 0;
    let withLateOrFired = 0;
    for (const [sc, calls] of samples) {
      const windows = new TumblingWindows({ specs: sc.specs, allowedLatenessMs: sc.allowedLatenessMs, trackPartials: true }, collect);
      const log = new Log(sc);
      let n = 0;
      let firedTouched = false;
      batchesOf(sc).forEach(({ batch }, i) => {
        windows.process(batch, (e) => (firedTouched ||= e.revision > 0));
        log.step(batch);
        if (calls[i]) windows.partials(() => n++);
      });
      if (n > 0) visited++;
      if (firedTouched) withLateOrFired++;
    }
    expect(visited / samples.length).toBeGreaterThan(0.5);
    expect(withLateOrFired / samples.length).toBeGreaterThan(0.25);
  });

  it('the operator emits the partials of a batch that asks for them (revision -1, partialResult applied), and none otherwise', async () => {
    await fc.assert(
      fc.asyncProperty(withCalls, fc.boolean(), async ([sc, calls], track) => {
        const list = batchesOf(sc).map(({ batch }, i) => ({ ...batch, partials: (calls[i] ?? 0) > 0 }));
        const out = await lastValueFrom(
          from(list).pipe(
            tumblingWindows({ specs: sc.specs, allowedLatenessMs: sc.allowedLatenessMs, trackPartials: track, partialResult: (acc: number[]) => ({ n: acc.length, values: [...acc] }) }, collect),
            toArray(),
          ),
        );
        const plain = await lastValueFrom(from(list).pipe(tumblingWindows({ specs: sc.specs, allowedLatenessMs: sc.allowedLatenessMs }, collect), toArray()));
        expect(out.map((o) => o.emissions)).toEqual(plain.map((o) => o.emissions));
        expect(out.map((o) => o.stats)).toEqual(plain.map((o) => o.stats));
        const log = new Log(sc);
        out.forEach((o, i) => {
          log.step(list[i]);
          const expected = list[i].partials && track ? log.partials() : [];
          if (!list[i].partials && track) expect(o.partials, `no partials asked at batch ${i}`).toEqual([]);
          expect(o.partials.every((p) => p.revision === -1)).toBe(true);
          expect(
            sortVisits(o.partials).map((p) => ({ window: p.window, start: p.start, end: p.end, series: p.series, values: p.result.values, n: p.result.n })),
            `partials of batch ${i}`,
          ).toEqual(expected.map((v) => ({ ...v, n: v.values.length })));
        });
      }),
      { numRuns: 50 },
    );
  });

  it('a hand-made stream: touched since the last call, open only', async () => {
    const opts = { specs: [{ name: '10ms', sizeMs: 10 }], allowedLatenessMs: 5, trackPartials: true };
    const b = (events: [string, number, number][], wmBefore: number, wmAfter: number, partials = true): EventBatch => ({
      series: events.map((e) => e[0]),
      ts: events.map((e) => e[1]),
      values: events.map((e) => e[2]),
      wmBefore,
      wmAfter,
      partials,
    });
    const batches = [
      b([['a', 1, 1], ['b', 2, 2], ['a', 11, 3]], -Infinity, 2), // [0,10) a, b and [10,20) a
      b([['a', 3, 4]], 2, 2, false), // touched, not asked
      b([['b', 12, 5]], 2, 2), // a of [0,10) from the previous batch, b of [10,20)
      b([], 2, 2), // nothing touched
      b([['a', 4, 6], ['a', 13, 7]], 2, 10), // [0,10) fires: only [10,20) a
      b([['b', 5, 8]], 10, 10), // a correction of the fired [0,10): no partial
    ];
    const out = await lastValueFrom(from(batches).pipe(tumblingWindows(opts, collect), toArray()));
    const brief = out.map((o) => sortVisits(o.partials).map((p) => `${p.start}:${p.series}=${p.result.join('+')}`));
    expect(brief).toEqual([['0:a=1', '0:b=2', '10:a=3'], [], ['0:a=1+4', '10:b=5'], [], ['10:a=3+7'], []]);
    expect(out[5].emissions.map((e) => [e.start, e.series, e.revision, e.result])).toEqual([[0, 'b', 1, [2, 8]]]);
  });
});
