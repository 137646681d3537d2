import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';

/**
 * Per-token request rates (a token's `--rate N/min`): never more than N requests in any 60
 * seconds. A sliding log, not a token bucket (a bucket of N refilled at N a minute lets 2N through
 * in some minute) nor a clock-minute counter (2N across a minute boundary).
 *
 * With Redis the log is one sorted set per token, checked and appended by one script on Redis's
 * own clock, so the limit holds for the whole fleet. Without Redis (or while Redis cannot be
 * reached) each process keeps its own log: the limit then holds per process.
 */
export interface TokenRateLimiter {
  /**
   * Counts one request of `tokenId` against `perMinute` and returns 0 when it may go, or the
   * seconds until it may (Retry-After) when the last 60 s already hold `perMinute` requests.
   */
  take(tokenId: string, perMinute: number, now: number): number | Promise<number>;
}

export const RATE_WINDOW_MS = 60_000;

interface Log {
  times: Float64Array;
  /** Index of the oldest timestamp, and how many are held. */
  first: number;
  count: number;
}

/** The in-process sliding log, bounded to `maxTokens` logs (least recently used dropped). */
export function createLocalTokenRateLimiter(
  maxTokens = 10_000,
): TokenRateLimiter & { takeLocal(tokenId: string, perMinute: number, now: number): number } {
  const logs = new LRUCache<string, Log>({ maxSize: maxTokens, sizeCalculation: () => 1 });
  function takeLocal(tokenId: string, perMinute: number, now: number): number {
    let log = logs.get(tokenId);
    if (log === undefined || log.times.length !== perMinute) {
      log = { times: new Float64Array(perMinute), first: 0, count: 0 };
      logs.set(tokenId, log);
    }
    const size = log.times.length;
    while (log.count > 0 && log.times[log.first]! <= now - RATE_WINDOW_MS) {
      log.first = (log.first + 1) % size;
      log.count--;
    }
    if (log.count < size) {
      log.times[(log.first + log.count) % size] = now;
      log.count++;
      return 0;
    }
    return Math.max(1, Math.ceil((log.times[log.first]! + RATE_WINDOW_MS - now) / 1000));
  }
  return { take: takeLocal, takeLocal };
}

/** Redis: trim the log to the last 60 s (Redis's clock), then append if there is room. */
const TAKE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ${RATE_WINDOW_MS})
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ${RATE_WINDOW_MS})
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, math.ceil((tonumber(oldest[2]) + ${RATE_WINDOW_MS} - now) / 1000))
`;

type RateClient = (Redis | Cluster) & {
  tollgateTakeRate?: (key: string, limit: number, member: string) => Promise<number>;
};

export interface SharedTokenRateOptions {
  client: Redis | Cluster;
  /** Key prefix (keep the hash tag for Redis Cluster): `<prefix>rate:<tokenId>`. */
  prefix: string;
  /** Told when Redis fails and the process's own log stands in. */
  onError?: (err: unknown) => void;
}

export function createSharedTokenRateLimiter(options: SharedTokenRateOptions): TokenRateLimiter {
  const client = options.client as RateClient;
  client.defineCommand('tollgateTakeRate', { numberOfKeys: 1, lua: TAKE_LUA });
  const local = createLocalTokenRateLimiter();
  const idPrefix = randomBytes(6).toString('hex');
  let seq = 0;
  return {
    take(tokenId, perMinute, now) {
      return client.tollgateTakeRate!(
        `${options.prefix}rate:${tokenId}`,
        perMinute,
        `${idPrefix}-${(++seq).toString(36)}`,
      ).then(Number, (err: unknown) => {
        options.onError?.(err);
        return local.takeLocal(tokenId, perMinute, now);
      });
    },
  };
}
