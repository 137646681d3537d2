import type { TokenType } from './format.js';

/** Times are epoch milliseconds; null means "never" / "not yet". */
export interface TokenRecord {
  id: string;
  name: string;
  type: TokenType;
  /** SHA-256 of the token, hex. The plaintext is never stored. */
  hash: string;
  createdAt: number;
  createdBy: string;
  expiresAt: number | null;
  revokedAt: number | null;
  revokedBy: string | null;
  lastUsedAt: number | null;
}

export type NewTokenRecord = Omit<TokenRecord, 'revokedAt' | 'revokedBy' | 'lastUsedAt'>;

export type TokenState = 'active' | 'expired' | 'revoked';

export function tokenState(record: Pick<TokenRecord, 'revokedAt' | 'expiresAt'>, now = Date.now()): TokenState {
  if (record.revokedAt !== null) return 'revoked';
  if (record.expiresAt !== null && record.expiresAt <= now) return 'expired';
  return 'active';
}

/** One entry of the store's change log: the token with this hash changed at this revision. */
export interface TokenChange {
  rev: number;
  hash: string;
}

export interface ChangesSince {
  changes: TokenChange[];
  /** The store's revision when read; the caller's new "last seen". */
  revision: number;
  /** False when the log was trimmed past the caller's revision: drop every cached entry. */
  complete: boolean;
}

export interface LastUsed {
  id: string;
  hash: string;
  at: number;
}

/**
 * Where token records live. Two implementations: SQLite under the data dir (embedded default)
 * and Redis. Every mutation (create, revoke) appends to a change log with a monotonically
 * increasing revision, so a gateway that missed notifications can catch up exactly.
 */
export interface TokenStore {
  readonly kind: 'sqlite' | 'redis';
  findByHash(hash: string): Promise<TokenRecord | undefined>;
  /** Looks up by id, else by name among tokens that are not revoked (newest first). */
  get(idOrName: string): Promise<TokenRecord | undefined>;
  /** All tokens, newest first. */
  list(): Promise<TokenRecord[]>;
  /** Throws GatewayError TOLLGATE_ERR_TOKEN_NAME_TAKEN when a live token has this name. */
  insert(record: NewTokenRecord): Promise<TokenRecord>;
  /** Throws GatewayError TOLLGATE_ERR_TOKEN_NOT_FOUND. Revoking a revoked token returns it unchanged. */
  revoke(idOrName: string, revokedBy: string, at?: number): Promise<TokenRecord>;
  /** Batched last-used times; never called per request. */
  recordLastUsed(entries: LastUsed[]): Promise<void>;
  revision(): Promise<number>;
  changesSince(revision: number): Promise<ChangesSince>;
  /**
   * Push notification of a change (Redis pub/sub). The listener is also called when the
   * notification channel reconnects, since messages may have been missed meanwhile.
   * Returns an unsubscribe function. The embedded store is polled instead and never calls it.
   */
  onChange(listener: () => void): () => void;
  /** Resolves when the store is reachable (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
