import type { Cluster, Redis } from 'ioredis';

/**
 * The Redis store's Lua scripts (key layout: redis-store.ts). Each runs atomically, so a check
 * and the write it guards cannot interleave with another gateway's.
 *
 * The scripts read a few keys they derive from others (the token hash behind an id or a name).
 * They are in the same slot as the declared keys, which Redis Cluster allows for scripts
 * without a `#!lua flags=` header.
 */

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
export interface ScriptCommands {
  tollgateInsert(...args: string[]): Promise<[string, string?]>;
  tollgateRevoke(...args: string[]): Promise<[string, string[]?]>;
  tollgateGet(...args: string[]): Promise<string[]>;
  tollgateTouch(numKeys: number, ...args: string[]): Promise<number>;
  tollgateChangesSince(...args: string[]): Promise<[string, string[], number]>;
}

export function defineScripts(client: Redis | Cluster): ScriptCommands {
  client.defineCommand('tollgateInsert', { lua: INSERT_LUA, numberOfKeys: 6 });
  client.defineCommand('tollgateRevoke', { lua: REVOKE_LUA, numberOfKeys: 4 });
  client.defineCommand('tollgateGet', { lua: GET_LUA, numberOfKeys: 2, readOnly: true });
  client.defineCommand('tollgateTouch', { lua: TOUCH_LUA });
  client.defineCommand('tollgateChangesSince', { lua: CHANGES_SINCE_LUA, numberOfKeys: 2, readOnly: true });
  return client as unknown as ScriptCommands;
}
