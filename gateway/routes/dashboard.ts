import type { FastifyInstance } from 'fastify';

/** The live dashboard page at / (built by the dashboard work; placeholder route until then). */
export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.type('text/html').send('<!doctype html><title>Weir</title><p>Weir gateway. API: <a href="/docs">/docs</a></p>'));
}
