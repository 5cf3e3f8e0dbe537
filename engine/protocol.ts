/** Messages between the source (main thread) and partition workers. Batches are columnar: one clone per batch, never per event. */
import type { LiveResult } from './subjects.js';

export interface WorkerInit {
  index: number;
  questdbHttp: string;
  windows: { name: string; sizeMs: number; table: string }[];
  allowedLatenessMs: number;
  sketchAccuracy: number;
  flushIntervalMs: number;
  /** Live results: send firings, corrections and (every partialIntervalMs, 0 = never) partial updates to the main thread. */
  liveResults: boolean;
  partialIntervalMs: number;
  /** With liveResults, the worker publishes its results on weir.results.<pipeline>.<metric>.<key> itself, over its own connection. */
  natsUrl: string;
  pipeline: string;
}

/**
 * Window results on their way to the engine's live view, already published on weir.results.> by
 * the worker (no sketch: it stays in QuestDB).
 */
export type WorkerResult = LiveResult;

export type MainToWorker =
  /**
   * `durable` (only when above wmBefore, after a restart): windows final at or before it are
   * complete in QuestDB; the worker skips the batch's events for them, without counting them late.
   */
  | { t: 'batch'; id: number; series: string[]; ts: Float64Array; values: Float64Array; wmBefore: number; wmAfter: number; durable?: number }
  | { t: 'advance'; wm: number }
  | { t: 'stop' };

export type WorkerToMain =
  | { t: 'ready' }
  | { t: 'done'; id: number; assigned: number; late: Record<string, number>; replaySkipped: number; pendingRows: number }
  | { t: 'flushed'; wm: number; rows: number; pendingRows: number }
  | { t: 'results'; results: WorkerResult[] }
  | { t: 'flushFailed'; pendingRows: number; error: string }
  | { t: 'log'; level: 'info' | 'warn' | 'error'; msg: string }
  | { t: 'stopped' };
