import type { Cluster, Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import { createRateLimiter, type RateLimiter } from './rate-limit.js';
import { createLocalTokenRateLimiter, type TokenRateLimiter } from './token-rate.js';

export interface RequestLimits {
  /** Failed authentications per client address; undefined when the limit is off. */
  failures: RateLimiter | undefined;
  /** Requests per token with a rate restriction. */
  tokenRate: TokenRateLimiter;
  stop(): void;
}

/**
 * The limits the proxy checks per request: failed authentications per client address (the
 * brute-force limit) and the request rate of tokens restricted to one. Both are shared through
 * Redis when the gateway has one, on a connection of their own with no offline queue and no
 * retries, so a Redis outage costs a request nothing: each process's own counts stand in.
 */
export async function createRequestLimits(
  config: Pick<Config, 'authFailureLimit' | 'redis'>,
  onError?: (err: unknown) => void,
): Promise<RequestLimits> {
  const { burst, refillPerMinute, maxAddresses, windowMs } = config.authFailureLimit;
  let client: Redis | Cluster | undefined;
  let failures: RateLimiter | undefined;
  let tokenRate: TokenRateLimiter;
  if (config.redis) {
    const [{ createRedisConnection }, { createRedisFailureCounter }, { createSharedTokenRateLimiter }] =
      await Promise.all([import('../redis/connect.js'), import('./rate-limit-redis.js'), import('./token-rate.js')]);
    client = createRedisConnection(config.redis.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 2000,
    });
    client.on('error', () => {}); // reconnects by itself; the local counts protect meanwhile
    if (burst > 0) {
      const shared = createRedisFailureCounter({ client, prefix: config.redis.prefix, windowMs });
      failures = createRateLimiter({ burst, refillPerSecond: refillPerMinute / 60, maxAddresses, shared });
    }
    tokenRate = createSharedTokenRateLimiter({ client, prefix: config.redis.prefix, onError });
  } else {
    if (burst > 0) failures = createRateLimiter({ burst, refillPerSecond: refillPerMinute / 60, maxAddresses });
    tokenRate = createLocalTokenRateLimiter();
  }
  return {
    failures,
    tokenRate,
    stop() {
      failures?.stop();
      client?.disconnect();
    },
  };
}
