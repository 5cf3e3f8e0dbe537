/**
 * The ILP rows the sinks produce from hostile numbers (issue 5), read back from the client's own
 * buffer, in both encodings QuestDB may ask for: text (protocol 1) and binary doubles (2).
 * - A default-pipeline row holds exactly its finite figures with their exact values; a null
 *   figure (a sum past ±1.8e308, a stddev of one event) is left out, so QuestDB stores null.
 *   Nothing writes Infinity or NaN, and no null reaches floatColumn (which throws, and would
 *   fail the whole flush with every neighbouring row in it).
 * - A declared pipeline's row leaves out null and non-finite fields; its revision is a LONG past
 *   2^31; alert rows carry their finite value and threshold.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SenderBufferV1, SenderBufferV2, SenderOptions } from '@questdb/nodejs-client';
import { summaryAggregator } from '../../operators/aggregates/summary.js';
import { extremeValue } from '../../operators/testing/exact.js';
import { writeWindowRow, type WindowRow } from './questdb.js';
import { writeAlertRow, writeResultRow, type AlertEvent, type ResultRow } from '../pipeline/sink.js';

const DOUBLES = ['sum', 'min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p95', 'p99', 'p999'] as const;

async function buffer(version: 1 | 2) {
  // No I/O: the options name a protocol version, so nothing asks the server which one it speaks.
  const options = await SenderOptions.fromConfig(`http::addr=127.0.0.1:9;protocol_version=${version};auto_flush=off`);
  return version === 1 ? new SenderBufferV1(options) : new SenderBufferV2(options);
}

/**
 * The field set of each line: name -> value. Text lines hold `name=1.5`, `name=3i`, `name="x"`;
 * binary doubles (protocol 2) are `name==` followed by type byte 16 and 8 little-endian bytes.
 */
function fieldsOf(buf: Buffer): Map<string, number | string>[] {
  const rows: Map<string, number | string>[] = [];
  let i = 0;
  while (i < buf.length) {
    // table and symbols up to the first unescaped space
    while (buf[i] !== 0x20) i += buf[i] === 0x5c ? 2 : 1;
    i++;
    const fields = new Map<string, number | string>();
    for (;;) {
      const eq = buf.indexOf(0x3d, i);
      const name = buf.toString('latin1', i, eq);
      i = eq + 1;
      if (buf[i] === 0x3d && buf[i + 1] === 16) {
        fields.set(name, buf.readDoubleLE(i + 2));
        i += 10;
      } else if (buf[i] === 0x22) {
        const close = buf.indexOf(0x22, i + 1);
        fields.set(name, buf.toString('utf8', i + 1, close));
        i = close + 1;
      } else {
        let j = i;
        while (buf[j] !== 0x2c && buf[j] !== 0x20) j++;
        const text = buf.toString('latin1', i, j);
        fields.set(name, text.endsWith('i') ? `${text}` : text.endsWith('t') ? text : Number(text));
        i = j;
      }
      if (buf[i] === 0x2c) {
        i++;
        continue;
      }
      break;
    }
    // timestamp, then newline
    i = buf.indexOf(0x0a, i) + 1;
    rows.push(fields);
  }
  return rows;
}

describe('default-pipeline rows (weir_agg_*) from extreme values', () => {
  const agg = summaryAggregator();
  const windowArb = fc.array(fc.array(extremeValue, { minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 6 });

  for (const version of [1, 2] as const) {
    it(`protocol ${version}: each row holds exactly its non-null figures, exactly; null figures are left out; no Infinity or NaN anywhere`, async () => {
      const b = await buffer(version);
      await fc.assert(
        fc.asyncProperty(windowArb, async (windows) => {
          b.reset();
          const rows: WindowRow[] = windows.map((vs, i) => {
            const acc = agg.create();
            for (const v of vs) agg.add(acc, v);
            return { ...agg.result(acc), table: 'weir_agg_10s', ts: 1_700_000_000_000 + i * 10_000, metric: 'lat', key: `k${i}` };
          });
          for (const r of rows) {
            writeWindowRow(b, r);
            b.at(r.ts, 'ms');
          }
          const buf = b.toBufferView();
          const text = buf.toString('latin1');
          if (version === 1) expect(text).not.toMatch(/Infinity|NaN|null/);
          const lines = fieldsOf(buf);
          expect(lines.length).toBe(rows.length);
          rows.forEach((r, i) => {
            const f = lines[i];
            expect(f.get('count')).toBe(`${r.count}i`);
            expect(f.get('sketch')).toBe(r.sketch);
            for (const c of DOUBLES) {
              const v = r[c];
              if (v === null) expect(f.has(c), `${c} of a null figure`).toBe(false);
              else expect(f.get(c), c).toBe(v);
            }
          });
        }),
        { numRuns: 100 },
      );
    });
  }

  it('a window whose sum is past 1.8e308 writes its row without the sum, and its neighbours in full', async () => {
    const b = await buffer(2);
    const row = (vs: number[], key: string): WindowRow => {
      const acc = agg.create();
      for (const v of vs) agg.add(acc, v);
      return { ...agg.result(acc), table: 'weir_agg_10s', ts: 0, metric: 'lat', key };
    };
    const rows = [row([1, 2], 'a'), row([1e308, 1e308], 'h'), row([3], 'b')];
    expect(rows[1].sum).toBeNull();
    for (const r of rows) {
      writeWindowRow(b, r);
      b.at(r.ts, 'ms');
    }
    const [a, h, bb] = fieldsOf(b.toBufferView());
    expect([...h.keys()]).toEqual(['count', 'min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p95', 'p99', 'p999', 'sketch']);
    expect(h.get('mean')).toBe(1e308);
    expect([a.get('sum'), a.get('stddev'), bb.get('sum'), bb.has('stddev')]).toEqual([3, Math.SQRT1_2, 3, false]);
    // what the writer guards against: the client refuses null outright
    expect(() => b.table('t').floatColumn('sum', null as unknown as number)).toThrow(/must be of type number/);
  });
});

describe('declared-pipeline rows (weir_p_*) and alert rows', () => {
  const row = (fields: Record<string, number | null>, revision: number): ResultRow => ({ key: 'k', window: 'global', start: 0, end: 0, final: true, revision, emittedAt: 1_700_000_000_000, fields });

  for (const version of [1, 2] as const) {
    it(`protocol ${version}: null, NaN and ±Infinity fields are left out, finite ones kept exactly; a revision past 2^31 is a LONG`, async () => {
      const b = await buffer(version);
      await fc.assert(
        fc.asyncProperty(
          fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), fc.oneof(extremeValue, fc.constantFrom(null, NaN, Infinity, -Infinity)), { minKeys: 1 }),
          fc.oneof(fc.constantFrom(-1, 0, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER), fc.nat()),
          async (fields, revision) => {
            b.reset();
            writeResultRow(b, 'weir_p_x', ['a', 'b', 'c', 'd'], row(fields, revision));
            b.at(0, 'ms');
            const [f] = fieldsOf(b.toBufferView());
            expect(f.get('revision')).toBe(`${revision}i`);
            for (const c of ['a', 'b', 'c', 'd']) {
              const v = fields[c];
              if (v === undefined || v === null || !Number.isFinite(v)) expect(f.has(c), c).toBe(false);
              else expect(f.get(c), c).toBe(version === 1 ? v + 0 : v); // the text form of -0 is 0
            }
          },
        ),
        { numRuns: 200 },
      );
    });
  }

  it('an alert row carries its value and threshold as they are, even at ±1.8e308', async () => {
    const b = await buffer(2);
    const a: AlertEvent = { pipeline: 'p', window: '10s', rule: 'r', key: 'k', state: 'firing', severity: 'critical', field: 'x', value: Number.MAX_VALUE, threshold: -Number.MAX_VALUE, since: 0, at: 10 };
    writeAlertRow(b, a);
    b.at(a.at, 'ms');
    const [f] = fieldsOf(b.toBufferView());
    expect([f.get('value'), f.get('threshold')]).toEqual([Number.MAX_VALUE, -Number.MAX_VALUE]);
  });
});
