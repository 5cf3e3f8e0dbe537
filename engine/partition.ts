/** Key affinity: the partition (worker) that owns a series. FNV-1a, stable across runs and machines. */
export function partitionOf(series: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < series.length; i++) {
    h ^= series.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}
