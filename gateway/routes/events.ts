import type { FastifyInstance } from 'fastify';
import { errorResponses, metricProp, tokenProp } from './schemas.js';

const eventDoc =
  'An event of contract v1: {"key": string, "value": finite number, "ts"?: ms or ISO-8601, "tags"?: {string: string}, "id"?: string, "metric"?: string}. ' +
  'Validation is the engine\'s own (numbers sent as strings, NaN, unknown types are refused), so the schema here only fixes the shape.';

/**
 * POST /v1/events: ingest over HTTP. The events are validated with the engine's decoder (all or
 * nothing: the first bad event is named by index with the reason), published to
 * weir.events.<metric>, and the answer (202) comes only after JetStream has stored them.
 * `Idempotency-Key` makes a retried request land once (JetStream Msg-Id dedup window).
 */
export async function eventsRoutes(app: FastifyInstance): Promise<void> {
  app.post(
    '/v1/events',
    {
      config: { scope: 'publish' },
      schema: {
        summary: 'Publish events (one object or an array); each needs a metric, in the event or as ?metric=',
        querystring: { type: 'object', additionalProperties: false, properties: { metric: metricProp, access_token: tokenProp } },
        headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', maxLength: 128, pattern: '^[A-Za-z0-9_.:-]+$' } } },
        body: {
          description: eventDoc,
          anyOf: [
            { type: 'object', description: eventDoc },
            { type: 'array', items: { type: 'object', description: eventDoc } },
          ],
        },
        response: {
          202: {
            type: 'object',
            properties: {
              accepted: { type: 'integer', description: 'events stored' },
              messages: { type: 'integer', description: 'JetStream messages written' },
              firstSeq: { type: 'integer' },
              lastSeq: { type: 'integer' },
              duplicate: { type: 'boolean', description: 'true when the Idempotency-Key was seen before (nothing new stored)' },
            },
          },
          413: errorResponses[400],
          415: errorResponses[400],
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const q = req.query as { metric?: string };
      const idem = req.headers['idempotency-key'];
      const out = await app.weir.service.publish(req.body, q.metric, typeof idem === 'string' ? idem : undefined);
      return reply.code(202).send(out);
    },
  );
}
