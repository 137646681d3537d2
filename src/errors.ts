/**
 * Every error Tollgate reports, with its code and HTTP status, in one place (fastify's
 * lib/errors.js, undici's lib/core/errors.js). Callers branch on `code`, never on a class.
 * docs/errors.md documents each code; a test keeps the two in step.
 * This module imports nothing: every other module may depend on it.
 */

// A table, one code a line.
// prettier-ignore
export const ErrorCodes = {
  // Authentication on the proxy port. One public message for every reason, so that a
  // client cannot tell an unknown token from an expired or revoked one.
  TOLLGATE_ERR_AUTH_MISSING: { status: 401, message: 'Authentication required' },
  TOLLGATE_ERR_AUTH_MALFORMED: { status: 401, message: 'Invalid or expired token' },
  TOLLGATE_ERR_AUTH_INVALID: { status: 401, message: 'Invalid or expired token' },
  TOLLGATE_ERR_AUTH_UNAVAILABLE: { status: 503, message: 'Token store unavailable, retry later' },
  TOLLGATE_ERR_AUTH_RATE_LIMITED: { status: 429, message: 'Too many failed authentications from this address, retry later' },

  // A valid token used beyond its restrictions. A network refusal is TOLLGATE_ERR_AUTH_INVALID
  // instead: a leaked token used from elsewhere must not learn that it is live.
  TOLLGATE_ERR_TOKEN_RESTRICTED_ROUTE: { status: 403, message: 'This token is restricted: not allowed on this route' },
  TOLLGATE_ERR_TOKEN_RESTRICTED_PACKAGE: { status: 403, message: 'This token is restricted: not allowed to fetch this package' },
  TOLLGATE_ERR_TOKEN_RESTRICTED_RATE: { status: 429, message: 'This token is restricted: its request rate is used up, retry later' },

  // Requests the proxy port refuses before forwarding.
  TOLLGATE_ERR_REQUEST_METHOD: { status: 405, message: 'Method not allowed: tokens only allow downloads' },
  TOLLGATE_ERR_REQUEST_PATH: { status: 400, message: 'Bad request path' },
  TOLLGATE_ERR_REQUEST_HOST: { status: 400, message: 'Bad Host header' },
  TOLLGATE_ERR_REQUEST_NO_ROUTE: { status: 404, message: 'Not found' },
  TOLLGATE_ERR_REQUEST_BODY: { status: 413, message: 'Request body too large' },
  TOLLGATE_ERR_INTERNAL: { status: 500, message: 'Internal error' },

  // The artifact server behind the gateway, and the client on the other side of a download.
  TOLLGATE_ERR_UPSTREAM_UNREACHABLE: { status: 502, message: 'Upstream unreachable' },
  TOLLGATE_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'Upstream timed out' },
  TOLLGATE_ERR_UPSTREAM_SHARE: { status: 429, message: 'Too many downloads with this token are held by slow readers: finish some, then retry' },
  TOLLGATE_ERR_UPSTREAM_BAD_STATUS: { status: 502, message: 'Upstream sent an answer that cannot be relayed' },
  TOLLGATE_ERR_UPSTREAM_REDIRECT_REFUSED: { status: 502, message: 'Upstream redirected to a destination this route does not allow' },
  /** Never sent: the reason an upstream exchange is aborted once its client has gone (nginx's 499). */
  TOLLGATE_ERR_CLIENT_GONE: { status: 499, message: 'Client closed the connection' },

  // Signed secret-scanning reports (POST /-/tollgate/secret-scanning). Nothing is revoked on any of these.
  TOLLGATE_ERR_SCANNING_SIGNATURE: { status: 401, message: "The report's signature does not verify" },
  TOLLGATE_ERR_SCANNING_KEY: { status: 401, message: 'The report names a public key this gateway does not know' },
  TOLLGATE_ERR_SCANNING_BODY: { status: 400, message: 'The report must be a JSON array of {"token", "type", "url", "source"} objects' },
  TOLLGATE_ERR_SCANNING_RATE: { status: 429, message: 'Too many reports from this address, retry later' },
  TOLLGATE_ERR_SCANNING_UNAVAILABLE: { status: 503, message: "The reporters' public keys cannot be read, retry later" },

  // Token management (CLI and admin API).
  TOLLGATE_ERR_TOKEN_NAME_TAKEN: { status: 409, message: 'A live token with this name exists (names are compared ignoring case)' },
  TOLLGATE_ERR_TOKEN_NOT_FOUND: { status: 404, message: 'No such token' },
  TOLLGATE_ERR_TOKEN_AMBIGUOUS: { status: 409, message: 'Several live tokens have this name: use the token id' },
  TOLLGATE_ERR_TOKEN_NOT_LIVE: { status: 409, message: 'This token cannot be rotated: it is revoked, has ended or was rotated already' },
  TOLLGATE_ERR_TOKEN_INPUT: { status: 400, message: 'Invalid token input' },

  // The admin API (admin listener).
  TOLLGATE_ERR_ADMIN_UNAUTHENTICATED: { status: 401, message: 'Sign in required' },
  TOLLGATE_ERR_ADMIN_CREDENTIAL: { status: 401, message: 'Invalid admin credential' },
  TOLLGATE_ERR_ADMIN_RATE_LIMITED: { status: 429, message: 'Too many failed admin sign-ins from this address, retry later' },
  TOLLGATE_ERR_ADMIN_HOST: { status: 421, message: 'Misdirected request: this admin listener does not answer for that host name' },
  TOLLGATE_ERR_ADMIN_FORBIDDEN: { status: 403, message: 'This identity is not an admin' },
  TOLLGATE_ERR_ADMIN_OIDC_UNAVAILABLE: { status: 503, message: 'The OIDC key set (TOLLGATE_OIDC_JWKS_URL) cannot be fetched, retry later' },
  TOLLGATE_ERR_ADMIN_CSRF: { status: 403, message: 'Missing or wrong CSRF token: reload the page and try again' },
  TOLLGATE_ERR_ADMIN_ORIGIN: { status: 403, message: 'Cross-origin request refused' },
  TOLLGATE_ERR_ADMIN_CONTENT_TYPE: { status: 415, message: 'Request body must be JSON (Content-Type: application/json)' },
  TOLLGATE_ERR_ADMIN_BODY: { status: 400, message: 'Request body is not valid JSON' },
  TOLLGATE_ERR_ADMIN_QUERY: { status: 400, message: 'Bad query parameter' },
  TOLLGATE_ERR_ADMIN_NOT_FOUND: { status: 404, message: 'Not found' },
  TOLLGATE_ERR_ADMIN_INTERNAL: { status: 500, message: 'Internal error (see the gateway log)' },

  // Start-up and stores.
  TOLLGATE_ERR_CONFIG_INVALID: { status: 500, message: 'Invalid configuration' },
  TOLLGATE_ERR_STORE: { status: 503, message: 'Token store error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** The code's message alone: safe for any client, never a token or an internal detail. */
  readonly publicMessage: string;
  /**
   * What went wrong in this instance. The admin API and the CLI show it (`message` is the code's
   * message and this detail); the proxy port never does. Never put a secret in it.
   */
  readonly detail: string | undefined;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const spec = ErrorCodes[code];
    super(detail ? `${spec.message}: ${detail}` : spec.message, options);
    this.name = 'GatewayError';
    this.code = code;
    this.status = spec.status;
    this.publicMessage = spec.message;
    this.detail = detail;
  }
}

/** The one factory: `throw createError('TOLLGATE_ERR_TOKEN_INPUT', 'name is required')`. */
export function createError(code: ErrorCode, detail?: string, options?: { cause?: unknown }): GatewayError {
  return new GatewayError(code, detail, options);
}

/** True for Tollgate's own errors; with `prefix`, only for codes that start with it (`TOLLGATE_ERR_ADMIN_`). */
export function isGatewayError(err: unknown, prefix?: string): err is GatewayError {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  return (
    typeof code === 'string' && Object.hasOwn(ErrorCodes, code) && (prefix === undefined || code.startsWith(prefix))
  );
}
