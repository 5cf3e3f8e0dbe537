import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { from, lastValueFrom, toArray } from 'rxjs';
import { GLOBAL_END, GLOBAL_START, globalWindow } from './assigners.js';
import { KeyedWindows, globalWindows, type KeyedBatch, type LateReason, type StateSize, type WindowResult } from './keyed.js';
import { countSum, drive, Oracle, oracleCell, runOracle, streams, triggers, type CountSum, type Ev, type Item, type OracleCell, type OracleWindow } from './testing/testkit.js';

/** Brute force for global windows: every event counts, forever. */
class GlobalOracle extends Oracle {
  private readonly accepted = new Map<string, Ev[]>();
  private readonly cells = new Map<string, OracleCell>();

  accept(e: Ev): LateReason | null {
    this.accepted.set(e.key, [...(this.accepted.get(e.key) ?? []), e]);
    let cell = this.cells.get(e.key);
    if (!cell) this.cells.set(e.key, (cell = oracleCell()));
    cell.pending++;
    return null;
  }

  windows(): OracleWindow[] {
    return [...this.cells].map(([key, cell]) => ({ window: 'g', key, start: GLOBAL_START, end: GLOBAL_END, cell, content: () => this.accepted.get(key)! }));
  }

  evict(): void {}

  stateSize(): StateSize {
    return { keys: this.cells.size, windows: this.cells.size, accumulators: this.cells.size };
  }

  protected lateName(): string {
    return 'g';
  }
}

const scenarios = fc
  .record({ trigger: triggers, stream: streams({ maxStep: 12, maxDisorder: 200 }), snapshot: fc.option(fc.nat(), { freq: 2 }) })
  .map(({ trigger, stream, snapshot }) => ({ trigger, stream, snapshotAt: snapshot === null ? -1 : snapshot % stream.steps.length }));

describe('KeyedWindows with the global assigner', () => {
  it('running totals per key match brute force after every step: count and early firing, never final, nothing late, nothing evicted', () => {
    fc.assert(
      fc.property(scenarios, (sc) => {
        const make = () => new KeyedWindows({ assigner: globalWindow('g'), trigger: sc.trigger, allowedLatenessMs: 0 }, countSum);
        const run = drive(sc.stream.steps, make, sc.snapshotAt);
        const t = sc.trigger ?? { count: 1 };
        const expected = runOracle(sc.stream.steps, new GlobalOracle(t.earlyMs ?? 0, t.count ?? 0, 0));
        run.records.forEach((rec, i) => expect(rec, `step ${i}`).toEqual(expected[i]));
        if (run.roundTrip) expect(run.roundTrip.restored).toBe(run.roundTrip.taken);
        expect(run.records.every((r) => r.results.every((e) => !e.final))).toBe(true);
        const keys = new Set(sc.stream.steps.flatMap((s) => (s.kind === 'batch' ? s.events.map((e) => e.key) : [])));
        expect(run.records[run.records.length - 1].size.keys).toBe(keys.size);
      }),
      { numRuns: 100 },
    );
  });

  it('by hand: one result per changed key per batch by default; early firing only on its schedule', async () => {
    const batches: KeyedBatch<Item>[] = [
      { keys: ['a', 'b', 'a'], ts: [5, 1, -1e12], items: [1, 2, 4].map((value, id) => ({ id, value })), wmBefore: -Infinity, wmAfter: 1e14, now: 0 },
      { keys: ['a'], ts: [0], items: [{ id: 3, value: 8 }], wmBefore: 1e14, wmAfter: 1e15, now: 0 },
    ];
    const outs = await lastValueFrom(from(batches).pipe(globalWindows<Item, CountSum, CountSum>({ name: 'g' }, countSum), toArray()));
    expect(outs.map((o) => o.results.map((e) => `${e.key}=${e.result.sum} r${e.revision}`))).toEqual([['a=5 r0', 'b=2 r0'], ['a=13 r1']]);
    expect(outs[0].results[0]).toMatchObject({ start: GLOBAL_START, end: GLOBAL_END, final: false });

    const early = new KeyedWindows({ assigner: globalWindow('g'), trigger: { earlyMs: 1000 } }, countSum);
    const got: WindowResult<CountSum>[] = [];
    const o = { emit: (e: WindowResult<CountSum>) => got.push(e), late: () => {} };
    early.process({ ...batches[0], now: 10_500 }, o); // the first `now` starts the schedule: next at 11_000
    expect(got).toEqual([]);
    expect(early.nextTimer()).toBe(11_000);
    early.onTimer(10_999, o);
    expect(got).toEqual([]);
    early.onTimer(11_000, o);
    expect(got.map((e) => `${e.key}=${e.result.sum}`)).toEqual(['a=5', 'b=2']);
    early.onTimer(13_500, o); // nothing changed since
    expect(got).toHaveLength(2);
    expect(early.nextTimer()).toBe(14_000);
  });
});
