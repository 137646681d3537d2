import type { Config } from '../config/index.js';
import { createRedisTokenStore } from './redis-store.js';
import { createSqliteTokenStore } from './sqlite-store.js';
import type { TokenStore } from './store.js';

export type { TokenStore, TokenRecord } from './store.js';

/** Redis when TOLLGATE_REDIS_URL is set, else the embedded SQLite store under the data dir. */
export function openTokenStore(config: Pick<Config, 'redis' | 'dataDir'>, onError?: (err: Error) => void): TokenStore {
  if (config.redis) return createRedisTokenStore({ url: config.redis.url, prefix: config.redis.prefix, onError });
  return createSqliteTokenStore({ dataDir: config.dataDir });
}
