import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { from, lastValueFrom, toArray } from 'rxjs';
import { moments } from '../aggregates/stats.js';
import { sliding, tumbling, windowStartsOf, type SlidingAssigner, type TumblingAssigner } from './assigners.js';
import { KeyedWindows, keyedTumblingWindows, keyedWindows, slidingWindows, type KeyedBatch, type WindowResult } from './keyed.js';
import { TumblingWindows, type WindowEmission } from './tumbling.js';
import {
  countSum,
  drive,
  floorTo,
  latenesses,
  Oracle,
  oracleCell,
  runOracle,
  streams,
  triggers,
  type Emitted,
  type Ev,
  type Item,
  type OracleCell,
  type OracleWindow,
  type Stream,
  expectRunMatchesOracle,
  sampleRuns,
} from './testing/testkit.js';
import type { TriggerSpec } from './triggers.js';
import type { LateReason, StateSize } from './keyed.js';

/** Brute force for aligned windows: an event belongs to every [w, w + size) with w a multiple of slide holding it. */
class AlignedOracle extends Oracle {
  private readonly accepted: Ev[] = [];
  private readonly cells = new Map<string, { key: string; start: number; cell: OracleCell }>();

  constructor(
    private readonly name: string,
    private readonly size: number,
    private readonly slide: number,
    earlyMs: number,
    count: number,
    lateness: number,
  ) {
    super(earlyMs, count, lateness);
  }

  private startsOf(ts: number): number[] {
    const starts: number[] = [];
    for (let w = floorTo(ts - this.size, this.slide) - this.slide; w <= ts + this.slide; w += this.slide) if (w <= ts && ts < w + this.size) starts.push(w);
    return starts;
  }

  accept(e: Ev, wm: number): LateReason | null {
    const open = this.startsOf(e.ts).filter((w) => w + this.size + this.lateness > wm);
    if (open.length === 0) return 'closed';
    this.accepted.push(e);
    for (const w of open) {
      const id = `${e.key}|${w}`;
      let c = this.cells.get(id);
      if (!c) this.cells.set(id, (c = { key: e.key, start: w, cell: oracleCell() }));
      c.cell.needsFinal = true;
      c.cell.pending++;
    }
    return null;
  }

  windows(): OracleWindow[] {
    return [...this.cells.values()].map(({ key, start, cell }) => ({
      window: this.name,
      key,
      start,
      end: start + this.size,
      cell,
      content: () => this.accepted.filter((e) => e.key === key && start <= e.ts && e.ts < start + this.size),
    }));
  }

  evict(wm: number): void {
    for (const [id, c] of this.cells) if (c.start + this.size + this.lateness <= wm) this.cells.delete(id);
  }

  stateSize(wm: number): StateSize {
    const pane = gcdOf(this.size, this.slide);
    const keys = new Set<string>();
    const panes = new Set<string>();
    const windows = new Set<string>();
    for (const e of this.accepted) {
      const p = floorTo(e.ts, pane);
      if (floorTo(p, this.slide) + this.size + this.lateness <= wm) continue;
      keys.add(e.key);
      panes.add(`${p}|${e.key}`);
      for (const w of this.startsOf(e.ts)) if (w + this.size + this.lateness > wm) windows.add(`${w}|${e.key}`);
    }
    return { keys: keys.size, windows: windows.size, accumulators: panes.size };
  }

  protected lateName(): string {
    return this.name;
  }
}

function gcdOf(a: number, b: number): number {
  return b === 0 ? a : gcdOf(b, a % b);
}

interface Scenario {
  assigner: TumblingAssigner | SlidingAssigner;
  trigger: TriggerSpec | undefined;
  lateness: number;
  stream: Stream;
  snapshotAt: number;
}

const assigners: fc.Arbitrary<TumblingAssigner | SlidingAssigner> = fc.oneof(
  fc.integer({ min: 3, max: 150 }).map((size) => tumbling(`${size}ms`, size)),
  fc
    .record({ size: fc.integer({ min: 2, max: 150 }), div: fc.integer({ min: 1, max: 6 }) })
    .map(({ size, div }) => sliding(`${size}/${Math.max(1, Math.floor(size / div))}`, size, Math.max(1, Math.floor(size / div)))),
  fc
    .tuple(fc.integer({ min: 2, max: 120 }), fc.integer({ min: 1, max: 120 }))
    .filter(([size, slide]) => slide <= size)
    .map(([size, slide]) => sliding(`${size}/${slide}`, size, slide)),
);

const scenarios: fc.Arbitrary<Scenario> = fc
  .record({ assigner: assigners, trigger: triggers, lateness: latenesses, stream: streams({ maxStep: 12, maxDisorder: 200 }), snapshot: fc.option(fc.nat(), { freq: 2 }) })
  .map(({ assigner, trigger, lateness, stream, snapshot }) => ({ assigner, trigger, lateness, stream, snapshotAt: snapshot === null ? -1 : snapshot % stream.steps.length }));

const make = (sc: Scenario) => () => new KeyedWindows({ assigner: sc.assigner, trigger: sc.trigger, allowedLatenessMs: sc.lateness }, countSum);
const oracleOf = (sc: Scenario) =>
  new AlignedOracle(sc.assigner.name, sc.assigner.sizeMs, sc.assigner.type === 'sliding' ? sc.assigner.slideMs : sc.assigner.sizeMs, sc.trigger?.earlyMs ?? 0, sc.trigger?.count ?? 0, sc.lateness);

describe('KeyedWindows with tumbling and sliding assigners vs brute force', () => {
  it('every step emits exactly what the oracle does (firings, partials, corrections), sends the same events to the late output, and holds the same state', () => {
    fc.assert(
      fc.property(scenarios, (sc) => {
        const run = drive(sc.stream.steps, make(sc), sc.snapshotAt);
        const expected = runOracle(sc.stream.steps, oracleOf(sc));
        expectRunMatchesOracle(sc.stream, run, expected);
      }),
      { numRuns: 120 },
    );
  });

  it('the generator exercises late events, corrections, partials of both triggers, restores and sliding merges', () => {
    const { share, results } = sampleRuns(scenarios, make, 150, 7);
    expect(share((x) => x.run.records.some((r) => r.late.length > 0))).toBeGreaterThan(0.2);
    expect(share((x) => corrections(results(x)) > 0)).toBeGreaterThan(0.2);
    expect(share((x) => corrections(results(x)) > 0 && !x.sc.trigger?.count && !x.sc.trigger?.earlyMs)).toBeGreaterThan(0.05);
    expect(share((x) => results(x).some((e) => !e.final) && !x.sc.trigger?.count)).toBeGreaterThan(0.1);
    expect(share((x) => results(x).some((e) => !e.final) && !x.sc.trigger?.earlyMs)).toBeGreaterThan(0.1);
    expect(share((x) => x.run.roundTrip !== undefined && results(x).length > 0)).toBeGreaterThan(0.2);
    expect(share((x) => x.sc.assigner.type === 'sliding' && results(x).some((e) => e.count > 1))).toBeGreaterThan(0.2);
  });

  it('a restored operator refuses nothing it took, and refuses snapshots of another operator or corrupt ones with a message', () => {
    const w = new KeyedWindows({ assigner: sliding('s', 100, 20), allowedLatenessMs: 50, trigger: { count: 2 } }, countSum);
    w.process(batch([['a', 10, 1], ['b', 30, 2], ['a', 150, 3]], -Infinity, 40, 0), sink());
    const text = w.snapshot();
    const other = new KeyedWindows({ assigner: sliding('s', 100, 25), allowedLatenessMs: 50, trigger: { count: 2 } }, countSum);
    expect(() => other.restore(text)).toThrow(/taken with .*"slideMs":20.*this operator is .*"slideMs":25/);
    const lateDiffers = new KeyedWindows({ assigner: sliding('s', 100, 20), allowedLatenessMs: 0, trigger: { count: 2 } }, countSum);
    expect(() => lateDiffers.restore(text)).toThrow(/allowedLatenessMs/);
    const same = () => new KeyedWindows({ assigner: sliding('s', 100, 20), allowedLatenessMs: 50, trigger: { count: 2 } }, countSum);
    expect(() => same().restore('{')).toThrow(/not JSON/);
    expect(() => same().restore('{"format":"x"}')).toThrow(/format "x"/);
    expect(() => same().restore(text.replace(/"1:1"/, '"one"'))).toThrow(/count\/sum must look like/);
    expect(() => same().restore(text.replace(/"panes":\[/, '"panes":[7,'))).toThrow(/state\.panes\[0\] must be an array/);
    const restored = same();
    restored.restore(text);
    expect(restored.snapshot()).toBe(text);
    expect(restored.size()).toEqual(w.size());
  });

  it('rejects bad assigners and triggers with the field to fix', () => {
    expect(() => new KeyedWindows({ assigner: sliding('s', 10, 20) }, countSum)).toThrow('sliding window "s": slideMs (20) must not exceed sizeMs (10)');
    expect(() => new KeyedWindows({ assigner: tumbling('t', 0) }, countSum)).toThrow('tumbling window "t": sizeMs must be a positive whole number of ms, got 0');
    expect(() => new KeyedWindows({ assigner: tumbling('t', 1.5) }, countSum)).toThrow('sizeMs');
    expect(() => new KeyedWindows({ assigner: tumbling('', 10) }, countSum)).toThrow('name');
    expect(() => new KeyedWindows({ assigner: tumbling('t', 10), trigger: { count: -1 } }, countSum)).toThrow('trigger.count');
    expect(() => new KeyedWindows({ assigner: tumbling('t', 10), trigger: { earlyMs: 0.5 } }, countSum)).toThrow('trigger.earlyMs');
    expect(() => new KeyedWindows({ assigner: tumbling('t', 10), allowedLatenessMs: -1 }, countSum)).toThrow('allowedLatenessMs');
  });
});

describe('KeyedWindows tumbling agrees with TumblingWindows (the engine operator)', () => {
  it('same firings, corrections and late counts on random streams', () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 150 }), latenesses, streams({ maxStep: 12, maxDisorder: 200 }), (size, lateness, stream) => {
        const mine = new KeyedWindows<number, ReturnType<typeof moments.create>, ReturnType<typeof moments.result>>({ assigner: tumbling('w', size), allowedLatenessMs: lateness }, moments);
        const theirs = new TumblingWindows({ specs: [{ name: 'w', sizeMs: size }], allowedLatenessMs: lateness }, moments);
        for (const step of stream.steps) {
          if (step.kind === 'timer') continue;
          const a: WindowResult<ReturnType<typeof moments.result>>[] = [];
          const b: WindowEmission<ReturnType<typeof moments.result>>[] = [];
          let late = 0;
          // TumblingWindows judges lateness against wmBefore and fires at wmAfter; a jumped wmBefore is applied first by both
          if (step.wmBefore > mine.watermark) {
            theirs.advance(step.wmBefore, (e) => b.push(e));
          }
          const values = step.events.map((e) => e.item.value);
          const stats = mine.process({ keys: step.events.map((e) => e.key), ts: step.events.map((e) => e.ts), items: values, wmBefore: step.wmBefore, wmAfter: step.wmAfter, now: step.now }, { emit: (e) => a.push(e), late: () => late++ });
          const theirStats = theirs.process({ series: step.events.map((e) => e.key), ts: step.events.map((e) => e.ts), values, wmBefore: step.wmBefore, wmAfter: step.wmAfter }, (e) => b.push(e));
          expect(stats.assigned).toBe(theirStats.assigned);
          expect(late).toBe(theirStats.late.w ?? 0);
          const norm = (xs: { key: string; start: number; end: number; revision: number; result: unknown }[]) =>
            xs.map((x) => JSON.stringify([x.key, x.start, x.end, x.revision, x.result])).sort();
          expect(norm(a)).toEqual(norm(b.map((e) => ({ ...e, key: e.series }))));
          expect(a.every((e) => e.final)).toBe(true);
          expect(mine.size().accumulators).toBe(theirs.size());
        }
      }),
      { numRuns: 80 },
    );
  });
});

describe('sliding windows by hand', () => {
  it('an event updates one pane; each window merges its panes; the watermark fires each window once', () => {
    const w = new KeyedWindows({ assigner: sliding('30/10', 30, 10) }, countSum);
    const out: WindowResult<{ count: number; sum: number }>[] = [];
    const o = { emit: (e: WindowResult<{ count: number; sum: number }>) => out.push(e), late: () => expect.unreachable('nothing is late') };
    w.process(batch([['a', 5, 1], ['a', 15, 10], ['a', 25, 100]], -Infinity, 0, 0), o);
    expect(w.size().accumulators).toBe(3); // three panes of 10
    expect(out).toEqual([]);
    w.process(batch([], 0, 30, 0), o);
    // windows ending at 10, 20, 30: [-20,10) [-10,20) [0,30)
    expect(out.map((e) => [e.start, e.end, e.result.sum, e.revision, e.final])).toEqual([
      [-20, 10, 1, 0, true],
      [-10, 20, 11, 0, true],
      [0, 30, 111, 0, true],
    ]);
    out.length = 0;
    w.process(batch([], 30, 1000, 0), o);
    expect(out.map((e) => [e.start, e.end, e.result.sum])).toEqual([
      [10, 40, 110],
      [20, 50, 100],
    ]);
    expect(w.size()).toEqual({ keys: 0, windows: 0, accumulators: 0 });
    expect(windowStartsOf(25, 30, 10)).toEqual([0, 10, 20]);
    expect(windowStartsOf(-1, 30, 10)).toEqual([-30, -20, -10]);
  });

  it('a late event within allowed lateness corrects every fired window holding it (revision + 1), later ones go to the late output', () => {
    const w = new KeyedWindows({ assigner: sliding('20/10', 20, 10), allowedLatenessMs: 10 }, countSum);
    const out: string[] = [];
    const late: string[] = [];
    const o = { emit: (e: WindowResult<{ count: number; sum: number }>) => out.push(`${e.start}+${e.result.sum}r${e.revision}`), late: (e: { ts: number; reason: string }) => late.push(`${e.ts}:${e.reason}`) };
    w.process(batch([['a', 5, 1], ['a', 12, 2]], -Infinity, 20, 0), o);
    expect(out.sort()).toEqual(['-10+1r0', '0+3r0']);
    out.length = 0;
    w.process(batch([['a', 8, 4], ['a', 3, 8]], 20, 25, 0), o); // [-10,10) end 10 + 10 <= 20: closed; [0,20) fired, open for corrections
    expect(out).toEqual(['0+15r1']);
    expect(late).toEqual([]);
    out.length = 0;
    w.process(batch([['a', 9, 16]], 30, 30, 0), o); // every window holding 9 ended by 20, 20 + 10 <= 30; [10,30) fires
    expect(out).toEqual(['10+2r0']);
    expect(late).toEqual(['9:closed']);
  });
});

describe('the RxJS operators', () => {
  it('emit per input what the class emits, ticks included', async () => {
    await fc.assert(
      fc.asyncProperty(scenarios, async (sc) => {
        const inputs = sc.stream.steps.map((s) =>
          s.kind === 'timer' ? { now: s.now } : { keys: s.events.map((e) => e.key), ts: s.events.map((e) => e.ts), items: s.events.map((e) => e.item), wmBefore: s.wmBefore, wmAfter: s.wmAfter, now: s.now },
        );
        const opts = { name: sc.assigner.name, trigger: sc.trigger, allowedLatenessMs: sc.lateness };
        const op =
          sc.assigner.type === 'tumbling'
            ? keyedTumblingWindows({ ...opts, sizeMs: sc.assigner.sizeMs }, countSum)
            : slidingWindows({ ...opts, sizeMs: sc.assigner.sizeMs, slideMs: sc.assigner.slideMs }, countSum);
        const outs = await lastValueFrom(from(inputs).pipe(op, toArray()));
        const run = drive(sc.stream.steps, make(sc));
        expect(outs).toHaveLength(inputs.length);
        outs.forEach((o, i) => {
          expect(o.results.length).toBe(run.records[i].results.length);
          expect(o.stats).toEqual(run.records[i].stats);
          expect(o.late.map((e) => e.item.id).sort((a, b) => a - b)).toEqual(run.records[i].late.map((e) => e.id));
        });
      }),
      { numRuns: 30 },
    );
  });

  it('keeps state per subscription and reports a bad assigner as an error', async () => {
    const op = keyedWindows({ assigner: tumbling('t', 10) }, countSum);
    const input = [batch([['a', 1, 1]], -Infinity, 10, 0)];
    const first = await lastValueFrom(from(input).pipe(op, toArray()));
    const second = await lastValueFrom(from(input).pipe(op, toArray()));
    expect(first).toEqual(second);
    expect(first[0].results.map((e) => e.result)).toEqual([{ count: 1, sum: 1 }]);
    await expect(lastValueFrom(from(input).pipe(keyedWindows({ assigner: tumbling('t', -1) }, countSum)))).rejects.toThrow('sizeMs');
  });
});

/** Final emissions of a window after an earlier final one: corrections. */
function corrections(results: Emitted[]): number {
  const finals = new Set<string>();
  let n = 0;
  for (const e of results) {
    if (!e.final) continue;
    const id = `${e.window}|${e.key}|${e.start}`;
    if (finals.has(id)) n++;
    finals.add(id);
  }
  return n;
}

function batch(events: [string, number, number][], wmBefore: number, wmAfter: number, now: number): KeyedBatch<Item> {
  return { keys: events.map((e) => e[0]), ts: events.map((e) => e[1]), items: events.map((e, id) => ({ id, value: e[2] })), wmBefore, wmAfter, now };
}

function sink() {
  return { emit() {}, late() {} };
}
