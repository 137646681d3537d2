import type { Config } from '../config/index.js';
import { createSqliteTokenStore } from './sqlite-store.js';
import type { TokenStore } from './store.js';

export type { TokenStore, TokenRecord } from './store.js';

/**
 * Redis when TOLLGATE_REDIS_URL is set, else the embedded SQLite store under the data dir.
 * The Redis client is loaded only when used (ioredis alone adds megabytes of RSS: bench/README.md).
 */
export async function openTokenStore(
  config: Pick<Config, 'redis' | 'dataDir'>,
  onError?: (err: Error) => void,
): Promise<TokenStore> {
  if (config.redis) {
    const { createRedisTokenStore } = await import('./redis-store.js');
    return createRedisTokenStore({ url: config.redis.url, prefix: config.redis.prefix, onError });
  }
  return createSqliteTokenStore({ dataDir: config.dataDir });
}
