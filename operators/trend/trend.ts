import { Observable, type OperatorFunction } from 'rxjs';
import { encodeNum, SnapshotReader } from '../keyed/snapshot.js';
import { Ranking } from '../scores/ranking.js';

const SNAPSHOT_FORMAT = 'weir.trend/1';

/**
 * (value - previous) / |previous|, null when previous is 0 or when the fraction is beyond the
 * double range. A difference that overflows (values near ±1.8e308 of opposite signs) is taken
 * in halves, which give the same fraction.
 */
export function pctChange(value: number, previous: number): number | null {
  if (previous === 0) return null;
  let pct = (value - previous) / Math.abs(previous);
  if (!Number.isFinite(pct)) pct = (value / 2 - previous / 2) / (Math.abs(previous) / 2);
  return Number.isFinite(pct) ? pct + 0 : null;
}

/**
 * The direction of a change from `previous` to `value`: 0 (flat) when they are equal or |pct| is
 * below the threshold, else the sign of the change (also when pct is null: from 0, or out of range).
 */
export function changeDirection(value: number, previous: number, pct: number | null, threshold: number): -1 | 0 | 1 {
  if (value === previous || (pct !== null && Math.abs(pct) < threshold)) return 0;
  return value > previous ? 1 : -1;
}

export interface TrendOptions {
  /** Distance (ms) from a window's start to its previous window's start: the window size for tumbling windows. */
  periodMs: number;
  /** |pct| below this fraction is 'flat' (0.05 = 5 %). Default 0.05. */
  threshold?: number;
}

export type Direction = 'rising' | 'falling' | 'flat';

/** The change of one key's latest window against the window one period before. */
export interface Trend {
  key: string;
  /** Start of the key's latest window. */
  start: number;
  value: number;
  /** The previous window's value; null when the key has none. */
  previous: number | null;
  /** value - previous; null when previous is null, or when the difference is beyond the double range (±1.8e308). */
  change: number | null;
  /**
   * (value - previous) / |previous| as a fraction (0.25 is +25 %); null when previous is null or
   * 0, or when the fraction is beyond the double range (a previous value of 1e-320 or so).
   */
  pct: number | null;
  /**
   * 'flat' when |pct| < threshold (or no change), else the sign of pct; from 0 the sign of the
   * change; null when previous is null.
   */
  direction: Direction | null;
}

/** One window result of one key: the aggregate the trend follows. */
export interface WindowValue {
  key: string;
  start: number;
  value: number | null;
}

/** Top movers of the latest window (the largest start seen). */
export interface Movers {
  /** Start of the latest window; -Infinity before any value. */
  start: number;
  /** Largest pct first, ties by key. */
  rising: Trend[];
  /** Most negative pct first, ties by key. */
  falling: Trend[];
}

interface KeyState {
  /**
   * The windows that can still matter, as [start0, value0, start1, value1, ...] by ascending
   * start, starts >= latest - period (two windows for tumbling: one small array per key).
   */
  w: number[];
  /**
   * Where the key was last ranked among movers: +1 rising, -1 falling, 0 nowhere; with its
   * ranking score. After the rankings restart for a newer window this may be stale, which is
   * harmless: removing an absent entry is a no-op.
   */
  side: number;
  rankedBy: number;
}

/**
 * Window-over-window change per key, and the top movers of the latest window, maintained
 * incrementally. Window results may arrive as partials, firings and corrections (upserts of the
 * same window) and in any order: a key keeps the windows from (its latest start - period) on, so
 * an update costs O(windows per period + log n) and a correction of the previous window updates
 * the latest trend. Updates older than that are ignored (`update` returns null).
 *
 * Movers rank the keys whose latest window is the latest window of all keys, by pct, rising and
 * falling separately; keys without a pct (no previous window, or previous 0) are not ranked.
 * When a newer window appears, the rankings restart from the keys that reported it. With live
 * partials of the open window, early pct values compare a partial window with a full one.
 * State: one entry per key until `evictBefore`.
 */
export class TrendTracker {
  private readonly period: number;
  private readonly threshold: number;
  private readonly keys = new Map<string, KeyState>();
  private readonly rising = new Ranking();
  private readonly falling = new Ranking();
  private latest = -Infinity;

  constructor(opts: TrendOptions) {
    if (!(Number.isFinite(opts.periodMs) && opts.periodMs > 0)) throw new Error(`trend: periodMs must be a positive finite number of ms, got ${opts.periodMs}`);
    const threshold = opts.threshold ?? 0.05;
    if (!(Number.isFinite(threshold) && threshold >= 0)) throw new Error(`trend: threshold must be a finite fraction >= 0, got ${threshold}`);
    this.period = opts.periodMs;
    this.threshold = threshold;
  }

  /** Keys tracked. */
  get size(): number {
    return this.keys.size;
  }

  /** Start of the latest window seen (-Infinity before any). */
  get latestStart(): number {
    return this.latest;
  }

  /**
   * Records the value of `key` in the window starting at `start` (an upsert) and returns the
   * key's trend for its latest window, or null when the update is too old to change anything.
   */
  update(key: string, start: number, value: number): Trend | null {
    if (!Number.isFinite(value)) throw new Error(`trend: value of ${JSON.stringify(key)} at ${start} must be a finite number, got ${value}`);
    if (!Number.isFinite(start)) throw new Error(`trend: window start of ${JSON.stringify(key)} must be a finite number, got ${start}`);
    let st = this.keys.get(key);
    if (st === undefined) {
      st = { w: [], side: 0, rankedBy: 0 };
      this.keys.set(key, st);
    }
    const w = st.w;
    const n = w.length;
    if (n > 0 && start < w[n - 2] - this.period) return null;
    let i = n;
    while (i > 0 && w[i - 2] > start) i -= 2;
    if (i > 0 && w[i - 2] === start) w[i - 1] = value;
    else {
      w.splice(i, 0, start, value);
      if (i === n) {
        // a new latest window: forget what can no longer be its previous window
        let drop = 0;
        while (w[drop] < start - this.period) drop += 2;
        if (drop) w.splice(0, drop);
      }
    }
    const trend = this.trendOf(key, st);
    this.rank(key, st, trend);
    return trend;
  }

  /** The trend of `key`'s latest window; undefined for an unknown key. */
  get(key: string): Trend | undefined {
    const st = this.keys.get(key);
    return st ? this.trendOf(key, st) : undefined;
  }

  /** The k largest rising and falling movers of the latest window: O(k). */
  movers(k: number): Movers {
    const pick = (r: Ranking) => r.top(k).map((e) => this.trendOf(e.id, this.keys.get(e.id)!));
    return { start: this.latest, rising: pick(this.rising), falling: pick(this.falling) };
  }

  /** Forgets keys whose latest window starts before `start` (O(keys)); returns how many. */
  evictBefore(start: number): number {
    let n = 0;
    for (const [key, st] of this.keys) {
      if (st.w[st.w.length - 2] >= start) continue;
      this.unrank(key, st);
      this.keys.delete(key);
      n++;
    }
    return n;
  }

  /**
   * The whole state as JSON text, for checkpoints: format `weir.trend/1`, the spec (periodMs,
   * threshold), the latest start of all keys, and per key (in insertion order) its windows as
   * `[key, [start0, value0, start1, value1, ...]]`. The movers rankings are rebuilt on restore
   * from the keys at the latest start.
   */
  snapshot(): string {
    const keys: unknown[] = [];
    for (const [key, st] of this.keys) keys.push([key, st.w.map(encodeNum)]);
    return JSON.stringify({ format: SNAPSHOT_FORMAT, spec: this.spec(), latest: encodeNum(this.latest), keys });
  }

  /**
   * Replaces the whole state with a snapshot taken by a tracker with the same period and
   * threshold. Throws an Error saying what differs or what is malformed, and then leaves the
   * tracker as it was.
   */
  restore(text: string): void {
    const read = new SnapshotReader('trend');
    const top = read.open(text, SNAPSHOT_FORMAT, this.spec());
    const latest = read.number(top.latest, 'latest');
    if (!(Number.isFinite(latest) || latest === -Infinity)) read.fail(`latest must be a finite number or -Infinity, got ${latest}`);
    const seen = new Set<string>();
    const keys = read.array(top.keys, 'keys').map((entry, i): [string, number[]] => {
      const where = `keys[${i}]`;
      const [k, ws] = read.array(entry, where, { min: 2, max: 2 });
      const key = read.string(k, `${where}[0]`);
      read.unique(seen, key, 'keys');
      const at = `${where} (${JSON.stringify(key)}) windows`;
      const raw = read.array(ws, at, { min: 2 });
      if (raw.length % 2 !== 0) read.fail(`${at} must hold [start, value] pairs, got ${raw.length} numbers`);
      const w = raw.map((v, j) => read.finite(v, `${at}[${j}]`));
      const last = w[w.length - 2];
      for (let j = 2; j < w.length; j += 2) if (!(w[j - 2] < w[j])) read.fail(`${at}: starts must be ascending, ${w[j - 2]} comes before ${w[j]}`);
      if (w[0] < last - this.period) read.fail(`${at}: start ${w[0]} is more than periodMs (${this.period}) before the latest, ${last}: the tracker would have dropped it`);
      if (last > latest) read.fail(`${at}: start ${last} is after the latest start of all keys, ${latest}`);
      return [key, w];
    });
    this.keys.clear();
    this.latest = latest;
    const movers = { rising: { ids: [] as string[], scores: [] as number[] }, falling: { ids: [] as string[], scores: [] as number[] } };
    for (const [key, w] of keys) {
      const st: KeyState = { w, side: 0, rankedBy: 0 };
      this.keys.set(key, st);
      this.classify(st, this.trendOf(key, st));
      const side = st.side > 0 ? movers.rising : st.side < 0 ? movers.falling : null;
      side?.ids.push(key);
      side?.scores.push(st.rankedBy);
    }
    this.rising.rebuild(movers.rising.ids, movers.rising.scores);
    this.falling.rebuild(movers.falling.ids, movers.falling.scores);
  }

  private spec() {
    return { periodMs: this.period, threshold: this.threshold };
  }

  private trendOf(key: string, st: KeyState): Trend {
    const w = st.w;
    const start = w[w.length - 2];
    const value = w[w.length - 1];
    // starts are ascending and >= start - period, so the previous window can only be the first
    const previous = w.length > 2 && w[0] === start - this.period ? w[1] : null;
    if (previous === null) return { key, start, value, previous, change: null, pct: null, direction: null };
    const diff = value - previous;
    const change = Number.isFinite(diff) ? diff + 0 : null; // -0 (from -0 - 0) as 0
    const pct = pctChange(value, previous);
    const dir = changeDirection(value, previous, pct, this.threshold);
    const direction: Direction = dir === 0 ? 'flat' : dir > 0 ? 'rising' : 'falling';
    return { key, start, value, previous, change, pct, direction };
  }

  private unrank(key: string, st: KeyState): void {
    if (st.side > 0) this.rising.remove(key, st.rankedBy);
    else if (st.side < 0) this.falling.remove(key, st.rankedBy);
    st.side = 0;
  }

  private rank(key: string, st: KeyState, t: Trend): void {
    if (t.start > this.latest) {
      this.latest = t.start;
      this.rising.clear();
      this.falling.clear();
    } else this.unrank(key, st);
    this.place(key, st, t);
  }

  /** Ranks the key by its trend if it is a mover of the latest window. */
  private place(key: string, st: KeyState, t: Trend): void {
    this.classify(st, t);
    if (st.side > 0) this.rising.insert(key, st.rankedBy);
    else if (st.side < 0) this.falling.insert(key, st.rankedBy);
  }

  /** Sets where the key ranks among movers (side, rankedBy) by its trend, without ranking it. */
  private classify(st: KeyState, t: Trend): void {
    st.side = 0;
    if (t.start !== this.latest || t.pct === null || t.direction === 'flat') return;
    st.side = t.direction === 'rising' ? 1 : -1;
    st.rankedBy = st.side * t.pct;
  }
}

/**
 * RxJS operator: feeds window results into `tracker` and emits the key's trend after each update
 * that can change it (null values and too-old windows are skipped). The tracker stays readable
 * (`movers`, `get`) by the caller.
 *
 * @example
 * const clicks = new TrendTracker({ periodMs: 86_400_000, threshold: 0.05 });
 * dailyClicks$.pipe(trendByKey(clicks)).subscribe(publish);
 * clicks.movers(25);
 */
export function trendByKey(tracker: TrendTracker): OperatorFunction<WindowValue, Trend> {
  return (source) =>
    new Observable<Trend>((destination) =>
      source.subscribe({
        next(w) {
          if (w.value === null) return;
          let t: Trend | null;
          try {
            t = tracker.update(w.key, w.start, w.value);
          } catch (err) {
            destination.error(err);
            return;
          }
          if (t) destination.next(t);
        },
        error: (err) => destination.error(err),
        complete: () => destination.complete(),
      }),
    );
}
