// Placeholder while the gRPC server is being written (replaced in the same session).
import type { GrpcDeps } from './server.js';
export async function startGrpcServer(_deps: GrpcDeps): Promise<{ port: number; setServing(ok: boolean): void; close(): Promise<void> }> {
  return { port: 0, setServing() {}, async close() {} };
}
