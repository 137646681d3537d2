import http from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../../src/config/index.js';
import { ADMIN_FAILURE_WINDOW_MS, ADMIN_FAILURES_PER_WINDOW } from '../../src/admin/sign-in-limit.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { awaitWindowRoom } from '../helpers/windows.js';

/**
 * The admin sign-in limit: 10 failed admin credentials per client address per minute, then 429
 * with Retry-After (at most 60 s) for every admin credential from that address, the right one
 * included; counted per process without Redis, fleet-wide with it.
 */
const ADMIN_TOKEN = 'limit-admin-token-0123456789abcdef';

interface Answer {
  status: number;
  retryAfter: string | undefined;
  code: string | undefined;
}

/** One admin request from a chosen loopback source address (127.0.0.0/8 is all ours). */
function adminRequest(
  gw: TestGateway,
  pathname: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; from?: string },
): Promise<Answer> {
  const url = new URL(pathname, gw.adminUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: options.method ?? 'GET',
        headers: options.headers,
        localAddress: options.from ?? '127.0.0.1',
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let code: string | undefined;
          try {
            code = (JSON.parse(text) as { code?: string }).code;
          } catch {
            code = undefined;
          }
          resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], code });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

const signIn = (gw: TestGateway, token: string, from?: string) =>
  adminRequest(gw, '/api/v1/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: gw.adminUrl },
    body: JSON.stringify({ token }),
    from,
  });
const bearerList = (gw: TestGateway, token: string, from?: string) =>
  adminRequest(gw, '/api/v1/tokens', {
    headers: { authorization: `Bearer ${token}` },
    from,
  });

function expectLimited(answer: Answer): void {
  expect(answer).toMatchObject({ status: 429, code: 'TOLLGATE_ERR_ADMIN_RATE_LIMITED' });
  const wait = Number(answer.retryAfter);
  expect(wait).toBeGreaterThanOrEqual(1);
  expect(wait).toBeLessThanOrEqual(60);
}

describe('the admin sign-in limit on one gateway (no Redis)', () => {
  const gateways: TestGateway[] = [];
  const start = async (env: Env = {}) => {
    const gw = await startTestGateway({ TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, ...env });
    gateways.push(gw);
    return gw;
  };
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((gw) => gw.close()));
  });

  it('prevents guessing the admin token at the sign-in: past 10 failures in a minute, 429 even for the right token', async () => {
    const gw = await start();
    for (let i = 0; i < ADMIN_FAILURES_PER_WINDOW; i++) {
      expect(await signIn(gw, `wrong-guess-${i}-xxxxxxxxxxxxxxxx`, '127.0.0.2')).toMatchObject({ status: 401 });
    }
    expectLimited(await signIn(gw, ADMIN_TOKEN, '127.0.0.2'));
    expectLimited(await bearerList(gw, ADMIN_TOKEN, '127.0.0.2'));
    // The count stays this address's: another one signs in.
    expect(await signIn(gw, ADMIN_TOKEN, '127.0.0.3')).toMatchObject({ status: 200 });
    // Pages and health need no credential: not limited.
    expect((await adminRequest(gw, '/healthz', { from: '127.0.0.2' })).status).toBe(200);
    expect(gw.logs()).not.toContain(ADMIN_TOKEN);
  });

  it('prevents guessing with Bearer credentials on the API: they count too', async () => {
    const gw = await start();
    for (let i = 0; i < ADMIN_FAILURES_PER_WINDOW; i++) {
      expect(await bearerList(gw, `wrong-bearer-${i}-xxxxxxxxxxxxxxx`, '127.0.0.4')).toMatchObject({ status: 401 });
    }
    expectLimited(await bearerList(gw, ADMIN_TOKEN, '127.0.0.4'));
    expectLimited(await signIn(gw, ADMIN_TOKEN, '127.0.0.4'));
    expect(await bearerList(gw, ADMIN_TOKEN, '127.0.0.5')).toMatchObject({ status: 200 });
  });

  it('counts the address a trusted proxy forwards for, not the proxy', async () => {
    const gw = await start({ TOLLGATE_TRUSTED_PROXIES: '127.0.0.6' });
    const via = (client: string, token: string) =>
      adminRequest(gw, '/api/v1/tokens', {
        headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': client },
        from: '127.0.0.6',
      });
    for (let i = 0; i < ADMIN_FAILURES_PER_WINDOW; i++)
      expect((await via('203.0.113.7', `wrong-${i}-xxxxxxxxxxxxxxxxxxxx`)).status).toBe(401);
    expectLimited(await via('203.0.113.7', ADMIN_TOKEN));
    expect((await via('203.0.113.8', ADMIN_TOKEN)).status).toBe(200);
  });

  it('never limits an address for its right credentials, however many', async () => {
    const gw = await start();
    for (let i = 0; i < 3 * ADMIN_FAILURES_PER_WINDOW; i++) {
      expect((await bearerList(gw, ADMIN_TOKEN, '127.0.0.9')).status).toBe(200);
    }
  });
});

describe('the admin sign-in limit across gateways on one Redis', () => {
  let redis: RedisServer;
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    redis = await startRedisServer();
    const env = { TOLLGATE_REDIS_URL: redis.url, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN };
    a = await startTestGateway(env);
    b = await startTestGateway(env);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await redis?.stop();
  });

  it(
    'prevents spreading guesses over gateways: 10 failures across the fleet limit the address on every gateway',
    { timeout: 45_000 },
    async () => {
      // The fleet-wide count lives in fixed one-minute windows: count inside one.
      await awaitWindowRoom(ADMIN_FAILURE_WINDOW_MS, 15_000);
      const half = ADMIN_FAILURES_PER_WINDOW / 2;
      for (let i = 0; i < half; i++) {
        expect((await signIn(a, `wrong-a-${i}-xxxxxxxxxxxxxxxxxx`, '127.0.0.7')).status).toBe(401);
        expect((await signIn(b, `wrong-b-${i}-xxxxxxxxxxxxxxxxxx`, '127.0.0.7')).status).toBe(401);
      }
      // Each gateway alone saw 5 (its own count allows 10): only the fleet-wide count, flushed to
      // Redis every 250 ms (later on a loaded machine), reaches 10. Probing with the right token adds no failure.
      await expect
        .poll(async () => (await signIn(a, ADMIN_TOKEN, '127.0.0.7')).status, { timeout: 10_000, interval: 50 })
        .toBe(429);
      await expect
        .poll(async () => (await signIn(b, ADMIN_TOKEN, '127.0.0.7')).status, { timeout: 10_000, interval: 50 })
        .toBe(429);
      expectLimited(await bearerList(b, ADMIN_TOKEN, '127.0.0.7'));
      expect((await signIn(b, ADMIN_TOKEN, '127.0.0.8')).status).toBe(200);
    },
  );
});
