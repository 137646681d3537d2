/**
 * The Redis token store, for several gateway instances sharing tokens.
 *
 * Key layout. P is the configured prefix, `{tollgate}:` by default. Its `{...}` is a Redis
 * Cluster hash tag: every key below hashes to one slot, so the multi-key Lua scripts also run
 * on a Cluster. A custom prefix must keep a hash tag (and put it first) to stay Cluster-safe.
 *
 *   P token:<hash>  HASH    the record: id, name, type, hash, createdAt, createdBy, and when set
 *                           expiresAt, revokedAt, revokedBy, lastUsedAt (an absent field is null)
 *   P id:<id>       STRING  → hash
 *   P name:<name>   ZSET    hashes of the NOT revoked tokens with this name, scored by createdAt.
 *                           Expired ones stay: `get(name)` returns the newest non-revoked token,
 *                           as the SQLite store does; insert checks the members' expiry.
 *   P tokens        ZSET    every hash, scored by createdAt (list, newest first)
 *   P rev           STRING  revision counter (see "Revisions" below)
 *   P changes       ZSET    members `<rev>:<hash>` scored by rev, trimmed to the newest changeLogKeep
 *   channel P changes       pub/sub; each message is a new revision (channels are not keys)
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
 * The scripts read a few keys they derive from others (the token hash behind an id or a name).
 * They are in the same slot as the declared keys, which Redis Cluster allows for scripts
 * without a `#!lua flags=` header.
 */
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import { GatewayError, isGatewayError } from '../errors.js';
import { createRedisConnection, quitOrDisconnect } from '../redis/connect.js';
import type { TokenType } from './format.js';
import type { ChangesSince, LastUsed, NewTokenRecord, TokenChange, TokenRecord, TokenStore } from './store.js';

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
  /** Until the first connection, how long a command waits for it; also ioredis connectTimeout. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** A command without a reply after this long fails (a dead peer must not hang a request). Default 2 000 ms. */
  commandTimeoutMs?: number;
  /** Every connection error (they are otherwise swallowed: reconnecting is automatic). */
  onError?: (err: Error) => void;
}

/*
 * Lua. Numbers above 1e14 must not go through Lua's tostring ("%.14g" loses digits), so revisions
 * are formatted with %d and handed back to the client as strings.
 */

/** Bumps the revision, appends to the change log, trims it, publishes. Returns the revision string. */
const LOG_CHANGE_LUA = `
local function logChange(revKey, changesKey, hash, keep, channel)
  local rev = redis.call('INCR', revKey)
  if rev == 1 then
    local t = redis.call('TIME')
    rev = tonumber(t[1]) * 1000000 + tonumber(t[2])
    redis.call('SET', revKey, string.format('%d', rev))
  end
  local r = string.format('%d', rev)
  redis.call('ZADD', changesKey, r, r .. ':' .. hash)
  redis.call('ZREMRANGEBYRANK', changesKey, 0, -(keep + 1))
  redis.call('PUBLISH', channel, r)
  return r
end
`;

/**
 * KEYS: token:<hash>, id:<id>, name:<name>, tokens, rev, changes
 * ARGV: prefix, now, keep, channel, hash, createdAt, field, value, ...
 */
const INSERT_LUA = `${LOG_CHANGE_LUA}
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return {'duplicate'}
end
local now = tonumber(ARGV[2])
for _, h in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local expiresAt = redis.call('HGET', ARGV[1] .. 'token:' .. h, 'expiresAt')
  if not expiresAt or tonumber(expiresAt) > now then return {'taken'} end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('SET', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])
return {'ok', logChange(KEYS[5], KEYS[6], ARGV[5], tonumber(ARGV[3]), ARGV[4])}
`;

/**
 * KEYS: id:<idOrName>, name:<idOrName>, rev, changes
 * ARGV: prefix, keep, channel, revokedAt, revokedBy
 */
const REVOKE_LUA = `${LOG_CHANGE_LUA}
local hash = redis.call('GET', KEYS[1]) or redis.call('ZREVRANGE', KEYS[2], 0, 0)[1]
if not hash then return {'notfound'} end
local key = ARGV[1] .. 'token:' .. hash
if redis.call('EXISTS', key) == 0 then return {'notfound'} end
if redis.call('HEXISTS', key, 'revokedAt') == 0 then
  redis.call('HSET', key, 'revokedAt', ARGV[4], 'revokedBy', ARGV[5])
  redis.call('ZREM', ARGV[1] .. 'name:' .. redis.call('HGET', key, 'name'), hash)
  logChange(KEYS[3], KEYS[4], hash, tonumber(ARGV[2]), ARGV[3])
end
return {'ok', redis.call('HGETALL', key)}
`;

/** KEYS: id:<idOrName>, name:<idOrName>. ARGV: prefix. The record's fields, flat; empty when unknown. */
const GET_LUA = `
local hash = redis.call('GET', KEYS[1]) or redis.call('ZREVRANGE', KEYS[2], 0, 0)[1]
if not hash then return {} end
return redis.call('HGETALL', ARGV[1] .. 'token:' .. hash)
`;

/** KEYS: token:<hash> per entry. ARGV: id, at per entry. Keeps the latest time; ignores unknown tokens. */
const TOUCH_LUA = `
for i, key in ipairs(KEYS) do
  local at = ARGV[2 * i]
  local current = redis.call('HMGET', key, 'id', 'lastUsedAt')
  if current[1] == ARGV[2 * i - 1] and (not current[2] or tonumber(current[2]) < tonumber(at)) then
    redis.call('HSET', key, 'lastUsedAt', at)
  end
end
return 0
`;

/**
 * KEYS: rev, changes. ARGV: since. Returns {revision, members, complete (1|0)}.
 * A revision behind the caller's means the data was lost: incomplete.
 */
const CHANGES_SINCE_LUA = `
local raw = redis.call('GET', KEYS[1]) or '0'
local current = tonumber(raw)
local since = tonumber(ARGV[1])
if current < since then return {raw, {}, 0} end
if current == since then return {raw, {}, 1} end
local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]
local complete = oldest ~= nil and tonumber(oldest) <= since + 1
return {raw, redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf'), complete and 1 or 0}
`;

/** The scripts as ioredis custom commands (EVALSHA, falling back to EVAL once per connection). */
interface ScriptCommands {
  tollgateInsert(...args: string[]): Promise<[string, string?]>;
  tollgateRevoke(...args: string[]): Promise<[string, string[]?]>;
  tollgateGet(...args: string[]): Promise<string[]>;
  tollgateTouch(numKeys: number, ...args: string[]): Promise<number>;
  tollgateChangesSince(...args: string[]): Promise<[string, string[], number]>;
}

function defineScripts(client: RedisClient): ScriptCommands {
  client.defineCommand('tollgateInsert', { lua: INSERT_LUA, numberOfKeys: 6 });
  client.defineCommand('tollgateRevoke', { lua: REVOKE_LUA, numberOfKeys: 4 });
  client.defineCommand('tollgateGet', { lua: GET_LUA, numberOfKeys: 2, readOnly: true });
  client.defineCommand('tollgateTouch', { lua: TOUCH_LUA });
  client.defineCommand('tollgateChangesSince', { lua: CHANGES_SINCE_LUA, numberOfKeys: 2, readOnly: true });
  return client as unknown as ScriptCommands;
}

function reconnectDelayMs(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 16), REDIS_RECONNECT_MAX_DELAY_MS);
}

const num = (value: string | undefined): number | null => (value === undefined ? null : Number(value));

function fieldsToRecord(f: Record<string, string>): TokenRecord | undefined {
  const { id, name, type, hash, createdAt, createdBy } = f;
  if (id === undefined || name === undefined || hash === undefined || createdAt === undefined) return undefined;
  return {
    id,
    name,
    type: type as TokenType,
    hash,
    createdAt: Number(createdAt),
    createdBy: createdBy ?? '',
    expiresAt: num(f.expiresAt),
    revokedAt: num(f.revokedAt),
    revokedBy: f.revokedBy ?? null,
    lastUsedAt: num(f.lastUsedAt),
  };
}

function pairsToRecord(flat: string[]): TokenRecord | undefined {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return fieldsToRecord(fields);
}

function parseChange(member: string): TokenChange {
  const colon = member.indexOf(':');
  return { rev: Number(member.slice(0, colon)), hash: member.slice(colon + 1) };
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

  let client: RedisClient;
  const ownsClient = options.client === undefined;
  if (options.client) {
    client = options.client;
  } else if (options.url) {
    client = createRedisConnection(options.url, {
      ...redisOptions,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
    });
  } else {
    throw new TypeError('createRedisTokenStore needs a url or a client');
  }
  client.on('error', reportError);
  if (client.status === 'wait') client.connect().catch(() => {});
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

  /** Runs one store operation: waits for the first connection, maps Redis failures to TOLLGATE_ERR_STORE. */
  async function run<T>(operation: () => Promise<T>): Promise<T> {
    try {
      if (!everReady) await untilFirstReady();
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

  let closed = false;

  return {
    kind: 'redis',

    /** One HGETALL: the cache-miss path of every request. */
    findByHash: function findByHash(hash) {
      return run(async () => fieldsToRecord(await client.hgetall(tokenKey(hash))));
    },

    get: function get(idOrName) {
      return run(async () => pairsToRecord(await scripts.tollgateGet(idKey(idOrName), nameKey(idOrName), prefix)));
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
        const fields: string[] = [
          'id', record.id, 'name', record.name, 'type', record.type, 'hash', record.hash,
          'createdAt', String(record.createdAt), 'createdBy', record.createdBy,
        ];
        if (record.expiresAt !== null) fields.push('expiresAt', String(record.expiresAt));
        const [status] = await scripts.tollgateInsert(
          tokenKey(record.hash), idKey(record.id), nameKey(record.name), tokensKey, revKey, changesKey,
          prefix, String(Date.now()), keep, channel, record.hash, String(record.createdAt), ...fields);
        if (status === 'taken') throw new GatewayError('TOLLGATE_ERR_TOKEN_NAME_TAKEN', `"${record.name}"`);
        if (status === 'duplicate') throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT', 'duplicate token id or hash');
        const inserted: NewTokenRecord = {
          id: record.id, name: record.name, type: record.type, hash: record.hash,
          createdAt: record.createdAt, createdBy: record.createdBy, expiresAt: record.expiresAt,
        };
        return { ...inserted, revokedAt: null, revokedBy: null, lastUsedAt: null };
      });
    },

    revoke: function revoke(idOrName, revokedBy, at = Date.now()) {
      return run(async () => {
        const [status, fields] = await scripts.tollgateRevoke(
          idKey(idOrName), nameKey(idOrName), revKey, changesKey, prefix, keep, channel, String(at), revokedBy);
        const record = status === 'ok' && fields ? pairsToRecord(fields) : undefined;
        if (!record) throw new GatewayError('TOLLGATE_ERR_TOKEN_NOT_FOUND', `"${idOrName}"`);
        return record;
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
