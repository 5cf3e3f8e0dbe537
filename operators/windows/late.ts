import type { LateReason, WindowOutput, WindowStats } from './keyed.js';

/** Counts one late (event, window) pair and sends it to the late side output with its reason. */
export function sendLate<IN>(out: WindowOutput<IN, unknown>, stats: WindowStats, window: string, key: string, ts: number, item: IN, reason: LateReason, watermark: number): void {
  stats.late++;
  out.late({ window, key, ts, item, reason, watermark });
}
