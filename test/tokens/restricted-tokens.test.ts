import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, type CreateTokenInput } from '../../src/tokens/service.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { tempDir, type TempDir } from '../helpers/route-config.js';

/**
 * Restrictions given when a token is created, kept by the store and enforced by a running
 * gateway: the token is created through the same service as the CLI and the admin API, so what
 * the request path sees is what the store wrote and read back.
 */

let origin: Origin;
let redis: RedisServer;
let dir: TempDir;

beforeAll(async () => {
  origin = await startOrigin();
  redis = await startRedisServer();
  dir = tempDir();
});
afterAll(async () => {
  await origin?.close();
  await redis?.stop();
  dir?.remove();
});

describe.each([
  { name: 'embedded SQLite store', env: (): Record<string, string> => ({}) },
  { name: 'Redis store', env: (): Record<string, string> => ({ TOLLGATE_REDIS_URL: redis.url }) },
])('restricted tokens with the $name', (backend) => {
  let gw: TestGateway;
  let n = 0;

  beforeAll(async () => {
    gw = await startTestGateway({
      ...backend.env(),
      TOLLGATE_CONFIG: dir.configFile([
        { prefix: '/npm/', upstream: origin.url, ecosystem: 'npm' },
        { prefix: '/pypi/', upstream: origin.url, ecosystem: 'pypi' },
      ]),
    });
  });
  afterAll(() => gw?.close());

  async function restricted(restrictions: CreateTokenInput['restrictions']): Promise<string> {
    const { token } = await createToken(gw.store, {
      name: `restricted-${++n}`,
      type: 'production',
      createdBy: 'test',
      restrictions,
      knownRoutes: gw.config.routes.map((r) => r.prefix),
    });
    return token;
  }

  async function get(
    token: string,
    pathname: string,
  ): Promise<{ status: number; body: string; retryAfter: string | null }> {
    const res = await fetch(`${gw.url}${pathname}`, { headers: { authorization: bearer(token) } });
    return { status: res.status, body: await res.text(), retryAfter: res.headers.get('retry-after') };
  }

  it('keeps a token to its routes: 403 elsewhere', async () => {
    const token = await restricted({ routes: ['/pypi'] });
    expect((await get(token, '/pypi/simple/')).status).toBe(200);
    const refused = await get(token, '/npm/left-pad');
    expect(refused.status).toBe(403);
    expect(refused.body).toMatch(/not allowed on this route/);
  });

  it('keeps a token to its packages: 403 for others, and paths that name no package pass', async () => {
    const token = await restricted({ packages: ['@acme/*'] });
    expect((await get(token, '/npm/@acme/widget/-/widget-1.0.0.tgz')).status).toBe(200);
    const refused = await get(token, '/npm/left-pad/-/left-pad-1.3.0.tgz');
    expect(refused.status).toBe(403);
    expect(refused.body).toMatch(/not allowed to fetch this package/);
    expect((await get(token, '/npm/-/v1/search?text=x')).status).toBe(200);
    expect((await get(token, '/pypi/simple/')).status).toBe(200);
    expect((await get(token, '/pypi/simple/requests/')).status).toBe(403);
  });

  it('keeps a token to its networks: from elsewhere it is refused as an unknown token (401)', async () => {
    const elsewhere = await restricted({ networks: ['10.0.0.0/8'] });
    const refused = await get(elsewhere, '/npm/left-pad');
    expect(refused.status).toBe(401);
    expect(refused.body).toMatch(/Invalid or expired token/);
    const here = await restricted({ networks: ['127.0.0.1', '::1'] });
    expect((await get(here, '/npm/left-pad')).status).toBe(200);
  });

  it('keeps a token to its rate: 429 with Retry-After past it', async () => {
    const token = await restricted({ rate: '2/min' });
    expect((await get(token, '/npm/left-pad')).status).toBe(200);
    expect((await get(token, '/npm/left-pad')).status).toBe(200);
    const refused = await get(token, '/npm/left-pad');
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
  });
});
