/**
 * A min-heap of event-time timers for window state that is not aligned (sessions, rolling
 * keys): each window or key keeps the time of its one valid timer in `due`; a timer whose time
 * no longer equals its target's `due` is stale and skipped when it comes up. So moving a
 * deadline later costs nothing, and moving it earlier pushes one more entry.
 */
export interface Timed {
  /** Time of the target's valid timer; Infinity when it has none. */
  due: number;
}

export class TimerHeap<T extends Timed> {
  private at: number[] = [];
  private items: T[] = [];

  get length(): number {
    return this.at.length;
  }

  /** Schedules `item` at `time` if that is earlier than its current timer. */
  schedule(item: T, time: number): void {
    if (time >= item.due) return;
    item.due = time;
    this.push(time, item);
  }

  /** Removes and returns the next target whose valid timer is at or before `wm`, with its `due` reset to Infinity. */
  next(wm: number): T | undefined {
    while (this.at.length > 0 && this.at[0] <= wm) {
      const time = this.at[0];
      const item = this.pop();
      if (item.due === time) {
        item.due = Infinity;
        return item;
      }
    }
    return undefined;
  }

  clear(): void {
    this.at = [];
    this.items = [];
  }

  private push(time: number, item: T): void {
    const at = this.at;
    const items = this.items;
    let i = at.length;
    at.push(time);
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (at[parent] <= time) break;
      at[i] = at[parent];
      items[i] = items[parent];
      i = parent;
    }
    at[i] = time;
    items[i] = item;
  }

  private pop(): T {
    const at = this.at;
    const items = this.items;
    const top = items[0];
    const lastAt = at.pop()!;
    const lastItem = items.pop()!;
    const n = at.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && at[r] < at[l] ? r : l;
        if (at[c] >= lastAt) break;
        at[i] = at[c];
        items[i] = items[c];
        i = c;
      }
      at[i] = lastAt;
      items[i] = lastItem;
    }
    return top;
  }
}
