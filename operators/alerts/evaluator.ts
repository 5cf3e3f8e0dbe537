import { Observable, type OperatorFunction } from 'rxjs';
import { SnapshotReader } from '../keyed/snapshot.js';
import { AlertMachine, checkRule, checkTs, holds, ruleSpec, type AlertRule, type AlertTransition } from './machine.js';

const SNAPSHOT_FORMAT = 'weir.alerts/1';

/** Fields of one keyed result at one event time (a window result row). */
export interface FieldObservation {
  key: string;
  ts: number;
  values: Readonly<Record<string, number | null | undefined>>;
}

/** An alert that is firing now. */
export interface FiringAlert {
  rule: string;
  key: string;
  since: number;
}

/**
 * Every rule of a pipeline over every key: one `AlertMachine` per (rule, key) that is pending or
 * firing, none for keys in the ok state (a machine is created when a condition starts to hold and
 * dropped when it returns to ok), so state is bounded by the alerts in progress. The price: the
 * order check (older observations are ignored) only applies while a (rule, key) is active.
 */
export class AlertEvaluator {
  private readonly rules: readonly AlertRule[];
  private readonly machines: Map<string, AlertMachine>[];
  private readonly byName = new Map<string, number>();

  constructor(rules: readonly AlertRule[]) {
    rules.forEach((r, i) => {
      checkRule(r);
      if (this.byName.has(r.name)) throw new Error(`alert ${JSON.stringify(r.name)}: the name is used twice`);
      this.byName.set(r.name, i);
    });
    this.rules = rules;
    this.machines = rules.map(() => new Map());
  }

  /** (rule, key) pairs pending or firing. */
  get size(): number {
    let n = 0;
    for (const m of this.machines) n += m.size;
    return n;
  }

  /**
   * Feeds one row to every rule whose field it carries; emits the transitions in rule order.
   * Throws on a non-finite `ts` (at the first rule whose field the row carries).
   */
  observe(obs: FieldObservation, emit: (t: AlertTransition) => void): void {
    for (let i = 0; i < this.rules.length; i++) {
      const v = obs.values[this.rules[i].field];
      if (v === undefined) continue;
      const t = this.step(i, obs.key, obs.ts, v);
      if (t) emit(t);
    }
  }

  /** Feeds one value to one rule. Throws for an unknown rule. */
  observeValue(rule: string, key: string, ts: number, value: number | null): AlertTransition | null {
    const i = this.byName.get(rule);
    if (i === undefined) throw new Error(`unknown alert rule "${rule}" (${[...this.byName.keys()].join(', ')})`);
    return this.step(i, key, ts, value);
  }

  /** Alerts firing now, by rule then key. */
  firing(): FiringAlert[] {
    const out: FiringAlert[] = [];
    this.machines.forEach((machines, i) => {
      for (const [key, m] of machines) if (m.firing) out.push({ rule: this.rules[i].name, key, since: m.activeSince });
    });
    return out.sort((a, b) => (a.rule === b.rule ? (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) : this.byName.get(a.rule)! - this.byName.get(b.rule)!));
  }

  /**
   * The state as JSON text, for checkpoints: format `weir.alerts/1`, the rules (defaults filled
   * in), and per rule name the (key, machine) pairs pending or firing, each as
   * `[key, phase, since, lastTs, outOfOrder]`.
   */
  snapshot(): string {
    const machines: Record<string, unknown[]> = {};
    this.rules.forEach((r, i) => (machines[r.name] = [...this.machines[i]].map(([key, m]) => [key, ...m.state()])));
    return JSON.stringify({ format: SNAPSHOT_FORMAT, spec: this.spec(), machines });
  }

  /**
   * Replaces the state with a snapshot taken by an evaluator with the same rules (in the same
   * order). Throws an Error saying what differs or what is malformed (an unknown rule, an ok
   * machine, a pending one past its `for`, ...), and then leaves the evaluator as it was.
   */
  restore(text: string): void {
    const read = new SnapshotReader('alerts');
    const top = read.open(text, SNAPSHOT_FORMAT, this.spec());
    const byRule = read.object(top.machines, 'machines');
    for (const name of Object.keys(byRule)) if (!this.byName.has(name)) read.fail(`machines.${name}: no rule of that name (${[...this.byName.keys()].join(', ')})`);
    const restored = this.rules.map((rule, i) => {
      const where = `machines.${rule.name}`;
      if (!(rule.name in byRule)) read.fail(`${where} is missing`);
      const seen = new Set<string>();
      const machines = new Map<string, AlertMachine>();
      read.array(byRule[rule.name], where).forEach((entry, j) => {
        const at = `${where}[${j}]`;
        const row = read.array(entry, at, { min: 5, max: 5 });
        const key = read.string(row[0], `${at}[0]`);
        read.unique(seen, key, where);
        const m = new AlertMachine(this.rules[i]);
        m.load(m.readState(read, row.slice(1), `${at} (${JSON.stringify(key)})`, false));
        machines.set(key, m);
      });
      return machines;
    });
    restored.forEach((m, i) => (this.machines[i] = m));
  }

  private spec() {
    return { rules: this.rules.map(ruleSpec) };
  }

  private step(i: number, key: string, ts: number, value: number | null): AlertTransition | null {
    const machines = this.machines[i];
    let m = machines.get(key);
    if (m === undefined) {
      const rule = this.rules[i];
      checkTs(rule, key, ts);
      // an ok machine would stay ok: do not create one
      if (value === null || !Number.isFinite(value) || !holds(rule.op, value, rule.threshold)) return null;
      m = new AlertMachine(rule);
      machines.set(key, m);
    }
    const t = m.observe(key, ts, value);
    if (!m.active) machines.delete(key);
    return t;
  }
}

/**
 * RxJS operator: evaluates `evaluator`'s rules on each row and emits the alert transitions
 * (firing, resolved) in order. A row the evaluator refuses (a non-finite ts) errors the stream.
 *
 * @example
 * rows$.pipe(alertTransitions(new AlertEvaluator([{ name: 'error_rate_high', field: 'error_rate', op: '>', threshold: 0.05, resolve: 0.04, forMs: 20_000, severity: 'critical' }])))
 */
export function alertTransitions(evaluator: AlertEvaluator): OperatorFunction<FieldObservation, AlertTransition> {
  return (source) =>
    new Observable<AlertTransition>((destination) =>
      source.subscribe({
        next(obs) {
          try {
            evaluator.observe(obs, (t) => destination.next(t));
          } catch (err) {
            destination.error(err);
          }
        },
        error: (err) => destination.error(err),
        complete: () => destination.complete(),
      }),
    );
}
