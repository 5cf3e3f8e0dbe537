/**
 * The engine's in-memory view of the latest window results, per (window, metric, key). It is
 * fed by the partition workers (partial updates of open windows, firings and corrections) and
 * answers Latest and TopK without a QuestDB round trip. Pure: no I/O, no clock.
 *
 * Top-K uses a bounded heap (O(n log k) over the keys of one metric), and its answer is cached
 * per (window, metric, aggregate, order, scope) until that metric's results change, so repeated
 * dashboard queries between updates cost a lookup.
 */
import type { LiveResult, ResultField } from './subjects.js';

/** What the view needs of a result: its identity and window; ranked fields are read by name. */
export interface ViewResult {
  metric: string;
  key: string;
  window: string;
  start: number;
  end: number;
  final: boolean;
}

interface Entry<R extends ViewResult> {
  latest: R;
  lastFinal: R | null;
}

interface MetricView<R extends ViewResult> {
  keys: Map<string, Entry<R>>;
  version: number;
  /** Highest window start seen, and highest start that has fired. */
  maxStart: number;
  maxFinalStart: number;
  /** A lower bound of the keys' latest window end: eviction skips the metric while horizon <= it. */
  minEnd: number;
}

export type TopScope = 'current' | 'final';

export interface TopQuery<F extends string = ResultField> {
  metric: string;
  window: string;
  by: F;
  k: number;
  order: 'desc' | 'asc';
  /** current: the newest window (partial figures while it is open); final: the newest window that fired. */
  scope: TopScope;
}

export interface TopAnswer<R extends ViewResult = LiveResult> {
  window: string;
  /** Start of the ranked window, or null when the metric has no results in scope. */
  start: number | null;
  final: boolean;
  /** Keys in scope (before cutting to k). */
  candidates: number;
  entries: R[];
}

/**
 * Generic over the result shape: the default pipeline's LiveResult, or a declared pipeline's
 * flat result with its own fields (`F` names the fields top-K may rank by).
 */
export class LiveView<R extends ViewResult = LiveResult, F extends string = ResultField> {
  /**
   * @param acrossStarts rank every key's newest (or newest final) result whatever its window
   *   start: for rolling windows, whose rows start where each key's own newest pane puts them.
   *   Default: only the keys with a result in the newest window (tumbling, sliding, session).
   */
  constructor(private readonly acrossStarts = false) {}

  private readonly windows = new Map<string, Map<string, MetricView<R>>>();
  private readonly topCache = new Map<string, { version: number; k: number; answer: TopAnswer<R> }>();
  private keys = 0;
  /**
   * One counter for every metric view: a view that is dropped and created again never reuses a
   * version, so a cached top-K of the old view can never match the new one.
   */
  private version = 0;
  updates = 0;

  /** Number of (window, metric, key) entries held. */
  get size(): number {
    return this.keys;
  }

  update(r: R): void {
    this.updates++;
    let metrics = this.windows.get(r.window);
    if (!metrics) this.windows.set(r.window, (metrics = new Map()));
    let mv = metrics.get(r.metric);
    if (!mv) metrics.set(r.metric, (mv = { keys: new Map<string, Entry<R>>(), version: 0, maxStart: -Infinity, maxFinalStart: -Infinity, minEnd: Infinity }));
    mv.version = ++this.version;
    if (r.start > mv.maxStart) mv.maxStart = r.start;
    if (r.final && r.start > mv.maxFinalStart) mv.maxFinalStart = r.start;
    const e = mv.keys.get(r.key);
    if (!e) {
      if (r.end < mv.minEnd) mv.minEnd = r.end;
      mv.keys.set(r.key, { latest: r, lastFinal: r.final ? r : null });
      this.keys++;
      return;
    }
    // Newer window, or the same window again (a later partial, the firing, a correction).
    if (r.start > e.latest.start || (r.start === e.latest.start && (r.final || !e.latest.final))) e.latest = r;
    if (r.final && (!e.lastFinal || r.start >= e.lastFinal.start)) e.lastFinal = r;
  }

  /** The newest result of (metric, key) for each window, or for one window. */
  latest(metric: string, key: string, window?: string): R[] {
    const out: R[] = [];
    for (const [name, metrics] of this.windows) {
      if (window !== undefined && name !== window) continue;
      const e = metrics.get(metric)?.keys.get(key);
      if (e) out.push(e.latest);
    }
    return out;
  }

  /** The newest fired result of (metric, key) for each window, or for one window. */
  latestFinal(metric: string, key: string, window?: string): R[] {
    const out: R[] = [];
    for (const [name, metrics] of this.windows) {
      if (window !== undefined && name !== window) continue;
      const e = metrics.get(metric)?.keys.get(key);
      if (e?.lastFinal) out.push(e.lastFinal);
    }
    return out;
  }

  /** Every (window, metric, key) entry: its newest result and its newest fired one (for checkpoints). */
  *entries(): IterableIterator<{ latest: R; lastFinal: R | null }> {
    for (const metrics of this.windows.values()) for (const mv of metrics.values()) for (const e of mv.keys.values()) yield { latest: e.latest, lastFinal: e.lastFinal };
  }

  /** Metrics with live results, with their key counts. */
  metrics(): { metric: string; window: string; keys: number }[] {
    const out: { metric: string; window: string; keys: number }[] = [];
    for (const [window, metrics] of this.windows) for (const [metric, mv] of metrics) out.push({ metric, window, keys: mv.keys.size });
    return out;
  }

  topK(q: TopQuery<F>): TopAnswer<R> {
    const mv = this.windows.get(q.window)?.get(q.metric);
    if (!mv) return { window: q.window, start: null, final: q.scope === 'final', candidates: 0, entries: [] };
    const cacheKey = `${q.window}\u0001${q.metric}\u0001${q.by}\u0001${q.order}\u0001${q.scope}`;
    const hit = this.topCache.get(cacheKey);
    if (hit && hit.version === mv.version && hit.k >= q.k) {
      return hit.k === q.k ? hit.answer : { ...hit.answer, entries: hit.answer.entries.slice(0, q.k) };
    }
    const start = q.scope === 'final' ? mv.maxFinalStart : mv.maxStart;
    const sign = q.order === 'desc' ? 1 : -1;
    const heap = new BoundedHeap<R>(q.k);
    let candidates = 0;
    if (Number.isFinite(start)) {
      for (const e of mv.keys.values()) {
        const r = q.scope === 'final' ? e.lastFinal : e.latest;
        if (!r || (r.start !== start && !this.acrossStarts)) continue;
        const v = (r as unknown as Record<string, unknown>)[q.by];
        if (typeof v !== 'number' || Number.isNaN(v)) continue;
        candidates++;
        heap.offer(sign * v, r);
      }
    }
    const answer: TopAnswer<R> = { window: q.window, start: Number.isFinite(start) ? start : null, final: q.scope === 'final', candidates, entries: heap.sortedDesc() };
    if (this.topCache.size > 10_000) this.topCache.clear();
    this.topCache.set(cacheKey, { version: mv.version, k: q.k, answer });
    return answer;
  }

  /**
   * Drops keys whose newest window ended before `horizon` (idle keys); returns how many. A metric
   * whose keys all ended at or after the horizon is skipped without a scan. After an eviction the
   * newest window and newest fired window are those of the keys that remain.
   */
  evictBefore(horizon: number): number {
    let total = 0;
    for (const metrics of this.windows.values()) {
      for (const [metric, mv] of metrics) {
        if (horizon <= mv.minEnd) continue;
        let n = 0;
        let maxStart = -Infinity;
        let maxFinalStart = -Infinity;
        let minEnd = Infinity;
        for (const [key, e] of mv.keys) {
          if (e.latest.end < horizon) {
            mv.keys.delete(key);
            n++;
            continue;
          }
          if (e.latest.start > maxStart) maxStart = e.latest.start;
          if (e.lastFinal && e.lastFinal.start > maxFinalStart) maxFinalStart = e.lastFinal.start;
          if (e.latest.end < minEnd) minEnd = e.latest.end;
        }
        mv.minEnd = minEnd;
        if (n === 0) continue;
        total += n;
        mv.maxStart = maxStart;
        mv.maxFinalStart = maxFinalStart;
        mv.version = ++this.version;
        if (mv.keys.size === 0) metrics.delete(metric);
      }
    }
    this.keys -= total;
    return total;
  }
}

/** A min-heap of the k largest scores seen; ties keep the earlier key order stable by key name. */
class BoundedHeap<R extends ViewResult> {
  private readonly scores: number[] = [];
  private readonly items: R[] = [];
  constructor(private readonly k: number) {}

  private less(i: number, j: number): boolean {
    const a = this.scores[i];
    const b = this.scores[j];
    // On equal scores, the larger key ranks lower, so ties come out sorted by key ascending.
    return a < b || (a === b && this.items[i].key > this.items[j].key);
  }

  private swap(i: number, j: number) {
    [this.scores[i], this.scores[j]] = [this.scores[j], this.scores[i]];
    [this.items[i], this.items[j]] = [this.items[j], this.items[i]];
  }

  offer(score: number, item: R): void {
    if (this.k <= 0) return;
    if (this.scores.length < this.k) {
      this.scores.push(score);
      this.items.push(item);
      let i = this.scores.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!this.less(i, p)) break;
        this.swap(i, p);
        i = p;
      }
      return;
    }
    // Replace the root (the smallest kept) if the newcomer ranks higher.
    const root = this.scores[0];
    if (score < root || (score === root && item.key > this.items[0].key)) return;
    this.scores[0] = score;
    this.items[0] = item;
    let i = 0;
    const n = this.scores.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(l, m)) m = l;
      if (r < n && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }

  sortedDesc(): R[] {
    const idx = this.scores.map((_, i) => i);
    idx.sort((a, b) => this.scores[b] - this.scores[a] || (this.items[a].key < this.items[b].key ? -1 : this.items[a].key > this.items[b].key ? 1 : 0));
    return idx.map((i) => this.items[i]);
  }
}
