/** Messages between the source (main thread) and partition workers. Batches are columnar: one clone per batch, never per event. */

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
}

/** A window result on its way to the live view and weir.results.> (no sketch: it stays in QuestDB). */
export interface WorkerResult {
  metric: string;
  key: string;
  window: string;
  start: number;
  end: number;
  final: boolean;
  revision: number;
  count: number;
  sum: number;
  min: number;
  max: number;
  mean: number;
  stddev: number | null;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  emittedAt: number;
}

export type MainToWorker =
  | { t: 'batch'; id: number; series: string[]; ts: Float64Array; values: Float64Array; wmBefore: number; wmAfter: number }
  | { t: 'advance'; wm: number }
  | { t: 'stop' };

export type WorkerToMain =
  | { t: 'ready' }
  | { t: 'done'; id: number; assigned: number; late: Record<string, number>; pendingRows: number }
  | { t: 'flushed'; wm: number; rows: number }
  | { t: 'results'; results: WorkerResult[] }
  | { t: 'flushFailed'; pendingRows: number; error: string }
  | { t: 'log'; level: 'info' | 'warn' | 'error'; msg: string }
  | { t: 'stopped' };
