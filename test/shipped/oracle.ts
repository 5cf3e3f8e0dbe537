/**
 * Brute force for the shipped pipelines, written from their declarations (config/pipelines/*.yaml,
 * read here with the yaml package, not with the engine's parser) and from the documented
 * semantics, independently of the engine: no import from engine/ or operators/.
 *
 * Everything is recomputed from the full arrays of published events: each window's aggregate
 * from all of its events, scores from each key's aggregates, trends from neighbouring windows,
 * alerts by replaying a small state machine over the windows in event-time order.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import type { KeyedSample } from '../../engine/pipeline/runtime.js';
import { ROOT } from '../harness.js';

/** An event as the pipeline runtime takes it. */
export type Ev = KeyedSample;

export type Fields = Record<string, number | null>;

/** One expected row of weir_p_<pipeline>. */
export interface Row {
  key: string;
  window: string;
  start: number;
  end: number;
  fields: Fields;
}

// ---- the declarations ------------------------------------------------------------------------

type Obj = Record<string, unknown>;

export interface Decl {
  name: string;
  metrics: string[];
  where?: { tags?: Record<string, string | string[]>; value?: { min?: number; max?: number } };
  keyBy: string[];
  window: { type: string; size?: number; pane?: number; sizes?: number[] };
  allowedLateness: number;
  aggregates: Record<string, Obj & { fn: string; metric?: string }>;
  score?: { normalise: Record<string, Obj>; components: Record<string, Record<string, number>>; profiles: Record<string, Record<string, number>> };
  trend?: { field: string; threshold: number };
  alerts: AlertRule[];
}

export interface AlertRule {
  name: string;
  field: string;
  op: '>' | '>=' | '<' | '<=';
  threshold: number;
  forMs: number;
  resolve: number;
  severity: string;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "500ms", "10s", "1m", "2h", "7d" or a number of ms. */
export function ms(v: unknown): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(String(v));
  if (!m) throw new Error(`oracle: not a duration: ${JSON.stringify(v)}`);
  return Number(m[1]) * UNITS[m[2]];
}

/** The name of a window size: the largest unit that divides it ("7d", "10s", "1m"). */
export function sizeName(size: number): string {
  for (const [u, f] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const)
    if (size % f === 0) return `${size / f}${u}`;
  return `${size}ms`;
}

export function loadDecl(name: string): Decl {
  const raw = parse(readFileSync(path.join(ROOT, 'config/pipelines', `${name}.yaml`), 'utf8')) as Obj;
  const w = raw.window as Obj;
  const keyBy = raw.keyBy === undefined ? ['key'] : Array.isArray(raw.keyBy) ? (raw.keyBy as string[]) : [raw.keyBy as string];
  const score = raw.score as Obj | undefined;
  const trend = raw.trend as Obj | undefined;
  return {
    name: raw.name as string,
    metrics: (raw.source as Obj).metrics as string[],
    where: (raw.source as Obj).where as Decl['where'],
    keyBy,
    window: {
      type: w.type as string,
      size: w.size !== undefined ? ms(w.size) : undefined,
      pane: w.pane !== undefined ? ms(w.pane) : undefined,
      sizes: w.sizes !== undefined ? (w.sizes as unknown[]).map(ms) : undefined,
    },
    allowedLateness: raw.allowedLateness !== undefined ? ms(raw.allowedLateness) : 0,
    aggregates: raw.aggregates as Decl['aggregates'],
    score: score && {
      normalise: (score.normalise ?? {}) as Record<string, Obj>,
      components: score.components as Record<string, Record<string, number>>,
      profiles: score.profiles as Record<string, Record<string, number>>,
    },
    trend: trend && { field: trend.field as string, threshold: (trend.threshold as number | undefined) ?? 0.05 },
    alerts: ((raw.alerts ?? []) as Obj[]).map((a) => ({
      name: a.name as string,
      field: a.field as string,
      op: a.op as AlertRule['op'],
      threshold: a.threshold as number,
      forMs: a.for !== undefined ? ms(a.for) : 0,
      resolve: (a.resolve as number | undefined) ?? (a.threshold as number),
      severity: (a.severity as string | undefined) ?? 'warning',
    })),
  };
}

// ---- source, where, keyBy ----------------------------------------------------------------------

/** The pipeline's events with their key: its metrics, its where filter, and keyBy (events lacking a tag are skipped). */
export function keyed(d: Decl, events: readonly Ev[]): { key: string; e: Ev }[] {
  const out: { key: string; e: Ev }[] = [];
  for (const e of events) {
    if (!d.metrics.includes('*') && !d.metrics.includes(e.metric)) continue;
    const where = d.where;
    if (where?.value?.min !== undefined && e.value < where.value.min) continue;
    if (where?.value?.max !== undefined && e.value > where.value.max) continue;
    if (where?.tags && !Object.entries(where.tags).every(([t, v]) => e.tags?.[t] !== undefined && (Array.isArray(v) ? v : [v]).includes(e.tags[t]))) continue;
    const parts: string[] = [];
    let ok = true;
    for (const p of d.keyBy) {
      if (p === 'key') parts.push(e.key);
      else if (p === 'metric') parts.push(e.metric);
      else {
        const v = e.tags?.[p.slice(4)];
        if (v === undefined) ok = false;
        else parts.push(v);
      }
    }
    if (ok) out.push({ key: parts.join('|'), e });
  }
  return out;
}

// ---- aggregates ---------------------------------------------------------------------------------

const quantileName = (q: number): string => 'p' + String(Math.round(q * 1000) / 10).replace('.', '');

/** Output columns of the aggregates, in declaration order (percentiles: one per quantile). */
export function aggregateColumns(d: Decl): string[] {
  return Object.entries(d.aggregates).flatMap(([name, a]) => (a.fn === 'percentiles' ? ((a.q as number[] | undefined) ?? [0.5, 0.9, 0.95, 0.99]).map((q) => `${name}_${quantileName(q)}`) : [name]));
}

/** A ratio side: a list of metrics, one metric, or a selector { metric?, tags? }. */
function matcher(side: unknown): (e: Ev) => boolean {
  if (typeof side === 'string') return (e) => e.metric === side;
  if (Array.isArray(side)) return (e) => side.includes(e.metric);
  const s = side as { metric?: string | string[]; tags?: Record<string, string | string[]> };
  return (e) => {
    if (s.metric !== undefined && !(Array.isArray(s.metric) ? s.metric : [s.metric]).includes(e.metric)) return false;
    for (const [t, v] of Object.entries(s.tags ?? {})) if (e.tags?.[t] === undefined || !(Array.isArray(v) ? v : [v]).includes(e.tags[t])) return false;
    return true;
  };
}

/**
 * The exact sum of doubles, rounded once (Shewchuk's partials, as Python's math.fsum): the engine's
 * sums are exact (docs/operators-aggregates.md), so a naive running sum would put a mean like 3.5
 * at 3.4999999999999996 and decide an alert threshold the other way.
 */
export function fsum(xs: readonly number[]): number {
  // partials of values near the double range overflow: such sums are out of this oracle's scope
  if (xs.some((x) => !(Math.abs(x) < 1e300))) return xs.reduce((a, b) => a + b, 0);
  const partials: number[] = [];
  for (let x of xs) {
    let i = 0;
    for (let y of partials) {
      if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x];
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) partials[i++] = lo;
      x = hi;
    }
    partials.length = i;
    partials.push(x);
  }
  let n = partials.length;
  if (n === 0) return 0;
  let hi = partials[--n];
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = partials[--n];
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  // round half to even across the remaining partials
  if (n > 0 && ((lo < 0 && partials[n - 1] < 0) || (lo > 0 && partials[n - 1] > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi;
}

const sum = fsum;

/**
 * Every aggregate of the pipeline over `evs` (one window of one key), by brute force.
 * `windowMs`: the window's length, for rate.
 */
export function aggregate(d: Decl, evs: readonly Ev[], windowMs?: number): Fields {
  const out: Fields = {};
  for (const [name, a] of Object.entries(d.aggregates)) {
    const mine = a.metric === undefined ? evs : evs.filter((e) => e.metric === a.metric);
    const values = mine.map((e) => e.value);
    switch (a.fn) {
      case 'count':
        out[name] = values.length;
        break;
      case 'sum':
        out[name] = sum(values);
        break;
      case 'min':
        out[name] = values.length ? Math.min(...values) : null;
        break;
      case 'max':
        out[name] = values.length ? Math.max(...values) : null;
        break;
      case 'mean':
        out[name] = values.length ? sum(values) / values.length : null;
        break;
      case 'variance':
      case 'stddev': {
        if (values.length < 2) out[name] = null;
        else {
          const m = sum(values) / values.length;
          const v = sum(values.map((x) => (x - m) ** 2)) / (values.length - 1);
          out[name] = a.fn === 'variance' ? v : Math.sqrt(v);
        }
        break;
      }
      case 'rate': {
        const w = a.window !== undefined ? ms(a.window) : windowMs;
        if (w === undefined) throw new Error(`oracle: rate ${name} needs a window length`);
        const per = a.per !== undefined ? ms(a.per) : 1000;
        out[name] = ((a.of === 'sum' ? sum(values) : values.length) * per) / w;
        break;
      }
      case 'first':
      case 'last': {
        let best: Ev | undefined;
        for (const e of mine) {
          if (!best) best = e;
          else if (a.fn === 'last' ? e.ts > best.ts : e.ts < best.ts) best = e;
          else if (e.ts === best.ts && e.value > best.value) best = e;
        }
        out[name] = best ? best.value : null;
        break;
      }
      case 'ratio': {
        const num = matcher(a.hits ?? a.numerator);
        const den = matcher(a.total ?? a.denominator);
        const by = (e: Ev) => (a.of === 'sum' ? e.value : 1);
        const n = sum(mine.filter(num).map(by));
        const dn = sum(mine.filter(den).map(by));
        out[name] = dn === 0 ? null : n / dn;
        break;
      }
      case 'distinct': {
        const of = (a.of as string | undefined) ?? (a.tag !== undefined ? `tag:${a.tag}` : 'value');
        const items = new Set<string>();
        for (const e of mine) {
          if (of === 'value') items.add(String(e.value === 0 ? 0 : e.value));
          else if (of === 'metric') items.add(e.metric);
          else if (e.tags?.[of.slice(4)] !== undefined) items.add(e.tags[of.slice(4)]);
        }
        out[name] = items.size;
        break;
      }
      case 'percentiles': {
        const sorted = [...values].sort((x, y) => x - y);
        for (const q of (a.q as number[] | undefined) ?? [0.5, 0.9, 0.95, 0.99]) out[`${name}_${quantileName(q)}`] = sorted.length ? sorted[Math.floor(q * (sorted.length - 1))] : null;
        break;
      }
      default:
        throw new Error(`oracle: aggregate fn ${a.fn} (${name}) is not modelled`);
    }
  }
  return out;
}

/**
 * How close a column must be: percentiles within the documented bound of their implementation
 * (docs/operators-aggregates.md), everything else within 1e-9 relative (exact sums may differ
 * from a naive sum in the last bits).
 */
export function tolerance(d: Decl, column: string, exact: number): number {
  for (const [name, a] of Object.entries(d.aggregates)) {
    if (a.fn !== 'percentiles' || !column.startsWith(`${name}_p`)) continue;
    const impl = (a.impl as string | undefined) ?? 'ddsketch';
    if (impl === 'hdr') {
      const rel = 10 ** -((a.digits as number | undefined) ?? 3);
      return rel * Math.abs(exact) + ((a.resolution as number | undefined) ?? 0.001) * (1 + rel) * 0.5 + 1e-9 * Math.abs(exact);
    }
    if (impl === 'ddsketch') return ((a.accuracy as number | undefined) ?? 0.005) * Math.abs(exact) * (1 + 1e-9);
    return Infinity; // t-digest bounds ranks, not values
  }
  return 1e-9 * Math.max(1, Math.abs(exact));
}

// ---- windows ------------------------------------------------------------------------------------

const groupBy = <T>(xs: readonly T[], f: (x: T) => string): Map<string, T[]> => {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = f(x);
    const l = m.get(k);
    if (l) l.push(x);
    else m.set(k, [x]);
  }
  return m;
};

const floorTo = (ts: number, size: number) => ts - (((ts % size) + size) % size);

/** Tumbling windows: one row per (key, epoch-aligned window) with events. */
export function tumblingRows(d: Decl, events: readonly Ev[]): Row[] {
  const size = d.window.size!;
  const name = sizeName(size);
  const rows: Row[] = [];
  for (const [id, list] of groupBy(keyed(d, events), (x) => `${x.key}\u0000${floorTo(x.e.ts, size)}`)) {
    const [key, s] = id.split('\u0000');
    const start = Number(s);
    rows.push({ key, window: name, start, end: start + size, fields: aggregate(d, list.map((x) => x.e), size) });
  }
  return rows;
}

/** Global window: one row per key over all its events, start 0 and end 0. */
export function globalRows(d: Decl, events: readonly Ev[]): Row[] {
  return [...groupBy(keyed(d, events), (x) => x.key)].map(([key, list]) => ({ key, window: 'global', start: 0, end: 0, fields: aggregate(d, list.map((x) => x.e)) }));
}

/**
 * Rolling windows over a stream that is out of order across panes (docs/operators-windows.md,
 * "rolling"): `events` in stream order. Per key, E is the end of the pane of the newest event
 * seen so far. Each E a key ever had gets, per size S, the row [E - S, E) over the key's events
 * with a time in it that came before a newer pane replaced E (the replaced windows never change
 * again); the key's last E takes all of them. An event of an older pane still counts in the
 * current windows that hold its pane, but it never brings back a row of a pane that was not the
 * newest when it came. With the events in time order this is rollingRows.
 */
export function rollingRowsInStreamOrder(d: Decl, events: readonly Ev[]): Row[] {
  const pane = d.window.pane!;
  const rows: Row[] = [];
  const emit = (key: string, seen: readonly Ev[], end: number) => {
    for (const size of d.window.sizes!)
      rows.push({ key, window: sizeName(size), start: end - size, end, fields: aggregate(d, seen.filter((e) => e.ts >= end - size && e.ts < end)) });
  };
  for (const [key, list] of groupBy(keyed(d, events), (x) => x.key)) {
    const seen: Ev[] = [];
    let newest = -Infinity;
    for (const { e } of list) {
      const end = floorTo(e.ts, pane) + pane;
      if (end > newest) {
        if (newest > -Infinity) emit(key, seen, newest);
        newest = end;
      }
      seen.push(e);
    }
    emit(key, seen, newest);
  }
  return rows;
}

/**
 * Rolling windows: for each key and each pane (day) holding an event of the key, E = that pane's
 * end, and per size S the row [E - S, E) over the key's events in it. With `currentOnly`, only the
 * rows of the key's newest pane (its current values).
 */
export function rollingRows(d: Decl, events: readonly Ev[], currentOnly = false): Row[] {
  const pane = d.window.pane!;
  const rows: Row[] = [];
  for (const [key, list] of groupBy(keyed(d, events), (x) => x.key)) {
    const ends = [...new Set(list.map((x) => floorTo(x.e.ts, pane) + pane))].sort((a, b) => a - b);
    for (const end of currentOnly ? ends.slice(-1) : ends)
      for (const size of d.window.sizes!) {
        const inside = list.filter((x) => x.e.ts >= end - size && x.e.ts < end).map((x) => x.e);
        rows.push({ key, window: sizeName(size), start: end - size, end, fields: aggregate(d, inside) });
      }
  }
  return rows;
}

// ---- scores ---------------------------------------------------------------------------------------

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

/** The static normalisers of the declaration: minmax with both bounds, log, capped; none = identity. */
function normalise(spec: Obj | undefined, x: number): number {
  if (spec === undefined) return x;
  if ('minmax' in spec) {
    const { min, max } = spec.minmax as { min?: number; max?: number };
    if (min === undefined || max === undefined) throw new Error('oracle: running minmax is not modelled');
    return clamp01((x - min) / (max - min));
  }
  if ('log' in spec) return x > 0 ? clamp01(Math.log1p(x) / Math.log1p((spec.log as { max: number }).max)) : 0;
  if ('capped' in spec) return clamp01(x / (spec.capped as { cap: number }).cap);
  throw new Error(`oracle: normaliser ${JSON.stringify(spec)} is not modelled`);
}

/** Components (Σ weight · normalised field, a missing field counting 0) and profiles (Σ weight · component). */
export function scores(d: Decl, fields: Fields): Fields {
  const s = d.score!;
  const out: Fields = {};
  for (const [c, weights] of Object.entries(s.components)) {
    let total = 0;
    for (const [f, w] of Object.entries(weights)) {
      const v = fields[f];
      if (v !== null && v !== undefined) total += w * normalise(s.normalise[f], v);
    }
    out[c] = total;
  }
  for (const [p, weights] of Object.entries(s.profiles)) out[p] = sum(Object.entries(weights).map(([c, w]) => w * (out[c] as number)));
  return out;
}

// ---- trend ----------------------------------------------------------------------------------------

/** trend_pct and trend_dir of each row against the same key's window one size earlier. */
export function withTrend(d: Decl, rows: Row[]): Row[] {
  const t = d.trend!;
  const size = d.window.size!;
  const byId = new Map(rows.map((r) => [`${r.key}\u0000${r.start}`, r]));
  return rows.map((r) => {
    const prev = byId.get(`${r.key}\u0000${r.start - size}`);
    let pct: number | null = null;
    let dir: number | null = null;
    if (prev) {
      const a = r.fields[t.field];
      const b = prev.fields[t.field];
      if (a !== null && b !== null) {
        pct = b === 0 ? null : (a - b) / Math.abs(b);
        dir = pct === null ? Math.sign(a - b) : pct >= t.threshold ? 1 : pct <= -t.threshold ? -1 : 0;
      }
    }
    return { ...r, fields: { ...r.fields, trend_pct: pct, trend_dir: dir } };
  });
}

// ---- alerts ---------------------------------------------------------------------------------------

export interface Transition {
  rule: string;
  key: string;
  /** The window whose rows the rule observed (each window of a key is its own series). */
  window: string;
  state: 'firing' | 'resolved';
  severity: string;
  field: string;
  value: number;
  threshold: number;
  since: number;
  at: number;
}

const holds = (op: AlertRule['op'], v: number, bound: number) => (op === '>' ? v > bound : op === '>=' ? v >= bound : op === '<' ? v < bound : v <= bound);

/**
 * Replays each rule over each key's observations in event-time order (observation time = the
 * row's window end; a value holds until the next observation). One state machine per rule and
 * key, and per window name too when a key has several windows (rolling 7/30/90 d): a rule over
 * `rating` follows each window's own series, it does not compare the 7-day figure with the
 * 30-day one.
 * - ok: the condition `value op threshold` starts a pending period at that time (since);
 * - pending: it fires at the first observation at or after since + for that still meets the
 *   condition; an observation that does not meet it ends the pending period;
 * - firing: it resolves at the first observation where `value op resolve` no longer holds
 *   (values between resolve and threshold keep it firing).
 * Null values are no data and change nothing.
 */
export function alertTransitions(rules: readonly AlertRule[], rows: readonly Row[]): Transition[] {
  const out: Transition[] = [];
  for (const rule of rules) {
    for (const list of groupBy(rows, (r) => `${r.key}\u0000${r.window}`).values()) {
      const key = list[0].key;
      let phase: 'ok' | 'pending' | 'firing' = 'ok';
      let since = 0;
      for (const r of [...list].sort((a, b) => a.end - b.end)) {
        const v = r.fields[rule.field];
        if (v === null || v === undefined) continue;
        const at = r.end;
        const base = { rule: rule.name, key, window: r.window, severity: rule.severity, field: rule.field, value: v, threshold: rule.threshold };
        if (phase === 'firing') {
          if (!holds(rule.op, v, rule.resolve)) {
            phase = 'ok';
            out.push({ ...base, state: 'resolved', since: at, at });
          }
          continue;
        }
        if (!holds(rule.op, v, rule.threshold)) {
          phase = 'ok';
          continue;
        }
        if (phase === 'ok') {
          phase = 'pending';
          since = at;
        }
        if (at - since >= rule.forMs) {
          phase = 'firing';
          out.push({ ...base, state: 'firing', since, at });
        }
      }
    }
  }
  return out.sort((a, b) => a.at - b.at || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

// ---- comparing ------------------------------------------------------------------------------------

/** Differences between a row read back and the expected one, one line each (empty: equal). */
export function rowDiff(d: Decl, id: string, got: Record<string, unknown>, want: Row, columns: readonly string[]): string[] {
  const out: string[] = [];
  for (const c of columns) {
    const w = want.fields[c];
    const g = got[c] as number | null | undefined;
    if (w === null || w === undefined) {
      if (g !== null && g !== undefined) out.push(`${id} ${c}: expected null, got ${g}`);
      continue;
    }
    if (g === null || g === undefined) out.push(`${id} ${c}: expected ${w}, got null`);
    else if (!(Math.abs(g - w) <= tolerance(d, c, w))) out.push(`${id} ${c}: expected ${w}, got ${g}`);
  }
  return out;
}
