/** Timing helpers for benchmarks/operators/<family>.ts. */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

export type Say = (line: string) => void;

/** Times fn over `n` items and returns items per second (best of `rounds`, after one warm-up). */
export function perSecond(n: number, fn: () => void, rounds = 3): number {
  fn();
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  }
  return (n / best) * 1000;
}

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Runs two full garbage collections, so heap figures taken next hold only what is still reachable. */
export function collectGarbage(): void {
  gc();
  gc();
}
