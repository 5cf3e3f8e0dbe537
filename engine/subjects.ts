/**
 * NATS subjects of contract v1 beyond the event stream, shared by the engine and the gateway.
 *
 *   weir.results.<pipeline>.<metric>.<keyToken>   live window results (partial and final), JSON
 *   weir.status.<pipeline>                        engine status once a second (watermark, lag), JSON
 *   weir.api.<pipeline>.<op>                      request-reply to the engine's live state (queue group)
 *
 * A key is any string, but a subject token cannot hold ".", "*", ">", whitespace or be empty, so
 * keys are carried as a token: the key itself when it is made only of [A-Za-z0-9_:-] (the common
 * case: readable subjects, `nats sub` works by hand), otherwise "~" + base64url(utf-8 key). The
 * two forms never collide because "~" is not in the plain alphabet. The decoder refuses keys that
 * are not well-formed UTF-16 (lone surrogates), since UTF-8 would fold them all into U+FFFD; should
 * one reach this code anyway, it is carried as "~~" + base64url(UTF-16LE), which keeps it distinct.
 */

const PLAIN_KEY = /^[A-Za-z0-9_:-]+$/;
/** A high surrogate not followed by a low one, or a low surrogate not preceded by a high one. */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function keyToken(key: string): string {
  if (PLAIN_KEY.test(key)) return key;
  if (LONE_SURROGATE.test(key)) return '~~' + Buffer.from(key, 'utf16le').toString('base64url');
  return '~' + Buffer.from(key, 'utf8').toString('base64url');
}

export function keyFromToken(token: string): string {
  if (token.startsWith('~~')) return Buffer.from(token.slice(2), 'base64url').toString('utf16le');
  return token.startsWith('~') ? Buffer.from(token.slice(1), 'base64url').toString('utf8') : token;
}

export function resultSubject(pipeline: string, metric: string, key: string): string {
  return `weir.results.${pipeline}.${metric}.${keyToken(key)}`;
}

/** The subject to subscribe to for a filter: exact key when given, otherwise every key of the metric (or every metric). */
export function resultFilterSubject(pipeline: string, metric?: string, key?: string): string {
  return `weir.results.${pipeline}.${metric ?? '*'}.${key !== undefined ? keyToken(key) : '*'}`;
}

export const statusSubject = (pipeline: string) => `weir.status.${pipeline}`;
export const apiSubject = (pipeline: string, op: 'latest' | 'topk' | 'status') => `weir.api.${pipeline}.${op}`;

/** The aggregates of a window result that can rank keys (top-K) or be charted. */
export const RESULT_FIELDS = ['count', 'rate', 'sum', 'min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p95', 'p99', 'p999'] as const;
export type ResultField = (typeof RESULT_FIELDS)[number];

/** One window result as published on weir.results.> and held in the engine's live view. */
export interface LiveResult {
  pipeline: string;
  metric: string;
  key: string;
  window: string;
  /** Window start and end, ms since epoch. */
  start: number;
  end: number;
  /** false: a partial update of an open window; true: the window fired (revision 0) or was corrected (> 0). */
  final: boolean;
  revision: number;
  count: number;
  /** count per second of window length. */
  rate: number;
  /** null only when the window's sum is beyond the double range (±1.8e308). */
  sum: number | null;
  min: number;
  max: number;
  mean: number;
  stddev: number | null;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  /** Wall time (ms) the engine produced this result: the window close for revision 0. */
  emittedAt: number;
}

/** Engine status published on weir.status.<pipeline>. */
export interface EngineStatus {
  pipeline: string;
  watermark: number;
  /** Watermark up to which every window row is final and durable in QuestDB. */
  durableWatermark: number;
  allowedLatenessMs: number;
  lagMessages: number;
  committedSeq: number;
  liveKeys: number;
  at: number;
}
