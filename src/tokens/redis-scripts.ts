import type { Cluster, Redis } from 'ioredis';

/**
 * The Redis store's Lua scripts: each runs atomically, so a check and the write it guards (a
 * name still free, a token not yet revoked, the admin credential unchanged) cannot interleave
 * with another gateway's. Every write that others must hear about calls logChange.
 *
 * Numbers above 1e14 must not go through Lua's tostring ("%.14g" loses digits), so revisions
 * are formatted with %d and handed back to the client as strings.
 *
 * The scripts read a few keys they derive from others (the token hash behind an id, a token's
 * name index). They are in the same slot as the declared keys (the prefix's hash tag), which
 * Redis Cluster allows for scripts without a `#!lua flags=` header. Names are folded with
 * string.lower, which lower-cases ASCII letters only, as foldName (names.ts) does.
 */

/** Bumps the revision, appends to the change log, trims it, publishes. Returns the revision string. */
const LOG_CHANGE_LUA = `
local function logChange(revKey, changesKey, subject, keep, channel)
  local rev = redis.call('INCR', revKey)
  if rev == 1 then
    local t = redis.call('TIME')
    rev = tonumber(t[1]) * 1000000 + tonumber(t[2])
    redis.call('SET', revKey, string.format('%d', rev))
  end
  local r = string.format('%d', rev)
  redis.call('ZADD', changesKey, r, r .. ':' .. subject)
  redis.call('ZREMRANGEBYRANK', changesKey, 0, -(keep + 1))
  redis.call('PUBLISH', channel, r)
  return r
end
`;

/**
 * Writes a new token (an insert's, a rotation's): its record from ARGV[fieldsFrom...], its id,
 * its two name indexes and the list, all scored by createdAt; one issued to a CI job also goes
 * into the expiry index the purge reads (schema 4). keys: token:<hash>, id:<id>, name:<name>,
 * namekey:<folded name>, tokens.
 */
const WRITE_NEW_TOKEN_LUA = `
local function writeNewToken(keys, prefix, hash, createdAt, fieldsFrom)
  redis.call('HSET', keys[1], unpack(ARGV, fieldsFrom))
  local ci = redis.call('HMGET', keys[1], 'ci', 'expiresAt')
  if ci[1] and ci[2] then redis.call('ZADD', prefix .. 'ci-expiry', ci[2], hash) end
  redis.call('SET', keys[2], hash)
  for i = 3, 5 do redis.call('ZADD', keys[i], createdAt, hash) end
end
`;

/**
 * KEYS: token:<hash>, id:<id>, name:<name>, namekey:<folded name>, tokens, rev, changes
 * ARGV: prefix, now, keep, channel, hash, createdAt, field, value, ...
 * `name:<name>` is the exact-name index of the first layout, kept up to date for gateways of
 * that version during an upgrade; this version reads `namekey:`.
 */
const INSERT_LUA = `${LOG_CHANGE_LUA}${WRITE_NEW_TOKEN_LUA}
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return {'duplicate'}
end
local now = tonumber(ARGV[2])
-- namekey: names ignoring case; name: the exact name, for tokens a gateway of schema 1 wrote.
-- A rotated-out token (overlapEndsAt set) no longer holds its name.
for _, index in ipairs({KEYS[4], KEYS[3]}) do
  for _, h in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    local f = redis.call('HMGET', ARGV[1] .. 'token:' .. h, 'expiresAt', 'overlapEndsAt')
    if not f[2] and (not f[1] or tonumber(f[1]) > now) then return {'taken'} end
  end
end
writeNewToken({KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]}, ARGV[1], ARGV[5], ARGV[6], 7)
return {'ok', logChange(KEYS[6], KEYS[7], ARGV[5], tonumber(ARGV[3]), ARGV[4])}
`;

/**
 * KEYS: rev, changes, id:<id>... ARGV: prefix, keep, channel, revokedAt, revokedBy, leak (JSON, '' for none).
 * Revokes each token not revoked yet; returns those it revoked, each as HGETALL's flat list.
 */
const REVOKE_IDS_LUA = `${LOG_CHANGE_LUA}
local revoked = {}
for i = 3, #KEYS do
  local hash = redis.call('GET', KEYS[i])
  local key = hash and (ARGV[1] .. 'token:' .. hash)
  if key and redis.call('EXISTS', key) == 1 and redis.call('HEXISTS', key, 'revokedAt') == 0 then
    redis.call('HSET', key, 'revokedAt', ARGV[4], 'revokedBy', ARGV[5])
    if ARGV[6] ~= '' then redis.call('HSET', key, 'leak', ARGV[6]) end
    local name = redis.call('HGET', key, 'name')
    redis.call('ZREM', ARGV[1] .. 'name:' .. name, hash)
    redis.call('ZREM', ARGV[1] .. 'namekey:' .. string.lower(name), hash)
    logChange(KEYS[1], KEYS[2], hash, tonumber(ARGV[2]), ARGV[3])
    revoked[#revoked + 1] = redis.call('HGETALL', key)
  end
end
return revoked
`;

/**
 * KEYS: id:<old id>, token:<new hash>, id:<new id>, name:<name>, namekey:<folded name>, tokens, rev, changes
 * ARGV: prefix, now, keep, channel, new hash, createdAt, new id, overlapEndsAt, field, value, ...
 * The old token must be active: not revoked, not expired, not rotated already.
 */
const ROTATE_LUA = `${LOG_CHANGE_LUA}${WRITE_NEW_TOKEN_LUA}
local old = redis.call('GET', KEYS[1])
local oldKey = old and (ARGV[1] .. 'token:' .. old)
if not oldKey or redis.call('EXISTS', oldKey) == 0 then return {'notfound'} end
local f = redis.call('HMGET', oldKey, 'revokedAt', 'expiresAt', 'overlapEndsAt')
if f[1] then return {'revoked'} end
if f[2] and tonumber(f[2]) <= tonumber(ARGV[2]) then return {'expired'} end
if f[3] then return {'rotated'} end
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then return {'duplicate'} end
redis.call('HSET', oldKey, 'replacedBy', ARGV[7], 'overlapEndsAt', ARGV[8])
writeNewToken({KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]}, ARGV[1], ARGV[5], ARGV[6], 9)
logChange(KEYS[7], KEYS[8], old, tonumber(ARGV[3]), ARGV[4])
logChange(KEYS[7], KEYS[8], ARGV[5], tonumber(ARGV[3]), ARGV[4])
return {'ok', redis.call('HGETALL', oldKey), redis.call('HGETALL', KEYS[2])}
`;

/**
 * KEYS: id:<idOrName>, namekey:<folded idOrName>, name:<idOrName>. ARGV: prefix.
 * The token with that id as the only element, else every non-revoked token whose name folds the
 * same (and any of that exact name a gateway of schema 1 wrote during an upgrade, which only
 * `name:` lists); each as HGETALL's flat field list.
 */
const GET_LUA = `
local hash = redis.call('GET', KEYS[1])
if hash then return {redis.call('HGETALL', ARGV[1] .. 'token:' .. hash)} end
local found, seen = {}, {}
for _, index in ipairs({KEYS[2], KEYS[3]}) do
  for _, h in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    if not seen[h] then
      seen[h] = true
      found[#found + 1] = redis.call('HGETALL', ARGV[1] .. 'token:' .. h)
    end
  end
end
return found
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

/**
 * KEYS: revoked-session:<id>, rev, changes. ARGV: keep, channel, expiresAt (epoch ms), subject.
 * The key expires when the session would have: nothing to clean up. Once per session.
 */
const REVOKE_SESSION_LUA = `${LOG_CHANGE_LUA}
if redis.call('EXISTS', KEYS[1]) == 1 then return '' end
redis.call('SET', KEYS[1], '1')
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return logChange(KEYS[2], KEYS[3], ARGV[4], tonumber(ARGV[1]), ARGV[2])
`;

/**
 * KEYS: admin-credential, rev, changes. ARGV: expected fingerprint ('' for none), salt,
 * fingerprint, since, keep, channel, subject. 1 when written, 0 when the record had changed.
 */
const REPLACE_ADMIN_CREDENTIAL_LUA = `${LOG_CHANGE_LUA}
local current = redis.call('HGET', KEYS[1], 'fingerprint')
if (current or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'salt', ARGV[2], 'fingerprint', ARGV[3], 'since', ARGV[4])
logChange(KEYS[2], KEYS[3], ARGV[7], tonumber(ARGV[5]), ARGV[6])
return 1
`;

/**
 * KEYS: ci-expiry, tokens, rev, changes. ARGV: prefix, endedBefore, max, keep, channel, kept.
 * Deletes up to max tokens of the expiry index that expired at or before endedBefore, with their
 * id key and index entries; returns each as HGETALL's flat list. Each is also pushed onto
 * `prefix ci-purged` (its fields without the hash, as JSON, with purgedAt: purged-codec.ts), which
 * keeps the newest `kept`. Two instances purging at once are serialised by Redis: the second finds
 * what the first left.
 */
const PURGE_CI_LUA = `${LOG_CHANGE_LUA}
local purged = {}
local t = redis.call('TIME')
local now = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
for _, hash in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))) do
  local key = ARGV[1] .. 'token:' .. hash
  redis.call('ZREM', KEYS[1], hash)
  local fields = redis.call('HGETALL', key)
  if #fields > 0 then
    local f = redis.call('HMGET', key, 'id', 'name')
    redis.call('DEL', key, ARGV[1] .. 'id:' .. f[1])
    redis.call('ZREM', KEYS[2], hash)
    redis.call('ZREM', ARGV[1] .. 'name:' .. f[2], hash)
    redis.call('ZREM', ARGV[1] .. 'namekey:' .. string.lower(f[2]), hash)
    logChange(KEYS[3], KEYS[4], hash, tonumber(ARGV[4]), ARGV[5])
    local kept = {}
    for i = 1, #fields, 2 do
      if fields[i] ~= 'hash' then kept[fields[i]] = fields[i + 1] end
    end
    redis.call('LPUSH', ARGV[1] .. 'ci-purged', cjson.encode({ purgedAt = now, record = cjson.encode(kept) }))
    purged[#purged + 1] = fields
  end
end
if #purged > 0 then redis.call('LTRIM', ARGV[1] .. 'ci-purged', 0, tonumber(ARGV[6]) - 1) end
return purged
`;

/** The scripts as ioredis custom commands (EVALSHA, falling back to EVAL once per connection). */
export interface ScriptCommands {
  tollgateInsert(...args: string[]): Promise<[string, string?]>;
  tollgateRevokeIds(numKeys: number, ...args: string[]): Promise<string[][]>;
  tollgateRotate(...args: string[]): Promise<[string, string[]?, string[]?]>;
  tollgateGet(...args: string[]): Promise<string[][]>;
  tollgateTouch(numKeys: number, ...args: string[]): Promise<number>;
  tollgateChangesSince(...args: string[]): Promise<[string, string[], number]>;
  tollgateRevokeSession(...args: string[]): Promise<string>;
  tollgateReplaceAdminCredential(...args: string[]): Promise<number>;
  tollgatePurgeCi(...args: string[]): Promise<string[][]>;
}

export function defineScripts(client: Redis | Cluster): ScriptCommands {
  client.defineCommand('tollgateInsert', { lua: INSERT_LUA, numberOfKeys: 7 });
  client.defineCommand('tollgateRevokeIds', { lua: REVOKE_IDS_LUA });
  client.defineCommand('tollgateRotate', { lua: ROTATE_LUA, numberOfKeys: 8 });
  client.defineCommand('tollgateGet', { lua: GET_LUA, numberOfKeys: 3, readOnly: true });
  client.defineCommand('tollgateTouch', { lua: TOUCH_LUA });
  client.defineCommand('tollgateChangesSince', { lua: CHANGES_SINCE_LUA, numberOfKeys: 2, readOnly: true });
  client.defineCommand('tollgateRevokeSession', { lua: REVOKE_SESSION_LUA, numberOfKeys: 3 });
  client.defineCommand('tollgateReplaceAdminCredential', { lua: REPLACE_ADMIN_CREDENTIAL_LUA, numberOfKeys: 3 });
  client.defineCommand('tollgatePurgeCi', { lua: PURGE_CI_LUA, numberOfKeys: 4 });
  return client as unknown as ScriptCommands;
}
