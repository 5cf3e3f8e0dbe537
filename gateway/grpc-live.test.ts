/**
 * LiveResult over gRPC (gateway/grpc.ts liveResultMsg): the message the gateway builds from a live
 * result, sent through the real wire encoding of proto/weir/v1/weir.proto (the serializers
 * @grpc/proto-loader gives grpc-js, encoded and decoded as a client with the same loader options
 * sees them). A declared pipeline's numeric fields travel in `fields` exactly, null fields absent,
 * whatever their names (a field `count` of 2.5 or a `p50` of null); the typed figures stay unset.
 * The default pipeline's results keep their typed figures and an empty `fields`.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import protoLoader from '@grpc/proto-loader';
import type { LiveResult } from '../engine/subjects.js';
import { liveResultMsg, PROTO_LOADER_OPTIONS, weirProtoPath } from './grpc.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const pkg = protoLoader.loadSync(weirProtoPath(), PROTO_LOADER_OPTIONS);
const weir = pkg['weir.v1.Weir'] as protoLoader.ServiceDefinition;
/** A message through the wire as a Subscribe result, a Latest answer and a TopK answer; all three must agree. */
function wire(m: object): Obj {
  const sub = weir.Subscribe.responseDeserialize(weir.Subscribe.responseSerialize(m)) as Obj;
  const latest = weir.Latest.responseDeserialize(weir.Latest.responseSerialize({ results: [m] })) as Obj;
  const top = weir.TopK.responseDeserialize(weir.TopK.responseSerialize({ entries: [m] })) as Obj;
  expect(latest.results).toEqual([sub]);
  expect(top.entries).toEqual([sub]);
  return sub;
}

const FIGURES = ['count', 'rate', 'sum', 'min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p95', 'p99', 'p999'];
/** What a client reads for the typed figures when nothing was set (proto3 defaults; stddev and sum are optional). */
const UNSET_FIGURES = Object.fromEntries(FIGURES.map((f) => [f, f === 'stddev' || f === 'sum' ? undefined : 0]));

const ID = { pipeline: 'films', metric: 'films', key: 'tt0111161', window: '1d', start: 1_767_225_600_000, end: 1_767_312_000_000, final: true, revision: 3, emittedAt: 1_767_312_000_123 };
const declared = (fields: Record<string, number | null>, extra: Obj = {}) => ({ ...ID, ...fields, ...extra }) as unknown as LiveResult;

describe('liveResultMsg: a declared pipeline', () => {
  it('puts every numeric field in `fields` (null ones absent) and leaves the typed figures unset', () => {
    const r = declared({ n: 12, total: 3.25, b_max: null, trend_pct: -0.125, trend_dir: -1, popularity: 1e-300 });
    const m = liveResultMsg(r, 'default');
    expect(m).toEqual({ ...ID, emittedAt: undefined, emitted_at: ID.emittedAt, superseded: false, fields: { n: 12, total: 3.25, trend_pct: -0.125, trend_dir: -1, popularity: 1e-300 } });
    const got = wire(m);
    expect(got).toEqual({
      pipeline: 'films',
      metric: 'films',
      key: 'tt0111161',
      window: '1d',
      start: ID.start,
      end: ID.end,
      final: true,
      revision: 3,
      emitted_at: ID.emittedAt,
      superseded: false,
      fields: { n: 12, total: 3.25, trend_pct: -0.125, trend_dir: -1, popularity: 1e-300 },
      ...UNSET_FIGURES,
      _stddev: undefined,
      _sum: undefined,
    });
  });

  it('keeps fields named like the default figures exact: count 2.5, p50 null, stddev 0, rate -3', () => {
    const r = declared({ count: 2.5, p50: null, stddev: 0, rate: -3, sum: 1e21, p999: null });
    const got = wire(liveResultMsg(r, 'default'));
    expect(got.fields).toEqual({ count: 2.5, stddev: 0, rate: -3, sum: 1e21 });
    expect(Object.keys(got.fields)).not.toContain('p50');
    // The typed figures are the default pipeline's: not set from a declared field of the same name.
    for (const f of FIGURES) expect(got[f], f).toBe(UNSET_FIGURES[f]);
  });

  it('a tombstone (superseded session) is marked, with no fields', () => {
    const r = declared({}, { window: 'session', revision: -1, superseded: true });
    const got = wire(liveResultMsg(r, 'default'));
    expect(got).toMatchObject({ pipeline: 'films', window: 'session', revision: -1, superseded: true, fields: {} });
  });

  it('a partial and a result with every field null', () => {
    const got = wire(liveResultMsg(declared({ a: null, b: null }, { final: false, revision: 0 }), 'default'));
    expect(got).toMatchObject({ final: false, revision: 0, superseded: false, fields: {} });
  });

  it('is a declared pipeline when it is not the gateway’s own, whatever that is named', () => {
    const own = { ...ID, pipeline: 'main', metric: 'lat', count: 4, rate: 0.4, sum: 10, min: 1, max: 4, mean: 2.5, stddev: 1.29, p50: 2, p90: 4, p95: 4, p99: 4, p999: 4 } as LiveResult;
    expect(wire(liveResultMsg(own, 'main'))).toMatchObject({ pipeline: 'main', count: 4, p50: 2, fields: {}, superseded: false });
    // The same result under another pipeline name is read as a declared one.
    expect(wire(liveResultMsg(own, 'default')).fields).toEqual({ count: 4, rate: 0.4, sum: 10, min: 1, max: 4, mean: 2.5, stddev: 1.29, p50: 2, p90: 4, p95: 4, p99: 4, p999: 4 });
  });

  it('property: any declared result: fields on the wire = its non-null fields, exactly; identity kept', () => {
    const name = fc.oneof(fc.stringMatching(/^[a-z][a-z0-9_]{0,47}$/), fc.constantFrom(...FIGURES, 'trend_pct', 'trend_dir', 'read_p50'));
    const value = fc.oneof(fc.double({ noNaN: true }), fc.integer(), fc.constant(null));
    fc.assert(
      fc.property(
        fc.dictionary(name, value, { maxKeys: 20 }).filter((d) => !['start', 'end', 'revision'].some((k) => k in d)),
        fc.boolean(),
        // int64: past 2^31 too (an int32 wrapped 2^31 to -2^31 and 2^32 + 5 to 5)
        fc.oneof(fc.integer({ min: -1, max: 2 ** 31 - 1 }), fc.constantFrom(2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER)),
        (fields, final, revision) => {
          const r = declared(fields, { final, revision });
          const got = wire(liveResultMsg(r, 'default'));
          expect(got.fields).toEqual(Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== null)));
          expect({ pipeline: got.pipeline, metric: got.metric, key: got.key, window: got.window, start: got.start, end: got.end, final: got.final, revision: got.revision, emitted_at: got.emitted_at }).toEqual({
            ...ID,
            emittedAt: undefined,
            emitted_at: ID.emittedAt,
            final,
            revision,
          });
          for (const f of FIGURES) expect(got[f], f).toBe(UNSET_FIGURES[f]);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('liveResultMsg: the default pipeline', () => {
  const r: LiveResult = { ...ID, pipeline: 'default', metric: 'lat', count: 3, rate: 0.3, sum: 6.5, min: 1, max: 3.5, mean: 2.1666, stddev: null, p50: 2, p90: 3.5, p95: 3.5, p99: 3.5, p999: 3.5 };

  it('keeps the typed figures, `fields` empty, not superseded; a null stddev is unset', () => {
    const got = wire(liveResultMsg(r, 'default'));
    const { emittedAt, stddev, ...rest } = r; // eslint-disable-line @typescript-eslint/no-unused-vars
    expect(got).toEqual({ ...rest, emitted_at: emittedAt, stddev: undefined, _stddev: undefined, _sum: 'sum', superseded: false, fields: {} });
    expect(wire(liveResultMsg({ ...r, stddev: 0.5 }, 'default'))).toMatchObject({ stddev: 0.5, _stddev: 'stddev', fields: {} });
  });

  it('a sum past ±1.8e308 (null) is unset, not 0; a sum of 0 is set; a revision past 2^31 arrives whole', () => {
    const none = wire(liveResultMsg({ ...r, sum: null }, 'default'));
    expect([none.sum, none._sum, none.mean]).toEqual([undefined, undefined, r.mean]);
    expect(wire(liveResultMsg({ ...r, sum: 0 }, 'default'))).toMatchObject({ sum: 0, _sum: 'sum' });
    for (const revision of [2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) expect(wire(liveResultMsg({ ...r, revision }, 'default')).revision).toBe(revision);
  });
});
