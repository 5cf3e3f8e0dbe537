/**
 * Window assigners for the keyed window operator (operators/windows/keyed.ts): which windows an
 * event belongs to, kept apart from triggering (operators/windows/triggers.ts), as in Flink.
 * An assigner is plain data, so pipelines can be declared, validated, compared on restore and
 * printed. Aligned windows start at multiples of their slide from the Unix epoch, so every
 * instance and every restart agrees on window boundaries.
 */
import { tumblingStart } from './assign.js';

/** Fixed-size, non-overlapping windows [k·size, (k+1)·size). */
export interface TumblingAssigner {
  readonly type: 'tumbling';
  /** Stable name carried by every result ('10s'). */
  readonly name: string;
  readonly sizeMs: number;
}

/**
 * Overlapping (hopping) windows [k·slide, k·slide + size). State is kept in panes of
 * gcd(size, slide), so an event updates one accumulator and a window result merges its panes.
 */
export interface SlidingAssigner {
  readonly type: 'sliding';
  readonly name: string;
  readonly sizeMs: number;
  /** Must not exceed `sizeMs` (windows that leave gaps would drop events). */
  readonly slideMs: number;
}

/**
 * Per-key sessions: events less than `gapMs` apart (in a chain) share a session
 * [first event, last event + gap). An event that bridges two sessions merges them.
 */
export interface SessionAssigner {
  readonly type: 'session';
  readonly name: string;
  readonly gapMs: number;
}

/** One window length of a rolling assigner, e.g. { name: '7d', sizeMs: 7 * 86_400_000 }. */
export interface RollingSize {
  readonly name: string;
  readonly sizeMs: number;
}

/**
 * Long rolling windows per key from panes (e.g. 7, 30 and 90 days from daily panes): for each
 * size, the aggregate over the panes of the last `sizeMs` ending with the pane of the key's
 * newest event, re-emitted whenever the key changes.
 */
export interface RollingAssigner {
  readonly type: 'rolling';
  /** Names the assigner in late events; results carry the size's own name. */
  readonly name: string;
  readonly paneMs: number;
  /** Each a whole number of panes. */
  readonly sizes: readonly RollingSize[];
}

/** One window per key holding everything (running totals); it never closes. */
export interface GlobalAssigner {
  readonly type: 'global';
  readonly name: string;
}

export type WindowAssigner = TumblingAssigner | SlidingAssigner | SessionAssigner | RollingAssigner | GlobalAssigner;

/** Start and end carried by global window results: the bounds of the JavaScript Date range. */
export const GLOBAL_START = -8_640_000_000_000_000;
export const GLOBAL_END = 8_640_000_000_000_000;

/** Tumbling windows of `sizeMs`. */
export function tumbling(name: string, sizeMs: number): TumblingAssigner {
  return { type: 'tumbling', name, sizeMs };
}

/** Sliding windows of `sizeMs` every `slideMs`. */
export function sliding(name: string, sizeMs: number, slideMs: number): SlidingAssigner {
  return { type: 'sliding', name, sizeMs, slideMs };
}

/** Session windows closed by `gapMs` of inactivity per key. */
export function session(name: string, gapMs: number): SessionAssigner {
  return { type: 'session', name, gapMs };
}

/** Rolling windows of several sizes over panes of `paneMs`. */
export function rolling(name: string, paneMs: number, sizes: readonly RollingSize[]): RollingAssigner {
  return { type: 'rolling', name, paneMs, sizes };
}

/** One running window per key. */
export function globalWindow(name: string): GlobalAssigner {
  return { type: 'global', name };
}

export function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Pane width of an aligned assigner: the size for tumbling, gcd(size, slide) for sliding. */
export function paneWidth(a: TumblingAssigner | SlidingAssigner): number {
  return a.type === 'tumbling' ? a.sizeMs : gcd(a.sizeMs, a.slideMs);
}

/**
 * Starts of the aligned windows (size, slide) that contain `ts`, oldest first: every multiple
 * of `slide` in (ts - size, ts].
 */
export function windowStartsOf(ts: number, sizeMs: number, slideMs: number): number[] {
  const starts: number[] = [];
  for (let w = tumblingStart(ts - sizeMs, slideMs) + slideMs; w <= ts; w += slideMs) starts.push(w);
  return starts;
}

const positiveInt = (v: number) => Number.isSafeInteger(v) && v > 0;

/** Checks an assigner; throws an Error naming the assigner and the field to fix. */
export function validateAssigner(a: WindowAssigner): void {
  const where = `${a.type} window "${a.name}"`;
  if (typeof a.name !== 'string' || a.name.length === 0) throw new Error(`${a.type} window: name must be a non-empty string`);
  const ms = (field: string, v: number) => {
    if (!positiveInt(v)) throw new Error(`${where}: ${field} must be a positive whole number of ms, got ${v}`);
  };
  switch (a.type) {
    case 'tumbling':
      ms('sizeMs', a.sizeMs);
      return;
    case 'sliding':
      ms('sizeMs', a.sizeMs);
      ms('slideMs', a.slideMs);
      if (a.slideMs > a.sizeMs) throw new Error(`${where}: slideMs (${a.slideMs}) must not exceed sizeMs (${a.sizeMs}); events between windows would belong to none`);
      return;
    case 'session':
      ms('gapMs', a.gapMs);
      return;
    case 'rolling': {
      ms('paneMs', a.paneMs);
      if (!Array.isArray(a.sizes) || a.sizes.length === 0) throw new Error(`${where}: sizes must list at least one { name, sizeMs }`);
      const names = new Set<string>();
      for (const s of a.sizes) {
        ms(`size "${s.name}" sizeMs`, s.sizeMs);
        if (s.sizeMs % a.paneMs !== 0) throw new Error(`${where}: size "${s.name}" (${s.sizeMs} ms) must be a whole number of panes (${a.paneMs} ms)`);
        if (typeof s.name !== 'string' || s.name.length === 0) throw new Error(`${where}: every size needs a non-empty name`);
        if (names.has(s.name)) throw new Error(`${where}: size name "${s.name}" is used twice`);
        names.add(s.name);
      }
      return;
    }
    case 'global':
      return;
    default:
      throw new Error(`unknown window type "${(a as { type: unknown }).type}" (tumbling, sliding, session, rolling or global)`);
  }
}
