import { GatewayError } from '../errors.js';
import { generateToken, generateTokenId, hashToken, type TokenType } from './format.js';
import { validateName } from './names.js';
import { tokenState, type TokenRecord, type TokenState, type TokenStore } from './store.js';

/** Token management shared by the CLI and (later) the admin API: one code path for both. */

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
    if (Number.isNaN(at)) throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT', `expiry "${value}" is not a valid timestamp`);
  } else {
    throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT',
      `expiry must be never, <N>d, a date (YYYY-MM-DD) or an ISO timestamp with a zone, got "${value}"`);
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
}

export interface CreatedToken {
  record: TokenRecord;
  /** The plaintext token: show it once, never store or log it. */
  token: string;
}

export async function createToken(store: TokenStore, input: CreateTokenInput, now = Date.now()): Promise<CreatedToken> {
  const name = validateName(input.name);
  const type = parseTokenTypeInput(input.type);
  const expiresAt = parseExpiry(input.expires, now);
  const token = generateToken(type);
  const record = await store.insert({
    id: generateTokenId(),
    name,
    type,
    hash: hashToken(token),
    createdAt: now,
    createdBy: input.createdBy,
    expiresAt,
  });
  return { record, token };
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
  state: TokenState;
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
  };
}

/** Production tokens that are not revoked (expired ones included), as the token gauges show them. */
export async function activeProductionTokens(store: TokenStore, now = Date.now()): Promise<TokenRecord[]> {
  return (await store.list()).filter((r) => r.type === 'production' && tokenState(r, now) !== 'revoked');
}
