/**
 * Reading window snapshots back: each check names where in the snapshot the problem is, so a
 * corrupt or mismatched checkpoint fails with a message instead of a half-restored operator.
 */

/** A number as JSON: finite numbers as they are, ±Infinity and NaN as strings. */
export function encodeNumber(x: number): number | string {
  return Number.isFinite(x) ? x : String(x);
}

export function decodeNumber(v: unknown, where: string): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  if (v === 'NaN') return NaN;
  throw new Error(`window snapshot: ${where} must be a number, got ${notANumber(v)}`);
}

/** What a snapshot held where a number belongs, for the refusal. */
export function notANumber(v: unknown): string {
  // JSON.parse reads a literal past the double range (1e999) as ±Infinity, which JSON.stringify prints as null.
  return typeof v === 'number' ? `a literal past the double range (parsed as ${v})` : JSON.stringify(v);
}

export function decodeCount(v: unknown, where: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= -1) return v;
  throw new Error(`window snapshot: ${where} must be a whole number >= -1, got ${JSON.stringify(v)}`);
}

export function decodeString(v: unknown, where: string): string {
  if (typeof v === 'string') return v;
  throw new Error(`window snapshot: ${where} must be a string, got ${JSON.stringify(v)}`);
}

export function decodeArray(v: unknown, where: string, tupleOf = 1): unknown[] {
  if (!Array.isArray(v)) throw new Error(`window snapshot: ${where} must be an array, got ${typeof v}`);
  if (v.length % tupleOf !== 0) throw new Error(`window snapshot: ${where} must hold groups of ${tupleOf} values, got ${v.length}`);
  return v;
}

/** Deserialises an accumulator, naming where it was when the aggregator refuses it. */
export function decodeAcc<ACC>(deserialize: (text: string) => ACC, v: unknown, where: string): ACC {
  const text = decodeString(v, where);
  try {
    return deserialize(text);
  } catch (err) {
    throw new Error(`window snapshot: ${where}: ${(err as Error).message}`);
  }
}
