/**
 * The aggregates of a pipeline as one Aggregator: one accumulator per named aggregate, each fed
 * only the samples of its metric (when it names one), read out as flat columns. Percentile
 * aggregates give one column per quantile (`<name>_p50`, ...), like aggregateColumns().
 */
import type { Aggregator } from '../../operators/aggregate.js';
import type { Sample } from '../../operators/sample.js';
import { aggregatorFor, type AggregateValue } from '../../operators/aggregates/registry.js';
import { aggregateColumns, quantileName, type PipelineSpec } from './spec.js';

export type Columns = Record<string, number | null>;

interface Part {
  name: string;
  metric: string | undefined;
  agg: Aggregator<Sample, unknown, AggregateValue>;
  columns: string[];
}

/** Builds the composite aggregator; options are checked by each aggregator's schema, errors name `where`. */
export function compositeAggregator(spec: PipelineSpec, where: string): { aggregator: Aggregator<Sample, unknown[], Columns>; columns: string[] } {
  const parts: Part[] = Object.entries(spec.aggregates).map(([name, a]) => {
    const { fn, metric, ...options } = a;
    if (fn === 'rate' && options.window === undefined) {
      // A rate divides by the window's length: the pipeline knows it for fixed-size windows.
      const w = spec.window;
      if (w.type !== 'tumbling' && w.type !== 'sliding')
        throw new Error(`${where}: aggregates.${name}: rate needs a fixed window length, and a ${w.type} window has none; use count (or give window:)`);
      options.window = w.size;
    }
    const agg = aggregatorFor(fn, options, `${where}: aggregates.${name}`);
    return { name, metric, agg, columns: aggregateColumns(name, a) };
  });
  const columns = parts.flatMap((p) => p.columns);
  const aggregator: Aggregator<Sample, unknown[], Columns> = {
    create: () => parts.map((p) => p.agg.create()),
    add(acc, s) {
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i];
        if (p.metric === undefined || p.metric === s.metric) acc[i] = p.agg.add(acc[i], s);
      }
      return acc;
    },
    merge(a, b) {
      for (let i = 0; i < parts.length; i++) a[i] = parts[i].agg.merge(a[i], b[i]);
      return a;
    },
    result(acc) {
      const out: Columns = {};
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i];
        const v = p.agg.result(acc[i]);
        if (v === null || typeof v === 'number') out[p.name] = v === null || Number.isFinite(v) ? v : null;
        else {
          for (const c of p.columns) {
            const q = c.slice(p.name.length + 1);
            const x = (v as Record<string, number | null>)[q];
            out[c] = typeof x === 'number' && Number.isFinite(x) ? x : null;
          }
        }
      }
      return out;
    },
    serialize: (acc) => JSON.stringify(parts.map((p, i) => p.agg.serialize(acc[i]))),
    deserialize(text) {
      let list: unknown;
      try {
        list = JSON.parse(text);
      } catch {
        throw new Error(`${where}: pipeline state is not JSON`);
      }
      if (!Array.isArray(list) || list.length !== parts.length || list.some((x) => typeof x !== 'string'))
        throw new Error(`${where}: pipeline state must be ${parts.length} serialized aggregates`);
      return parts.map((p, i) => p.agg.deserialize(list[i] as string));
    },
  };
  return { aggregator, columns };
}

export { quantileName };
