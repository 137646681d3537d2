import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../src/tokens/format.js';
import { openTokenStore } from '../../src/tokens/index.js';
import type { TokenStore } from '../../src/tokens/store.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedisServer, startTcpRelay, type RedisServer, type TcpRelay } from '../helpers/redis-server.js';

/**
 * Redis goes away: cached tokens keep working for the configured stale window, unknown tokens get
 * 503 + Retry-After (the token may be fine), past the window everything is 503, and once Redis is
 * back the revocations made meanwhile are applied.
 */
const STALE_MS = 1500;

describe('serving from the cache while the token store is unreachable', () => {
  let redis: RedisServer;
  let relay: TcpRelay;
  let origin: Origin;
  let gw: TestGateway;
  let direct: TokenStore;

  beforeAll(async () => {
    redis = await startRedisServer();
    relay = await startTcpRelay(redis.port);
    origin = await startOrigin();
    gw = await startTestGateway({
      TOLLGATE_UPSTREAM: origin.url,
      TOLLGATE_REDIS_URL: relay.url,
      TOLLGATE_CACHE_TTL_MS: '600000',
      TOLLGATE_CACHE_STALE_MS: String(STALE_MS),
    });
    direct = await openTokenStore({ redis: { url: redis.url, prefix: gw.config.redis!.prefix }, dataDir: gw.dataDir });
  });
  afterAll(async () => {
    await direct?.close();
    await gw?.close();
    await relay?.close();
    await origin?.close();
    await redis?.stop();
  });

  const get = (token: string) => fetch(`${gw.url}/a`, { headers: { authorization: bearer(token) } });

  it('keeps cached tokens working within the window, answers 503 past it, and catches up afterwards', async () => {
    const kept = await gw.createToken();
    const revoked = await gw.createToken();
    await gw.gateway.cache.sync();
    expect((await get(kept.token)).status).toBe(200);
    expect((await get(revoked.token)).status).toBe(200);

    await relay.cut();
    const cutAt = Date.now();
    await direct.revoke(revoked.record.id, 'test'); // unseen by the gateway while cut off

    // Within the window: cached tokens work; an unknown token cannot be checked: 503, not 401.
    expect((await get(kept.token)).status).toBe(200);
    const unknown = await get(generateToken('production'));
    expect(unknown.status).toBe(503);
    expect(unknown.headers.get('retry-after')).toMatch(/^\d+$/);

    // Past the window: nothing cached is trusted any more.
    await new Promise((r) => setTimeout(r, Math.max(0, cutAt + STALE_MS + 300 - Date.now())));
    expect((await get(kept.token)).status).toBe(503);
    expect((await get(revoked.token)).status).toBe(503);

    await relay.heal();
    await expect.poll(async () => (await get(kept.token)).status, { timeout: 5000, interval: 50 }).toBe(200);
    expect((await get(revoked.token)).status).toBe(401);
  });
});
