/**
 * Shared by the snapshot tests of the keyed operators (scores, trends, alerts, debounce,
 * throttle): random corruptions of a valid snapshot, and the check that restoring one either
 * succeeds or throws the operator's own descriptive Error.
 */
import fc from 'fast-check';

/** A corruption of a snapshot text: cut it, change one character, or change one JSON node. */
export type Corruption = { kind: 'truncate'; at: number } | { kind: 'char'; at: number; ch: string } | { kind: 'node'; at: number; how: number };

export const corruptionArb: fc.Arbitrary<Corruption> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('char' as const), at: fc.nat(), ch: fc.constantFrom('0', '9', '-', '"', ',', ']', '}', '{', 'x', ' ', 'n', '.') }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('node' as const), at: fc.nat(), how: fc.nat() }) },
);

const REPLACEMENTS: unknown[] = [null, -1, 0.5, 'x', '', true, [], {}, 'NaN', '-0', 'Infinity', '-Infinity', 1e9, -1e9, 3];

type Json = unknown;

/** Every place in a JSON value: its parent and key (the root has no parent). */
function places(v: Json, out: { parent: Record<string, Json> | Json[]; key: string | number }[]): void {
  if (Array.isArray(v)) v.forEach((x, i) => (out.push({ parent: v, key: i }), places(x, out)));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push({ parent: v as Record<string, Json>, key: k }), places(x, out);
}

/** Applies a corruption; the result may still be a valid snapshot (a changed value, say). */
export function corrupt(text: string, c: Corruption): string {
  if (c.kind === 'truncate') return text.slice(0, c.at % Math.max(1, text.length));
  if (c.kind === 'char') {
    const i = c.at % Math.max(1, text.length);
    return text.slice(0, i) + c.ch + text.slice(i + 1);
  }
  let root: Json;
  try {
    root = JSON.parse(text);
  } catch {
    return text; // already broken by an earlier corruption
  }
  const all: { parent: Record<string, Json> | Json[]; key: string | number }[] = [];
  places(root, all);
  if (all.length === 0) return JSON.stringify(REPLACEMENTS[c.how % REPLACEMENTS.length]);
  const { parent, key } = all[c.at % all.length];
  const get = () => (parent as Record<string | number, Json>)[key];
  const set = (v: Json) => ((parent as Record<string | number, Json>)[key] = v);
  const ways = REPLACEMENTS.length + 5;
  const how = c.how % ways;
  if (how < REPLACEMENTS.length) set(structuredClone(REPLACEMENTS[how]));
  else if (how === REPLACEMENTS.length) {
    // delete the key or the array element
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key as string];
  } else if (how === REPLACEMENTS.length + 1) {
    // duplicate an array element, or nest the value
    if (Array.isArray(parent)) parent.splice(key as number, 0, structuredClone(get()));
    else set([get()]);
  } else if (how === REPLACEMENTS.length + 2) {
    const v = get();
    set(typeof v === 'number' ? -v - 1 : typeof v === 'string' ? `${v}z` : typeof v === 'boolean' ? !v : null);
  } else if (how === REPLACEMENTS.length + 3) {
    const v = get();
    set(typeof v === 'number' ? v + 0.5 : typeof v === 'string' ? v.slice(1) : 7);
  } else if (Array.isArray(parent) && parent.length > 1) {
    // swap with the next element
    const i = key as number;
    const j = (i + 1) % parent.length;
    [parent[i], parent[j]] = [parent[j], parent[i]];
  } else set('');
  return JSON.stringify(root);
}

/**
 * Restores `text` with `restore`. Returns true when it was accepted; when it was refused, checks
 * that the refusal is a plain Error whose message starts with "<what> snapshot: " (not a
 * TypeError from reading garbage, not a thrown non-Error).
 */
export function restoresCleanly(what: string, text: string, restore: (text: string) => void): boolean {
  try {
    restore(text);
    return true;
  } catch (err) {
    if (!(err instanceof Error) || err.constructor !== Error) throw new Error(`restoring ${JSON.stringify(text.slice(0, 200))} threw ${String(err)} (${(err as object)?.constructor?.name}), not an Error of the snapshot`);
    if (!err.message.startsWith(`${what} snapshot: `)) throw new Error(`restoring ${JSON.stringify(text.slice(0, 200))} threw "${err.message}", which does not start with "${what} snapshot: "`);
    return false;
  }
}
