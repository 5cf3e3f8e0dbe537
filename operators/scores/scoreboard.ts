import { Observable, type OperatorFunction } from 'rxjs';
import { encodeNum, SnapshotReader } from '../keyed/snapshot.js';
import { createNormaliser, type Normaliser, type NormaliserSpec } from './normalise.js';
import { Ranking, type Ranked } from './ranking.js';

const SNAPSHOT_FORMAT = 'weir.scores/1';

/** What a pipeline declares under `score:` (see operators/scores/config.ts for the schema). */
export interface ScoreSpec {
  /** How each metric maps to a comparable value; metrics without one are used raw. */
  normalise?: Readonly<Record<string, NormaliserSpec>>;
  /** Component -> metric -> weight: a component is the weighted sum of its normalised metrics. */
  components: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Profile -> component -> weight: a profile's total is the weighted sum of its components. */
  profiles: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Default k of `topK`. Default 50. */
  topK?: number;
}

/** One entity's scores, as emitted after each of its updates. */
export interface EntityScores {
  entity: string;
  components: Record<string, number>;
  profiles: Record<string, number>;
}

/** New metric values of one entity (a window result row); null removes the metric's value. */
export interface EntityMetrics {
  entity: string;
  values: Readonly<Record<string, number | null | undefined>>;
}

interface Term {
  /** Index of a metric (in a component) or a component (in a profile). */
  i: number;
  w: number;
}

interface Profile {
  name: string;
  terms: Term[];
  ranking: Ranking;
  /** Totals (and the ranking) must be recomputed before use: a running normaliser changed. */
  stale: boolean;
}

/**
 * Incremental scores and rankings of entities (films, tutors, ...).
 *
 * State is columnar: per metric the raw value (NaN: none) and its normalised value, per
 * component and per profile one value, per profile a `Ranking` of all entities. A missing metric
 * contributes 0 to its components.
 *
 * `set(entity, metric, value)` with a static normaliser (minmax with both bounds, log, capped,
 * identity) recomputes that entity's normalised metric, the components that use it and the
 * profiles that use those, and moves the entity in those profiles' rankings: O(c + p log n)
 * work, nothing for other entities. With a running normaliser (minmax without bounds, zscore,
 * rank), the update also changes the population; when that changes how other entities' values
 * normalise (new min/max, new mean/stddev, a rank crossed), the metric, the components using it
 * and the profiles using those are marked stale: later updates skip them, and they are
 * recomputed for every entity, and their rankings rebuilt (O(n log n)), by the next `topK` of
 * such a profile. `score`/`scores` of one entity stay exact meanwhile (computed on the fly).
 * Profiles that must answer top-K in O(k) under a continuous stream should use static
 * normalisers only.
 */
export class ScoreBoard {
  readonly profileNames: readonly string[];
  readonly componentNames: readonly string[];
  readonly metricNames: readonly string[];
  private readonly defaultK: number;
  /** Per metric, its normaliser's spec (undefined: identity), to build fresh ones on restore. */
  private readonly normaliserSpecs: (NormaliserSpec | undefined)[];
  /** What a snapshot records and a restore compares: the spec with defaults filled in. */
  private readonly snapshotSpec: unknown;
  private readonly metricIndex = new Map<string, number>();
  private readonly profileIndex = new Map<string, number>();
  private readonly normalisers: Normaliser[];
  private readonly components: Term[][];
  private readonly profiles: Profile[];
  /** Metric -> components using it; metric -> profiles using it (through any component). */
  private readonly metricComponents: number[][];
  private readonly metricProfiles: number[][];
  private readonly componentProfiles: number[][];
  private readonly metricDirty: boolean[];
  private readonly componentDirty: boolean[];

  private capacity = 0;
  private raw: Float64Array[] = [];
  private norm: Float64Array[] = [];
  private comp: Float64Array[] = [];
  private total: Float64Array[] = [];
  /** Slot -> entity id; undefined for free slots. */
  private ids: (string | undefined)[] = [];
  private readonly slots = new Map<string, number>();
  private readonly free: number[] = [];

  constructor(spec: ScoreSpec) {
    const componentNames = Object.keys(spec.components);
    const profileNames = Object.keys(spec.profiles);
    if (componentNames.length === 0) throw new Error('score.components: define at least one component');
    if (profileNames.length === 0) throw new Error('score.profiles: define at least one profile');
    const metricNames: string[] = [];
    for (const [c, weights] of Object.entries(spec.components))
      for (const [m, w] of Object.entries(weights)) {
        if (!Number.isFinite(w)) throw new Error(`score.components.${c}.${m}: weight must be a finite number, got ${w}`);
        if (!this.metricIndex.has(m)) {
          this.metricIndex.set(m, metricNames.length);
          metricNames.push(m);
        }
      }
    this.metricNames = metricNames;
    this.componentNames = componentNames;
    this.profileNames = profileNames;
    this.defaultK = spec.topK ?? 50;
    this.normaliserSpecs = metricNames.map((m) => spec.normalise?.[m]);
    this.normalisers = metricNames.map((m) => {
      try {
        return createNormaliser(spec.normalise?.[m]);
      } catch (err) {
        throw new Error(`score.normalise.${m}: ${(err as Error).message}`);
      }
    });
    this.components = componentNames.map((c) => Object.entries(spec.components[c]).map(([m, w]) => ({ i: this.metricIndex.get(m)!, w })));
    const componentIndex = new Map(componentNames.map((c, i) => [c, i]));
    this.profiles = profileNames.map((p, pi) => {
      this.profileIndex.set(p, pi);
      const terms = Object.entries(spec.profiles[p]).map(([c, w]) => {
        const i = componentIndex.get(c);
        if (i === undefined) throw new Error(`score.profiles.${p}.${c}: "${c}" is not a component (${componentNames.join(', ')})`);
        if (!Number.isFinite(w)) throw new Error(`score.profiles.${p}.${c}: weight must be a finite number, got ${w}`);
        return { i, w };
      });
      return { name: p, terms, ranking: new Ranking(), stale: false };
    });
    this.componentProfiles = componentNames.map((_, c) => this.profiles.flatMap((p, pi) => (p.terms.some((t) => t.i === c) ? [pi] : [])));
    this.metricComponents = metricNames.map((_, m) => this.components.flatMap((terms, c) => (terms.some((t) => t.i === m) ? [c] : [])));
    this.metricProfiles = this.metricComponents.map((cs) => [...new Set(cs.flatMap((c) => this.componentProfiles[c]))].sort((a, b) => a - b));
    this.metricDirty = metricNames.map(() => false);
    this.componentDirty = componentNames.map(() => false);
    this.snapshotSpec = {
      normalise: Object.fromEntries(metricNames.map((m, i) => [m, resolvedNormaliser(this.normaliserSpecs[i])])),
      components: Object.fromEntries(componentNames.map((c) => [c, { ...spec.components[c] }])),
      profiles: Object.fromEntries(profileNames.map((p) => [p, { ...spec.profiles[p] }])),
      topK: this.defaultK,
    };
    this.grow(64);
  }

  /** Number of entities. */
  get size(): number {
    return this.slots.size;
  }

  has(entity: string): boolean {
    return this.slots.has(entity);
  }

  /**
   * Sets one metric of one entity (null: removes the value). Creates the entity if needed.
   * Returns false when nothing changed (same value, or a metric no component uses). Throws on a
   * non-finite value.
   */
  set(entity: string, metric: string, value: number | null): boolean {
    const m = this.metricIndex.get(metric);
    if (m === undefined) return false;
    if (value !== null && !Number.isFinite(value)) throw new Error(`score input ${metric} of ${JSON.stringify(entity)} must be a finite number or null, got ${value}`);
    let slot = this.slots.get(entity);
    if (slot === undefined) {
      if (value === null) return false;
      slot = this.create(entity);
    }
    const column = this.raw[m];
    const before = column[slot];
    const after = value ?? NaN;
    if (Object.is(before, after)) return false;
    column[slot] = after;
    const nz = this.normalisers[m];
    if (nz.running && nz.update(Number.isNaN(before) ? undefined : before, value ?? undefined)) {
      this.invalidate(m);
      return true;
    }
    if (this.metricDirty[m]) return true;
    this.norm[m][slot] = value === null ? 0 : nz.normalise(value);
    for (const c of this.metricComponents[m]) if (!this.componentDirty[c]) this.comp[c][slot] = this.componentValue(c, slot);
    const id = entity;
    for (const pi of this.metricProfiles[m]) {
      const p = this.profiles[pi];
      if (p.stale) continue;
      const totals = this.total[pi];
      const old = totals[slot];
      const next = this.profileValue(pi, slot);
      if (Object.is(old, next)) continue;
      p.ranking.remove(id, old);
      p.ranking.insert(id, next);
      totals[slot] = next;
    }
    return true;
  }

  /** Sets several metrics of one entity (a window result row); returns whether anything changed. */
  update(entity: string, values: EntityMetrics['values']): boolean {
    let changed = false;
    for (const metric in values) {
      const v = values[metric];
      if (v === undefined) continue;
      if (this.set(entity, metric, v)) changed = true;
    }
    return changed;
  }

  /**
   * Runs many updates (a load, a replay after restart) with ranking maintenance suspended: the
   * profiles are recomputed and their rankings rebuilt once at the end, O(n log n), instead of
   * moved at every update. Queries inside `fn` stay exact (a `topK` rebuilds its profile and
   * maintenance resumes for it).
   */
  batch(fn: () => void): void {
    for (const p of this.profiles) p.stale = true;
    try {
      fn();
    } finally {
      this.profiles.forEach((p, pi) => {
        if (p.stale) this.refresh(pi);
      });
    }
  }

  /** Forgets an entity (its values leave running normalisers' populations). */
  remove(entity: string): boolean {
    const slot = this.slots.get(entity);
    if (slot === undefined) return false;
    for (let m = 0; m < this.metricNames.length; m++) {
      const before = this.raw[m][slot];
      if (Number.isNaN(before)) continue;
      if (this.normalisers[m].running && this.normalisers[m].update(before, undefined)) this.invalidate(m);
    }
    this.profiles.forEach((p, pi) => {
      if (!p.stale) p.ranking.remove(entity, this.total[pi][slot]);
    });
    this.slots.delete(entity);
    this.ids[slot] = undefined;
    this.free.push(slot);
    return true;
  }

  /** Current score of `entity` in `profile`; undefined for an unknown entity. Throws for an unknown profile. */
  score(entity: string, profile: string): number | undefined {
    const pi = this.profileOf(profile);
    const slot = this.slots.get(entity);
    if (slot === undefined) return undefined;
    return this.profiles[pi].stale ? this.freshProfileValue(pi, slot) : this.total[pi][slot];
  }

  /** Every component and profile score of `entity`; undefined for an unknown entity. */
  scores(entity: string): EntityScores | undefined {
    const slot = this.slots.get(entity);
    if (slot === undefined) return undefined;
    const components: Record<string, number> = {};
    this.componentNames.forEach((c, ci) => (components[c] = this.componentDirty[ci] ? this.freshComponentValue(ci, slot) : this.comp[ci][slot]));
    const profiles: Record<string, number> = {};
    this.profileNames.forEach((p, pi) => (profiles[p] = this.profiles[pi].stale ? this.freshProfileValue(pi, slot) : this.total[pi][slot]));
    return { entity, components, profiles };
  }

  /**
   * The best k entities of `profile` (score descending, ties by entity id ascending): O(k),
   * after a full recomputation of the profile if a running normaliser made it stale.
   */
  topK(profile: string, k = this.defaultK): Ranked[] {
    const pi = this.profileOf(profile);
    if (this.profiles[pi].stale) this.refresh(pi);
    return this.profiles[pi].ranking.top(k);
  }

  /** Whether `topK(profile)` will recompute the profile first. */
  isStale(profile: string): boolean {
    return this.profiles[this.profileOf(profile)].stale;
  }

  /**
   * The whole state as JSON text, for checkpoints: format `weir.scores/1`, the spec (defaults
   * filled in), every entity's raw metric values (`[id, value | null per metric]`, in the
   * spec's metric order), the populations of the running normalisers (sorted values for minmax
   * and rank, `{ exact: true }` for zscore, whose exact sums the values determine) and what is stale. Normalised values, components,
   * totals and rankings are recomputed on restore.
   */
  snapshot(): string {
    const entities: unknown[] = [];
    for (const [id, slot] of this.slots) {
      const row: unknown[] = [id];
      for (const column of this.raw) row.push(Number.isNaN(column[slot]) ? null : encodeNum(column[slot]));
      entities.push(row);
    }
    return JSON.stringify({
      format: SNAPSHOT_FORMAT,
      spec: this.snapshotSpec,
      entities,
      populations: Object.fromEntries(this.metricNames.map((m, i) => [m, this.normalisers[i].snapshot()])),
      stale: {
        metrics: this.metricNames.filter((_, i) => this.metricDirty[i]),
        components: this.componentNames.filter((_, i) => this.componentDirty[i]),
        profiles: this.profileNames.filter((_, i) => this.profiles[i].stale),
      },
    });
  }

  /**
   * Replaces the whole state with a snapshot taken by a board with the same spec. Throws an Error
   * saying what differs or what is malformed, and then leaves the board as it was.
   */
  restore(text: string): void {
    const read = new SnapshotReader('score board');
    const top = read.open(text, SNAPSHOT_FORMAT, this.snapshotSpec);
    const metrics = this.metricNames;
    const rows = read.array(top.entities, 'entities');
    const ids: string[] = [];
    const seen = new Set<string>();
    const raw = metrics.map(() => new Float64Array(rows.length));
    const present: number[][] = metrics.map(() => []);
    rows.forEach((r, i) => {
      const where = `entities[${i}]`;
      const row = read.array(r, where, { min: metrics.length + 1, max: metrics.length + 1 });
      const id = read.string(row[0], `${where}[0]`);
      read.unique(seen, id, 'entities');
      ids.push(id);
      metrics.forEach((m, mi) => {
        const v = row[mi + 1];
        if (v === null) raw[mi][i] = NaN;
        else present[mi].push((raw[mi][i] = read.finite(v, `${where} (${JSON.stringify(id)}) ${m}`)));
      });
    });
    const populations = read.object(top.populations, 'populations');
    for (const m of Object.keys(populations)) if (!this.metricIndex.has(m)) read.fail(`populations.${m}: not a metric of this board (${metrics.join(', ')})`);
    const normalisers = metrics.map((m, mi) => {
      if (!(m in populations)) read.fail(`populations.${m} is missing`);
      const nz = createNormaliser(this.normaliserSpecs[mi]);
      nz.restore(populations[m], present[mi], read, `populations.${m}`);
      return nz;
    });
    const stale = read.object(top.stale, 'stale');
    const named = (v: unknown, where: string, names: readonly string[]) => {
      const flags = names.map(() => false);
      read.array(v, where).forEach((n, j) => {
        const i = names.indexOf(read.string(n, `${where}[${j}]`));
        if (i < 0) read.fail(`${where}[${j}]: ${JSON.stringify(n)} is not one of ${names.join(', ')}`);
        if (flags[i]) read.fail(`${where}: ${JSON.stringify(n)} appears twice`);
        flags[i] = true;
      });
      return flags;
    };
    const metricDirty = named(stale.metrics, 'stale.metrics', metrics);
    const componentDirty = named(stale.components, 'stale.components', this.componentNames);
    const profileStale = named(stale.profiles, 'stale.profiles', this.profileNames);
    metricDirty.forEach((d, m) => {
      if (!d) return;
      if (!normalisers[m].running) read.fail(`stale.metrics: ${metrics[m]} has a static normaliser, it cannot be stale`);
      for (const c of this.metricComponents[m]) if (!componentDirty[c]) read.fail(`stale: metric ${metrics[m]} is stale but component ${this.componentNames[c]}, which uses it, is not`);
    });
    componentDirty.forEach((d, c) => {
      if (!d) return;
      for (const p of this.componentProfiles[c]) if (!profileStale[p]) read.fail(`stale: component ${this.componentNames[c]} is stale but profile ${this.profileNames[p]}, which uses it, is not`);
    });

    // Everything is read: replace the state.
    const n = ids.length;
    normalisers.forEach((nz, m) => (this.normalisers[m] = nz));
    this.slots.clear();
    this.free.length = 0;
    this.ids = ids.slice();
    this.raw = [];
    this.norm = [];
    this.comp = [];
    this.total = [];
    let capacity = 64;
    while (capacity < n) capacity *= 2;
    this.grow(capacity);
    ids.forEach((id, slot) => this.slots.set(id, slot));
    metrics.forEach((_, m) => {
      this.raw[m].set(raw[m]);
      this.metricDirty[m] = metricDirty[m];
      if (metricDirty[m]) return;
      const nz = this.normalisers[m];
      for (let slot = 0; slot < n; slot++) this.norm[m][slot] = Number.isNaN(raw[m][slot]) ? 0 : nz.normalise(raw[m][slot]);
    });
    this.componentNames.forEach((_, c) => {
      this.componentDirty[c] = componentDirty[c];
      if (!componentDirty[c]) for (let slot = 0; slot < n; slot++) this.comp[c][slot] = this.componentValue(c, slot);
    });
    this.profiles.forEach((p, pi) => {
      p.stale = profileStale[pi];
      if (p.stale) return p.ranking.clear();
      const totals = this.total[pi];
      for (let slot = 0; slot < n; slot++) totals[slot] = this.profileValue(pi, slot);
      p.ranking.rebuild(ids, totals);
    });
  }

  private profileOf(profile: string): number {
    const pi = this.profileIndex.get(profile);
    if (pi === undefined) throw new Error(`unknown profile "${profile}" (${this.profileNames.join(', ')})`);
    return pi;
  }

  private componentValue(c: number, slot: number): number {
    let s = 0;
    for (const t of this.components[c]) s += t.w * this.norm[t.i][slot];
    return Number.isFinite(s) ? s : wideValue(this.componentWide(c, (m) => this.norm[m][slot]));
  }

  private profileValue(pi: number, slot: number): number {
    let s = 0;
    for (const t of this.profiles[pi].terms) s += t.w * this.comp[t.i][slot];
    return Number.isFinite(s) ? s : wideValue(this.profileWide(pi, (m) => this.norm[m][slot]));
  }

  /** Same arithmetic as the stored path, reading through stale levels. */
  private freshNorm(m: number, slot: number): number {
    if (!this.metricDirty[m]) return this.norm[m][slot];
    const x = this.raw[m][slot];
    return Number.isNaN(x) ? 0 : this.normalisers[m].normalise(x);
  }

  private freshComponentValue(c: number, slot: number): number {
    if (!this.componentDirty[c]) return this.comp[c][slot];
    let s = 0;
    for (const t of this.components[c]) s += t.w * this.freshNorm(t.i, slot);
    return Number.isFinite(s) ? s : wideValue(this.componentWide(c, (m) => this.freshNorm(m, slot)));
  }

  private freshProfileValue(pi: number, slot: number): number {
    let s = 0;
    for (const t of this.profiles[pi].terms) s += t.w * this.freshComponentValue(t.i, slot);
    return Number.isFinite(s) ? s : wideValue(this.profileWide(pi, (m) => this.freshNorm(m, slot)));
  }

  /**
   * A component's weighted sum when the plain one left the double range on the way (raw values
   * or weights near 1.8e308: Infinity, or Infinity − Infinity = NaN): the same sum with a wider
   * exponent. Only taken when the plain sum is not finite, so ordinary scores are unchanged.
   */
  private componentWide(c: number, norm: (m: number) => number): Wide {
    return wideSum(this.components[c].map((t) => [t.w, wide(norm(t.i))]));
  }

  /** A profile's weighted sum of components, each kept with a wide exponent (see componentWide). */
  private profileWide(pi: number, norm: (m: number) => number): Wide {
    return wideSum(this.profiles[pi].terms.map((t) => [t.w, this.componentWide(t.i, norm)]));
  }

  /** Metric m's normalisation of other entities changed: mark it and everything above it stale. */
  private invalidate(m: number): void {
    this.metricDirty[m] = true;
    for (const c of this.metricComponents[m]) this.componentDirty[c] = true;
    for (const pi of this.metricProfiles[m]) this.profiles[pi].stale = true;
  }

  /** Recomputes what profile pi reads, for every entity, and rebuilds its ranking. */
  private refresh(pi: number): void {
    const p = this.profiles[pi];
    const live: number[] = [];
    for (let slot = 0; slot < this.capacity; slot++) if (this.ids[slot] !== undefined) live.push(slot);
    for (const t of p.terms) {
      const c = t.i;
      if (!this.componentDirty[c]) continue;
      for (const mt of this.components[c]) {
        const m = mt.i;
        if (!this.metricDirty[m]) continue;
        const nz = this.normalisers[m];
        const raw = this.raw[m];
        const norm = this.norm[m];
        for (const slot of live) norm[slot] = Number.isNaN(raw[slot]) ? 0 : nz.normalise(raw[slot]);
        this.metricDirty[m] = false;
      }
      const comp = this.comp[c];
      for (const slot of live) comp[slot] = this.componentValue(c, slot);
      this.componentDirty[c] = false;
    }
    const totals = this.total[pi];
    const ids: string[] = [];
    const scores = new Float64Array(live.length);
    live.forEach((slot, i) => {
      totals[slot] = this.profileValue(pi, slot);
      ids.push(this.ids[slot]!);
      scores[i] = totals[slot];
    });
    p.ranking.rebuild(ids, scores);
    p.stale = false;
  }

  private create(entity: string): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.slots.size;
      if (slot >= this.capacity) this.grow(this.capacity * 2);
    }
    this.slots.set(entity, slot);
    this.ids[slot] = entity;
    for (let m = 0; m < this.metricNames.length; m++) {
      this.raw[m][slot] = NaN;
      this.norm[m][slot] = 0;
    }
    for (let c = 0; c < this.components.length; c++) this.comp[c][slot] = this.componentValue(c, slot);
    this.profiles.forEach((p, pi) => {
      const t = this.profileValue(pi, slot);
      this.total[pi][slot] = t;
      if (!p.stale) p.ranking.insert(entity, t);
    });
    return slot;
  }

  private grow(capacity: number): void {
    const resize = (cols: Float64Array[], count: number) =>
      Array.from({ length: count }, (_, i) => {
        const next = new Float64Array(capacity);
        if (cols[i]) next.set(cols[i]);
        return next;
      });
    this.raw = resize(this.raw, this.metricNames.length);
    this.norm = resize(this.norm, this.metricNames.length);
    this.comp = resize(this.comp, this.components.length);
    this.total = resize(this.total, this.profiles.length);
    this.capacity = capacity;
  }
}

/** m · 2^e: a number whose exponent may be past the double range (m is a finite double). */
interface Wide {
  m: number;
  e: number;
}

/** v · 2^e in two steps, so that 2^e itself need not be a double. */
function times2(v: number, e: number): number {
  if (v === 0) return v; // not 0 · Infinity
  const h = Math.trunc(e / 2);
  return v * 2 ** h * 2 ** (e - h);
}

function wide(x: number): Wide {
  if (x === 0) return { m: 0, e: 0 };
  const e = Math.floor(Math.log2(Math.abs(x)));
  return { m: times2(x, -e), e };
}

/**
 * Σ wᵢ·vᵢ in wide form: each product is mantissa times mantissa (rounded as the plain product
 * would be) at the exponent sum, and the products are added at the scale of the largest. A
 * product more than ~2^1070 times smaller than the largest counts as 0.
 */
function wideSum(terms: [number, Wide][]): Wide {
  const products: Wide[] = [];
  let top = -Infinity;
  for (const [w, v] of terms) {
    if (w === 0 || v.m === 0) continue;
    const ww = wide(w);
    const p = { m: ww.m * v.m, e: ww.e + v.e };
    products.push(p);
    if (p.e > top) top = p.e;
  }
  let m = 0;
  for (const p of products) m += times2(p.m, p.e - top);
  return { m, e: m === 0 ? 0 : top };
}

/** The double nearest a wide number: ±Infinity past the double range (a score that is out of range). */
function wideValue(v: Wide): number {
  return times2(v.m, v.e);
}

/** A normaliser's spec as snapshots record it: defaults filled in, null for identity. */
function resolvedNormaliser(spec: NormaliserSpec | undefined): unknown {
  if (spec === undefined) return null;
  if ('zscore' in spec) return { zscore: { clip: spec.zscore.clip ?? 3 } };
  if ('minmax' in spec) return { minmax: { ...(spec.minmax.min !== undefined ? { min: spec.minmax.min } : {}), ...(spec.minmax.max !== undefined ? { max: spec.minmax.max } : {}) } };
  return spec;
}

/**
 * RxJS operator: feeds each entity's new metric values into `board` and emits that entity's
 * scores when something changed. The board stays readable (`topK`, `score`) by the caller.
 *
 * @example
 * const board = new ScoreBoard(spec.score);
 * filmRows$.pipe(scoreEntities(board)).subscribe((s) => live.publish(s));
 * board.topK('balanced', 25);
 */
export function scoreEntities(board: ScoreBoard): OperatorFunction<EntityMetrics, EntityScores> {
  return (source) =>
    new Observable<EntityScores>((destination) =>
      source.subscribe({
        next(row) {
          let scores: EntityScores | undefined;
          try {
            if (!board.update(row.entity, row.values)) return;
            scores = board.scores(row.entity);
          } catch (err) {
            destination.error(err);
            return;
          }
          if (scores) destination.next(scores);
        },
        error: (err) => destination.error(err),
        complete: () => destination.complete(),
      }),
    );
}
