import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPipelineDir, parsePipelineText } from './load.js';
import { aggregateColumns, parsePipeline, PipelineError, quantileName } from './spec.js';

const base = () => ({
  name: 'ops',
  source: { metrics: ['lat', 'req'] },
  window: { type: 'tumbling', size: '10s' },
  aggregates: { n: { fn: 'count', metric: 'req' }, lat: { fn: 'percentiles', metric: 'lat', q: [0.5, 0.95] } },
});

function problems(input: unknown): string {
  try {
    parsePipeline(input, 'ops.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(PipelineError);
    return (err as Error).message;
  }
  throw new Error('expected the pipeline to be refused');
}

describe('pipeline files', () => {
  it('every shipped pipeline in config/pipelines is valid', () => {
    const specs = loadPipelineDir(path.join(__dirname, '../../config/pipelines'));
    expect(specs.map((s) => s.name).sort()).toEqual(['bridge_ops', 'film_trending', 'films', 'interactions', 'tutors']);
    const tutors = specs.find((s) => s.name === 'tutors')!;
    expect(tutors.window).toEqual({ type: 'rolling', pane: 86_400_000, sizes: [7, 30, 90].map((d) => d * 86_400_000) });
    expect(tutors.debounce).toEqual({ wait: 2000, maxWait: 30_000, leading: false, trailing: true });
    expect(specs.find((s) => s.name === 'interactions')!.keyBy).toEqual(['tag:variant', 'tag:source']);
  });

  it('defaults: keyBy key, no lateness, both sinks, no alerts', () => {
    const p = parsePipeline(base());
    expect({ keyBy: p.keyBy, lateness: p.allowedLateness, sinks: p.sinks, alerts: p.alerts }).toEqual({ keyBy: ['key'], lateness: 0, sinks: { table: true, live: true }, alerts: [] });
  });

  it('percentile columns are named by quantile', () => {
    expect([0, 0.5, 0.9, 0.95, 0.99, 0.999, 1].map(quantileName)).toEqual(['p0', 'p50', 'p90', 'p95', 'p99', 'p999', 'p100']);
    expect(aggregateColumns('lat', { fn: 'percentiles', q: [0.5, 0.99] })).toEqual(['lat_p50', 'lat_p99']);
    expect(aggregateColumns('lat', { fn: 'percentiles' })).toEqual(['lat_p50', 'lat_p90', 'lat_p95', 'lat_p99']);
    expect(aggregateColumns('n', { fn: 'count' })).toEqual(['n']);
  });

  it('names the file and the path of each problem', () => {
    const cases: [unknown, RegExp][] = [
      [{ ...base(), name: 'Ops!' }, /ops\.yaml: name: name must be lowercase/],
      [{ ...base(), window: { type: 'hopping', size: '1m' } }, /ops\.yaml: window\.type/],
      [{ ...base(), window: { type: 'sliding', size: '1m' } }, /window\.slide/],
      [{ ...base(), window: { type: 'sliding', size: '1m', slide: '7s' } }, /window\.slide: size \(60000 ms\) must be a multiple of slide \(7000 ms\)/],
      [{ ...base(), window: { type: 'tumbling', size: '10 parsecs' } }, /window\.size: duration must look like/],
      [{ ...base(), window: { type: 'rolling', pane: '1d', sizes: ['7d', '36h'] } }, /window\.sizes\.1: each size must be a whole number of panes/],
      [{ ...base(), aggregates: { n: { fn: 'median' } } }, /aggregates\.n\.fn: fn must be one of/],
      [{ ...base(), aggregates: {} }, /aggregates: define at least one aggregate/],
      [{ ...base(), aggregates: { n: { fn: 'count', metric: 'cpu' } } }, /aggregates\.n\.metric: metric "cpu" is not read by source\.metrics/],
      [{ ...base(), keyBy: 'user' }, /keyBy/],
      [{ ...base(), extra: 1 }, /\(root\): Unrecognized key/i],
      [{ ...base(), score: { components: { c: { nope: 1 } }, profiles: { p: { c: 1 } } } }, /score\.components\.c\.nope: "nope" is not an aggregate/],
      [{ ...base(), score: { components: { c: { n: 1 } }, profiles: { p: { d: 1 } } } }, /score\.profiles\.p\.d: "d" is not a component/],
      [{ ...base(), score: { normalise: { lat: { log: { max: 10 } } }, components: { c: { n: 1 } }, profiles: { p: { c: 1 } } } }, /score\.normalise\.lat: "lat" is not an aggregate/],
      [{ ...base(), trend: { field: 'lat' } }, /trend\.field: "lat" is not an aggregate/],
      [{ ...base(), alerts: [{ name: 'slow', field: 'lat_p99', op: '>', threshold: 5 }] }, /alerts\.0\.field: "lat_p99" is not a field/],
      [{ ...base(), alerts: [{ name: 'slow', field: 'lat_p95', op: '>', threshold: 5, resolve: 6 }] }, /alerts\.0\.resolve: resolve \(6\) must be on the clear side/],
      [{ ...base(), alerts: [{ name: 'a', field: 'n', op: '>', threshold: 1 }, { name: 'a', field: 'n', op: '<', threshold: 0 }] }, /alerts\.1\.name: alert name "a" is used twice/],
      [{ ...base(), sinks: { table: false, live: false } }, /sinks: a pipeline with neither/],
      [{ ...base(), aggregates: { key: { fn: 'count' } } }, /aggregates\.key: "key" is reserved/],
      [{ ...base(), score: { components: { window: { n: 1 } }, profiles: { p: { window: 1 } } } }, /score\.components\.window: "window" is reserved/],
    ];
    for (const [input, re] of cases) expect(problems(input), re.source).toMatch(re);
    // every problem at once, not only the first
    const many = problems({ ...base(), name: 'X', window: { type: 'tumbling', size: -1 }, aggregates: { n: { fn: 'nope' } } });
    expect(many.split('\n').filter((l) => l.startsWith('  - ')).length).toBeGreaterThanOrEqual(3);
  });

  it('a YAML syntax error gives its line; a JSON file is parsed as JSON', () => {
    expect(() => parsePipelineText('name: ops\nsource: [unclosed\n', 'ops.yaml')).toThrow(/ops\.yaml: YAML syntax:[\s\S]*line/);
    expect(() => parsePipelineText('name: a\nname: b\n', 'dup.yaml')).toThrow(/dup\.yaml: YAML syntax/);
    expect(parsePipelineText(JSON.stringify(base()), 'ops.json').name).toBe('ops');
    expect(() => parsePipelineText('{"name": ', 'ops.json')).toThrow(/ops\.json: not valid JSON/);
  });

  it('a directory refuses two pipelines with one name and reports every bad file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'weir-pipelines-'));
    writeFileSync(path.join(dir, 'a.yaml'), 'name: ops\nsource: { metrics: [x] }\nwindow: { type: global }\naggregates: { n: { fn: count } }\n');
    writeFileSync(path.join(dir, 'b.json'), JSON.stringify({ name: 'ops', source: { metrics: ['x'] }, window: { type: 'global' }, aggregates: { n: { fn: 'count' } } }));
    writeFileSync(path.join(dir, 'c.yaml'), 'name: bad\n');
    writeFileSync(path.join(dir, 'notes.txt'), 'ignored');
    let message = '';
    try {
      loadPipelineDir(dir);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/b\.json: name: "ops" is also the name of a\.yaml/);
    expect(message).toMatch(/c\.yaml: source/);
  });
});
