import { createError, isGatewayError } from '../../errors.js';

/** The reason an exchange is aborted when its client has gone: not an upstream failure. */
export function clientGone(): Error {
  return createError('TOLLGATE_ERR_CLIENT_GONE');
}

export function isClientGone(err: unknown): boolean {
  return isGatewayError(err) && err.code === 'TOLLGATE_ERR_CLIENT_GONE';
}

/** An upstream answer the gateway cannot relay (a status outside 100-599). */
export function badStatus(status: number): Error {
  return createError('TOLLGATE_ERR_UPSTREAM_BAD_STATUS', `upstream answered status ${status}`);
}

/**
 * What an upstream failure is called in the request's log line: timeout, reset, bad-status, or
 * the connection's errno code (ECONNREFUSED, ENOTFOUND, a TLS error...). undici names its own
 * failures with UND_ERR_* codes. The gateway adds its own kinds where it gives up on an answer:
 * `redirect` (a Location it cannot follow), `redirect-refused` (a destination the route's redirect
 * policy refuses), `rewrite` (a metadata body it could not rewrite), `slot-timeout` (no free
 * upstream slot in time) and `busy` (the token holds its share of slow downloads).
 */
export function upstreamErrorKind(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'TOLLGATE_ERR_UPSTREAM_BAD_STATUS':
      return 'bad-status';
    case 'TOLLGATE_ERR_UPSTREAM_REDIRECT_REFUSED':
      return 'redirect-refused';
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'timeout';
    case 'UND_ERR_SOCKET':
      // 'bad upgrade' (101 to a download) and 'bad response' (100 without Expect) are answers
      // no client asked for; anything else is the connection closing under the response.
      return err.message === 'bad upgrade' || err.message === 'bad response' ? 'bad-status' : 'reset';
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH': // the body ended short of its Content-Length
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    case undefined:
      return 'error';
    default:
      return code.startsWith('HPE_') ? 'bad-status' : code; // HPE_*: llhttp could not parse the answer
  }
}

/** The kind of an upstream failure as a bounded metric label (tollgate_upstream_errors_total{kind}). */
const METRIC_LABELS: Readonly<Record<string, string>> = {
  timeout: 'timeout',
  ETIMEDOUT: 'timeout',
  'slot-timeout': 'timeout',
  busy: 'busy',
  reset: 'reset',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ECONNREFUSED: 'refused',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  redirect: 'redirect',
  'redirect-refused': 'redirect',
};

export function upstreamErrorLabel(kind: string): string {
  return METRIC_LABELS[kind] ?? 'other';
}
