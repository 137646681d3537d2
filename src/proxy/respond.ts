import type { ServerResponse } from 'node:http';
import { ErrorCodes, type ErrorCode } from '../errors.js';

/**
 * Error responses on the proxy port, written straight to the Node response. Short JSON that
 * every client shows well (npm prints `error`), the request id to quote to an operator, and
 * never anything from the request (no token, no header, no path).
 */

export const CHALLENGE = ['Basic realm="tollgate", charset="UTF-8"', 'Bearer realm="tollgate"'];

const PRIVATE_NO_STORE = 'private, no-store';

export function sendError(
  res: ServerResponse,
  code: ErrorCode,
  requestId: string,
  extraHeaders?: Record<string, string | string[]>,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const spec = ErrorCodes[code];
  // A 401 body is a constant per message, so unknown, expired and revoked tokens (and
  // malformed ones) get byte-identical bodies; the request id travels in X-Request-Id.
  const body =
    spec.status === 401
      ? `{"error":${JSON.stringify(spec.message)}}\n`
      : `{"error":${JSON.stringify(spec.message)},"code":"${code}","requestId":"${requestId}"}\n`;
  const headers: Record<string, string | string[] | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': PRIVATE_NO_STORE,
    'x-content-type-options': 'nosniff',
    'x-request-id': requestId,
    ...extraHeaders,
  };
  if (spec.status === 401) headers['www-authenticate'] = CHALLENGE;
  res.writeHead(spec.status, headers);
  res.end(body);
}
