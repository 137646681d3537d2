import { GatewayError } from '../errors.js';
import type { TokenRestrictions } from './restrictions.js';
import type { CiIdentity, LeakReport } from './store.js';

/**
 * The token record's structured fields as both stores keep them: JSON text in a column (SQLite) or
 * a hash field (Redis), absent or NULL for none. Reading is strict where a mistake would widen
 * access: restrictions that cannot be read fail the read (TOLLGATE_ERR_STORE, a 503 for that
 * token) rather than let the token through unrestricted.
 */

export function encodeJson(value: object | null | undefined): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

function unreadable(what: string, id: string): never {
  throw new GatewayError('TOLLGATE_ERR_STORE', `token ${id} has unreadable ${what} in the store`);
}

function parseObject(text: string, what: string, id: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    unreadable(what, id);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) unreadable(what, id);
  return value as Record<string, unknown>;
}

const isStringList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.length > 0 && value.every((x) => typeof x === 'string');

export function decodeRestrictions(text: string | null | undefined, id: string): TokenRestrictions | null {
  if (text === null || text === undefined || text === '') return null;
  const o = parseObject(text, 'restrictions', id);
  const out: TokenRestrictions = {};
  for (const key of ['routes', 'packages', 'networks'] as const) {
    if (o[key] === undefined) continue;
    if (!isStringList(o[key])) unreadable('restrictions', id);
    out[key] = o[key];
  }
  if (o.ratePerMinute !== undefined) {
    if (typeof o.ratePerMinute !== 'number' || !Number.isInteger(o.ratePerMinute) || o.ratePerMinute < 1)
      unreadable('restrictions', id);
    out.ratePerMinute = o.ratePerMinute;
  }
  // Keys this version does not know (a newer one wrote them) would be restrictions it cannot
  // enforce: refuse the token rather than ignore them. Migrations keep older gateways away.
  if (Object.keys(o).some((k) => !(k in out))) unreadable('restrictions', id);
  return Object.keys(out).length === 0 ? null : out;
}

const optionalString = (value: unknown): string | null => (typeof value === 'string' ? value : null);

export function decodeLeak(text: string | null | undefined, id: string): LeakReport | null {
  if (text === null || text === undefined || text === '') return null;
  const o = parseObject(text, 'leak report', id);
  return {
    source: optionalString(o.source) ?? 'unknown',
    url: optionalString(o.url),
    location: optionalString(o.location),
  };
}

const CI_FIELDS = ['project', 'repository', 'ref', 'sha', 'workflow', 'runId', 'actor'] as const;

export function decodeCi(text: string | null | undefined, id: string): CiIdentity | null {
  if (text === null || text === undefined || text === '') return null;
  const o = parseObject(text, 'CI identity', id);
  const provider = optionalString(o.provider);
  const subject = optionalString(o.subject);
  if (provider === null || subject === null) unreadable('CI identity', id);
  const ci: CiIdentity = { provider, subject };
  for (const key of CI_FIELDS) {
    const value = optionalString(o[key]);
    if (value !== null) ci[key] = value;
  }
  return ci;
}
