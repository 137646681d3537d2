import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorCode } from '../errors.js';
import { newCredentialMemo, type AuthFailure, type CredentialMemo } from '../auth/authenticate.js';
import type { RateLimiter } from '../auth/rate-limit.js';
import { sendError } from './respond.js';
import type { RequestState } from './state.js';

/**
 * The proxy port's side of authentication: reading the Authorization header off a Node request,
 * the per-connection credential memo, and the answer to a refusal. The decision itself is
 * auth/authenticate.ts's.
 */

/** Each refusal's error code. Malformed, unknown, revoked and expired tokens get byte-identical 401s. */
const FAILURE_CODES: Readonly<Record<AuthFailure, ErrorCode>> = {
  missing: 'TOLLGATE_ERR_AUTH_MISSING',
  malformed: 'TOLLGATE_ERR_AUTH_MALFORMED',
  invalid: 'TOLLGATE_ERR_AUTH_INVALID',
  revoked: 'TOLLGATE_ERR_AUTH_INVALID',
  expired: 'TOLLGATE_ERR_AUTH_INVALID',
  unavailable: 'TOLLGATE_ERR_AUTH_UNAVAILABLE',
  'rate-limited': 'TOLLGATE_ERR_AUTH_RATE_LIMITED',
};
const RETRY_SOON = { 'retry-after': '5' };

/**
 * Answers a failed authentication, and counts it against the client's address, unless nothing
 * was sent (a challenge that Maven, pip and cargo wait for), the store was out of reach (the
 * token may be fine), or the address was already limited (`retryAfterS`: its 429 says when to
 * come back).
 */
export function refuseAuthentication(
  reason: AuthFailure,
  state: RequestState,
  outgoing: ServerResponse,
  limiter: RateLimiter | undefined,
  now: number,
  retryAfterS: number,
): void {
  state.authFailure = reason;
  if (reason === 'rate-limited') {
    sendError(outgoing, 'TOLLGATE_ERR_AUTH_RATE_LIMITED', state.requestId, { 'retry-after': String(retryAfterS) });
    return;
  }
  if (limiter && reason !== 'missing' && reason !== 'unavailable') limiter.fail(state.clientIp, now);
  sendError(outgoing, FAILURE_CODES[reason], state.requestId, reason === 'unavailable' ? RETRY_SOON : undefined);
}

const CREDENTIAL_MEMO = Symbol('tollgate.credentialMemo');

/**
 * The connection's credential memo (see authenticate): on the socket, so it lives and dies with
 * the connection and a header is only ever compared with one sent on the same connection. It
 * holds the token as the request's own header does; nothing logs or serialises a socket.
 */
export function credentialMemo(socket: Socket & { [CREDENTIAL_MEMO]?: CredentialMemo }): CredentialMemo {
  return (socket[CREDENTIAL_MEMO] ??= newCredentialMemo());
}

/** A second Authorization header is an attack or a bug, never a credential. Node keeps only the first. */
const SEVERAL_AUTHORIZATION_HEADERS = 'several-authorization-headers';

/**
 * The Authorization header value, or a value that parses as malformed when several were sent.
 * rawHeaders is only scanned when there is one at all.
 */
export function authorizationHeader(incoming: IncomingMessage): string | undefined {
  const value = incoming.headers.authorization;
  if (value === undefined) return undefined;
  const raw = incoming.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 13 && name.toLowerCase() === 'authorization' && ++seen > 1)
      return SEVERAL_AUTHORIZATION_HEADERS;
  }
  return value;
}
