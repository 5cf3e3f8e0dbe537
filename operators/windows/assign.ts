/**
 * Window assignment, kept apart from triggering (as in Flink): which windows an event time
 * belongs to. Windows are aligned to the Unix epoch, so every instance and every restart agrees
 * on window boundaries.
 */

/** A tumbling window size, e.g. { name: '10s', sizeMs: 10_000 }. */
export interface TumblingSpec {
  /** Stable name used in tables and subjects ('10s', '1m'). */
  readonly name: string;
  readonly sizeMs: number;
}

/** Start of the epoch-aligned tumbling window of size `sizeMs` holding `ts` (negative ts included). */
export function tumblingStart(ts: number, sizeMs: number): number {
  return ts - (((ts % sizeMs) + sizeMs) % sizeMs);
}

/** Parses a duration like 250ms, 10s, 1m, 2h, 7d into milliseconds; throws a descriptive Error. */
export function parseDuration(text: string | number, where = 'duration'): number {
  if (typeof text === 'number') {
    if (!Number.isFinite(text) || text < 0) throw new Error(`${where} must be a non-negative number of ms, got ${text}`);
    return text;
  }
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new Error(`${where} must look like 500ms, 10s, 1m, 2h or 7d, got "${text}"`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(m[1]) * mult);
}
