/**
 * Every shipped pipeline (config/pipelines) validates AND builds a runtime: options of each
 * aggregate are checked by the aggregator's own schema only when the runtime is built, so a
 * pipeline can pass the format and still be refused at engine start.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadPipelineDir } from './load.js';
import { PipelineRuntime } from './runtime.js';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'config', 'pipelines');

describe('shipped pipelines', () => {
  const specs = loadPipelineDir(dir);
  it('are the five workloads of USE_CASES.md', () => {
    expect(specs.map((s) => s.name).sort()).toEqual(['bridge_ops', 'film_trending', 'films', 'interactions', 'tutors']);
  });
  for (const spec of specs)
    it(`${spec.name} builds a runtime with the columns its stages promise`, () => {
      const rt = new PipelineRuntime(spec);
      expect(rt.columns.length).toBeGreaterThan(0);
      if (spec.score) for (const p of Object.keys(spec.score.profiles)) expect(rt.columns).toContain(p);
      if (spec.trend) expect(rt.columns).toEqual(expect.arrayContaining(['trend_pct', 'trend_dir']));
      // one batch of events of its own metrics goes through without throwing
      const t0 = Date.UTC(2026, 10, 1);
      const samples = spec.source.metrics.map((metric, i) => ({ metric, key: 'k1', ts: t0 + i * 1000, value: 1, tags: { variant: 'A', source: 'home', user: `u${i}` } }));
      const out = rt.process(samples, -Infinity, t0, 0);
      const closed = rt.tick(t0 + 400 * 86_400_000, 3_600_000);
      // a debounce holds what the closing tick emitted until the key has been quiet long enough
      const later = rt.tick(t0 + 400 * 86_400_000, 3_600_000 + 86_400_000);
      expect(out.results.length + closed.results.length + later.results.length).toBeGreaterThan(0);
    });
});
