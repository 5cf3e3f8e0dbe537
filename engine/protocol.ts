/** Messages between the source (main thread) and partition workers. Batches are columnar: one clone per batch, never per event. */

export interface WorkerInit {
  index: number;
  questdbHttp: string;
  windows: { name: string; sizeMs: number; table: string }[];
  allowedLatenessMs: number;
  sketchAccuracy: number;
  flushIntervalMs: number;
}

export type MainToWorker =
  | { t: 'batch'; id: number; series: string[]; ts: Float64Array; values: Float64Array; wmBefore: number; wmAfter: number }
  | { t: 'advance'; wm: number }
  | { t: 'stop' };

export type WorkerToMain =
  | { t: 'ready' }
  | { t: 'done'; id: number; assigned: number; late: Record<string, number>; pendingRows: number }
  | { t: 'flushed'; wm: number; rows: number }
  | { t: 'flushFailed'; pendingRows: number; error: string }
  | { t: 'log'; level: 'info' | 'warn' | 'error'; msg: string }
  | { t: 'stopped' };
