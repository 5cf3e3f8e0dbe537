/**
 * Comparing what the engine wrote or answered with the oracle: table rows, alert transitions and
 * rankings. Each returns a list of mismatches, one line each (empty: equal), so a failing test
 * shows what differs.
 */
import type { DbAlert, DbRow } from './live.js';
import { rowDiff, tolerance, type Decl, type Row, type Transition } from './oracle.js';

const rowId = (key: string, window: string, start: number) => `${key} ${window} ${new Date(start).toISOString()}`;

export interface RowCheck {
  /** Whether a row must be final (undefined: either). */
  final?: (r: Row) => boolean | undefined;
  /** Whether rows of the table that the oracle does not expect are mismatches (default true). */
  noExtra?: boolean;
}

/** Rows of weir_p_<pipeline> against the expected rows: same set of (key, window, start), same end, fields, final flag. */
export function tableDiff(d: Decl, got: readonly DbRow[], want: readonly Row[], columns: readonly string[], check: RowCheck = {}): string[] {
  const out: string[] = [];
  const byId = new Map(got.map((r) => [rowId(r.key, r.window, r.ts), r]));
  for (const w of want) {
    const id = rowId(w.key, w.window, w.start);
    const g = byId.get(id);
    if (!g) {
      out.push(`${id}: missing`);
      continue;
    }
    byId.delete(id);
    if (g.window_end !== w.end) out.push(`${id}: window_end expected ${new Date(w.end).toISOString()}, got ${new Date(g.window_end).toISOString()}`);
    const final = check.final?.(w);
    if (final !== undefined && g.final !== final) out.push(`${id}: final expected ${final}, got ${g.final}`);
    if (g.superseded === true) out.push(`${id}: superseded (only merged session windows are)`);
    out.push(...rowDiff(d, id, g, w, columns));
  }
  if (check.noExtra !== false) for (const id of byId.keys()) out.push(`${id}: not expected`);
  return out;
}

/** The newest row per (key, window) of a table: a rolling window's current value. */
export function newestRows(rows: readonly DbRow[]): DbRow[] {
  const m = new Map<string, DbRow>();
  for (const r of rows) {
    const id = `${r.key}\u0000${r.window}`;
    const o = m.get(id);
    if (!o || r.ts > o.ts) m.set(id, r);
  }
  return [...m.values()];
}

/** Alert transitions (from weir_alerts or live) against the expected ones. */
export function alertDiff(d: Decl, got: readonly DbAlert[], want: readonly Transition[]): string[] {
  const out: string[] = [];
  const id = (rule: string, key: string, state: string, at: number) => `${rule} ${key} ${state} at ${new Date(at).toISOString()}`;
  const byId = new Map<string, DbAlert>();
  for (const g of got) {
    const i = id(g.rule, g.key, g.state, g.ts);
    if (byId.has(i)) out.push(`${i}: twice`);
    byId.set(i, g);
  }
  for (const w of want) {
    const i = id(w.rule, w.key, w.state, w.at);
    const g = byId.get(i);
    if (!g) {
      out.push(`${i}: missing (value ${w.value}, since ${new Date(w.since).toISOString()})`);
      continue;
    }
    byId.delete(i);
    if (g.since !== w.since) out.push(`${i}: since expected ${new Date(w.since).toISOString()}, got ${new Date(g.since).toISOString()}`);
    if (g.severity !== w.severity) out.push(`${i}: severity expected ${w.severity}, got ${g.severity}`);
    if (g.field !== w.field) out.push(`${i}: field expected ${w.field}, got ${g.field}`);
    if (g.threshold !== w.threshold) out.push(`${i}: threshold expected ${w.threshold}, got ${g.threshold}`);
    if (!(Math.abs(g.value - w.value) <= tolerance(d, w.field, w.value))) out.push(`${i}: value expected ${w.value}, got ${g.value}`);
  }
  for (const [i, g] of byId) out.push(`${i}: not expected (value ${g.value})`);
  return out;
}

/**
 * A top-k answer against the full ranking (`want`: every candidate key with its score). Ties at
 * the cut may go either way: the scores must match position by position (1e-9), each returned
 * key must carry its own score, and every key scoring strictly better than the k-th must be in.
 */
export function topDiff(what: string, got: readonly { key: string; score: number | null }[], want: readonly { key: string; score: number }[], k: number, order: 'desc' | 'asc' = 'desc'): string[] {
  const out: string[] = [];
  const sign = order === 'desc' ? 1 : -1;
  const ranked = [...want].sort((a, b) => sign * (b.score - a.score) || (a.key < b.key ? -1 : 1));
  const top = ranked.slice(0, k);
  const eps = 1e-9;
  if (got.length !== top.length) out.push(`${what}: ${got.length} entries, expected ${top.length}`);
  const scoreOf = new Map(want.map((w) => [w.key, w.score]));
  for (let i = 0; i < Math.min(got.length, top.length); i++) {
    const g = got[i];
    if (g.score === null || Math.abs(g.score - top[i].score) > eps) out.push(`${what}: #${i + 1} score expected ${top[i].score} (${top[i].key}), got ${g.score} (${g.key})`);
    const own = scoreOf.get(g.key);
    if (own === undefined) out.push(`${what}: #${i + 1} ${g.key} is not a candidate`);
    else if (g.score === null || Math.abs(own - g.score) > eps) out.push(`${what}: #${i + 1} ${g.key} scores ${own}, the answer says ${g.score}`);
  }
  if (top.length) {
    const cut = top[top.length - 1].score;
    const keys = new Set(got.map((g) => g.key));
    for (const t of top) if (sign * (t.score - cut) > eps && !keys.has(t.key)) out.push(`${what}: ${t.key} (${t.score}) is missing`);
  }
  return out;
}
