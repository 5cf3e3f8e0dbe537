/**
 * Stand-ins for the gateway's backends that always answer, shared by the HTTP and gRPC fuzz tests
 * (gateway/http.fuzz.test.ts, gateway/grpc.fuzz.test.ts): since nothing behind the gateway fails,
 * a 5xx or INTERNAL is always the gateway's own fault.
 */

/** QuestDB: one declared pipeline has run (tutors); every other query returns no rows. `params` gets every SQL parameter. */
export function standInPool(params: unknown[]) {
  return {
    query: async (sql: string, p: unknown[] = []) => {
      params.push(...p);
      if (/FROM tables\(\)/.test(sql)) return { rows: p[0] === 'weir_p_tutors' ? [{ table_name: p[0] }] : [] };
      if (/table_columns/.test(sql)) return { rows: [{ column: 'ts', type: 'TIMESTAMP' }, { column: 'key', type: 'SYMBOL' }, { column: 'window', type: 'SYMBOL' }, { column: 'score', type: 'DOUBLE' }] };
      if (/SELECT DISTINCT window/.test(sql)) return { rows: [{ window: '1d' }] };
      return { rows: [] };
    },
  };
}

const reply = (body: unknown) => ({ json: () => body, string: () => JSON.stringify(body) });

/** NATS request/reply: engines serve the default pipeline and tutors; any other name has no responders. */
export async function standInRequest(subject: string) {
  if (!/^weir\.api\.(default|tutors)\./.test(subject)) throw new Error('503 no responders');
  if (subject.endsWith('.latest')) return reply({ results: [] });
  if (subject.endsWith('.topk')) return reply({ window: '10s', start: null, final: false, candidates: 0, entries: [] });
  return reply({ pipeline: 'default', watermark: 0, durableWatermark: 0, allowedLatenessMs: 30_000, lagMessages: 0, committedSeq: 0, liveKeys: 0, at: Date.now(), metrics: [] });
}
