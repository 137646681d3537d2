/**
 * The Redis token store's key layout. P is the configured prefix, `{tollgate}:` by default. Its `{...}` is a Redis
 * Cluster hash tag: every key below hashes to one slot, so the multi-key Lua scripts also run
 * on a Cluster. A custom prefix must keep a hash tag (and put it first) to stay Cluster-safe.
 *
 *   P token:<hash>  HASH    the record: id, name, type, hash, createdAt, createdBy, and when set
 *                           expiresAt, revokedAt, revokedBy, lastUsedAt, and (schema 3)
 *                           restrictions, leak, ci (JSON), replacedBy, overlapEndsAt, replaces
 *                           (an absent field is null; redis-codec.ts)
 *   P id:<id>       STRING  → hash
 *   P namekey:<folded name>  ZSET  hashes of the NOT revoked tokens whose name folds to this
 *                           (foldName: ASCII letters lower-cased), scored by createdAt. Expired
 *                           ones stay: `get(name)` resolves among them (names.ts resolveName), as
 *                           the SQLite store does; insert checks the members' expiry. (Schema 2.)
 *   P name:<name>   ZSET    the same by exact name: schema 1's index, still written for gateways
 *                           of that version during an upgrade, and read beside namekey for the
 *                           tokens they write meanwhile (which namekey does not list)
 *   P tokens        ZSET    every hash, scored by createdAt (list, newest first)
 *   P rev           STRING  revision counter (see "Revisions" below)
 *   P changes       ZSET    members `<rev>:<subject>` scored by rev, trimmed to the newest
 *                           changeLogKeep; the subject is a token hash, `session:<id>` or
 *                           `admin-credential` (store.ts changeSubject)
 *   channel P changes       pub/sub; each message is a new revision (channels are not keys)
 *   P revoked-session:<id>  STRING  a signed-out admin session, expiring when it would have (schema 2)
 *   P admin-credential HASH salt, fingerprint, since: the admin credential record (schema 2)
 *   P schema        STRING  the schema version (migrations.ts); absent: 0
 *   P ci-expiry     ZSET    hashes of tokens issued to CI jobs (ci and expiresAt set), scored by
 *                           expiresAt: what the purge reads (schema 4)
 *   P ci-claim:<key> STRING an ID token exchanged already (its replay key), expiring with it (schema 4)
 *   P ci-purged     LIST    what the purge deleted, newest first, the newest PURGED_CI_KEPT: JSON
 *                           {purgedAt, record} (purged-codec.ts), for the audit trail (schema 4)
 *
 * Differences from the suggested layout, for simplicity:
 * - lastUsedAt lives in the token hash, not in a separate `P lastused` hash. A batch is still one
 *   Lua call, list needs no extra read, and findByHash returns it like the SQLite store does.
 * - Index sets hold hashes, not ids, so list and get cost one read less.
 *
 */
import { foldName } from './names.js';

/** Every key (and the channel) under one prefix. */
export function redisKeys(prefix: string) {
  return {
    channel: `${prefix}changes`,
    rev: `${prefix}rev`,
    changes: `${prefix}changes`,
    tokens: `${prefix}tokens`,
    token: (hash: string) => `${prefix}token:${hash}`,
    id: (id: string) => `${prefix}id:${id}`,
    name: (name: string) => `${prefix}name:${name}`,
    nameIndex: (name: string) => `${prefix}namekey:${foldName(name)}`,
    session: (id: string) => `${prefix}revoked-session:${id}`,
    credential: `${prefix}admin-credential`,
    ciExpiry: `${prefix}ci-expiry`,
    claim: (key: string) => `${prefix}ci-claim:${key}`,
    purged: `${prefix}ci-purged`,
  };
}
