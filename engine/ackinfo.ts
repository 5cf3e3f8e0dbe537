/**
 * The stream sequence of a JetStream message, read straight from its ack subject without
 * building the full delivery info (JsMsg.seq parses every field: a measurable cost per message).
 * Formats: $JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<cseq>.<ts>.<pending>            (9 tokens)
 *          $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<dc>.<sseq>.<cseq>.<ts>.<pending>.<rand> (12)
 * Returns NaN if the subject is not an ack subject.
 */
const dots = new Int32Array(16);

export function streamSeqOf(reply: string): number {
  let n = 0;
  for (let i = reply.indexOf('.'); i >= 0 && n < 16; i = reply.indexOf('.', i + 1)) dots[n++] = i;
  const tokens = n + 1;
  const idx = tokens === 9 ? 5 : tokens >= 11 ? 7 : -1;
  if (idx < 0 || !reply.startsWith('$JS.ACK.')) return NaN;
  return Number(reply.slice(dots[idx - 1] + 1, dots[idx]));
}
