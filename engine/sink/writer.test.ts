/**
 * WindowRowWriter over a recording sender that behaves as @questdb/nodejs-client's does at its
 * buffer bound: appending past max_buf_size (100 MiB by default) throws "Max buffer size is ...".
 * A burst of distinct keys fires hundreds of thousands of windows at once; written as one request,
 * the flush failed at the bound and was retried whole forever (issue 5, found by the cardinality
 * burst of scripts/hostile.ts): nothing was written, good series included. The real-stack check
 * is in test/hostile.test.ts.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_REQUEST_BYTES, WindowRowWriter, type FlushSender, type WindowRow } from './questdb.js';

const MAX_BUF = 100 * 1024 * 1024;

class RecordingSender {
  bytes = 0;
  current: string[] = [];
  requests: string[][] = [];
  peakBytes = 0;
  /** Flush calls to fail (by number, from 1). */
  failAt = new Set<number>();
  flushes = 0;
  private add(n: number) {
    this.bytes += n;
    if (this.bytes > MAX_BUF) throw new Error(`Max buffer size is ${MAX_BUF} bytes, requested buffer size: ${this.bytes}`);
    this.peakBytes = Math.max(this.peakBytes, this.bytes);
  }
  table(t: string) {
    this.add(t.length);
    this.current.push(t);
    return this;
  }
  symbol(n: string, v: string) {
    this.add(n.length + Buffer.byteLength(v) + 2);
    if (n === 'key') this.current[this.current.length - 1] += `|${v}`;
    return this;
  }
  intColumn(n: string) {
    this.add(n.length + 21);
    return this;
  }
  floatColumn(n: string) {
    this.add(n.length + 25);
    return this;
  }
  stringColumn(n: string, v: string) {
    this.add(n.length + Buffer.byteLength(v) + 4);
    this.version = v.slice(-1);
    return this;
  }
  private version = '';
  /** table|key|ts of every row of every acknowledged request, and the version (sketch's last character) each carried. */
  async at(ts: number) {
    this.add(20);
    this.current[this.current.length - 1] += `|${ts}#${this.version}`;
  }
  async flush() {
    this.flushes++;
    if (this.failAt.has(this.flushes)) throw new Error('QuestDB refused the request');
    if (this.current.length) this.requests.push(this.current);
    this.current = [];
    this.bytes = 0;
    return true;
  }
  reset() {
    this.current = [];
    this.bytes = 0;
    return this;
  }
  async close() {}
}

const row = (i: number, sketch: string, table = 'weir_agg_1m'): WindowRow => ({
  table,
  ts: 60_000 * (i % 7),
  metric: 'm',
  key: `k${i}`,
  count: 1,
  sum: i,
  min: i,
  max: i,
  mean: i,
  stddev: null,
  p50: i,
  p90: i,
  p95: i,
  p99: i,
  p999: i,
  sketch,
});
const idOf = (r: WindowRow) => `${r.table}|${r.key}|${r.ts}`;
const idOfRecord = (x: string) => x.split('#')[0];

describe('WindowRowWriter: requests of bounded size', () => {
  it('150 rows of 1 MiB each (150 MiB, past the client buffer bound) are written in requests under the bound', async () => {
    const big = 'A'.repeat(1024 * 1024);
    const s = new RecordingSender();
    const w = WindowRowWriter.over(s as unknown as FlushSender);
    for (let i = 0; i < 150; i++) w.add(row(i, big));
    expect(w.pending).toBe(150);
    expect(await w.flush()).toBe(150);
    expect(w.pending).toBe(0);
    expect(new Set(s.requests.flat().map(idOfRecord)).size).toBe(150);
    expect(s.requests.flat()).toHaveLength(150);
    expect(s.requests.length).toBeGreaterThan(1);
    expect(s.peakBytes).toBeLessThanOrEqual(MAX_REQUEST_BYTES + 2 * 1024 * 1024);
  });

  it('200,000 small rows go in requests of at most 20,000 rows', async () => {
    const s = new RecordingSender();
    const w = WindowRowWriter.over(s as unknown as FlushSender);
    for (let i = 0; i < 200_000; i++) w.add(row(i, 'AAAA'));
    expect(await w.flush()).toBe(200_000);
    expect(s.requests.length).toBe(10);
    expect(Math.max(...s.requests.map((r) => r.length))).toBe(20_000);
  });

  it('property: with any requests failing, every row is written once acknowledged, the newest version of each window wins, and pending counts what is not acknowledged', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 3 })), { minLength: 1, maxLength: 120 }),
        fc.array(fc.integer({ min: 1, max: 30 }), { maxLength: 6 }),
        fc.integer({ min: 1, max: 4 }),
        async (adds, fails, rounds) => {
          // rows of 0-3 MiB: a flush needs several requests
          const sizes = ['', 'A'.repeat(1 << 20), 'B'.repeat(2 << 20), 'C'.repeat(3 << 20)];
          const s = new RecordingSender();
          s.failAt = new Set(fails);
          const w = WindowRowWriter.over(s as unknown as FlushSender);
          const latest = new Map<string, string>();
          const chunk = Math.ceil(adds.length / rounds);
          for (let r = 0; r < rounds; r++) {
            for (const [i, sz] of adds.slice(r * chunk, (r + 1) * chunk)) {
              const x = row(i, sizes[sz] + String(r));
              w.add(x);
              latest.set(idOf(x), x.sketch);
            }
            await w.flush().catch(() => undefined);
          }
          for (let tries = 0; w.pending > 0 && tries < 40; tries++) await w.flush().catch(() => undefined);
          expect(w.pending).toBe(0);
          // every window reached QuestDB, and the last request holding it carried its newest version
          const last = new Map<string, string>();
          for (const x of s.requests.flat()) last.set(idOfRecord(x), x.split('#')[1]);
          expect(new Set(last.keys())).toEqual(new Set(latest.keys()));
          for (const [id, sketch] of latest) expect(last.get(id), id).toBe(sketch.slice(-1));
          expect(s.peakBytes).toBeLessThanOrEqual(MAX_REQUEST_BYTES + 4 * 1024 * 1024);
        },
      ),
      { numRuns: 60 },
    );
  });
});
