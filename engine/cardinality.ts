/**
 * The cardinality bounds of the default pipeline: at most limits.maxSeriesPerWindow distinct keys
 * of one metric in one window, and at most limits.maxSeriesTotal (metric, key) series over all
 * metrics in one window (else 10^6 metrics of one key each would pass the first). The engine's state is per (metric, key, window) until the
 * window is final, so without a bound a burst of distinct keys (10^6 in one message burst) grows
 * memory without limit; with it, an event that would open series N + 1 is dead-lettered with a
 * reason and the series already open go on.
 *
 * Each event is judged against one window: its *decision window*, the window of the event that
 * becomes final last (end + allowed lateness; for the default 10 s and 1 min, always the minute),
 * and only the keys of events admitted with that decision window count in it. Windows nested in
 * it (the 10-s windows of the minute) hold only keys it admitted, so they stay under the bound
 * too. The source judges in stream order, on the main thread, before events reach the workers.
 *
 * Why a replay after a crash decides the same (docs/faults.md, "Bad input"): a decision window
 * that is not final at the checkpoint's `durable` holds only events of messages after the
 * checkpoint (every committed message's windows are final and flushed), so the replay rebuilds its
 * key set from the same events in the same order; an event whose decision window is final at
 * `durable` is skipped by the replay as a whole, and the engine commits no checkpoint whose
 * `durable` covers the decision window of a refused event before that event's dead letter is
 * stored. Key sets of windows the watermark has made final are dropped: every later event of such
 * a window is late.
 */

export interface DecisionWindow {
  /** Window name (10s, 1m, ...). */
  name: string;
  start: number;
  /** end + allowed lateness: once the watermark reaches it, the window takes no more events. */
  final: number;
}

/** Why events of a window were refused: one object per full window, shared by all its refusals (a burst refuses them by the hundred thousand). */
export interface SeriesRefusal {
  /** The metric whose window is full; for the total bound, the first metric refused in it. */
  metric: string;
  window: string;
  start: number;
  max: number;
  /** 'metric': limits.maxSeriesPerWindow (one metric's keys); 'total': limits.maxSeriesTotal (every metric's keys in the window). */
  bound: 'metric' | 'total';
}

/** The reason a refused event's dead letter carries. */
export function refusalReason(r: SeriesRefusal, key: string, metric = r.metric): string {
  const k = JSON.stringify(key.length > 64 ? key.slice(0, 64) + '…' : key);
  return r.bound === 'metric'
    ? `cardinality: metric "${r.metric}" already has ${r.max} open series in window ${r.window} starting ${iso(r.start)} ` +
        `(limits.maxSeriesPerWindow ${r.max}); key ${k} would be a new one`
    : `cardinality: window ${r.window} starting ${iso(r.start)} already has ${r.max} open series over all metrics ` +
        `(limits.maxSeriesTotal ${r.max}); metric "${metric}" key ${k} would be a new one`;
}

/** One metric's keys in one window. */
interface MetricKeys {
  keys: Set<string>;
  refusal: SeriesRefusal | null;
}

/** One open window (name, start): its metrics' keys, and their total (the total bound). */
interface OpenWindow {
  metrics: Map<string, MetricKeys>;
  series: number;
  refusal: SeriesRefusal | null;
}

export class SeriesBudget {
  /** final -> (window \u0001 start) -> its keys. Keyed by final so that dropping final windows walks the few open ones. */
  private readonly open = new Map<number, Map<string, OpenWindow>>();
  private keys = 0;
  /** Events refused so far. */
  rejected = 0;

  /**
   * `max`: keys of one metric in one window; `maxTotal`: keys of all metrics in one window (10^6
   * metrics of one key each pass the first bound). 0 turns a bound off.
   */
  constructor(
    readonly max: number,
    readonly maxTotal = 0,
  ) {}

  /**
   * Admits the event's key into its decision window (null), or returns why not: the window
   * already holds `max` other keys of the metric, or `maxTotal` series of all metrics. A key
   * already open in the window is always admitted.
   */
  admit(metric: string, key: string, w: DecisionWindow): SeriesRefusal | null {
    if (this.max <= 0 && this.maxTotal <= 0) return null;
    let byId = this.open.get(w.final);
    if (!byId) this.open.set(w.final, (byId = new Map()));
    const id = `${w.name}\u0001${w.start}`;
    let ow = byId.get(id);
    if (!ow) byId.set(id, (ow = { metrics: new Map(), series: 0, refusal: null }));
    let mk = ow.metrics.get(metric);
    if (!mk) ow.metrics.set(metric, (mk = { keys: new Set(), refusal: null }));
    if (mk.keys.has(key)) return null;
    if (this.max > 0 && mk.keys.size >= this.max) {
      this.rejected++;
      return (mk.refusal ??= { metric, window: w.name, start: w.start, max: this.max, bound: 'metric' });
    }
    if (this.maxTotal > 0 && ow.series >= this.maxTotal) {
      this.rejected++;
      return (ow.refusal ??= { metric, window: w.name, start: w.start, max: this.maxTotal, bound: 'total' });
    }
    mk.keys.add(key);
    ow.series++;
    this.keys++;
    return null;
  }

  /** Drops the key sets of windows final at `wm` (no event can enter them any more). */
  evict(wm: number): void {
    for (const [final, byId] of this.open) {
      if (final > wm) continue;
      for (const ow of byId.values()) this.keys -= ow.series;
      this.open.delete(final);
    }
  }

  /** Keys held over all open decision windows (the gauge weir_open_series). */
  get size(): number {
    return this.keys;
  }
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}
