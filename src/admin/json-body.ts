import type { Context } from 'hono';
import { createError } from '../errors.js';

/** The request body as a JSON object: 415 for another content type, 400 for anything but an object. */
export async function readJsonObject(c: Context): Promise<Record<string, unknown>> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) throw createError('TOLLGATE_ERR_ADMIN_CONTENT_TYPE');
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw createError('TOLLGATE_ERR_ADMIN_BODY');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw createError('TOLLGATE_ERR_ADMIN_BODY', 'expected a JSON object');
  }
  return body as Record<string, unknown>;
}

/** A body that may be left out: none (no Content-Type and no length) reads as `{}`. */
export async function readOptionalJsonObject(c: Context): Promise<Record<string, unknown>> {
  const length = c.req.header('content-length');
  if (c.req.header('content-type') === undefined && (length === undefined || length === '0')) return {};
  return readJsonObject(c);
}
