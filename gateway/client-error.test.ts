import { connect } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientErrorHandler } from './client-error.js';

// A real socket on 127.0.0.1: the failure this guards against (a reset before the client reads
// the 431) only shows on a real connection, never through inject().
describe('clientErrorHandler', () => {
  let app: FastifyInstance;
  let base: string;
  let port: number;
  beforeAll(async () => {
    app = Fastify({ clientErrorHandler: clientErrorHandler(2_000) });
    app.get('/v1/series', async () => ({ ok: true }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
  });
  afterAll(() => app.close());

  it('every request line past 16 KiB gets a readable 431 in the JSON error shape, and the server keeps answering', async () => {
    const failures: string[] = [];
    for (let i = 0; i < 60; i++) {
      const url = `${base}/v1/series?metric=m&key=${'k'.repeat(16_384 + i * 1_000)}`;
      try {
        const r = await fetch(url);
        const body = await r.text();
        if (r.status !== 431) failures.push(`${i}: status ${r.status}`);
        const b = JSON.parse(body);
        expect(b).toEqual({ error: 'limit_exceeded', param: 'url', message: expect.stringMatching(/16 KiB/) });
      } catch (e) {
        failures.push(`${i}: ${(e as Error).message} ${String((e as { cause?: unknown }).cause)}`);
      }
    }
    expect(failures).toEqual([]);
    const ok = await fetch(`${base}/v1/series?metric=m&key=k`);
    expect(ok.status).toBe(200);
  });

  it('a request that is not HTTP gets a 400 naming the request, then the connection closes', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      s.on('end', () => {
        s.destroy();
        resolve(got);
      });
      s.on('error', reject);
      s.write('GARBAGE\0 / HTTP/9\r\n\r\n');
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: 'bad_request', param: 'request' });
  });
});
