/** Shared by the debounce and throttle tests: a timeline of keyed events and a virtual-time run of an operator. */
import { Observable, type MonoTypeOperatorFunction, type SchedulerLike } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';

export interface Ev {
  t: number;
  key: string;
  /** Unique, increasing: the index of the event in the timeline. */
  id: number;
}
/** An emission: the event and the instant it came out. */
export type Out = Ev;

/** Emissions sorted by time, then key (emissions of one instant have no defined order across keys). */
export const canonical = (out: Out[]) => [...out].sort((a, b) => a.t - b.t || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

/** Plays `events` on virtual time through `operator(scheduler)`, completing at `end` (never when null). */
export function runOnVirtualTime(events: Ev[], end: number | null, operator: (scheduler: SchedulerLike) => MonoTypeOperatorFunction<Ev>): { out: Out[]; completedAt: number | null } {
  const scheduler = new TestScheduler(() => undefined);
  scheduler.maxFrames = Infinity;
  const source = new Observable<Ev>((sub) => {
    for (const e of events) scheduler.schedule(() => sub.next(e), e.t);
    if (end !== null) scheduler.schedule(() => sub.complete(), end);
  });
  const out: Out[] = [];
  let completedAt: number | null = null;
  source.pipe(operator(scheduler)).subscribe({
    next: (e) => out.push({ t: scheduler.now(), key: e.key, id: e.id }),
    complete: () => (completedAt = scheduler.now()),
  });
  scheduler.flush();
  return { out: canonical(out), completedAt };
}
