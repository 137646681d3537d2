import type { TokenType } from './format.js';
import type { TokenRestrictions } from './restrictions.js';

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
  /** What the token may reach (routes, packages, networks, rate); null: everything. */
  restrictions: TokenRestrictions | null;
  /** Rotation: the token that replaced this one, and when this one stops working (its overlap's end). */
  replacedBy: string | null;
  overlapEndsAt: number | null;
  /** Rotation: the token this one replaced. */
  replaces: string | null;
  /** Revoked because its value was reported leaked: by whom (a scanner) and where it was found. */
  leak: LeakReport | null;
  /** Issued to a CI job in exchange for its OIDC identity: who the job is. */
  ci: CiIdentity | null;
}

/** Where a leaked token was found, as its report said. */
export interface LeakReport {
  /** The reporter: `github` (secret scanning partner reports), or what an admin's scanner calls itself. */
  source: string;
  /** Where it was found (a commit URL), when the report says. */
  url: string | null;
  /** The report's own kind of place (GitHub's `source`: content, commit, issue...), when it says. */
  location: string | null;
}

/** A CI job's identity from its OIDC ID token, carried by the token issued for it. */
export interface CiIdentity {
  /** The trust policy (ciProviders[].name) that accepted the ID token. */
  provider: string;
  /** The ID token's `sub`. */
  subject: string;
  /** The project its downloads count against (the policy's `project` claim); wins over a Basic user. */
  project?: string;
  repository?: string;
  ref?: string;
  sha?: string;
  workflow?: string;
  runId?: string;
  actor?: string;
}

/** What insert takes: a new token's own fields (restrictions and CI identity optional: null). */
export type NewTokenRecord = Omit<
  TokenRecord,
  | 'revokedAt'
  | 'revokedBy'
  | 'lastUsedAt'
  | 'restrictions'
  | 'replacedBy'
  | 'overlapEndsAt'
  | 'replaces'
  | 'leak'
  | 'ci'
> & { restrictions?: TokenRestrictions | null; ci?: CiIdentity | null };

/** A new record as the stores return it: every field that insert does not take is null. */
export function storedRecord(record: NewTokenRecord, replaces: string | null = null): TokenRecord {
  return {
    id: record.id,
    name: record.name,
    type: record.type,
    hash: record.hash,
    createdAt: record.createdAt,
    createdBy: record.createdBy,
    expiresAt: record.expiresAt,
    revokedAt: null,
    revokedBy: null,
    lastUsedAt: null,
    restrictions: record.restrictions ?? null,
    replacedBy: null,
    overlapEndsAt: null,
    replaces,
    leak: null,
    ci: record.ci ?? null,
  };
}

/** A rotation as the store carried it out: the token replaced (now in its overlap) and its replacement. */
export interface Rotation {
  previous: TokenRecord;
  current: TokenRecord;
}

/** `rotated`: replaced by a newer token, still working until its overlap ends. */
export type TokenState = 'active' | 'rotated' | 'expired' | 'revoked';

/** When the token stops working: its expiry, or the end of its rotation overlap, whichever is first. */
export function tokenEndsAt(record: Pick<TokenRecord, 'expiresAt' | 'overlapEndsAt'>): number | null {
  const overlap = record.overlapEndsAt;
  if (overlap === null) return record.expiresAt;
  return record.expiresAt === null ? overlap : Math.min(record.expiresAt, overlap);
}

export function tokenState(
  record: Pick<TokenRecord, 'revokedAt' | 'expiresAt' | 'overlapEndsAt'>,
  now = Date.now(),
): TokenState {
  if (record.revokedAt !== null) return 'revoked';
  const endsAt = tokenEndsAt(record);
  if (endsAt !== null && endsAt <= now) return 'expired';
  if (record.overlapEndsAt !== null) return 'rotated';
  return 'active';
}

/** Still working: not revoked, not past its expiry or its rotation overlap. */
export function isLive(
  record: Pick<TokenRecord, 'revokedAt' | 'expiresAt' | 'overlapEndsAt'>,
  now = Date.now(),
): boolean {
  const state = tokenState(record, now);
  return state === 'active' || state === 'rotated';
}

/**
 * One entry of the store's change log: what changed at this revision. `hash` names the subject:
 * a token's hash (64 hex characters), `session:<id>` for a signed-out admin session, or
 * `admin-credential` when an instance started with another admin token (see changeSubject).
 */
export interface TokenChange {
  rev: number;
  hash: string;
}

export const SESSION_CHANGE_PREFIX = 'session:';
export const ADMIN_CREDENTIAL_CHANGE = 'admin-credential';
const TOKEN_HASH = /^[0-9a-f]{64}$/;

export type ChangeSubject =
  { kind: 'token'; hash: string } | { kind: 'session'; id: string } | { kind: 'admin-credential' } | { kind: 'other' };

/** What a change-log entry is about. Unknown subjects (from a newer version) are 'other': ignore them. */
export function changeSubject(change: TokenChange): ChangeSubject {
  const { hash } = change;
  if (TOKEN_HASH.test(hash)) return { kind: 'token', hash };
  if (hash.startsWith(SESSION_CHANGE_PREFIX)) return { kind: 'session', id: hash.slice(SESSION_CHANGE_PREFIX.length) };
  if (hash === ADMIN_CREDENTIAL_CHANGE) return { kind: 'admin-credential' };
  return { kind: 'other' };
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
 * The admin credential instances sharing the store started with: a salted scrypt fingerprint of
 * the admin token (never the token), and since when it is the current one. Sessions issued before
 * `since` are void on every instance.
 */
export interface AdminCredentialRecord {
  salt: string;
  fingerprint: string;
  /** Epoch ms; 0 for the first credential a store saw. */
  since: number;
}

/** What the admin listener keeps in the token store, so that every instance sharing it agrees. */
export interface AdminRecords {
  /** Records a signed-out session until it would have expired; logs a `session:<id>` change. */
  revokeSession(id: string, expiresAt: number): Promise<void>;
  isSessionRevoked(id: string, now?: number): Promise<boolean>;
  readAdminCredential(): Promise<AdminCredentialRecord | undefined>;
  /**
   * Replaces the record if its fingerprint is still `expected` (undefined: there was none), and
   * logs an `admin-credential` change. False when another instance changed it first: read again.
   */
  replaceAdminCredential(expected: string | undefined, next: AdminCredentialRecord): Promise<boolean>;
}

/** The store's schema version before and after the migrations this handle ran (equal: none ran). */
export interface SchemaReport {
  from: number;
  to: number;
}

/** How many purged CI tokens the store keeps on record for the audit trail (the newest). */
export const PURGED_CI_KEPT = 10_000;

/** A CI-issued token the purge deleted: its record as it was (hash blanked) and when. */
export interface PurgedToken {
  record: TokenRecord;
  purgedAt: number;
}

/**
 * Where token records live. Two implementations: SQLite under the data dir (embedded default)
 * and Redis. Every mutation (create, revoke, rotate, a session signed out, a new admin credential)
 * appends to a change log with a monotonically increasing revision, so a gateway that missed
 * notifications can catch up exactly.
 */
export interface TokenStore extends AdminRecords {
  readonly kind: 'sqlite' | 'redis';
  /**
   * Brings the store to this version's schema (migrations.ts), once per handle; every other
   * operation waits for it. Resolves to what it found and left.
   */
  migrate(): Promise<SchemaReport>;
  findByHash(hash: string): Promise<TokenRecord | undefined>;
  /**
   * Looks up by id, else by name, ignoring case, among tokens that are not revoked (see
   * resolveName in names.ts: several active tokens with that name are TOLLGATE_ERR_TOKEN_AMBIGUOUS;
   * a token and its rotated-out predecessor are one token's two generations, not a clash).
   */
  get(idOrName: string): Promise<TokenRecord | undefined>;
  /**
   * What an id or a name designates (names.ts designated): by id, that token; by name, the token
   * get() returns first, then every other live token of that name (a rotated-out generation still
   * in its overlap). Empty when nothing matches; throws as get() does.
   */
  lookup(idOrName: string): Promise<TokenRecord[]>;
  /** All tokens, newest first. */
  list(): Promise<TokenRecord[]>;
  /**
   * Throws GatewayError TOLLGATE_ERR_TOKEN_NAME_TAKEN when an active token has this name, ignoring
   * case (a rotated-out token, still in its overlap, does not hold its name).
   */
  insert(record: NewTokenRecord): Promise<TokenRecord>;
  /**
   * Revokes what lookup(idOrName) designates: by id, that token; by name, every live generation.
   * Returns the designated token. Throws GatewayError TOLLGATE_ERR_TOKEN_NOT_FOUND or
   * TOLLGATE_ERR_TOKEN_AMBIGUOUS. Revoking a revoked token returns it unchanged.
   */
  revoke(idOrName: string, revokedBy: string, at?: number): Promise<TokenRecord>;
  /**
   * Revokes, in one atomic step, each of these tokens (by id) that is not revoked yet, recording
   * who, when and (a leaked token) the leak report; logs a change for each. Returns the records it
   * revoked, now revoked; unknown and already revoked ids are left out.
   */
  revokeIds(ids: readonly string[], revokedBy: string, at: number, leak?: LeakReport | null): Promise<TokenRecord[]>;
  /**
   * Rotation, atomically: inserts `next` (the token's name, and replacing it) and lets the token
   * `id` work until `overlapEndsAt`, logging a change for both. The name is not checked again: the
   * replacement takes its predecessor's place. Throws TOLLGATE_ERR_TOKEN_NOT_FOUND, or
   * TOLLGATE_ERR_TOKEN_NOT_LIVE when that token is revoked, has ended or was rotated already.
   */
  rotate(id: string, next: NewTokenRecord, overlapEndsAt: number, at: number): Promise<Rotation>;
  /**
   * Records `key` until `expiresAt` (epoch ms) unless it is recorded already: true for the first
   * claim of a key, false for every later one while it lasts. The token exchange claims each ID
   * token (its replay key) once, so one leaked ID token yields one Tollgate token at most.
   * Expired claims are pruned as new ones are made.
   */
  claimOnce(key: string, expiresAt: number, now?: number): Promise<boolean>;
  /**
   * Deletes the tokens issued to CI jobs (ci set) that expired at or before `endedBefore`, logging
   * a change for each; returns what it deleted (at most `max`, oldest expiry first). Safe to run
   * from several instances at once: each token is deleted by one of them.
   */
  purgeExpiredCi(endedBefore: number, max?: number): Promise<TokenRecord[]>;
  /**
   * What the purge deleted, for the audit trail: the records of the last PURGED_CI_KEPT tokens
   * purgeExpiredCi deleted (their hash blanked), newest purge first, at most `limit`. Kept in the
   * same step as the delete, so a purged token's issuance stays on record.
   */
  purgedCi(limit: number): Promise<PurgedToken[]>;
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
