import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ErrorCodes, type ErrorCode } from '../errors.js';

/** The admin API's error codes: the TOLLGATE_ERR_ADMIN_* entries of src/errors.ts. */
export type AdminErrorCode = Extract<ErrorCode, `TOLLGATE_ERR_ADMIN_${string}`>;

/** An admin API failure. `detail` is shown to the client: never put a secret in it. */
export class AdminError extends Error {
  readonly code: AdminErrorCode;
  readonly status: number;
  readonly detail: string | undefined;

  constructor(code: AdminErrorCode, detail?: string) {
    const spec = ErrorCodes[code];
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
  const spec = ErrorCodes[code];
  if (spec.status === 401) c.header('www-authenticate', BEARER_CHALLENGE);
  return c.json({ error: message ?? spec.message, code }, spec.status as ContentfulStatusCode);
}
