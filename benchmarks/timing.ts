/** Timing helpers for benchmarks/operators/<family>.ts. */

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
