import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRateLimiter } from '../../src/auth/rate-limit.js';
import { generateToken } from '../../src/tokens/format.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { awaitWindowRoom } from '../helpers/windows.js';

const T0 = 1_800_000_000_000;

describe('the failed-authentication bucket', () => {
  const limiter = () => createRateLimiter({ burst: 100, refillPerSecond: 1, maxAddresses: 1000 });

  it('never limits a build host with a stale token sending a few dozen failures a minute', () => {
    const l = limiter();
    for (let minute = 0; minute < 10; minute++) {
      for (let i = 0; i < 40; i++) {
        const now = T0 + minute * 60_000 + i * 1500;
        expect(l.retryAfter('10.0.0.1', now)).toBe(0);
        l.fail('10.0.0.1', now);
      }
    }
  });

  it('limits a burst of 150 failures from one address after the first 100, with a Retry-After', () => {
    const l = limiter();
    let limitedAt = -1;
    for (let i = 0; i < 150; i++) {
      if (l.retryAfter('10.0.0.2', T0) > 0) {
        limitedAt = i;
        break;
      }
      l.fail('10.0.0.2', T0);
    }
    expect(limitedAt).toBe(100);
    expect(l.retryAfter('10.0.0.2', T0)).toBeGreaterThanOrEqual(1);
    // Other addresses are unaffected, and the bucket refills with time.
    expect(l.retryAfter('10.0.0.3', T0)).toBe(0);
    expect(l.retryAfter('10.0.0.2', T0 + 2000)).toBe(0);
  });

  it('keeps memory bounded: at most maxAddresses buckets', () => {
    const l = createRateLimiter({ burst: 1, refillPerSecond: 0.001, maxAddresses: 100 });
    for (let i = 0; i < 10_000; i++) l.fail(`10.1.${i >> 8}.${i & 255}`, T0);
    // The oldest addresses were evicted (forgotten, so not limited); the newest are limited.
    const address = (i: number) => `10.1.${i >> 8}.${i & 255}`;
    expect(l.retryAfter(address(0), T0)).toBe(0);
    expect(l.retryAfter(address(9_899), T0)).toBe(0); // the 101st newest: forgotten
    for (let i = 9_900; i < 10_000; i++) expect(l.retryAfter(address(i), T0)).toBeGreaterThan(0); // the 100 newest
  });
});

describe('brute-force protection on the proxy port', () => {
  let origin: Origin;
  let gw: TestGateway;

  beforeAll(async () => {
    origin = await startOrigin();
    gw = await startTestGateway({ TOLLGATE_UPSTREAM: origin.url, TOLLGATE_TRUSTED_PROXIES: '127.0.0.1' });
  });
  afterAll(async () => {
    await gw?.close();
    await origin?.close();
  });

  const get = (headers: Record<string, string>) => fetch(`${gw.url}/x`, { headers });
  const from = (ip: string, headers: Record<string, string> = {}) => get({ 'x-forwarded-for': ip, ...headers });

  it('lets a host with a stale token keep downloading with its valid one', async () => {
    const { token } = await gw.createToken();
    const stale = generateToken('production');
    for (let i = 0; i < 30; i++) {
      expect((await from('198.51.100.10', { authorization: bearer(stale) })).status).toBe(401);
      expect((await from('198.51.100.10', { authorization: bearer(token) })).status).toBe(200);
    }
  });

  it('answers 429 with Retry-After to an address that sent 150 wrong tokens in a burst, and no one else', async () => {
    // Its own gateway with the default burst (100) and a refill of one a minute, so that the right
    // guess below meets an empty bucket however slow the machine (at one a second, a slow loop
    // could leave a refilled token for it).
    const strict = await startTestGateway({
      TOLLGATE_UPSTREAM: origin.url,
      TOLLGATE_TRUSTED_PROXIES: '127.0.0.1',
      TOLLGATE_AUTH_FAILURE_REFILL_PER_MINUTE: '1',
    });
    try {
      const at = (ip: string, token: string) =>
        fetch(`${strict.url}/x`, { headers: { 'x-forwarded-for': ip, authorization: bearer(token) } });
      const { token } = await strict.createToken();
      const statuses: number[] = [];
      const started = Date.now();
      for (let i = 0; i < 150; i++) statuses.push((await at('203.0.113.66', generateToken('production'))).status);
      const elapsedS = (Date.now() - started) / 1000;
      expect(statuses.slice(0, 100).every((s) => s === 401)).toBe(true);
      // Past the burst, only what the bucket refilled meanwhile (one a minute) gets through.
      const through = statuses.slice(100).filter((s) => s !== 429).length;
      expect(through).toBeLessThanOrEqual(Math.ceil(elapsedS / 60) + 1);
      const limited = await at('203.0.113.66', token);
      expect(limited.status).toBe(429); // even a right guess learns nothing now
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await at('203.0.113.67', token)).status).toBe(200);
      const metrics = await (await fetch(`${strict.adminUrl}/metrics`)).text();
      expect(metrics).toMatch(/tollgate_auth_failures_total\{reason="rate_limited"\} [1-9]/);
    } finally {
      await strict.close();
    }
  });

  it('prevents one client behind a shared address from locking everyone out: a limited address is refused store reads, not service', async () => {
    // Its own gateway, whose allowance does not refill during the test (1 a minute).
    const slow = await startTestGateway({
      TOLLGATE_UPSTREAM: origin.url,
      TOLLGATE_TRUSTED_PROXIES: '127.0.0.1',
      TOLLGATE_AUTH_FAILURE_BURST: '10',
      TOLLGATE_AUTH_FAILURE_REFILL_PER_MINUTE: '1',
    });
    try {
      const at = (ip: string, token: string) =>
        fetch(`${slow.url}/x`, { headers: { 'x-forwarded-for': ip, authorization: bearer(token) } });
      const { token: known } = await slow.createToken();
      const { token: unseen } = await slow.createToken();
      // The token is in the gateway's cache (used before, from another address behind the same NAT).
      // The cache first catches up with the store's change log (the two inserts), which would
      // otherwise drop the entry when it arrives, then serves the token without a store read.
      await slow.gateway.cache.sync();
      const stats = slow.gateway.cache.stats;
      await expect
        .poll(async () => {
          const reads = stats.storeReads;
          return (await at('203.0.113.90', known)).status === 200 && stats.storeReads === reads;
        })
        .toBe(true);
      for (let i = 0; i < 12; i++) await at('203.0.113.91', generateToken('production'));
      const reads = stats.storeReads;
      expect((await at('203.0.113.91', generateToken('production'))).status).toBe(429);
      // A cached token passes even from the limited address: a cache hit costs nothing.
      expect((await at('203.0.113.91', known)).status).toBe(200);
      // A token that would need a store read (right or wrong) gets 429, and no store read happens.
      const refused = await at('203.0.113.91', unseen);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(stats.storeReads).toBe(reads);
      // From elsewhere, the unseen token is fine.
      expect((await at('203.0.113.92', unseen)).status).toBe(200);
    } finally {
      await slow.close();
    }
  });

  it('never counts challenge requests without a credential (Maven sends dozens by design)', async () => {
    for (let i = 0; i < 300; i++) expect((await from('192.0.2.50')).status).toBe(401);
    const { token } = await gw.createToken();
    expect((await from('192.0.2.50', { authorization: bearer(token) })).status).toBe(200);
  });
});

describe('brute-force protection across gateways sharing Redis', () => {
  let redis: RedisServer;
  let origin: Origin;
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    redis = await startRedisServer();
    origin = await startOrigin();
    const env = {
      TOLLGATE_UPSTREAM: origin.url,
      TOLLGATE_REDIS_URL: redis.url,
      TOLLGATE_TRUSTED_PROXIES: '127.0.0.1',
      TOLLGATE_AUTH_FAILURE_BURST: '20',
      TOLLGATE_AUTH_FAILURE_REFILL_PER_MINUTE: '6',
      TOLLGATE_AUTH_FAILURE_WINDOW_MS: '60000',
    };
    a = await startTestGateway(env);
    b = await startTestGateway(env);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await origin?.close();
    await redis?.stop();
  });

  it(
    'blocks an address on every gateway once its failures across the fleet pass the limit',
    { timeout: 45_000 },
    async () => {
      await awaitWindowRoom(60_000, 15_000);
      const guess = (gw: TestGateway) =>
        fetch(`${gw.url}/x`, {
          headers: { 'x-forwarded-for': '203.0.113.99', authorization: bearer(generateToken('production')) },
        }).then((r) => r.status);
      // 18 failures on each gateway: under each local bucket (20), over the fleet's (20 + 6).
      // Some may already be 429 once a flush has shared the count: that is the point.
      const statuses: number[] = [];
      for (let i = 0; i < 18; i++) statuses.push(await guess(a), await guess(b));
      // Both gateways' counts have reached Redis (each flushes its own failures)...
      const client = new Redis(redis.url);
      const shared = async () => {
        const [key] = await client.keys('*authfail:*:203.0.113.99');
        return key ? Number(await client.get(key)) : 0;
      };
      await expect.poll(shared, { timeout: 10_000 }).toBeGreaterThanOrEqual(36);
      client.disconnect();
      // ...and b's next failure flushes and reads the fleet's total (19 here: under b's own bucket of 20).
      statuses.push(await guess(b));
      expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
      // A valid token b has never seen (a cached one would pass: the limit refuses store reads, not service).
      const probe = async () => {
        const { token } = await a.createToken();
        return fetch(`${b.url}/x`, {
          headers: { 'x-forwarded-for': '203.0.113.99', authorization: bearer(token) },
        }).then((r) => r.status);
      };
      // The shared count arrives with the next flush; on a loaded machine that can take seconds.
      await expect.poll(probe, { timeout: 10_000, interval: 50 }).toBe(429);
    },
  );
});
