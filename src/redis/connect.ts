import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { parseRedisUrl } from './url.js';

export { parseRedisUrl, type RedisTarget } from './url.js';

/**
 * One place that turns TOLLGATE_REDIS_URL into an ioredis connection, for every Redis
 * topology Tollgate supports:
 *
 *   redis://[:password@]host:port[/db]            a single server (rediss:// for TLS)
 *   redis-sentinel://[:password@]h1:p1,h2:p2/name  Sentinel: the master called `name`, found
 *                                                 through the sentinels, followed on failover
 *   redis-cluster://[:password@]h1:p1,h2:p2        Redis Cluster, from any of its nodes
 *
 * Every key Tollgate writes shares the `{tollgate}` hash tag, so on a Cluster they all live in
 * one slot and the multi-key Lua scripts run there.
 */
/** A connection with the given options (reconnect, timeouts, offline queue) on any topology. */
export function createRedisConnection(url: string, options: RedisOptions): Redis | Cluster {
  const target = parseRedisUrl(url);
  if (typeof target === 'string') throw new TypeError(`TOLLGATE_REDIS_URL ${target}`);
  switch (target.kind) {
    case 'single':
      return new Redis(target.url, options);
    case 'sentinel':
      return new Redis({
        ...options,
        sentinels: target.nodes,
        name: target.name,
        password: target.password,
        sentinelPassword: target.password,
        db: target.db,
      });
    case 'cluster':
      return new Cluster(target.nodes, {
        redisOptions: { ...options, password: target.password },
        enableOfflineQueue: options.enableOfflineQueue ?? true,
        enableReadyCheck: true,
        clusterRetryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
        slotsRefreshTimeout: 2000,
      });
  }
}

/**
 * The connection a Redis-backed part uses: the one it was given (the caller owns it), or a new one
 * for the URL with these options (the part owns it and closes it). Either way the part's error
 * handler is attached and a lazy connection starts connecting.
 */
export function useOrConnect(
  given: { client?: Redis | Cluster | undefined; url?: string | undefined },
  options: RedisOptions,
  onError: (err: Error) => void,
  who: string,
): { client: Redis | Cluster; owned: boolean } {
  let client: Redis | Cluster;
  if (given.client) client = given.client;
  else if (given.url) client = createRedisConnection(given.url, options);
  else throw new TypeError(`${who} needs a url or a client`);
  client.on('error', onError);
  if (client.status === 'wait') client.connect().catch(() => {});
  return { client, owned: given.client === undefined };
}

/**
 * Closes a connection: QUIT when it is ready (replies to commands already sent still arrive),
 * else, or when QUIT fails, drops it at once. Never rejects.
 */
export async function quitOrDisconnect(connection: Redis | Cluster): Promise<void> {
  if (connection.status === 'end') return;
  if (connection.status === 'ready') {
    try {
      await connection.quit();
      return;
    } catch {
      // Fall through: the connection went away meanwhile.
    }
  }
  connection.disconnect();
}
