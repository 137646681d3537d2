import type Database from 'better-sqlite3';
import type { Cluster, Redis } from 'ioredis';
import { GatewayError } from '../errors.js';
import type { SchemaReport } from './store.js';

/**
 * What the token stores hold, version by version, and how a store written by an earlier version
 * is brought up to date: the one place every change to the stores' layout goes.
 *
 * Each store records its schema version: SQLite in the `tollgate_schema` table (row `tokens`;
 * not PRAGMA user_version, since the file also holds other components' tables), Redis in the key
 * `P schema`. No record means version 0: an empty store, or one written before versions were
 * recorded (whose layout is version 1's). Opening a store runs every step above its version, in
 * order, each atomically with the bump of the version:
 * - SQLite: all pending steps in one IMMEDIATE transaction, so a second process opening the
 *   file at the same moment waits, then finds nothing left to do;
 * - Redis: one Lua script per step that first checks the version is still the step's
 *   predecessor, so of two gateways starting at once one runs it and the other skips it.
 * A store whose version is newer than this code knows is refused (TOLLGATE_ERR_STORE): an older
 * gateway must not write records whose new fields it would drop or ignore.
 *
 * Adding a change: append a step with the next version, an idempotent SQLite body (ALTER TABLE,
 * CREATE ... IF NOT EXISTS, backfills) and a Redis body (backfills; new hash fields need none),
 * teach the stores the new layout, and extend test/tokens/migration.test.ts.
 */

export interface Migration {
  /** The version this step brings the store to. */
  version: number;
  /** What changes, in a line. */
  summary: string;
  /** Runs inside the migration transaction. */
  sqlite(db: Database.Database): void;
  /**
   * Lua run atomically with the version check and bump. KEYS[1] is `P schema`, KEYS[2] `P tokens`,
   * ARGV[1] the prefix; other keys it derives from the prefix share its hash tag. Empty: nothing
   * to do in Redis (keys are created as they are written).
   */
  redis: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    summary: 'tokens and their change log',
    sqlite(db) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS tokens (
          id           TEXT PRIMARY KEY,
          name         TEXT NOT NULL,
          type         TEXT NOT NULL CHECK (type IN ('production', 'development')),
          hash         TEXT NOT NULL UNIQUE,
          created_at   INTEGER NOT NULL,
          created_by   TEXT NOT NULL,
          expires_at   INTEGER,
          revoked_at   INTEGER,
          revoked_by   TEXT,
          last_used_at INTEGER
        );
        CREATE INDEX IF NOT EXISTS tokens_name ON tokens (name);
        CREATE TABLE IF NOT EXISTS token_changes (
          rev  INTEGER PRIMARY KEY AUTOINCREMENT,
          hash TEXT NOT NULL,
          at   INTEGER NOT NULL
        );
      `);
    },
    redis: '',
  },
  {
    version: 2,
    summary:
      'names compared ignoring case (an index of folded names), signed-out admin sessions, the admin credential record',
    sqlite(db) {
      // SQLite's lower() folds ASCII letters only, as foldName does: the expression index needs no
      // new column, and rows a gateway of version 1 inserts during an upgrade are indexed too.
      db.exec(`
        CREATE INDEX IF NOT EXISTS tokens_name_folded ON tokens (lower(name));
        CREATE TABLE IF NOT EXISTS revoked_sessions (
          id         TEXT PRIMARY KEY,
          expires_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS revoked_sessions_expiry ON revoked_sessions (expires_at);
        CREATE TABLE IF NOT EXISTS admin_credential (
          id          INTEGER PRIMARY KEY CHECK (id = 1),
          salt        TEXT NOT NULL,
          fingerprint TEXT NOT NULL,
          since       INTEGER NOT NULL
        );
      `);
    },
    // The folded-name index `P namekey:<folded name>` (a ZSET of the non-revoked tokens' hashes
    // by createdAt), built from every token. Sessions and the credential are new keys.
    redis: `
for _, hash in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local f = redis.call('HMGET', ARGV[1] .. 'token:' .. hash, 'name', 'revokedAt', 'createdAt')
  if f[1] and not f[2] then
    redis.call('ZADD', ARGV[1] .. 'namekey:' .. string.lower(f[1]), f[3] or 0, hash)
  end
end
`,
  },
  {
    version: 3,
    summary: 'token restrictions, rotation (replaces, replaced by, overlap end), leak reports, CI identity',
    // New nullable columns (JSON text for the structured ones); every existing token has none of
    // them, which is what it had. The version bump matters more than the columns: a gateway of
    // schema 2 would serve a restricted token unrestricted, so it must refuse this store.
    sqlite(db) {
      const have = new Set(
        db
          .prepare<[], { name: string }>('PRAGMA table_info(tokens)')
          .all()
          .map((c) => c.name),
      );
      const columns: [string, string][] = [
        ['restrictions', 'TEXT'],
        ['replaced_by', 'TEXT'],
        ['overlap_ends_at', 'INTEGER'],
        ['replaces', 'TEXT'],
        ['leak', 'TEXT'],
        ['ci', 'TEXT'],
      ];
      for (const [name, type] of columns) if (!have.has(name)) db.exec(`ALTER TABLE tokens ADD COLUMN ${name} ${type}`);
    },
    // New hash fields (restrictions, replacedBy, overlapEndsAt, replaces, leak, ci), absent: none.
    redis: '',
  },
  {
    version: 4,
    summary:
      'CI token exchange: ID tokens claimed once (replay protection), an expiry index of issued tokens for the purge, the purged tokens kept for the audit trail',
    // The bump matters: a gateway of schema 3 would neither record claims here nor index issued
    // tokens by expiry, so tokens it issued would never be purged.
    sqlite(db) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS ci_claims (
          key        TEXT PRIMARY KEY,
          expires_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS ci_claims_expiry ON ci_claims (expires_at);
        CREATE INDEX IF NOT EXISTS tokens_ci_expiry ON tokens (expires_at) WHERE ci IS NOT NULL;
        CREATE TABLE IF NOT EXISTS ci_purged (
          seq       INTEGER PRIMARY KEY AUTOINCREMENT,
          purged_at INTEGER NOT NULL,
          record    TEXT NOT NULL
        );
      `);
    },
    // `P ci-expiry`: a ZSET of the hashes of tokens with a CI identity and an expiry, scored by
    // expiresAt, built here from the tokens that exist. Claims are keys of their own (SET NX PX);
    // `P ci-purged`, a capped LIST of what the purge deleted, starts empty.
    redis: `
for _, hash in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local f = redis.call('HMGET', ARGV[1] .. 'token:' .. hash, 'ci', 'expiresAt')
  if f[1] and f[2] then redis.call('ZADD', ARGV[1] .. 'ci-expiry', f[2], hash) end
end
`,
  },
];

/** The version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

function refuseNewer(found: number): never {
  throw new GatewayError(
    'TOLLGATE_ERR_STORE',
    `the token store has schema version ${found}, newer than this Tollgate knows (${SCHEMA_VERSION}): run a newer Tollgate`,
  );
}

/** Brings a SQLite token store up to SCHEMA_VERSION in one transaction. */
export function migrateSqlite(db: Database.Database, now = Date.now()): SchemaReport {
  return db
    .transaction((): SchemaReport => {
      db.exec(
        'CREATE TABLE IF NOT EXISTS tollgate_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL, migrated_at INTEGER NOT NULL)',
      );
      const row = db
        .prepare<[], { version: number }>("SELECT version FROM tollgate_schema WHERE component = 'tokens'")
        .get();
      const from = row?.version ?? 0;
      if (from > SCHEMA_VERSION) refuseNewer(from);
      if (from === SCHEMA_VERSION) return { from, to: from };
      for (const step of MIGRATIONS) if (step.version > from) step.sqlite(db);
      db.prepare(
        "INSERT INTO tollgate_schema (component, version, migrated_at) VALUES ('tokens', ?, ?) " +
          'ON CONFLICT (component) DO UPDATE SET version = excluded.version, migrated_at = excluded.migrated_at',
      ).run(SCHEMA_VERSION, now);
      return { from, to: SCHEMA_VERSION };
    })
    .immediate();
}

/** Runs one step if the store is still at the step's predecessor; returns the version it left. */
const stepScript = (body: string) => `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[2]) then return current end
${body}
redis.call('SET', KEYS[1], ARGV[3])
return tonumber(ARGV[3])
`;

/** Brings a Redis token store (keys under `prefix`) up to SCHEMA_VERSION, step by step. */
export async function migrateRedis(client: Redis | Cluster, prefix: string): Promise<SchemaReport> {
  const schemaKey = `${prefix}schema`;
  const from = Number((await client.get(schemaKey)) ?? 0);
  if (from > SCHEMA_VERSION) refuseNewer(from);
  let current = from;
  for (const step of MIGRATIONS) {
    if (step.version <= current) continue;
    // Another gateway may have run this step (or more) meanwhile: continue from what it left.
    current = Number(
      await client.eval(
        stepScript(step.redis),
        2,
        schemaKey,
        `${prefix}tokens`,
        prefix,
        String(step.version - 1),
        String(step.version),
      ),
    );
    if (current > SCHEMA_VERSION) refuseNewer(current);
  }
  if (current !== SCHEMA_VERSION)
    throw new GatewayError('TOLLGATE_ERR_STORE', `token store migration stopped at schema version ${current}`);
  return { from, to: current };
}
