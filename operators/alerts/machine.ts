import { encodeNum, SnapshotReader } from '../keyed/snapshot.js';

export type AlertOp = '>' | '>=' | '<' | '<=';
export type Severity = 'info' | 'warning' | 'critical';

/** One alert rule over a numeric field of a keyed result. */
export interface AlertRule {
  name: string;
  /** The field the rule watches (an aggregate, a score, trend pct, ...). */
  field: string;
  /** The rule fires when `value op threshold` has held for `forMs`. */
  op: AlertOp;
  threshold: number;
  /** How long (event time, ms) the condition must hold before firing. Default 0: at once. */
  forMs?: number;
  /**
   * Hysteresis: a firing alert resolves only once `value op resolve` is false, so values between
   * resolve and threshold keep it firing. Must be on the clear side of threshold (<= it for > and
   * >=, >= it for < and <=). Default: the threshold (no hysteresis).
   */
  resolve?: number;
  /** Default 'warning'. */
  severity?: Severity;
}

/** A state change of one (rule, key) alert. */
export interface AlertTransition {
  rule: string;
  key: string;
  state: 'firing' | 'resolved';
  severity: Severity;
  field: string;
  /** The observed value that caused the transition. */
  value: number;
  threshold: number;
  /** Firing: event time the condition started to hold. Resolved: event time it stopped (= at). */
  since: number;
  /** Event time of the transition (the observation's ts). */
  at: number;
}

const OPS: readonly AlertOp[] = ['>', '>=', '<', '<='];
const SEVERITIES: readonly Severity[] = ['info', 'warning', 'critical'];

/** `value op bound`. */
export function holds(op: AlertOp, value: number, bound: number): boolean {
  switch (op) {
    case '>':
      return value > bound;
    case '>=':
      return value >= bound;
    case '<':
      return value < bound;
    case '<=':
      return value <= bound;
  }
}

/** Throws a descriptive Error unless `rule` is usable (the path names the rule). */
export function checkRule(rule: AlertRule): void {
  const at = `alert ${JSON.stringify(rule.name)}`;
  if (typeof rule.name !== 'string' || rule.name.length === 0) throw new Error('alert: name must be a non-empty string');
  if (!OPS.includes(rule.op)) throw new Error(`${at}: op must be one of ${OPS.join(' ')}, got ${JSON.stringify(rule.op)}`);
  if (!Number.isFinite(rule.threshold)) throw new Error(`${at}: threshold must be a finite number, got ${rule.threshold}`);
  const forMs = rule.forMs ?? 0;
  if (!(Number.isFinite(forMs) && forMs >= 0)) throw new Error(`${at}: forMs must be a finite number of ms >= 0, got ${rule.forMs}`);
  if (rule.resolve !== undefined) {
    if (!Number.isFinite(rule.resolve)) throw new Error(`${at}: resolve must be a finite number, got ${rule.resolve}`);
    const above = rule.op === '>' || rule.op === '>=';
    if (above ? rule.resolve > rule.threshold : rule.resolve < rule.threshold)
      throw new Error(`${at}: resolve (${rule.resolve}) must be on the clear side of threshold (${rule.threshold}) for op "${rule.op}"`);
  }
  if (rule.severity !== undefined && !SEVERITIES.includes(rule.severity)) throw new Error(`${at}: severity must be one of ${SEVERITIES.join(', ')}, got ${JSON.stringify(rule.severity)}`);
}

/** Throws unless the event time of an observation is a finite number. */
export function checkTs(rule: AlertRule, key: string, ts: number): void {
  if (!Number.isFinite(ts)) throw new Error(`alert ${JSON.stringify(rule.name)}: ts of ${JSON.stringify(key)} must be a finite number, got ${ts}`);
}

const OK = 0;
const PENDING = 1;
const FIRING = 2;
const PHASES = ['ok', 'pending', 'firing'] as const;
export type AlertPhase = (typeof PHASES)[number];

/** A rule as snapshots record it: every default filled in. */
export function ruleSpec(rule: AlertRule) {
  return {
    name: rule.name,
    field: rule.field,
    op: rule.op,
    threshold: rule.threshold,
    forMs: rule.forMs ?? 0,
    resolve: rule.resolve ?? rule.threshold,
    severity: rule.severity ?? 'warning',
  };
}

/** One machine's state in a snapshot: `[phase, since, lastTs, outOfOrder]`. */
export type MachineState = [AlertPhase, number | string, number | string, number];

const MACHINE_FORMAT = 'weir.alert/1';

/**
 * The alert of one (rule, key): a pure state machine over (ts, value) observations in event-time
 * order, with the value taken to hold until the next observation.
 *
 *   ok --condition holds--> pending (since = ts) --still holds at ts >= since + for--> FIRING
 *   pending --condition fails--> ok            FIRING --`value op resolve` fails--> RESOLVED, ok
 *
 * With `forMs` 0 the first observation that meets the condition fires. Values in the hysteresis
 * band (between resolve and threshold) neither start nor keep a pending alert, and neither
 * resolve a firing one, so an alert cannot flap inside the band. Observations older than the
 * newest one seen are ignored (counted in `outOfOrder`); null and non-finite values are "no
 * data" and change nothing.
 */
export class AlertMachine {
  private phase = OK;
  private since = 0;
  private lastTs = -Infinity;
  /** Observations ignored because they were older than the newest one seen. */
  outOfOrder = 0;
  private readonly forMs: number;
  private readonly resolveAt: number;

  constructor(private readonly rule: AlertRule) {
    checkRule(rule);
    this.forMs = rule.forMs ?? 0;
    this.resolveAt = rule.resolve ?? rule.threshold;
  }

  /** True while pending or firing: state worth keeping. */
  get active(): boolean {
    return this.phase !== OK;
  }

  get firing(): boolean {
    return this.phase === FIRING;
  }

  /** Start of the current pending or firing period (meaningful while `active`). */
  get activeSince(): number {
    return this.since;
  }

  /**
   * Takes one observation; returns the transition it causes, if any. Throws on a non-finite
   * `ts` (and changes nothing): NaN would fire without waiting `for`, Infinity would make every
   * later observation out of order.
   */
  observe(key: string, ts: number, value: number | null): AlertTransition | null {
    checkTs(this.rule, key, ts);
    if (value === null || !Number.isFinite(value)) return null;
    if (ts < this.lastTs) {
      this.outOfOrder++;
      return null;
    }
    this.lastTs = ts;
    const { op, threshold } = this.rule;
    if (this.phase === FIRING) {
      if (holds(op, value, this.resolveAt)) return null;
      this.phase = OK;
      return this.transition(key, 'resolved', value, ts, ts);
    }
    if (!holds(op, value, threshold)) {
      this.phase = OK;
      return null;
    }
    if (this.phase === OK) {
      this.phase = PENDING;
      this.since = ts;
    }
    if (ts - this.since < this.forMs) return null;
    this.phase = FIRING;
    return this.transition(key, 'firing', value, this.since, ts);
  }

  /**
   * The state as JSON text, for checkpoints: format `weir.alert/1`, the rule (defaults filled
   * in) and `state`: `[phase, since, lastTs, outOfOrder]`.
   */
  snapshot(): string {
    return JSON.stringify({ format: MACHINE_FORMAT, spec: ruleSpec(this.rule), state: this.state() });
  }

  /** Replaces the state with a snapshot of a machine of the same rule; throws an Error saying what differs or is malformed. */
  restore(text: string): void {
    const read = new SnapshotReader('alert');
    const top = read.open(text, MACHINE_FORMAT, ruleSpec(this.rule));
    this.load(this.readState(read, top.state, 'state', true));
  }

  /** `[phase, since, lastTs, outOfOrder]`, as AlertEvaluator snapshots keep it per key. */
  state(): MachineState {
    return [PHASES[this.phase], encodeNum(this.since), encodeNum(this.lastTs), this.outOfOrder];
  }

  /**
   * Reads a `state()` back, checking it is one this rule's machine can be in (`allowOk` false:
   * pending or firing only); `load` it afterwards.
   */
  readState(read: SnapshotReader, v: unknown, where: string, allowOk: boolean): { phase: number; since: number; lastTs: number; outOfOrder: number } {
    const [p, s, l, o] = read.array(v, where, { min: 4, max: 4 });
    const phase = PHASES.indexOf(read.oneOf(p, allowOk ? PHASES : PHASES.slice(1), `${where} phase`));
    const since = read.finite(s, `${where} since`);
    const lastTs = read.number(l, `${where} lastTs`);
    const outOfOrder = read.count(o, `${where} outOfOrder`);
    if (!(Number.isFinite(lastTs) || (lastTs === -Infinity && phase === OK))) read.fail(`${where} lastTs must be a finite number${phase === OK ? ' or -Infinity' : ''}, got ${lastTs}`);
    // pending: the newest observation started or continued it before `for` ran out; firing: it fired at least `for` after since.
    if (phase === PENDING && !(lastTs - since < this.forMs && since <= lastTs))
      read.fail(`${where}: pending since ${since} with the newest observation at ${lastTs} is not a state of a rule with for = ${this.forMs} ms`);
    if (phase === FIRING && !(lastTs - since >= this.forMs && since <= lastTs))
      read.fail(`${where}: firing since ${since} with the newest observation at ${lastTs} is not a state of a rule with for = ${this.forMs} ms`);
    return { phase, since, lastTs, outOfOrder };
  }

  /** Sets a state `readState` returned (for AlertEvaluator.restore; use `restore` otherwise). */
  load(state: { phase: number; since: number; lastTs: number; outOfOrder: number }): void {
    this.phase = state.phase;
    this.since = state.since;
    this.lastTs = state.lastTs;
    this.outOfOrder = state.outOfOrder;
  }

  private transition(key: string, state: 'firing' | 'resolved', value: number, since: number, at: number): AlertTransition {
    const r = this.rule;
    return { rule: r.name, key, state, severity: r.severity ?? 'warning', field: r.field, value, threshold: r.threshold, since, at };
  }
}
