import type { Env } from '../../src/config/index.js';
import { openTokenStore } from '../../src/tokens/index.js';
import type { TokenStore } from '../../src/tokens/store.js';
import { startTestGateway, type TestGateway } from './gateway.js';
import { startOrigin, type Origin } from './origin.js';
import { startRedisServer, startTcpRelay, type RedisServer, type TcpRelay } from './redis-server.js';

/**
 * An in-process gateway with its own redis-server as the token store, in front of a stub origin:
 * what the suites that break Redis on purpose need. With `relay`, the gateway reaches Redis
 * through a TCP relay the test can cut, and `direct` is a second store handle straight on Redis
 * (as the CLI would open one), which a cut does not reach.
 */
export interface RedisGateway {
  redis: RedisServer;
  relay: TcpRelay | undefined;
  origin: Origin;
  gw: TestGateway;
  /** With `relay`: a store handle on Redis itself, not through the relay. */
  direct: TokenStore | undefined;
  /** Closes all of it, last started first. */
  close(): Promise<void>;
}

/** `env`: the gateway's settings beyond TOLLGATE_UPSTREAM and TOLLGATE_REDIS_URL, which point at the origin and Redis. */
export async function startRedisGateway(env: Env, options: { relay?: boolean } = {}): Promise<RedisGateway> {
  const redis = await startRedisServer();
  const relay = options.relay ? await startTcpRelay(redis.port) : undefined;
  const origin = await startOrigin();
  const gw = await startTestGateway({
    TOLLGATE_UPSTREAM: origin.url,
    TOLLGATE_REDIS_URL: (relay ?? redis).url,
    ...env,
  });
  const direct = relay
    ? await openTokenStore({ redis: { url: redis.url, prefix: gw.config.redis!.prefix }, dataDir: gw.dataDir })
    : undefined;
  return {
    redis,
    relay,
    origin,
    gw,
    direct,
    async close() {
      await direct?.close();
      await gw.close();
      await relay?.close();
      await origin.close();
      await redis.stop();
    },
  };
}
