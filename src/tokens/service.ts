import { GatewayError } from '../errors.js';
import { generateToken, generateTokenId, hashToken, type TokenType } from './format.js';
import { validateName } from './names.js';
import { parseRestrictions, type RestrictionsInput, type TokenRestrictions } from './restrictions.js';
import {
  tokenEndsAt,
  tokenState,
  type CiIdentity,
  type LeakReport,
  type NewTokenRecord,
  type TokenRecord,
  type TokenState,
  type TokenStore,
} from './store.js';

/** Token management shared by the CLI and the admin API: one code path for both. */

export const TOKEN_TYPES: readonly TokenType[] = ['production', 'development'];
export { MAX_NAME_LENGTH, validateName } from './names.js';
const DAY_MS = 86_400_000;

/**
 * Expiry input → epoch ms, or null for never.
 * Accepts `never`, `<N>d` (N days from now), a bare date `YYYY-MM-DD` (the end of that day,
 * UTC) or an ISO 8601 timestamp with a time zone. Past instants are refused.
 */
export function parseExpiry(input: string | undefined, now = Date.now()): number | null {
  const value = (input ?? 'never').trim();
  if (value === '' || value.toLowerCase() === 'never') return null;
  let at: number;
  const days = /^(\d{1,5})d$/i.exec(value);
  const date = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (days) {
    const n = Number(days[1]);
    if (n < 1) throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT', 'expiry in days must be at least 1d');
    at = now + n * DAY_MS;
  } else if (date) {
    const [y, m, d] = [Number(date[1]), Number(date[2]), Number(date[3])];
    at = Date.UTC(y, m - 1, d, 23, 59, 59, 999);
    const check = new Date(at);
    if (check.getUTCFullYear() !== y || check.getUTCMonth() !== m - 1 || check.getUTCDate() !== d) {
      throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT', `expiry "${value}" is not a calendar date`);
    }
  } else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) {
    at = Date.parse(value);
    if (Number.isNaN(at))
      throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT', `expiry "${value}" is not a valid timestamp`);
  } else {
    throw new GatewayError(
      'TOLLGATE_ERR_TOKEN_INPUT',
      `expiry must be never, <N>d, a date (YYYY-MM-DD) or an ISO timestamp with a zone, got "${value}"`,
    );
  }
  if (at <= now) throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT', `expiry "${value}" is in the past`);
  return at;
}

export function parseTokenTypeInput(input: string | undefined): TokenType {
  const value = (input ?? '').trim().toLowerCase();
  if (value === 'production' || value === 'development') return value;
  throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT', `type must be production or development, got "${input ?? ''}"`);
}

export interface CreateTokenInput {
  name: string | undefined;
  type: string | undefined;
  expires?: string | undefined;
  createdBy: string;
  /** As the CLI flags and the API body give them (restrictions.ts parseRestrictions); absent: none. */
  restrictions?: RestrictionsInput | undefined;
  /** The gateway's route prefixes, which a route restriction must name. */
  knownRoutes?: readonly string[];
}

export interface CreatedToken {
  record: TokenRecord;
  /** The plaintext token: show it once, never store or log it. */
  token: string;
}

/** A new secret for a record: the token, and the record's fields that come from it. */
function newSecret(type: TokenType): { token: string; id: string; hash: string } {
  const token = generateToken(type);
  return { token, id: generateTokenId(), hash: hashToken(token) };
}

export async function createToken(store: TokenStore, input: CreateTokenInput, now = Date.now()): Promise<CreatedToken> {
  const name = validateName(input.name);
  const type = parseTokenTypeInput(input.type);
  const expiresAt = parseExpiry(input.expires, now);
  const restrictions = parseRestrictions(input.restrictions ?? {}, input.knownRoutes ?? []);
  const { token, id, hash } = newSecret(type);
  const record = await store.insert({
    id,
    name,
    type,
    hash,
    createdAt: now,
    createdBy: input.createdBy,
    expiresAt,
    restrictions,
  });
  return { record, token };
}

export const DEFAULT_OVERLAP_MS = 24 * 3_600_000;
export const MAX_OVERLAP_MS = 90 * DAY_MS;
const OVERLAP_UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS };

/** A rotation's overlap: `0`, `<N>s`, `<N>m`, `<N>h` or `<N>d`, at most 90 days; absent: 24 hours. */
export function parseOverlap(input: string | undefined): number {
  const value = (input ?? '').trim();
  if (value === '') return DEFAULT_OVERLAP_MS;
  if (value === '0') return 0;
  const match = /^(\d{1,7})([smhd])$/.exec(value);
  const ms = match ? Number(match[1]) * OVERLAP_UNITS_MS[match[2]!]! : NaN;
  if (!(ms <= MAX_OVERLAP_MS)) {
    throw new GatewayError(
      'TOLLGATE_ERR_TOKEN_INPUT',
      `overlap must be 0, <N>s, <N>m, <N>h or <N>d, at most 90d, got "${value.slice(0, 40)}"`,
    );
  }
  return ms;
}

export interface RotatedToken extends CreatedToken {
  /** The token replaced, as it is now: working until its overlap ends (overlapEndsAt). */
  previous: TokenRecord;
}

/**
 * Rotation: a new token with the old one's name, type, restrictions, CI identity and expiry date
 * (rotating changes the secret, not the lifetime), while the old one keeps working for `overlap`
 * (parseOverlap), then is refused as an expired token is. `idOrName` is resolved as get() does (a
 * name designates its active token). Revoked, ended or already rotated tokens are refused
 * (TOLLGATE_ERR_TOKEN_NOT_LIVE).
 */
export async function rotateToken(
  store: TokenStore,
  idOrName: string,
  input: { overlap?: string | undefined; by: string },
  now = Date.now(),
): Promise<RotatedToken> {
  const overlapMs = parseOverlap(input.overlap);
  const old = await store.get(idOrName);
  if (!old) throw new GatewayError('TOLLGATE_ERR_TOKEN_NOT_FOUND', `"${idOrName}"`);
  const { token, id, hash } = newSecret(old.type);
  const next: NewTokenRecord = {
    id,
    name: old.name,
    type: old.type,
    hash,
    createdAt: now,
    createdBy: input.by,
    expiresAt: old.expiresAt,
    restrictions: old.restrictions,
    ci: old.ci,
  };
  const { previous, current } = await store.rotate(old.id, next, now + overlapMs, now);
  return { record: current, token, previous };
}

/**
 * Revokes what an id or a name designates (store.lookup): by id, that token; by name, the active
 * token and every earlier generation still in its overlap. `revoked`: the records this call
 * revoked (empty when the token was revoked already).
 */
export async function revokeToken(
  store: TokenStore,
  idOrName: string,
  by: string,
  now = Date.now(),
): Promise<{ record: TokenRecord; revoked: TokenRecord[] }> {
  const targets = await store.lookup(idOrName);
  if (targets.length === 0) throw new GatewayError('TOLLGATE_ERR_TOKEN_NOT_FOUND', `"${idOrName}"`);
  const revoked = await store.revokeIds(
    targets.map((r) => r.id),
    by,
    now,
  );
  return { record: revoked.find((r) => r.id === targets[0]!.id) ?? targets[0]!, revoked };
}

/**
 * Restrictions as the CLI's --json, the admin API and the page show them, and as the API takes
 * them: only the kinds set; `rate` in requests a minute.
 */
export interface RestrictionsView {
  routes?: string[];
  packages?: string[];
  networks?: string[];
  rate?: number;
}

export function toRestrictionsView(r: TokenRestrictions | null): RestrictionsView | null {
  if (r === null) return null;
  const view: RestrictionsView = {};
  if (r.routes) view.routes = r.routes;
  if (r.packages) view.packages = r.packages;
  if (r.networks) view.networks = r.networks;
  if (r.ratePerMinute !== undefined) view.rate = r.ratePerMinute;
  return view;
}

/** A token as shown to admins: ISO dates, state, never the hash or the token. */
export interface TokenView {
  id: string;
  name: string;
  type: TokenType;
  createdAt: string;
  createdBy: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
  revokedBy: string | null;
  /** `rotated`: replaced, still working until overlapEndsAt. */
  state: TokenState;
  restrictions: RestrictionsView | null;
  /** Rotation: the token this one replaced; the one that replaced it; when this one's overlap ends. */
  replaces: string | null;
  replacedBy: string | null;
  overlapEndsAt: string | null;
  /** When it stops working: the earlier of expiresAt and overlapEndsAt (null: never). */
  endsAt: string | null;
  /** Revoked as leaked: who found it, and where. */
  leak: LeakReport | null;
  /** Issued to a CI job: its identity. */
  ci: CiIdentity | null;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function toTokenView(record: TokenRecord, now = Date.now()): TokenView {
  return {
    id: record.id,
    name: record.name,
    type: record.type,
    createdAt: iso(record.createdAt)!,
    createdBy: record.createdBy,
    expiresAt: iso(record.expiresAt),
    lastUsedAt: iso(record.lastUsedAt),
    revokedAt: iso(record.revokedAt),
    revokedBy: record.revokedBy,
    state: tokenState(record, now),
    restrictions: toRestrictionsView(record.restrictions),
    replaces: record.replaces,
    replacedBy: record.replacedBy,
    overlapEndsAt: iso(record.overlapEndsAt),
    endsAt: iso(tokenEndsAt(record)),
    leak: record.leak,
    ci: record.ci,
  };
}

/** What `token create --json`, `token rotate --json` and the API's create and rotate answers carry. */
export function createdView(created: CreatedToken) {
  const { id, name, type, createdAt, expiresAt, restrictions } = toTokenView(created.record);
  return { id, name, type, token: created.token, createdAt, expiresAt, restrictions };
}

/** Production tokens that are not revoked (expired ones included), as the token gauges show them. */
export async function activeProductionTokens(store: TokenStore, now = Date.now()): Promise<TokenRecord[]> {
  return (await store.list()).filter((r) => r.type === 'production' && tokenState(r, now) !== 'revoked');
}
