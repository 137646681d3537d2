import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ErrorCodes, type ErrorCode } from '../errors.js';

export const BEARER_CHALLENGE = 'Bearer realm="tollgate-admin"';

/** `{"error": "...", "code": "TOLLGATE_ERR_..."}`; 401s carry a Bearer challenge. */
export function sendAdminError<C extends Context>(c: C, code: ErrorCode, message?: string): Response {
  const spec = ErrorCodes[code];
  if (spec.status === 401) c.header('www-authenticate', BEARER_CHALLENGE);
  return c.json({ error: message ?? spec.message, code }, spec.status as ContentfulStatusCode);
}
