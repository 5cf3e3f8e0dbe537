/**
 * The live dashboard page at `/`: static ES modules, HTML and CSS from gateway/dashboard/ (no
 * build step; dist/ holds compiled TS only, so the folder is found by walking up from this
 * module, which works from dist/gateway/routes and from gateway/routes under tsx), plus uPlot
 * from node_modules/uplot/dist under /assets/. Every file is read once at registration and
 * served from memory with an ETag; only the files listed there exist (no path from the URL ever
 * reaches the file system). The page and its assets are open (no `config.scope`): the API calls
 * the page makes carry the token.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

const HERE = path.dirname(fileURLToPath(import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
  '.ico': 'image/x-icon',
  '.png': 'image/png',
};

/** The page may only talk to its own origin: no CDN, no inline script. uPlot sets inline styles. */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** The folder gateway/dashboard, searched upwards from this module (dist/gateway/routes or gateway/routes). */
export function dashboardDir(from = HERE): string | undefined {
  let dir = from;
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'gateway', 'dashboard');
    if (existsSync(path.join(candidate, 'index.html'))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

function uplotDir(): string | undefined {
  try {
    return path.dirname(createRequire(import.meta.url).resolve('uplot'));
  } catch {
    return undefined;
  }
}

function load(file: string): Asset {
  const body = readFileSync(file);
  return {
    body,
    type: TYPES[path.extname(file)] ?? 'application/octet-stream',
    etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 20)}"`,
  };
}

function send(req: FastifyRequest, reply: FastifyReply, a: Asset, cache: string) {
  reply.header('etag', a.etag).header('cache-control', cache).header('x-content-type-options', 'nosniff');
  if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
  return reply.type(a.type).send(a.body);
}

export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  const dir = dashboardDir();
  const files = new Map<string, Asset>();
  if (dir) {
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      if (/^[A-Za-z0-9_-]+\.[a-z]+$/.test(name) && statSync(file).isFile()) files.set(name, load(file));
    }
  }
  const index = files.get('index.html');
  const udir = uplotDir();
  const assets = new Map<string, Asset>();
  for (const name of ['uPlot.iife.min.js', 'uPlot.min.css']) {
    const file = udir && path.join(udir, name);
    if (file && existsSync(file)) assets.set(name.toLowerCase(), load(file));
  }
  if (!index || assets.size < 2) app.log.warn({ dashboard: dir ?? null, uplot: udir ?? null }, 'dashboard files not found; / serves a placeholder');

  const hide = { schema: { hide: true } };
  app.get('/', hide, async (req, reply) => {
    if (!index) return reply.type('text/html; charset=utf-8').send('<!doctype html><title>Weir</title><p>Weir gateway (dashboard files not installed). API: <a href="/docs">/docs</a></p>');
    reply.header('content-security-policy', CSP).header('referrer-policy', 'no-referrer');
    return send(req, reply, index, 'no-cache');
  });
  app.get('/dashboard/:file', hide, async (req, reply) => {
    const a = files.get((req.params as { file: string }).file);
    if (!a) return reply.code(404).type('text/plain; charset=utf-8').send('not found');
    return send(req, reply, a, 'no-cache');
  });
  app.get('/assets/:file', hide, async (req, reply) => {
    const a = assets.get((req.params as { file: string }).file.toLowerCase());
    if (!a) return reply.code(404).type('text/plain; charset=utf-8').send('not found');
    return send(req, reply, a, 'public, max-age=86400');
  });
}
