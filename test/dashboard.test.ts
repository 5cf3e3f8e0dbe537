/**
 * The live dashboard at / in a real browser (Debian chromium via playwright-core) against the
 * real stack and engine, with API tokens on (the page must carry ?token= as access_token on
 * every call, EventSource included). Events flow while the page is open (live partial updates);
 * then publishing stops and, at a quiet moment, what the page shows must equal what the API
 * answers: the newest window's count and p99 (/v1/latest), every charted window (/v1/series),
 * and the top-K table (/v1/top), in order. Clicking a key in the table switches the series.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { rng } from '../benchmarks/producer.js';
import { sleep, startEngine, waitFor } from './harness.js';
import { useRealStack } from './real-stack.js';

const METRIC = 'dash_latency';
/** Events per key per tick: distinct, so every window ranks the keys in this order by count. */
const KEYS: [string, number, number][] = [
  ['api', 4, 20],
  ['db', 3, 80],
  ['cache', 2, 2],
  ['auth', 1, 300],
];
const TOKEN = 'dashboard-test-token-0123456789';
const CONFIG = {
  pipeline: { maxOutOfOrderness: '1s', allowedLateness: '2s', idleTimeout: '1s' },
  results: { partialInterval: '250ms' },
  gateway: { tokens: [{ name: 'dashboard', token: TOKEN, scopes: ['read', 'subscribe'] }] },
};

interface Live {
  start: number;
  final: boolean;
  count: number;
  rate: number;
  p50: number;
  p95: number;
  p99: number;
}

interface PagePoint {
  start: number;
  count: number;
  rate: number;
  p50: number;
  p95: number;
  p99: number;
  final: boolean;
}

describe('dashboard page', () => {
  const ctx = useRealStack();
  let browser: BrowserContext | undefined;
  let profile: string;
  let shots: string;
  let passed = false;

  beforeAll(async () => {
    profile = mkdtempSync(path.join(os.tmpdir(), 'weir-chromium-'));
    shots = process.env.WEIR_SCREENSHOT_DIR ?? mkdtempSync(path.join(os.tmpdir(), 'weir-dashboard-'));
    // A fresh profile directory (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.WEIR_CHROMIUM ?? '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1400, height: 1100 },
    });
  });

  afterAll(async () => {
    await browser?.close();
    rmSync(profile, { recursive: true, force: true });
    // Screenshots are kept when the test failed (or a directory was asked for).
    if (passed && !process.env.WEIR_SCREENSHOT_DIR) rmSync(shots, { recursive: true, force: true });
    else console.log(`dashboard screenshots: ${shots}`);
  });

  it('charts history and live results, and its readouts and top-K table equal the API', async () => {
    ctx.engine = await startEngine(ctx.stack, CONFIG);
    const http = ctx.engine.http;
    const api = async <T>(route: string, q: Record<string, string | number>): Promise<T> => {
      const url = `${http}${route}?${new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)]))}`;
      const r = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
      if (r.status !== 200) throw new Error(`${route}: ${r.status} ${await r.text()}`);
      return (await r.json()) as T;
    };
    const latest = async (key: string) => (await api<{ results: Live[] }>('/v1/latest', { metric: METRIC, key, window: '10s' })).results[0];
    // The page and its assets are open; the API is not.
    expect((await fetch(`${http}/`)).status).toBe(200);
    expect((await fetch(`${http}/v1/catalog`)).status).toBe(401);

    // A producer: every 250 ms, an array of events per key (api 4, db 3, cache 2, auth 1), event time now.
    const js = jetstream(ctx.nc);
    const rand = rng(7);
    let publishing = true;
    let published = 0;
    const producer = (async () => {
      while (publishing) {
        const ts = Date.now();
        const events = KEYS.flatMap(([key, n, scale]) => Array.from({ length: n }, () => ({ key, value: Math.round(scale * (1 + 9 * rand() ** 3) * 100) / 100, ts })));
        await js.publish(`weir.events.${METRIC}`, JSON.stringify(events));
        published += events.length;
        await sleep(250);
      }
    })();

    let page: Page | undefined;
    try {
      // At least one fired window in QuestDB first, so the page starts from history.
      await waitFor('a window of api in /v1/series', async () => ((await api<{ points: unknown[] }>('/v1/series', { metric: METRIC, key: 'api', window: '10s' })).points.length ? true : undefined), 45_000, 250);

      page = await browser!.newPage();
      const problems: string[] = [];
      const calls: string[] = [];
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('console', (m) => (m.type() === 'error' ? problems.push(`console: ${m.text()}`) : undefined));
      page.on('request', (r) => (new URL(r.url()).pathname.startsWith('/v1/') ? calls.push(r.url()) : undefined));
      await page.goto(`${http}/?metric=${METRIC}&key=api&window=10s&token=${TOKEN}`);

      await page.waitForFunction(() => document.querySelector('[data-testid="stream-status"]')?.textContent === 'live', undefined, { timeout: 15_000 });
      await page.waitForFunction(() => Number(document.querySelector('[data-testid="points-count"]')?.textContent) >= 2, undefined, { timeout: 15_000 });
      expect(await page.locator('#chart-rate canvas').count()).toBe(1);
      expect(await page.locator('#chart-pct canvas').count()).toBe(1);

      // Live partial updates: the open window's count grows while events flow.
      await page.waitForFunction(() => document.querySelector('[data-testid="latest-state"]')?.textContent === 'partial', undefined, { timeout: 15_000 });
      const before = Number(await page.getByTestId('latest-count').getAttribute('data-value'));
      const startBefore = Number(await page.getByTestId('latest-start').getAttribute('data-value'));
      await page.waitForFunction(
        ([count, start]) => {
          const c = Number(document.querySelector('[data-testid="latest-count"]')?.getAttribute('data-value'));
          const s = Number(document.querySelector('[data-testid="latest-start"]')?.getAttribute('data-value'));
          return s > start || c > count;
        },
        [before, startBefore],
        { timeout: 15_000 },
      );

      // The charts drew the series: pixels in the stroke colours of rate (#5aa9ff) and p99 (#f85149).
      const drawn = await page.evaluate(() => {
        const count = (sel: string, rgb: number[]) => {
          const c = document.querySelector(`${sel} canvas`) as HTMLCanvasElement;
          const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 200 && Math.abs(d[i] - rgb[0]) < 12 && Math.abs(d[i + 1] - rgb[1]) < 12 && Math.abs(d[i + 2] - rgb[2]) < 12) n++;
          return n;
        };
        return { rate: count('#chart-rate', [0x5a, 0xa9, 0xff]), p99: count('#chart-pct', [0xf8, 0x51, 0x49]), p50: count('#chart-pct', [0x3f, 0xb9, 0x50]) };
      });
      expect(drawn.rate).toBeGreaterThan(30);
      expect(drawn.p99).toBeGreaterThan(30);
      expect(drawn.p50).toBeGreaterThan(30);
      const shot = path.join(shots, 'dashboard-live.png');
      await page.screenshot({ path: shot, fullPage: true });
      const png = readFileSync(shot);
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      expect(png.length).toBeGreaterThan(20_000);

      // Quiet: stop publishing and wait for the newest window of api to fire.
      publishing = false;
      await producer;
      expect(published).toBeGreaterThan(0);
      // Quiet = the newest window of every key has fired (keys live on different partitions).
      const quiet = await waitFor('the newest window of every key to fire', async () => {
        const rs = await Promise.all(KEYS.map(([k]) => latest(k)));
        return rs.every((r) => r?.final && r.start === rs[0].start) ? rs : undefined;
      }, 40_000);
      const fired = quiet[0];
      await page.waitForFunction(
        (start) =>
          document.querySelector('[data-testid="latest-start"]')?.getAttribute('data-value') === String(start) &&
          document.querySelector('[data-testid="latest-state"]')?.textContent === 'final',
        fired.start,
        { timeout: 15_000 },
      );
      expect(Number(await page.getByTestId('latest-count').getAttribute('data-value'))).toBe(fired.count);
      expect(await page.getByTestId('latest-count').textContent()).toBe(fired.count.toLocaleString('en-US'));
      expect(Number(await page.getByTestId('latest-p99').getAttribute('data-value'))).toBe(fired.p99);
      expect(Number(await page.getByTestId('latest-p50').getAttribute('data-value'))).toBe(fired.p50);
      expect(Number(await page.getByTestId('latest-rate').getAttribute('data-value'))).toBe(fired.rate);

      // Every charted window equals the stored row (history and live points alike).
      const rows = await waitFor('the fired window in /v1/series', async () => {
        const s = await api<{ points: { ts: number; count: number; p50: number; p95: number; p99: number }[] }>('/v1/series', { metric: METRIC, key: 'api', window: '10s', from: Date.now() - 15 * 60_000 });
        return s.points.some((p) => p.ts === fired.start) ? s.points : undefined;
      }, 20_000);
      const points = await page.evaluate(() => (window as unknown as { weirDashboard: { points(): PagePoint[] } }).weirDashboard.points());
      expect(Number(await page.getByTestId('points-count').textContent())).toBe(points.length);
      expect(points.map((p) => ({ ts: p.start, count: p.count, p50: p.p50, p95: p.p95, p99: p.p99, final: p.final }))).toEqual(
        rows.map((r) => ({ ts: r.ts, count: r.count, p50: r.p50, p95: r.p95, p99: r.p99, final: true })),
      );
      for (const p of points) expect(p.rate).toBeCloseTo(p.count / 10, 9);

      // The top-K table equals /v1/top (same metric, window, ranking), key by key, in order.
      const top = await api<{ entries: (Live & { key: string })[] }>('/v1/top', { metric: METRIC, window: '10s', by: 'count', k: 10 });
      const apiRows = top.entries.map((e) => ({ key: e.key, value: String(e.count) }));
      expect(apiRows.map((r) => r.key)).toEqual(KEYS.map(([k]) => k));
      const readRows = () =>
        page!.$$eval('[data-testid="top-row"]', (trs) =>
          trs.map((tr) => ({ key: tr.querySelector('[data-testid="top-key"]')!.textContent, value: tr.querySelector('[data-testid="top-value"]')!.getAttribute('data-value') })),
        );
      const shown = await waitFor('the table to refresh', async () => {
        const r = await readRows();
        return JSON.stringify(r) === JSON.stringify(apiRows) ? r : undefined;
      }, 5_000).catch(() => readRows());
      expect(shown).toEqual(apiRows);
      await page.waitForFunction(() => / · fired · /.test(document.querySelector('[data-testid="top-meta"]')?.textContent ?? ''), undefined, { timeout: 5_000 });
      await page.screenshot({ path: path.join(shots, 'dashboard-quiet.png'), fullPage: true });

      // Clicking a key in the table switches the series to it.
      await page.locator('[data-testid="top-row"][data-key="db"] [data-testid="top-key"] button').click();
      expect(await page.getByTestId('key').inputValue()).toBe('db');
      const db = quiet[1];
      expect(await latest('db')).toEqual(db);
      await page.waitForFunction(
        (start) =>
          document.querySelector('[data-testid="stream-status"]')?.textContent === 'live' &&
          document.querySelector('[data-testid="latest-start"]')?.getAttribute('data-value') === String(start) &&
          document.querySelector('[data-testid="latest-state"]')?.textContent === 'final',
        db.start,
        { timeout: 15_000 },
      );
      expect(Number(await page.getByTestId('latest-count').getAttribute('data-value'))).toBe(db.count);
      expect(Number(await page.getByTestId('latest-p99').getAttribute('data-value'))).toBe(db.p99);
      expect(new URL(page.url()).searchParams.get('key')).toBe('db');

      // The token: gone from the address bar, kept in localStorage, on every API call (EventSource included).
      expect(new URL(page.url()).searchParams.has('token')).toBe(false);
      expect(await page.evaluate(() => localStorage.getItem('weir.token'))).toBe(TOKEN);
      const paths = new Set(calls.map((u) => new URL(u).pathname));
      for (const p of ['/v1/catalog', '/v1/series', '/v1/latest', '/v1/stream', '/v1/top']) expect(paths, p).toContain(p);
      expect(calls.filter((u) => new URL(u).searchParams.get('access_token') !== TOKEN)).toEqual([]);
      expect(problems).toEqual([]);
      expect(await page.getByTestId('banner').isHidden()).toBe(true);

      // A narrow screen: one column, nothing wider than the viewport, the charts still drawn.
      await page.setViewportSize({ width: 420, height: 900 });
      await page.waitForFunction(() => document.documentElement.scrollWidth <= window.innerWidth && (document.querySelector('#chart-rate canvas') as HTMLCanvasElement).getBoundingClientRect().width <= window.innerWidth, undefined, { timeout: 5_000 });
      await page.screenshot({ path: path.join(shots, 'dashboard-narrow.png'), fullPage: true });
      passed = true;
    } finally {
      publishing = false;
      await producer;
      await page?.close();
    }
  }, 150_000);
});
