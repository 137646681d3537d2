import { GatewayError } from '../errors.js';
import { openDatabase } from '../sqlite/open.js';
import type { TokenType } from './format.js';
import { migrateSqlite } from './migrations.js';
import { designatedByName, foldName } from './names.js';
import { decodePurged, encodePurged } from './purged-codec.js';
import { decodeCi, decodeLeak, decodeRestrictions, encodeJson } from './record-codec.js';
import {
  ADMIN_CREDENTIAL_CHANGE,
  PURGED_CI_KEPT,
  SESSION_CHANGE_PREFIX,
  tokenState,
  type PurgedToken,
  type AdminCredentialRecord,
  type ChangesSince,
  type LastUsed,
  type LeakReport,
  type NewTokenRecord,
  type TokenRecord,
  type TokenStore,
} from './store.js';

/** How many change-log entries are kept; a gateway further behind than this drops its whole cache. */
export const CHANGE_LOG_KEEP = 10_000;
/** Tokens one purge deletes at most (the sweep runs again soon enough). */
export const PURGE_BATCH = 1_000;

interface Row {
  id: string;
  name: string;
  type: TokenType;
  hash: string;
  created_at: number;
  created_by: string;
  expires_at: number | null;
  revoked_at: number | null;
  revoked_by: string | null;
  last_used_at: number | null;
  // Schema 3.
  restrictions: string | null;
  replaced_by: string | null;
  overlap_ends_at: number | null;
  replaces: string | null;
  leak: string | null;
  ci: string | null;
}

function toRecord(row: Row): TokenRecord {
  return {
    id: row.id,
    name: row.name,
    type: row.type,
    hash: row.hash,
    createdAt: row.created_at,
    createdBy: row.created_by,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    revokedBy: row.revoked_by,
    lastUsedAt: row.last_used_at,
    restrictions: decodeRestrictions(row.restrictions, row.id),
    replacedBy: row.replaced_by,
    overlapEndsAt: row.overlap_ends_at,
    replaces: row.replaces,
    leak: decodeLeak(row.leak, row.id),
    ci: decodeCi(row.ci, row.id),
  };
}

/** A new record's columns (insertRow's named parameters). */
function toParams(record: NewTokenRecord, replaces: string | null) {
  const { id, name, type, hash, createdAt, createdBy, expiresAt } = record;
  const restrictions = encodeJson(record.restrictions);
  const ci = encodeJson(record.ci);
  return { id, name, type, hash, createdAt, createdBy, expiresAt, restrictions, replaces, ci };
}

export interface SqliteStoreOptions {
  dataDir: string;
  /** File name under dataDir. Default tollgate.db. */
  fileName?: string;
  /** Purged CI tokens kept for the audit trail. Default PURGED_CI_KEPT. */
  purgedKept?: number;
}

/**
 * The embedded store: one SQLite file in WAL mode with synchronous=FULL, so the CLI and a
 * running gateway can use it at once and a kill -9 loses no committed token. better-sqlite3
 * is synchronous; every statement here takes microseconds on a local file. Opening it migrates
 * the file to this version's schema (migrations.ts) before anything else.
 */
export function createSqliteTokenStore(options: SqliteStoreOptions): TokenStore & { readonly file: string } {
  const { db, file } = openDatabase({ dataDir: options.dataDir, fileName: options.fileName, synchronous: 'FULL' });
  const purgedKept = options.purgedKept ?? PURGED_CI_KEPT;
  let schema;
  try {
    schema = migrateSqlite(db);
  } catch (err) {
    db.close();
    throw err;
  }

  const byHash = db.prepare<[string], Row>('SELECT * FROM tokens WHERE hash = ?');
  const byId = db.prepare<[string], Row>('SELECT * FROM tokens WHERE id = ?');
  // lower(name) is the expression of the tokens_name_folded index: foldName's fold.
  const byName = db.prepare<[string], Row>(
    'SELECT * FROM tokens WHERE lower(name) = ? AND revoked_at IS NULL ORDER BY created_at DESC, rowid DESC',
  );
  // The active token holding a name: not revoked, not expired, not rotated out.
  const liveByName = db.prepare<[string, number], Row>(
    `SELECT * FROM tokens WHERE lower(name) = ? AND revoked_at IS NULL AND overlap_ends_at IS NULL
     AND (expires_at IS NULL OR expires_at > ?) LIMIT 1`,
  );
  const all = db.prepare<[], Row>('SELECT * FROM tokens ORDER BY created_at DESC, rowid DESC');
  const insertRow = db.prepare(
    `INSERT INTO tokens (id, name, type, hash, created_at, created_by, expires_at, restrictions, replaces, ci)
     VALUES (@id, @name, @type, @hash, @createdAt, @createdBy, @expiresAt, @restrictions, @replaces, @ci)`,
  );
  const revokeRow = db.prepare<[number, string, string | null, string]>(
    'UPDATE tokens SET revoked_at = ?, revoked_by = ?, leak = ? WHERE id = ? AND revoked_at IS NULL',
  );
  const rotateRow = db.prepare<[string, number, string]>(
    'UPDATE tokens SET replaced_by = ?, overlap_ends_at = ? WHERE id = ?',
  );
  const addChange = db.prepare('INSERT INTO token_changes (hash, at) VALUES (?, ?)');
  const trimChanges = db.prepare('DELETE FROM token_changes WHERE rev <= ?');
  const maxRev = db.prepare<[], { rev: number | null }>('SELECT max(rev) AS rev FROM token_changes');
  const seqRev = db.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'token_changes'");
  const minRev = db.prepare<[], { rev: number | null }>('SELECT min(rev) AS rev FROM token_changes');
  const since = db.prepare<[number], { rev: number; hash: string }>(
    'SELECT rev, hash FROM token_changes WHERE rev > ? ORDER BY rev',
  );
  const touch = db.prepare('UPDATE tokens SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?');
  const addSession = db.prepare('INSERT OR IGNORE INTO revoked_sessions (id, expires_at) VALUES (?, ?)');
  const purgeSessions = db.prepare('DELETE FROM revoked_sessions WHERE expires_at <= ?');
  const sessionRevoked = db.prepare<[string, number], { id: string }>(
    'SELECT id FROM revoked_sessions WHERE id = ? AND expires_at > ?',
  );
  const addClaim = db.prepare<[string, number]>('INSERT OR IGNORE INTO ci_claims (key, expires_at) VALUES (?, ?)');
  const liveClaim = db.prepare<[string, number], { key: string }>(
    'SELECT key FROM ci_claims WHERE key = ? AND expires_at > ?',
  );
  const pruneClaims = db.prepare<[number]>('DELETE FROM ci_claims WHERE expires_at <= ?');
  // The partial index tokens_ci_expiry serves this.
  const expiredCi = db.prepare<[number, number], Row>(
    'SELECT * FROM tokens WHERE ci IS NOT NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?',
  );
  const deleteRow = db.prepare<[string]>('DELETE FROM tokens WHERE id = ?');
  const archivePurged = db.prepare<[number, string]>('INSERT INTO ci_purged (purged_at, record) VALUES (?, ?)');
  const trimPurged = db.prepare<[number]>('DELETE FROM ci_purged WHERE seq <= (SELECT max(seq) FROM ci_purged) - ?');
  const purgedRows = db.prepare<[number], { purged_at: number; record: string }>(
    'SELECT purged_at, record FROM ci_purged ORDER BY seq DESC LIMIT ?',
  );
  const readCredential = db.prepare<[], AdminCredentialRecord>(
    'SELECT salt, fingerprint, since FROM admin_credential WHERE id = 1',
  );
  const writeCredential = db.prepare(
    `INSERT INTO admin_credential (id, salt, fingerprint, since) VALUES (1, @salt, @fingerprint, @since)
     ON CONFLICT (id) DO UPDATE SET salt = excluded.salt, fingerprint = excluded.fingerprint, since = excluded.since`,
  );

  /** By id, else by name ignoring case (names.ts designatedByName: ambiguous names throw). */
  const lookup = (idOrName: string, now: number): TokenRecord[] => {
    const row = byId.get(idOrName);
    if (row) return [toRecord(row)];
    return designatedByName(idOrName, byName.all(foldName(idOrName)).map(toRecord), now);
  };

  /** The revision survives trimming: AUTOINCREMENT's sequence never goes back. */
  const currentRevision = (): number => seqRev.get()?.seq ?? maxRev.get()?.rev ?? 0;

  const logChange = (hash: string, at: number): void => {
    const { lastInsertRowid } = addChange.run(hash, at);
    const rev = Number(lastInsertRowid);
    if (rev % 100 === 0) trimChanges.run(rev - CHANGE_LOG_KEEP);
  };

  const insertTx = db.transaction((record: NewTokenRecord): TokenRecord => {
    if (liveByName.get(foldName(record.name), Date.now())) {
      throw new GatewayError('TOLLGATE_ERR_TOKEN_NAME_TAKEN', `"${record.name}"`);
    }
    insertRow.run(toParams(record, null));
    logChange(record.hash, record.createdAt);
    return toRecord(byId.get(record.id)!);
  });

  const revokeIdsTx = db.transaction(
    (ids: readonly string[], by: string, at: number, leak: LeakReport | null): TokenRecord[] => {
      const revoked: TokenRecord[] = [];
      for (const id of new Set(ids)) {
        const row = byId.get(id);
        if (!row || revokeRow.run(at, by, encodeJson(leak), id).changes === 0) continue;
        logChange(row.hash, at);
        revoked.push(toRecord(byId.get(id)!));
      }
      return revoked;
    },
  );

  const revokeTx = db.transaction((idOrName: string, by: string, at: number): TokenRecord => {
    const [designated, ...others] = lookup(idOrName, Date.now());
    if (!designated) throw new GatewayError('TOLLGATE_ERR_TOKEN_NOT_FOUND', `"${idOrName}"`);
    revokeIdsTx([designated.id, ...others.map((r) => r.id)], by, at, null);
    return toRecord(byId.get(designated.id)!);
  });

  const rotateTx = db.transaction((id: string, next: NewTokenRecord, overlapEndsAt: number, at: number) => {
    const row = byId.get(id);
    if (!row) throw new GatewayError('TOLLGATE_ERR_TOKEN_NOT_FOUND', `"${id}"`);
    const state = tokenState(toRecord(row), at);
    if (state !== 'active') throw new GatewayError('TOLLGATE_ERR_TOKEN_NOT_LIVE', `"${row.name}" (${id}) is ${state}`);
    insertRow.run(toParams({ ...next, name: row.name }, id));
    rotateRow.run(next.id, overlapEndsAt, id);
    logChange(row.hash, at);
    logChange(next.hash, at);
    return { previous: toRecord(byId.get(id)!), current: toRecord(byId.get(next.id)!) };
  });

  const touchTx = db.transaction((entries: LastUsed[]) => {
    for (const e of entries) touch.run(e.at, e.id);
  });

  const revokeSessionTx = db.transaction((id: string, expiresAt: number, now: number) => {
    purgeSessions.run(now);
    if (addSession.run(id, expiresAt).changes > 0) logChange(SESSION_CHANGE_PREFIX + id, now);
  });

  /** An expired claim of the same key is replaced: the key is free again once its ID token has expired. */
  const claimTx = db.transaction((key: string, expiresAt: number, now: number): boolean => {
    pruneClaims.run(now);
    if (liveClaim.get(key, now)) return false;
    return addClaim.run(key, expiresAt).changes > 0;
  });

  const purgeCiTx = db.transaction((endedBefore: number, max: number, now: number): TokenRecord[] => {
    const rows = expiredCi.all(endedBefore, max);
    const records = rows.map(toRecord);
    for (const record of records) {
      deleteRow.run(record.id);
      logChange(record.hash, now);
      archivePurged.run(now, encodePurged(record));
    }
    if (records.length > 0) trimPurged.run(purgedKept);
    return records;
  });

  const replaceCredentialTx = db.transaction((expected: string | undefined, next: AdminCredentialRecord): boolean => {
    if (readCredential.get()?.fingerprint !== expected) return false;
    writeCredential.run(next);
    logChange(ADMIN_CREDENTIAL_CHANGE, Date.now());
    return true;
  });

  return {
    kind: 'sqlite',
    file,
    async migrate() {
      return schema;
    },
    async findByHash(hash) {
      const row = byHash.get(hash);
      return row ? toRecord(row) : undefined;
    },
    async get(idOrName) {
      return lookup(idOrName, Date.now())[0];
    },
    async lookup(idOrName) {
      return lookup(idOrName, Date.now());
    },
    async list() {
      return all.all().map(toRecord);
    },
    async insert(record) {
      return insertTx.immediate(record);
    },
    async revoke(idOrName, revokedBy, at = Date.now()) {
      return revokeTx.immediate(idOrName, revokedBy, at);
    },
    async revokeIds(ids, revokedBy, at, leak = null) {
      return revokeIdsTx.immediate(ids, revokedBy, at, leak);
    },
    async rotate(id, next, overlapEndsAt, at) {
      return rotateTx.immediate(id, next, overlapEndsAt, at);
    },
    async claimOnce(key, expiresAt, now = Date.now()) {
      return claimTx.immediate(key, expiresAt, now);
    },
    async purgeExpiredCi(endedBefore, max = PURGE_BATCH) {
      return purgeCiTx.immediate(endedBefore, max, Date.now());
    },
    async purgedCi(limit) {
      return purgedRows
        .all(Math.min(limit, purgedKept))
        .map((row) => decodePurged(row.record, row.purged_at))
        .filter((p): p is PurgedToken => p !== undefined);
    },
    async recordLastUsed(entries) {
      if (entries.length > 0) touchTx.immediate(entries);
    },
    async revision() {
      return currentRevision();
    },
    async changesSince(revision): Promise<ChangesSince> {
      return db
        .transaction(() => {
          const current = currentRevision();
          if (current <= revision) return { changes: [], revision: current, complete: true };
          const oldest = minRev.get()?.rev ?? current + 1;
          const changes = since.all(revision);
          return { changes, revision: current, complete: oldest <= revision + 1 };
        })
        .deferred();
    },
    onChange() {
      return () => {};
    },
    async revokeSession(id, expiresAt) {
      const now = Date.now();
      if (expiresAt > now) revokeSessionTx.immediate(id, expiresAt, now);
    },
    async isSessionRevoked(id, now = Date.now()) {
      return sessionRevoked.get(id, now) !== undefined;
    },
    async readAdminCredential() {
      return readCredential.get();
    },
    async replaceAdminCredential(expected, next) {
      return replaceCredentialTx.immediate(expected, next);
    },
    async ping() {
      db.prepare('SELECT 1').get();
    },
    async close() {
      if (db.open) db.close();
    },
  };
}
