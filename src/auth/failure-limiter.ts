import type { Cluster, Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import { createRateLimiter, type RateLimiter } from './rate-limit.js';

export interface FailureLimiter {
  limiter: RateLimiter;
  stop(): void;
}

/**
 * The brute-force limit on failed authentications per client address, shared through Redis when
 * the gateway has one (its own connection: no offline queue, no retries, so a Redis outage costs
 * a request nothing; the local buckets protect meanwhile). Undefined when the limit is off.
 */
export async function createFailureLimiter(config: Pick<Config, 'authFailureLimit' | 'redis'>): Promise<FailureLimiter | undefined> {
  const { burst, refillPerMinute, maxAddresses, windowMs } = config.authFailureLimit;
  if (burst === 0) return undefined;
  let client: Redis | Cluster | undefined;
  let shared;
  if (config.redis) {
    const [{ createRedisConnection }, { createRedisFailureCounter }] = await Promise.all([import('../redis/connect.js'), import('./rate-limit-redis.js')]);
    client = createRedisConnection(config.redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 2000 });
    client.on('error', () => {}); // reconnects by itself; the local buckets protect meanwhile
    shared = createRedisFailureCounter({ client, prefix: config.redis.prefix, windowMs });
  }
  const limiter = createRateLimiter({ burst, refillPerSecond: refillPerMinute / 60, maxAddresses, shared });
  return {
    limiter,
    stop() {
      limiter.stop();
      client?.disconnect();
    },
  };
}
