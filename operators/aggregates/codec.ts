/**
 * Helpers for aggregator `deserialize`: every malformed state throws one Error that says which
 * aggregator, what is wrong and where in the text ("mean: cannot deserialize "[1,-2]": field 2
 * (count) must be a non-negative integer, got -2").
 */

/** A short, quoted excerpt of a state for error messages. */
export function excerpt(text: string, max = 60): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}...` : text);
}

/** Reads one serialised state; `fail` throws with the aggregator's name and the text. */
export class StateReader {
  constructor(
    readonly aggregator: string,
    readonly text: string,
  ) {}

  fail(what: string): never {
    throw new Error(`${this.aggregator}: cannot deserialize ${excerpt(this.text)}: ${what}`);
  }

  /** The text parsed as JSON. */
  json(): unknown {
    if (typeof this.text !== 'string') this.fail(`expected a string, got ${typeof this.text}`);
    try {
      return JSON.parse(this.text);
    } catch {
      return this.fail('not JSON');
    }
  }

  /** The text parsed as a JSON array of exactly `names.length` entries (named for messages). */
  tuple(names: readonly string[]): unknown[] {
    const v = this.json();
    if (!Array.isArray(v)) this.fail(`expected a JSON array [${names.join(', ')}]`);
    if (v.length !== names.length) this.fail(`expected ${names.length} fields [${names.join(', ')}], got ${v.length}`);
    return v;
  }

  /** A finite number. */
  number(v: unknown, field: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(`${field} must be a finite number, got ${show(v)}`);
    return v;
  }

  /** A non-negative safe integer. */
  count(v: unknown, field: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(`${field} must be a non-negative integer, got ${show(v)}`);
    return v;
  }

  /** A finite number or null (null stands for "no value yet"). */
  numberOrNull(v: unknown, field: string): number | null {
    return v === null ? null : this.number(v, field);
  }
}

/** A value as it appears in JSON, cut short. */
export function show(v: unknown): string {
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}
