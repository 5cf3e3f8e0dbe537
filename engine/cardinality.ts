/**
 * The cardinality bound of the default pipeline (limits.maxSeriesPerWindow): at most N distinct
 * keys of one metric in one window. The engine's state is per (metric, key, window) until the
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
 * `durable` covers the decision window of a rejected event before that event's dead letter is
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

export class SeriesBudget {
  /** final -> (metric \u0001 window \u0001 start) -> keys admitted. Keyed by final so that dropping final windows walks the few open ones. */
  private readonly open = new Map<number, Map<string, Set<string>>>();
  private keys = 0;
  /** Events refused so far. */
  rejected = 0;

  /** `max` 0 turns the bound off. */
  constructor(readonly max: number) {}

  /**
   * Admits the event's key into its decision window, or returns why not: the window already
   * holds `max` other keys of the metric. A key already open in the window is always admitted.
   */
  admit(metric: string, key: string, w: DecisionWindow): string | null {
    if (this.max <= 0) return null;
    let byId = this.open.get(w.final);
    if (!byId) this.open.set(w.final, (byId = new Map()));
    const id = `${metric}\u0001${w.name}\u0001${w.start}`;
    let set = byId.get(id);
    if (!set) byId.set(id, (set = new Set()));
    if (set.has(key)) return null;
    if (set.size >= this.max) {
      this.rejected++;
      return (
        `cardinality: metric "${metric}" already has ${set.size} open series in window ${w.name} starting ${iso(w.start)} ` +
        `(limits.maxSeriesPerWindow ${this.max}); key ${JSON.stringify(key.length > 64 ? key.slice(0, 64) + '…' : key)} would be a new one`
      );
    }
    set.add(key);
    this.keys++;
    return null;
  }

  /** Drops the key sets of windows final at `wm` (no event can enter them any more). */
  evict(wm: number): void {
    for (const [final, byId] of this.open) {
      if (final > wm) continue;
      for (const set of byId.values()) this.keys -= set.size;
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
