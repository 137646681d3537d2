import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ErrorCodes, type ErrorCode } from '../errors.js';

/**
 * Errors of the admin API (admin listener). Same naming and shape as src/errors.ts; kept here
 * while only the admin app uses them (candidates to move into src/errors.ts).
 */
export const AdminErrorCodes = {
  TOLLGATE_ERR_ADMIN_UNAUTHENTICATED: { status: 401, message: 'Sign in required' },
  TOLLGATE_ERR_ADMIN_CREDENTIAL: { status: 401, message: 'Invalid admin credential' },
  TOLLGATE_ERR_ADMIN_FORBIDDEN: { status: 403, message: 'This identity is not an admin' },
  TOLLGATE_ERR_ADMIN_OIDC_UNAVAILABLE: { status: 503, message: 'The OIDC key set (TOLLGATE_OIDC_JWKS_URL) cannot be fetched, retry later' },
  TOLLGATE_ERR_ADMIN_CSRF: { status: 403, message: 'Missing or wrong CSRF token: reload the page and try again' },
  TOLLGATE_ERR_ADMIN_ORIGIN: { status: 403, message: 'Cross-origin request refused' },
  TOLLGATE_ERR_ADMIN_CONTENT_TYPE: { status: 415, message: 'Request body must be JSON (Content-Type: application/json)' },
  TOLLGATE_ERR_ADMIN_BODY: { status: 400, message: 'Request body is not valid JSON' },
  TOLLGATE_ERR_ADMIN_QUERY: { status: 400, message: 'Bad query parameter' },
  TOLLGATE_ERR_ADMIN_NOT_FOUND: { status: 404, message: 'Not found' },
  TOLLGATE_ERR_ADMIN_INTERNAL: { status: 500, message: 'Internal error (see the gateway log)' },
} as const satisfies Record<string, { status: number; message: string }>;

export type AdminErrorCode = keyof typeof AdminErrorCodes;

/** An admin API failure. `detail` is shown to the client: never put a secret in it. */
export class AdminError extends Error {
  readonly code: AdminErrorCode;
  readonly status: number;
  readonly detail: string | undefined;

  constructor(code: AdminErrorCode, detail?: string) {
    const spec = AdminErrorCodes[code];
    super(detail ? `${spec.message}: ${detail}` : spec.message);
    this.name = 'AdminError';
    this.code = code;
    this.status = spec.status;
    this.detail = detail;
  }
}

export const BEARER_CHALLENGE = 'Bearer realm="tollgate-admin"';

/** `{"error": "...", "code": "TOLLGATE_ERR_..."}`; 401s carry a Bearer challenge. */
export function sendAdminError(c: Context, code: AdminErrorCode | ErrorCode, message?: string): Response {
  const spec = code in AdminErrorCodes ? AdminErrorCodes[code as AdminErrorCode] : ErrorCodes[code as ErrorCode];
  if (spec.status === 401) c.header('www-authenticate', BEARER_CHALLENGE);
  return c.json({ error: message ?? spec.message, code }, spec.status as ContentfulStatusCode);
}
