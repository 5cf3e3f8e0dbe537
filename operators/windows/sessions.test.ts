import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { from, lastValueFrom, toArray } from 'rxjs';
import { session, type SessionAssigner } from './assigners.js';
import { KeyedWindows, sessionWindows, type KeyedBatch, type LateReason, type StateSize, type WindowResult } from './keyed.js';
import {
  countSum,
  drive,
  latenesses,
  Oracle,
  oracleCell,
  runOracle,
  streams,
  triggers,
  type CountSum,
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

/** Sessions of a set of events by brute force: sorted by time, a new session wherever two neighbours are gap or more apart. */
function sessionsOf(events: readonly Ev[], gap: number): Ev[][] {
  const sorted = [...events].sort((a, b) => a.ts - b.ts);
  const out: Ev[][] = [];
  for (const e of sorted) {
    const cur = out[out.length - 1];
    if (cur && e.ts - cur[cur.length - 1].ts < gap) cur.push(e);
    else out.push([e]);
  }
  return out;
}

interface OracleSession {
  key: string;
  ids: Set<number>;
  events: Ev[];
  cell: OracleCell;
  shown: string[];
}

/**
 * Brute force for sessions: sessions are recomputed from every accepted event of the key; a
 * recomputed session takes the trigger state of the sessions it contains (highest revision,
 * summed pending counts). An event is late if the session it would join contains an event of a
 * session already closed for good, or ends at least allowedLateness before the watermark. A key
 * with no live session forgets its closed sessions once the watermark passed their end + gap +
 * allowedLateness.
 */
class SessionOracle extends Oracle {
  private readonly accepted = new Map<string, Ev[]>();
  private readonly closed = new Set<number>();
  private readonly frontier = new Map<string, number>();
  private live: OracleSession[] = [];

  constructor(
    private readonly name: string,
    private readonly gap: number,
    earlyMs: number,
    count: number,
    lateness: number,
  ) {
    super(earlyMs, count, lateness);
  }

  accept(e: Ev, wm: number): LateReason | null {
    const mine = [...(this.accepted.get(e.key) ?? []), e];
    const s = sessionsOf(mine, this.gap).find((x) => x.includes(e))!;
    if (s.some((x) => this.closed.has(x.item.id))) return 'closed';
    if (s[s.length - 1].ts + this.gap + this.lateness <= wm) return 'closed';
    this.accepted.set(e.key, mine);
    return null;
  }

  windows(): OracleWindow[] {
    const next: OracleSession[] = [];
    for (const [key, events] of this.accepted) {
      for (const s of sessionsOf(events, this.gap)) {
        const closed = s.filter((x) => this.closed.has(x.item.id)).length;
        if (closed === s.length) continue;
        if (closed > 0) throw new Error('oracle: a live session holds events of a closed one');
        const ids = new Set(s.map((x) => x.item.id));
        const parts = this.live.filter((o) => o.key === key && [...o.ids].some((id) => ids.has(id)));
        const known = parts.reduce((a, o) => a + o.ids.size, 0);
        if (parts.length === 1 && known === ids.size) {
          next.push(parts[0]);
          continue;
        }
        const cell = oracleCell();
        cell.revision = Math.max(-1, ...parts.map((o) => o.cell.revision));
        cell.pending = parts.reduce((a, o) => a + o.cell.pending, 0) + ids.size - known;
        cell.needsFinal = true;
        next.push({ key, ids, events: s, cell, shown: parts.flatMap((o) => o.shown) });
      }
    }
    this.live = next;
    return next.map((o) => {
      const start = o.events[0].ts;
      const end = o.events[o.events.length - 1].ts + this.gap;
      return { window: this.name, key: o.key, start, end, cell: o.cell, shown: o.shown, content: () => o.events };
    });
  }

  evict(wm: number): void {
    this.live = this.live.filter((o) => {
      const end = o.events[o.events.length - 1].ts + this.gap;
      if (end + this.lateness > wm) return true;
      for (const id of o.ids) this.closed.add(id);
      this.frontier.set(o.key, Math.max(this.frontier.get(o.key) ?? -Infinity, end));
      return false;
    });
    // a key with no live session forgets its closed ones once the watermark passed their end + gap + allowed lateness
    for (const [key, f] of this.frontier) {
      if (f + this.gap + this.lateness > wm || this.live.some((o) => o.key === key)) continue;
      this.frontier.delete(key);
      this.accepted.delete(key);
    }
  }

  stateSize(wm: number): StateSize {
    const keys = new Set(this.live.map((o) => o.key));
    for (const [key, f] of this.frontier) if (f + this.lateness + this.gap > wm) keys.add(key);
    return { keys: keys.size, windows: this.live.length, accumulators: this.live.length };
  }

  protected lateName(): string {
    return this.name;
  }
}

interface Scenario {
  assigner: SessionAssigner;
  trigger: TriggerSpec | undefined;
  lateness: number;
  stream: Stream;
  snapshotAt: number;
}

const scenarios: fc.Arbitrary<Scenario> = fc
  .record({
    gap: fc.oneof(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 10, max: 120 })),
    trigger: triggers,
    lateness: latenesses,
    stream: streams({ maxStep: 40, maxDisorder: 200, maxEvents: 150 }),
    snapshot: fc.option(fc.nat(), { freq: 2 }),
  })
  .map(({ gap, trigger, lateness, stream, snapshot }) => ({ assigner: session(`gap${gap}`, gap), trigger, lateness, stream, snapshotAt: snapshot === null ? -1 : snapshot % stream.steps.length }));

const make = (sc: Scenario) => () => new KeyedWindows({ assigner: sc.assigner, trigger: sc.trigger, allowedLatenessMs: sc.lateness }, countSum);
const oracleOf = (sc: Scenario) => new SessionOracle(sc.assigner.name, sc.assigner.gapMs, sc.trigger?.earlyMs ?? 0, sc.trigger?.count ?? 0, sc.lateness);

describe('KeyedWindows with the session assigner vs brute force', () => {
  it('every step emits what the oracle does (merges, replaces, corrections, partials), with the same late events and state', () => {
    fc.assert(
      fc.property(scenarios, (sc) => {
        const run = drive(sc.stream.steps, make(sc), sc.snapshotAt);
        const expected = runOracle(sc.stream.steps, oracleOf(sc));
        expectRunMatchesOracle(sc.stream, run, expected);
      }),
      { numRuns: 100 },
    );
  });

  it('the generator exercises bridging merges, replaced windows, corrections, late events and restores', () => {
    const { share, results } = sampleRuns(scenarios, make, 120, 11);
    expect(share((x) => results(x).some((e) => (e.replaces?.length ?? 0) > 0))).toBeGreaterThan(0.2);
    expect(share((x) => results(x).some((e) => (e.replaces?.length ?? 0) > 1))).toBeGreaterThan(0.02);
    expect(share((x) => x.run.records.some((r) => r.late.length > 0))).toBeGreaterThan(0.2);
    expect(share((x) => results(x).some((e) => e.final && e.revision > 0))).toBeGreaterThan(0.2);
    expect(share((x) => results(x).some((e) => !e.final))).toBeGreaterThan(0.2);
    expect(share((x) => x.run.roundTrip !== undefined && results(x).length > 0)).toBeGreaterThan(0.2);
  });

  it('merge order does not matter: any arrival order and batching of the same events ends in the brute-force sessions', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.record({ k: fc.constantFrom('a', 'b'), ts: fc.integer({ min: 0, max: 600 }), value: fc.integer({ min: 1, max: 1000 }) }), { minLength: 1, maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 1, maxLength: 20 }),
        (gap, raw, cuts) => {
          const events: Ev[] = raw.map((r, id) => ({ key: r.k, ts: r.ts, item: { id, value: r.value } }));
          const w = new KeyedWindows({ assigner: session('s', gap) }, countSum);
          const out: WindowResult<CountSum>[] = [];
          const o = { emit: (e: WindowResult<CountSum>) => out.push(e), late: () => expect.unreachable('nothing is late before the watermark moves') };
          for (let i = 0, c = 0; i < events.length; c++) {
            const n = cuts[c % cuts.length];
            w.process(batchOf(events.slice(i, i + n), -Infinity, -Infinity), o);
            i += n;
          }
          expect(out).toEqual([]);
          w.advance(1e9, 0, o);
          const expected = ['a', 'b'].flatMap((key) =>
            sessionsOf(
              events.filter((e) => e.key === key),
              gap,
            ).map((s) => [key, s[0].ts, s[s.length - 1].ts + gap, s.length, s.reduce((a, e) => a + e.item.value, 0)]),
          );
          const actual = out.map((e) => [e.key, e.start, e.end, e.result.count, e.result.sum]);
          expect(actual.sort(), 'final sessions').toEqual(expected.sort());
          expect(out.every((e) => e.final && e.revision === 0 && e.replaces === undefined)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('sessions by hand', () => {
  it('an event that bridges two fired sessions merges them: one correction that replaces both', () => {
    const w = new KeyedWindows({ assigner: session('s', 10), allowedLatenessMs: 100 }, countSum);
    const out: WindowResult<CountSum>[] = [];
    const late: { ts: number; reason: string }[] = [];
    const o = { emit: (e: WindowResult<CountSum>) => out.push(e), late: (e: { ts: number; reason: string }) => late.push(e) };
    w.process(batchOf(evs(['a', 0, 1], ['a', 5, 2], ['a', 22, 4]), -Infinity, 40), o);
    expect(out.map((e) => [e.start, e.end, e.result.sum, e.revision, e.final])).toEqual([
      [0, 15, 3, 0, true],
      [22, 32, 4, 0, true],
    ]);
    out.length = 0;
    w.process(batchOf(evs(['a', 13, 8]), 40, 40), o); // [13, 23) overlaps both
    expect(out).toEqual([{ window: 's', key: 'a', start: 0, end: 32, result: { count: 4, sum: 15 }, revision: 1, final: true, replaces: [{ start: 0, end: 15 }, { start: 22, end: 32 }] }]);
    out.length = 0;
    w.process(batchOf(evs(['a', 30, 16]), 40, 40), o); // extends the merged session: its end moves, the old bounds are replaced
    expect(out).toEqual([{ window: 's', key: 'a', start: 0, end: 40, result: { count: 5, sum: 31 }, revision: 2, final: true, replaces: [{ start: 0, end: 32 }] }]);
    out.length = 0;
    w.advance(140, 0, o); // 40 + 100 <= 140: closed for good
    expect(out).toEqual([]);
    expect(w.size()).toEqual({ keys: 1, windows: 0, accumulators: 0 }); // the key's frontier stays until 40 + 100 + 10
    w.process(batchOf(evs(['a', 39, 32], ['b', 141, 1]), 140, 140), o);
    expect(late.map((e) => `${e.ts}:${e.reason}`)).toEqual(['39:closed']);
    w.advance(150, 0, o);
    expect(w.size()).toEqual({ keys: 1, windows: 1, accumulators: 1 });
  });

  it('an extension that reopens a fired session holds it until the watermark passes the new end', () => {
    const w = new KeyedWindows({ assigner: session('s', 10), allowedLatenessMs: 50, trigger: { count: 2 } }, countSum);
    const out: string[] = [];
    const o = { emit: (e: WindowResult<CountSum>) => out.push(`${e.start}-${e.end}:${e.result.count} r${e.revision} ${e.final ? 'final' : 'partial'}`), late: () => {} };
    w.process(batchOf(evs(['a', 0, 1]), -Infinity, 12), o);
    expect(out).toEqual(['0-10:1 r0 final']);
    w.process(batchOf(evs(['a', 9, 1]), 12, 12), o); // ends at 19 > 12: open again, one event since the last emission
    expect(out).toEqual(['0-10:1 r0 final']);
    w.process(batchOf(evs(['a', 15, 1]), 12, 12), o); // two events: the count trigger fires a partial
    expect(out.slice(1)).toEqual(['0-25:3 r1 partial']);
    w.advance(25, 0, o);
    expect(out.slice(2)).toEqual(['0-25:3 r2 final']);
  });

  it('the RxJS operator emits what the class emits', async () => {
    const sc = fc.sample(scenarios, { numRuns: 20, seed: 5 });
    for (const s of sc) {
      const inputs = s.stream.steps.map((st) =>
        st.kind === 'timer' ? { now: st.now } : { keys: st.events.map((e) => e.key), ts: st.events.map((e) => e.ts), items: st.events.map((e) => e.item), wmBefore: st.wmBefore, wmAfter: st.wmAfter, now: st.now },
      );
      const outs = await lastValueFrom(from(inputs).pipe(sessionWindows({ name: s.assigner.name, gapMs: s.assigner.gapMs, trigger: s.trigger, allowedLatenessMs: s.lateness }, countSum), toArray()));
      const run = drive(s.stream.steps, make(s));
      expect(outs.map((x) => x.stats)).toEqual(run.records.map((r) => r.stats));
      const norm = (xs: Emitted[]) => xs.map((e) => JSON.stringify(e)).sort();
      outs.forEach((x, i) =>
        expect(norm(x.results.map((e) => ({ window: e.window, key: e.key, start: e.start, end: e.end, revision: e.revision, final: e.final, count: e.result.count, sum: e.result.sum, ...(e.replaces ? { replaces: e.replaces.map((b) => `${b.start}-${b.end}`).sort() } : {}) })))).toEqual(
          norm(run.records[i].results),
        ),
      );
    }
  });
});

function evs(...xs: [string, number, number][]): Ev[] {
  return xs.map(([key, ts, value], id) => ({ key, ts, item: { id, value } }));
}

function batchOf(events: Ev[], wmBefore: number, wmAfter: number): KeyedBatch<Item> {
  return { keys: events.map((e) => e.key), ts: events.map((e) => e.ts), items: events.map((e) => e.item), wmBefore, wmAfter, now: 0 };
}
