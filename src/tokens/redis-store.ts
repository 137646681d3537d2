/**
 * The Redis token store, for several gateway instances sharing tokens.
 *
 * Key layout. P is the configured prefix, `{tollgate}:` by default. Its `{...}` is a Redis
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
 * Revisions. When `P rev` is absent (a new store, or a Redis that lost its data) the next change
 * starts it from the Redis server clock in microseconds, not from 1. A reset therefore never
 * reuses revision numbers a gateway has already seen: changesSince() reports complete:false and
 * the gateway drops its cache, instead of trusting entries for tokens that no longer exist.
 *
 * Split by job: the record codec (redis-codec.ts), the Lua scripts (redis-scripts.ts), and here
 * the connections and the operations.
 */
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import { GatewayError, isGatewayError } from '../errors.js';
import { createRedisConnection, quitOrDisconnect, useOrConnect } from '../redis/connect.js';
import { migrateRedis } from './migrations.js';
import { designatedByName, foldName } from './names.js';
import {
  fieldsToAdminCredential, fieldsToRecord, pairsToFields, pairsToRecord, parseChange, recordToFields,
} from './redis-codec.js';
import { decodePurged } from './purged-codec.js';
import { defineScripts } from './redis-scripts.js';
import { encodeJson } from './record-codec.js';
import {
  ADMIN_CREDENTIAL_CHANGE, SESSION_CHANGE_PREFIX, storedRecord, type ChangesSince, type LastUsed, type SchemaReport,
  type TokenRecord, type TokenStore, type PurgedToken, PURGED_CI_KEPT,
} from './store.js';

export const DEFAULT_REDIS_PREFIX = '{tollgate}:';
export const DEFAULT_REDIS_CHANGE_LOG_KEEP = 10_000;
export const DEFAULT_REDIS_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 2_000;
/** Reconnect backoff: 50 ms doubling per attempt, capped here; retries forever. */
export const REDIS_RECONNECT_MAX_DELAY_MS = 2_000;

type RedisClient = Redis | Cluster;

export interface RedisStoreOptions {
  /** redis:// or rediss:// URL; used when no client is given. */
  url?: string;
  /** An existing connection to use (never closed by the store); its duplicate() carries pub/sub. */
  client?: RedisClient;
  /** Prefix of every key and of the channel. Default `{tollgate}:`. */
  prefix?: string;
  /** Change-log entries kept. Default 10 000. */
  changeLogKeep?: number;
  /** Purged CI tokens kept for the audit trail. Default PURGED_CI_KEPT. */
  purgedKept?: number;
  /** Until the first connection, how long a command waits for it; also ioredis connectTimeout. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** A command without a reply after this long fails (a dead peer must not hang a request). Default 2 000 ms. */
  commandTimeoutMs?: number;
  /** Every connection error (they are otherwise swallowed: reconnecting is automatic). */
  onError?: (err: Error) => void;
}

function reconnectDelayMs(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 16), REDIS_RECONNECT_MAX_DELAY_MS);
}

/**
 * Connections the store creates:
 * - commands: `enableOfflineQueue: false` and `maxRetriesPerRequest: 0`. During an outage a
 *   command fails at once (the gateway then serves stale entries or answers 503) instead of
 *   queueing; a command in flight when the connection drops fails too and is never re-sent, so a
 *   write script cannot run twice. `commandTimeout` covers a peer that stopped answering.
 *   Before the first connection, commands wait for it (up to connectTimeoutMs): a gateway or CLI
 *   that uses the store right after creating it does not fail while connecting.
 * - pub/sub (created on the first onChange): subscribes on every 'ready' itself, then calls the
 *   listeners (once the command connection is up too, so they can catch up with changesSince),
 *   since messages published while it was away are lost. It also calls them on the first
 *   subscription, which closes the window between store creation and subscription.
 * Both reconnect forever: 50 ms doubling up to 2 s.
 */
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
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_REDIS_CONNECT_TIMEOUT_MS;
  const channel = `${prefix}changes`;
  const revKey = `${prefix}rev`;
  const changesKey = `${prefix}changes`;
  const tokensKey = `${prefix}tokens`;
  const tokenKey = (hash: string) => `${prefix}token:${hash}`;
  const idKey = (id: string) => `${prefix}id:${id}`;
  const nameKey = (name: string) => `${prefix}name:${name}`;
  const nameIndexKey = (name: string) => `${prefix}namekey:${foldName(name)}`;
  const sessionKey = (id: string) => `${prefix}revoked-session:${id}`;
  const credentialKey = `${prefix}admin-credential`;
  const ciExpiryKey = `${prefix}ci-expiry`;
  const claimKey = (key: string) => `${prefix}ci-claim:${key}`;
  const purgedKey = `${prefix}ci-purged`;
  const purgedKept = options.purgedKept ?? PURGED_CI_KEPT;

  const reportError = (err: Error): void => {
    try {
      options.onError?.(err);
    } catch {
      // A failing error handler must not take the process down either.
    }
  };

  const redisOptions: RedisOptions = {
    connectTimeout: connectTimeoutMs,
    retryStrategy: reconnectDelayMs,
    enableReadyCheck: true,
  };

  const { client, owned: ownsClient } = useOrConnect(options, {
    ...redisOptions,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
  }, reportError, 'createRedisTokenStore');
  const scripts = defineScripts(client);

  // Until the command connection has been ready once, commands wait for it.
  let everReady = client.status === 'ready';
  if (!everReady) client.once('ready', () => { everReady = true; });
  let firstReady: Promise<void> | undefined;
  const untilFirstReady = (): Promise<void> => {
    firstReady ??= new Promise<void>((resolve, reject) => {
      const done = (err?: GatewayError) => {
        clearTimeout(timer);
        client.off('ready', onReady);
        client.off('end', onEnd);
        if (err) {
          firstReady = undefined;
          reject(err);
        } else {
          resolve();
        }
      };
      const onReady = () => done();
      const onEnd = () => done(new GatewayError('TOLLGATE_ERR_STORE', 'Redis connection closed'));
      const timer = setTimeout(
        () => done(new GatewayError('TOLLGATE_ERR_STORE', `Redis not reachable within ${connectTimeoutMs} ms`)),
        connectTimeoutMs);
      client.on('ready', onReady);
      client.on('end', onEnd);
      if (client.status === 'ready') done();
    });
    return firstReady;
  };

  // Every operation waits for the schema migration of this handle (once; retried after a failure).
  let migrated = false;
  let migrating: Promise<SchemaReport> | undefined;
  const migrate = (): Promise<SchemaReport> => {
    migrating ??= (async () => {
      if (!everReady) await untilFirstReady();
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

  function startSubscriber(): RedisClient {
    const sub = options.client
      ? options.client.duplicate()
      : createRedisConnection(options.url!, { ...redisOptions, autoResubscribe: false, maxRetriesPerRequest: null });
    sub.on('error', reportError);
    sub.on('message', (from: string) => {
      if (from === channel) notify();
    });
    // Listeners catch up through the command connection: notify once both are up.
    const notifyWhenCommandsReady = () => {
      if (client.status === 'ready') notify();
      else client.once('ready', notify);
    };
    sub.on('ready', () => {
      sub.subscribe(channel).then(notifyWhenCommandsReady, reportError);
    });
    if (sub.status === 'wait') sub.connect().catch(() => {});
    return sub;
  }

  /** By id, else what the name designates among the tokens whose name folds the same (designatedByName). */
  async function lookup(idOrName: string): Promise<TokenRecord[]> {
    const found = (await scripts.tollgateGet(idKey(idOrName), nameIndexKey(idOrName), nameKey(idOrName), prefix))
      .map((flat) => fieldsToRecord(pairsToFields(flat)))
      .filter((r): r is TokenRecord => r !== undefined);
    const byId = found.find((r) => r.id === idOrName);
    return byId ? [byId] : designatedByName(idOrName, found);
  }

  async function revokeIds(ids: readonly string[], revokedBy: string, at: number, leak: string | null): Promise<TokenRecord[]> {
    if (ids.length === 0) return [];
    const keys = [revKey, changesKey, ...new Set(ids)].map((k, i) => (i < 2 ? k : idKey(k)));
    const revoked = await scripts.tollgateRevokeIds(keys.length, ...keys, prefix, keep, channel, String(at), revokedBy, leak ?? '');
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
          tokenKey(record.hash), idKey(record.id), nameKey(record.name), nameIndexKey(record.name), tokensKey, revKey, changesKey,
          prefix, String(Date.now()), keep, channel, record.hash, String(record.createdAt), ...fields);
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
          idKey(id), tokenKey(record.hash), idKey(record.id), nameKey(record.name), nameIndexKey(record.name), tokensKey, revKey,
          changesKey, prefix, String(at), keep, channel, record.hash, String(record.createdAt), record.id, String(overlapEndsAt),
          ...recordToFields(record, id));
        if (status === 'notfound') throw new GatewayError('TOLLGATE_ERR_TOKEN_NOT_FOUND', `"${id}"`);
        if (status === 'duplicate') throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT', 'duplicate token id or hash');
        if (status !== 'ok') throw new GatewayError('TOLLGATE_ERR_TOKEN_NOT_LIVE', `"${previous.name}" (${id}) is ${status}`);
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
        const purged = await scripts.tollgatePurgeCi(ciExpiryKey, tokensKey, revKey, changesKey,
          prefix, String(endedBefore), String(max), keep, channel, String(purgedKept));
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
        await scripts.tollgateRevokeSession(sessionKey(id), revKey, changesKey, keep, channel, String(expiresAt), SESSION_CHANGE_PREFIX + id);
      });
    },

    isSessionRevoked: function isSessionRevoked(id) {
      return run(async () => (await client.exists(sessionKey(id))) === 1);
    },

    readAdminCredential: function readAdminCredential() {
      return run(async () => fieldsToAdminCredential(await client.hgetall(credentialKey)));
    },

    replaceAdminCredential: function replaceAdminCredential(expected, next) {
      return run(async () => (await scripts.tollgateReplaceAdminCredential(
        credentialKey, revKey, changesKey, expected ?? '', next.salt, next.fingerprint, String(next.since), keep, channel,
        ADMIN_CREDENTIAL_CHANGE)) === 1);
    },

    onChange: function onChange(listener) {
      if (closed) return () => {};
      subscriber ??= startSubscriber();
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
