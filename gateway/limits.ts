/** Limits on queries (invariant 6): a clear 400 past them. */
export const QUERY_LIMITS = { maxRangeMs: 31 * 86_400_000, maxRows: 50_000, maxQuantiles: 32 };
