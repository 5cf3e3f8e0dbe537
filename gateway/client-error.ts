import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Answers a request Node's HTTP parser refused (a request line or headers past the 16 KiB limit,
 * a malformed request line, a header timeout) with the gateway's own JSON error, then closes
 * the connection in a way the client can read.
 *
 * Fastify's default writes the answer and destroys the socket at once. When the client is still
 * sending (a 60 KiB URL), the kernel then resets the connection because of the bytes nobody read,
 * and the client sees "other side closed" instead of the 431. Here the socket half-closes after
 * the answer and keeps reading (and dropping) what the client still sends until the client
 * closes, or for at most `lingerMs`.
 */
export function clientErrorHandler(lingerMs = 5_000) {
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const [status, code, param, message] = describe(err);
    const body = JSON.stringify({ error: code, param, message });
    if (socket.writable) {
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    const timer = setTimeout(() => socket.destroy(), lingerMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.once('end', () => socket.destroy());
    socket.on('error', () => socket.destroy());
    // Drain: with no parser attached any more, the data events go nowhere.
    socket.resume();
  };
}

function describe(err: NodeJS.ErrnoException): [number, string, string, string] {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'limit_exceeded', 'url', 'the request line and headers are over 16 KiB: send fewer or shorter query parameters'];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'request_timeout', 'request', 'the request was not received in time'];
    default:
      return [400, 'bad_request', 'request', `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'})`];
  }
}
