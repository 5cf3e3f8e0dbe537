import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { from, lastValueFrom, toArray } from 'rxjs';
import type { Aggregator } from '../aggregate.js';
import { rolling, tumbling, type RollingAssigner } from './assigners.js';
import { KeyedWindows, rollingWindows, type KeyedBatch, type LateEvent, type LateReason, type StateSize, type WindowResult } from './keyed.js';
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
  type CountSum,
  type Ev,
  type Item,
  type OracleCell,
  type OracleWindow,
  type Stream,
  expectRunMatchesOracle,
  sampleRuns,
} from './testing/testkit.js';
import type { TriggerSpec } from './triggers.js';

/**
 * Brute force for rolling windows: per key, the newest pane over every accepted event; per size,
 * the window [E - size, E) with E the end of that pane, its content recomputed from every accepted
 * event of the key. Its trigger state starts afresh whenever the newest pane moves, and the windows
 * it leaves that changed since their last final emission are emitted final at that moment.
 */
class RollingOracle extends Oracle {
  private readonly accepted = new Map<string, Ev[]>();
  private readonly keys = new Map<string, { newest: number; cells: OracleCell[] }>();
  private readonly maxSize: number;

  constructor(
    private readonly a: RollingAssigner,
    earlyMs: number,
    count: number,
    lateness: number,
  ) {
    super(earlyMs, count, lateness);
    this.maxSize = Math.max(...a.sizes.map((s) => s.sizeMs));
  }

  accept(e: Ev, wm: number): LateReason | null {
    const pane = this.a.paneMs;
    const p = floorTo(e.ts, pane);
    if (p + pane + this.lateness <= wm) return 'closed';
    let k = this.keys.get(e.key);
    if (k && p + pane <= k.newest + pane - this.maxSize) return 'out-of-range';
    if (k && p > k.newest) {
      // the key's windows move to a newer pane: the old ones that changed since their last final emission go out final
      for (const w of this.windows()) if (w.key === e.key && w.cell.needsFinal) this.emittedOnAccept.push(this.emit(w, true));
    }
    this.accepted.set(e.key, [...(this.accepted.get(e.key) ?? []), e]);
    if (!k || p > k.newest) this.keys.set(e.key, (k = { newest: p, cells: this.a.sizes.map(oracleCell) }));
    const end = k.newest + pane;
    this.a.sizes.forEach((s, j) => {
      if (p >= end - s.sizeMs) {
        k.cells[j].needsFinal = true;
        k.cells[j].pending++;
      }
    });
    return null;
  }

  windows(): OracleWindow[] {
    const pane = this.a.paneMs;
    return [...this.keys].flatMap(([key, k]) =>
      this.a.sizes.map((s, j) => {
        const end = k.newest + pane;
        const start = end - s.sizeMs;
        return { window: s.name, key, start, end, cell: k.cells[j], content: () => this.accepted.get(key)!.filter((e) => floorTo(e.ts, pane) >= start && floorTo(e.ts, pane) < end) };
      }),
    );
  }

  evict(): void {}

  stateSize(wm: number): StateSize {
    const pane = this.a.paneMs;
    let keys = 0;
    let windows = 0;
    let accumulators = 0;
    for (const [key, k] of this.keys) {
      const end = k.newest + pane;
      if (end + this.maxSize + this.lateness <= wm) continue;
      keys++;
      if (end + this.lateness > wm) windows += this.a.sizes.length;
      accumulators += new Set(this.accepted.get(key)!.map((e) => floorTo(e.ts, pane)).filter((p) => p >= end - this.maxSize)).size;
    }
    return { keys, windows, accumulators };
  }

  protected lateName(): string {
    return this.a.name;
  }
}

interface Scenario {
  assigner: RollingAssigner;
  trigger: TriggerSpec | undefined;
  lateness: number;
  stream: Stream;
  snapshotAt: number;
}

const scenarios: fc.Arbitrary<Scenario> = fc
  .record({
    pane: fc.integer({ min: 2, max: 30 }),
    panes: fc.uniqueArray(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 3 }),
    trigger: triggers,
    lateness: latenesses,
    stream: streams({ maxStep: 12, maxDisorder: 200 }),
    snapshot: fc.option(fc.nat(), { freq: 2 }),
  })
  .map(({ pane, panes, trigger, lateness, stream, snapshot }) => ({
    assigner: rolling(
      'r',
      pane,
      panes.map((n) => ({ name: `${n}x${pane}`, sizeMs: n * pane })),
    ),
    trigger,
    lateness,
    stream,
    snapshotAt: snapshot === null ? -1 : snapshot % stream.steps.length,
  }));

const make = (sc: Scenario) => () => new KeyedWindows({ assigner: sc.assigner, trigger: sc.trigger, allowedLatenessMs: sc.lateness }, countSum);
const oracleOf = (sc: Scenario) => {
  const t = sc.trigger ?? { count: 1 };
  return new RollingOracle(sc.assigner, t.earlyMs ?? 0, t.count ?? 0, sc.lateness);
};

describe('KeyedWindows with the rolling assigner vs brute force', () => {
  it('every step emits what the oracle does (updates, final firings, corrections), with the same late events and state', () => {
    fc.assert(
      fc.property(scenarios, (sc) => {
        const run = drive(sc.stream.steps, make(sc), sc.snapshotAt);
        const expected = runOracle(sc.stream.steps, oracleOf(sc));
        expectRunMatchesOracle(sc.stream, run, expected);
      }),
      { numRuns: 100 },
    );
  });

  it('the generator exercises both late reasons, corrections, merged panes, the default per-batch trigger and restores', () => {
    const { share, results, late } = sampleRuns(scenarios, make, 120, 13);
    expect(share((x) => late(x).some((e) => e.reason === 'closed'))).toBeGreaterThan(0.2);
    expect(share((x) => late(x).some((e) => e.reason === 'out-of-range'))).toBeGreaterThan(0.03);
    expect(share((x) => results(x).some((e, i, all) => e.final && all.some((f, j) => j < i && f.final && f.key === e.key && f.window === e.window && f.end === e.end)))).toBeGreaterThan(0.1);
    expect(share((x) => x.sc.trigger === undefined && results(x).some((e) => !e.final && e.revision > 0))).toBeGreaterThan(0.05);
    expect(share((x) => results(x).some((e) => e.count > 1 && e.end - e.start > x.sc.assigner.paneMs))).toBeGreaterThan(0.3);
    expect(share((x) => x.run.roundTrip !== undefined && results(x).length > 0)).toBeGreaterThan(0.2);
  });
});

describe('rolling windows by hand', () => {
  const DAY = 86_400_000;
  const tutors = () => rolling('tutor', DAY, [{ name: '7d', sizeMs: 7 * DAY }, { name: '30d', sizeMs: 30 * DAY }, { name: '90d', sizeMs: 90 * DAY }]);

  it('7/30/90 days from daily panes: after each batch, each changed key gets its three windows ending with its newest day', () => {
    const w = new KeyedWindows({ assigner: tutors(), allowedLatenessMs: 2 * DAY }, countSum);
    const out: WindowResult<CountSum>[] = [];
    const o = { emit: (e: WindowResult<CountSum>) => out.push(e), late: () => expect.unreachable('nothing late') };
    const day = (d: number, hour = 12) => d * DAY + hour * 3_600_000;
    // tutor t1: sessions on days 0, 20, 80, 100; t2 on day 100
    w.process(batchOf([['t1', day(0), 5]], -Infinity, day(0)), o);
    w.process(batchOf([['t1', day(20), 4], ['t1', day(80), 3]], day(0), day(80)), o);
    w.process(batchOf([['t1', day(100), 2], ['t2', day(100), 1]], day(80), day(100)), o);
    const brief = out.map((e) => `${e.key} ${e.window} ${(e.start / DAY).toFixed(0)}..${(e.end / DAY).toFixed(0)} sum ${e.result.sum} r${e.revision}${e.final ? ' final' : ''}`);
    expect(brief).toEqual([
      't1 7d -6..1 sum 5 r0',
      't1 30d -29..1 sum 5 r0',
      't1 90d -89..1 sum 5 r0',
      // day 20 moves t1's windows on: those ending with day 0 go out final first (they never change again)
      't1 7d -6..1 sum 5 r1 final',
      't1 30d -29..1 sum 5 r1 final',
      't1 90d -89..1 sum 5 r1 final',
      // so do those ending with day 20 when day 80 arrives, in the same batch
      't1 7d 14..21 sum 4 r0 final',
      't1 30d -9..21 sum 9 r0 final',
      't1 90d -69..21 sum 9 r0 final',
      // the batch ends: the key's newest day is now 80 (days 0 and 20 are in the 90d window only)
      't1 7d 74..81 sum 3 r0',
      't1 30d 51..81 sum 3 r0',
      't1 90d -9..81 sum 12 r0',
      't1 7d 74..81 sum 3 r1 final',
      't1 30d 51..81 sum 3 r1 final',
      't1 90d -9..81 sum 12 r1 final',
      't1 7d 94..101 sum 2 r0',
      't1 30d 71..101 sum 5 r0',
      't1 90d 11..101 sum 9 r0',
      't2 7d 94..101 sum 1 r0',
      't2 30d 71..101 sum 1 r0',
      't2 90d 11..101 sum 1 r0',
    ]);
    out.length = 0;
    // the watermark passes the end of day 100: the final firing of the newest windows
    w.advance(day(101, 0), day(101), o);
    expect(out.map((e) => `${e.key} ${e.window} r${e.revision} ${e.final}`).sort()).toEqual(['t1 30d r1 true', 't1 7d r1 true', 't1 90d r1 true', 't2 30d r1 true', 't2 7d r1 true', 't2 90d r1 true']);
    out.length = 0;
    // a session on day 95 is late: its pane ends at day 96, and 96 + 2 days of allowed lateness <= 101
    const late: LateEvent<Item>[] = [];
    w.process(batchOf([['t1', day(95), 10]], day(101), day(101)), { emit: (e) => out.push(e), late: (e) => late.push(e) });
    expect(late.map((e) => e.reason)).toEqual(['closed']);
    // one at 20:00 on day 100 is within lateness: a correction (final, revision 2) of all three windows
    w.process(batchOf([['t1', day(100, 20), 10]], day(101), day(101)), o);
    expect(out.map((e) => `${e.window} sum ${e.result.sum} r${e.revision} ${e.final}`)).toEqual(['7d sum 12 r2 true', '30d sum 15 r2 true', '90d sum 19 r2 true']);
  });

  it('keeps at most the largest window of panes per key, and forgets a key once no later event could reach its panes', () => {
    const w = new KeyedWindows({ assigner: rolling('r', 10, [{ name: '30', sizeMs: 30 }]), allowedLatenessMs: 5 }, countSum);
    const o = { emit() {}, late() {} };
    for (let t = 0; t < 200; t += 10) w.process(batchOf([['k', t, 1]], t - 20, t - 20), o);
    expect(w.size()).toEqual({ keys: 1, windows: 1, accumulators: 3 });
    w.advance(190 + 10 + 30 + 5 - 1, 0, o);
    expect(w.size().keys).toBe(1);
    w.advance(190 + 10 + 30 + 5, 0, o);
    expect(w.size()).toEqual({ keys: 0, windows: 0, accumulators: 0 });
  });

  it('the RxJS operator emits what the class emits', async () => {
    for (const s of fc.sample(scenarios, { numRuns: 20, seed: 17 })) {
      const inputs = s.stream.steps.map((st) =>
        st.kind === 'timer' ? { now: st.now } : { keys: st.events.map((e) => e.key), ts: st.events.map((e) => e.ts), items: st.events.map((e) => e.item), wmBefore: st.wmBefore, wmAfter: st.wmAfter, now: st.now },
      );
      const outs = await lastValueFrom(
        from(inputs).pipe(rollingWindows({ name: s.assigner.name, paneMs: s.assigner.paneMs, sizes: s.assigner.sizes, trigger: s.trigger, allowedLatenessMs: s.lateness }, countSum), toArray()),
      );
      const run = drive(s.stream.steps, make(s));
      expect(outs.map((x) => x.stats)).toEqual(run.records.map((r) => r.stats));
      outs.forEach((x, i) => expect(x.results.map((e) => `${e.window}|${e.key}|${e.end}|${e.revision}|${e.result.sum}`).sort()).toEqual(run.records[i].results.map((e) => `${e.window}|${e.key}|${e.end}|${e.revision}|${e.sum}`).sort()));
    }
  });

  it('results of the smaller sizes stay as emitted even when the aggregator returns its accumulator as the result', () => {
    const live: Aggregator<Item, number[], number[]> = {
      create: () => [],
      add: (acc, item) => (acc.push(item.value), acc),
      merge: (a, b) => (a.push(...b), a),
      result: (acc) => acc,
      serialize: (acc) => JSON.stringify(acc),
      deserialize: (text) => JSON.parse(text) as number[],
    };
    const w = new KeyedWindows({ assigner: rolling('r', 10, [{ name: '10', sizeMs: 10 }, { name: '20', sizeMs: 20 }, { name: '30', sizeMs: 30 }]) }, live);
    const got: [string, number[]][] = [];
    w.process(batchOf([['k', 1, 1], ['k', 11, 2], ['k', 21, 3]], -Infinity, -Infinity), { emit: (e) => got.push([e.window, e.result]), late: () => {} });
    expect(got).toEqual([
      // the windows ending with pane 0, then with pane 10, go out final as newer panes supersede them
      ['10', [1]],
      ['20', [1]],
      ['30', [1]],
      ['10', [2]],
      ['20', [2, 1]],
      ['30', [2, 1]],
      ['10', [3]],
      ['20', [3, 2]],
      ['30', [3, 2, 1]],
    ]);
  });

  it('emitKeys: without a count trigger, the asked keys get the results a per-batch trigger would have given, once', () => {
    const a = rolling('r', 10, [{ name: '10', sizeMs: 10 }, { name: '30', sizeMs: 30 }]);
    const lazy = new KeyedWindows({ assigner: a, trigger: {} }, countSum);
    const eager = new KeyedWindows({ assigner: a }, countSum);
    const got: string[] = [];
    const want: string[] = [];
    const fmt = (e: WindowResult<CountSum>) => `${e.key} ${e.window} ${e.start}..${e.end} n${e.result.count} s${e.result.sum}`;
    const events: [string, number, number][] = [['a', 1, 1], ['b', 2, 5], ['a', 3, 2], ['a', 14, 4], ['b', 25, 1]];
    lazy.process(batchOf(events, -Infinity, -Infinity), { emit: (e) => got.push(fmt(e)), late: () => {} });
    eager.process(batchOf(events, -Infinity, -Infinity), { emit: (e) => want.push(fmt(e)), late: () => {} });
    // the windows superseded inside the batch go out final either way; the current ones only when asked
    const superseded = got.slice();
    expect(superseded).toEqual(['a 10 0..10 n2 s3', 'a 30 -20..10 n2 s3', 'b 10 0..10 n1 s5', 'b 30 -20..10 n1 s5']);
    lazy.emitKeys(['a', 'b', 'nobody'], { emit: (e) => got.push(fmt(e)), late: () => {} });
    expect(got.sort()).toEqual(want.sort());
    const again: string[] = [];
    lazy.emitKeys(['a', 'b'], { emit: (e) => again.push(fmt(e)), late: () => {} });
    expect(again).toEqual([]);
    expect(() => new KeyedWindows({ assigner: tumbling('t', 10) }, countSum).emitKeys(['a'], { emit() {}, late() {} })).toThrow(/tumbling windows do not emit per key/);
  });

  it('rejects sizes that are not whole panes, and repeated size names', () => {
    expect(() => new KeyedWindows({ assigner: rolling('r', 10, [{ name: 'a', sizeMs: 25 }]) }, countSum)).toThrow('rolling window "r": size "a" (25 ms) must be a whole number of panes (10 ms)');
    expect(() => new KeyedWindows({ assigner: rolling('r', 10, [{ name: 'a', sizeMs: 20 }, { name: 'a', sizeMs: 30 }]) }, countSum)).toThrow('size name "a" is used twice');
    expect(() => new KeyedWindows({ assigner: rolling('r', 10, []) }, countSum)).toThrow('at least one');
  });
});

function batchOf(events: [string, number, number][], wmBefore: number, wmAfter: number): KeyedBatch<Item> {
  return { keys: events.map((e) => e[0]), ts: events.map((e) => e[1]), items: events.map((e, id) => ({ id, value: e[2] })), wmBefore, wmAfter, now: 0 };
}
