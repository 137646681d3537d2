/**
 * The Redis token store, for several gateway instances sharing tokens. Its keys and what each
 * holds: redis-keys.ts.
 *
 * Revisions. When `P rev` is absent (a new store, or a Redis that lost its data) the next change
 * starts it from the Redis server clock in microseconds, not from 1. A reset therefore never
 * reuses revision numbers a gateway has already seen: changesSince() reports complete:false and
 * the gateway drops its cache, instead of trusting entries for tokens that no longer exist.
 *
 * Split by job: the key layout (redis-keys.ts), the record codec (redis-codec.ts), the Lua
 * scripts (redis-scripts.ts), and here the connections and the operations.
 */
import { GatewayError, isGatewayError } from '../errors.js';
import { quitOrDisconnect } from '../redis/connect.js';
import { migrateRedis } from './migrations.js';
import { openStoreConnections, type RedisClient, type RedisConnectionOptions } from './redis-connections.js';
import { designatedByName } from './names.js';
import { redisKeys } from './redis-keys.js';
import {
  fieldsToAdminCredential,
  fieldsToRecord,
  pairsToFields,
  pairsToRecord,
  parseChange,
  recordToFields,
} from './redis-codec.js';
import { decodePurged } from './purged-codec.js';
import { defineScripts } from './redis-scripts.js';
import { encodeJson } from './record-codec.js';
import {
  ADMIN_CREDENTIAL_CHANGE,
  SESSION_CHANGE_PREFIX,
  storedRecord,
  type ChangesSince,
  type LastUsed,
  type NewTokenRecord,
  type SchemaReport,
  type TokenRecord,
  type TokenStore,
  type PurgedToken,
  PURGED_CI_KEPT,
} from './store.js';

export const DEFAULT_REDIS_PREFIX = '{tollgate}:';
export const DEFAULT_REDIS_CHANGE_LOG_KEEP = 10_000;

/** The store's own options beside those of its connections (redis-connections.ts). */
export interface RedisStoreOptions extends RedisConnectionOptions {
  /** Prefix of every key and of the channel. Default `{tollgate}:`. */
  prefix?: string;
  /** Change-log entries kept. Default 10 000. */
  changeLogKeep?: number;
  /** Purged CI tokens kept for the audit trail. Default PURGED_CI_KEPT. */
  purgedKept?: number;
}

/** One item of `P ci-purged`: {purgedAt, record}, as the purge script writes it. */
function decodeListed(item: string): PurgedToken | undefined {
  try {
    const { purgedAt, record } = JSON.parse(item) as { purgedAt: string; record: string };
    return decodePurged(record, Number(purgedAt));
  } catch {
    return undefined;
  }
}

export function createRedisTokenStore(options: RedisStoreOptions): TokenStore {
  const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
  const keep = String(options.changeLogKeep ?? DEFAULT_REDIS_CHANGE_LOG_KEEP);
  const {
    channel,
    rev: revKey,
    changes: changesKey,
    tokens: tokensKey,
    token: tokenKey,
    id: idKey,
    name: nameKey,
    nameIndex: nameIndexKey,
    session: sessionKey,
    credential: credentialKey,
    ciExpiry: ciExpiryKey,
    claim: claimKey,
    purged: purgedKey,
  } = redisKeys(prefix);
  const purgedKept = options.purgedKept ?? PURGED_CI_KEPT;
  /** The keys a new token's insert (and a rotation's) writes: its record, id, names, and the logs. */
  const newTokenKeys = (r: NewTokenRecord): string[] => [
    tokenKey(r.hash),
    idKey(r.id),
    nameKey(r.name),
    nameIndexKey(r.name),
    tokensKey,
    revKey,
    changesKey,
  ];
  const connections = openStoreConnections(options);
  const { client, ownsClient, reportError, untilFirstReady } = connections;
  const scripts = defineScripts(client);

  // Every operation waits for the schema migration of this handle (once; retried after a failure).
  let migrated = false;
  let migrating: Promise<SchemaReport> | undefined;
  const migrate = (): Promise<SchemaReport> => {
    migrating ??= (async () => {
      if (!connections.everReady()) await untilFirstReady();
      const report = await migrateRedis(client, prefix);
      migrated = true;
      return report;
    })().catch((err: unknown) => {
      migrating = undefined;
      throw err;
    });
    return migrating;
  };

  /** Runs one store operation: waits for the first connection and the migration, maps Redis failures to TOLLGATE_ERR_STORE. */
  async function run<T>(operation: () => Promise<T>): Promise<T> {
    try {
      if (!migrated) await migrate();
      return await operation();
    } catch (err) {
      if (isGatewayError(err)) throw err;
      throw new GatewayError('TOLLGATE_ERR_STORE', err instanceof Error ? err.message : String(err), { cause: err });
    }
  }

  const listeners = new Set<() => void>();
  let subscriber: RedisClient | undefined;

  const notify = (): void => {
    for (const listener of [...listeners]) {
      try {
        listener();
      } catch (err) {
        reportError(err instanceof Error ? err : new Error(String(err)));
      }
    }
  };

  /** By id, else what the name designates among the tokens whose name folds the same (designatedByName). */
  async function lookup(idOrName: string): Promise<TokenRecord[]> {
    const found = (await scripts.tollgateGet(idKey(idOrName), nameIndexKey(idOrName), nameKey(idOrName), prefix))
      .map((flat) => fieldsToRecord(pairsToFields(flat)))
      .filter((r): r is TokenRecord => r !== undefined);
    const byId = found.find((r) => r.id === idOrName);
    return byId ? [byId] : designatedByName(idOrName, found);
  }

  async function revokeIds(
    ids: readonly string[],
    revokedBy: string,
    at: number,
    leak: string | null,
  ): Promise<TokenRecord[]> {
    if (ids.length === 0) return [];
    const keys = [revKey, changesKey, ...new Set(ids)].map((k, i) => (i < 2 ? k : idKey(k)));
    const revoked = await scripts.tollgateRevokeIds(
      keys.length,
      ...keys,
      prefix,
      keep,
      channel,
      String(at),
      revokedBy,
      leak ?? '',
    );
    return revoked.map(pairsToRecord).filter((r): r is TokenRecord => r !== undefined);
  }

  let closed = false;

  return {
    kind: 'redis',

    migrate: function migrateStore() {
      return run(migrate);
    },

    /** One HGETALL: the cache-miss path of every request. */
    findByHash: function findByHash(hash) {
      return run(async () => fieldsToRecord(await client.hgetall(tokenKey(hash))));
    },

    get: function get(idOrName) {
      return run(async () => (await lookup(idOrName))[0]);
    },

    lookup: function lookupTokens(idOrName) {
      return run(() => lookup(idOrName));
    },

    list: function list() {
      return run(async () => {
        const hashes = await client.zrevrange(tokensKey, 0, -1);
        if (hashes.length === 0) return [];
        const pipeline = client.pipeline();
        for (const hash of hashes) pipeline.hgetall(tokenKey(hash));
        const replies = (await pipeline.exec()) ?? [];
        const records: TokenRecord[] = [];
        for (const [err, fields] of replies) {
          if (err) throw err;
          const record = fieldsToRecord(fields as Record<string, string>);
          if (record) records.push(record);
        }
        return records;
      });
    },

    insert: function insert(record) {
      return run(async () => {
        const fields = recordToFields(record);
        const [status] = await scripts.tollgateInsert(
          ...newTokenKeys(record),
          ...[prefix, String(Date.now()), keep, channel, record.hash, String(record.createdAt)],
          ...fields,
        );
        if (status === 'taken') throw new GatewayError('TOLLGATE_ERR_TOKEN_NAME_TAKEN', `"${record.name}"`);
        if (status === 'duplicate') throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT', 'duplicate token id or hash');
        return storedRecord(record);
      });
    },

    revoke: function revoke(idOrName, revokedBy, at = Date.now()) {
      return run(async () => {
        // Resolved first (by id, else by name), then revoked by id: the script is idempotent, so a
        // revocation by someone else in between changes nothing.
        const [designated, ...others] = await lookup(idOrName);
        if (!designated) throw new GatewayError('TOLLGATE_ERR_TOKEN_NOT_FOUND', `"${idOrName}"`);
        const revoked = await revokeIds([designated.id, ...others.map((r) => r.id)], revokedBy, at, null);
        return revoked.find((r) => r.id === designated.id) ?? (await lookup(designated.id))[0] ?? designated;
      });
    },

    revokeIds: function revokeTokens(ids, revokedBy, at, leak = null) {
      return run(() => revokeIds(ids, revokedBy, at, encodeJson(leak)));
    },

    rotate: function rotate(id, next, overlapEndsAt, at) {
      return run(async () => {
        const [previous] = await lookup(id);
        if (!previous || previous.id !== id) throw new GatewayError('TOLLGATE_ERR_TOKEN_NOT_FOUND', `"${id}"`);
        const record = { ...next, name: previous.name };
        const [status, old, current] = await scripts.tollgateRotate(
          idKey(id),
          ...newTokenKeys(record),
          ...[prefix, String(at), keep, channel, record.hash, String(record.createdAt)],
          record.id,
          String(overlapEndsAt),
          ...recordToFields(record, id),
        );
        if (status === 'notfound') throw new GatewayError('TOLLGATE_ERR_TOKEN_NOT_FOUND', `"${id}"`);
        if (status === 'duplicate') throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT', 'duplicate token id or hash');
        if (status !== 'ok')
          throw new GatewayError('TOLLGATE_ERR_TOKEN_NOT_LIVE', `"${previous.name}" (${id}) is ${status}`);
        return { previous: pairsToRecord(old!)!, current: pairsToRecord(current!)! };
      });
    },

    claimOnce: function claimOnce(key, expiresAt, now = Date.now()) {
      return run(async () => {
        // An ID token that has expired already is refused before this; nothing to remember.
        if (expiresAt <= now) return true;
        return (await client.set(claimKey(key), '1', 'PX', expiresAt - now, 'NX')) === 'OK';
      });
    },

    purgeExpiredCi: function purgeExpiredCi(endedBefore, max = 1_000) {
      return run(async () => {
        const purged = await scripts.tollgatePurgeCi(
          ciExpiryKey,
          tokensKey,
          revKey,
          changesKey,
          prefix,
          String(endedBefore),
          String(max),
          keep,
          channel,
          String(purgedKept),
        );
        return purged.map(pairsToRecord).filter((r): r is TokenRecord => r !== undefined);
      });
    },

    purgedCi: function purgedCi(limit) {
      return run(async () => {
        const items = await client.lrange(purgedKey, 0, Math.min(limit, purgedKept) - 1);
        return items.map(decodeListed).filter((p): p is PurgedToken => p !== undefined);
      });
    },

    recordLastUsed: function recordLastUsed(entries: LastUsed[]) {
      return run(async () => {
        if (entries.length === 0) return;
        const keys = entries.map((e) => tokenKey(e.hash));
        const args = entries.flatMap((e) => [e.id, String(e.at)]);
        await scripts.tollgateTouch(keys.length, ...keys, ...args);
      });
    },

    revision: function revision() {
      return run(async () => Number((await client.get(revKey)) ?? 0));
    },

    changesSince: function changesSince(since): Promise<ChangesSince> {
      return run(async () => {
        const [current, members, complete] = await scripts.tollgateChangesSince(revKey, changesKey, String(since));
        return { changes: members.map(parseChange), revision: Number(current), complete: complete === 1 };
      });
    },

    revokeSession: function revokeSession(id, expiresAt) {
      return run(async () => {
        if (expiresAt <= Date.now()) return;
        await scripts.tollgateRevokeSession(
          sessionKey(id),
          revKey,
          changesKey,
          keep,
          channel,
          String(expiresAt),
          SESSION_CHANGE_PREFIX + id,
        );
      });
    },

    isSessionRevoked: function isSessionRevoked(id) {
      return run(async () => (await client.exists(sessionKey(id))) === 1);
    },

    readAdminCredential: function readAdminCredential() {
      return run(async () => fieldsToAdminCredential(await client.hgetall(credentialKey)));
    },

    replaceAdminCredential: function replaceAdminCredential(expected, next) {
      return run(
        async () =>
          (await scripts.tollgateReplaceAdminCredential(
            credentialKey,
            revKey,
            changesKey,
            expected ?? '',
            next.salt,
            next.fingerprint,
            String(next.since),
            keep,
            channel,
            ADMIN_CREDENTIAL_CHANGE,
          )) === 1,
      );
    },

    onChange: function onChange(listener) {
      if (closed) return () => {};
      subscriber ??= connections.startSubscriber(channel, notify);
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },

    ping: function ping() {
      return run(async () => {
        await client.ping();
      });
    },

    close: async function close() {
      if (closed) return;
      closed = true;
      listeners.clear();
      const closing: Promise<void>[] = [];
      if (subscriber) closing.push(quitOrDisconnect(subscriber));
      if (ownsClient) closing.push(quitOrDisconnect(client));
      await Promise.all(closing);
      if (!ownsClient) client.off('error', reportError);
    },
  };
}
