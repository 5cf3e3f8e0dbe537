/**
 * One event as the operator library sees it, after decoding and keying: the metric it was
 * published on, its value, its event time (ms since epoch) and its tags. Aggregators that need
 * only the value read `value`; first/last read `ts`; ratio reads `metric` (or a tag) to tell
 * hits from totals.
 */
export interface Sample {
  metric: string;
  value: number;
  ts: number;
  tags?: Readonly<Record<string, string>>;
}
