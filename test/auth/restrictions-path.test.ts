import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../src/tokens/format.js';
import { basic, bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { openRawConnection, requestBytes } from '../helpers/raw-http.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { tempDir, type TempDir } from '../helpers/route-config.js';

/**
 * Token restrictions on the request path, beyond the store round trip (test/tokens/restricted-tokens.test.ts):
 * both credential forms, a kept-alive connection that switches tokens, networks behind a trusted
 * proxy answered exactly as an unknown token, refusals that write no activity event, and a rate
 * shared by a fleet.
 */
let origin: Origin;
let dir: TempDir;
beforeAll(async () => {
  origin = await startOrigin();
  dir = tempDir('tollgate-restrictions-');
});
afterAll(async () => {
  await origin?.close();
  dir?.remove();
});

const routes = () =>
  dir.configFile([
    { prefix: '/npm/', upstream: origin.url, ecosystem: 'npm' },
    { prefix: '/pypi/', upstream: origin.url, ecosystem: 'pypi' },
  ]);

describe('restrictions on one gateway behind a trusted proxy', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      TOLLGATE_CONFIG: routes(),
      TOLLGATE_TRUSTED_PROXIES: '127.0.0.1',
      TOLLGATE_ACTIVITY_FLUSH_MS: '10',
    });
  });
  afterAll(() => gw?.close());

  const scrape = async (name: string) => (await fetch(`${gw.adminUrl}/metrics?name=${name}`)).text();

  it.each([
    ['Bearer', (t: string) => bearer(t)],
    ['Basic', (t: string) => basic('web-shop', t)],
  ])('enforces routes and packages with a %s credential', async (_scheme, authorization) => {
    const { token } = await gw.createToken({ restrictions: { routes: ['/npm/'], packages: ['@acme/*'] } });
    const get = async (p: string) =>
      (await fetch(`${gw.url}${p}`, { headers: { authorization: authorization(token) } })).status;
    expect(await get('/npm/@acme%2fwidgets')).toBe(200);
    expect(await get('/npm/@acme/widgets/-/widgets-1.0.0.tgz')).toBe(200);
    expect(await get('/npm/lodash')).toBe(403);
    expect(await get('/npm/lodash/-/lodash-4.17.21.tgz')).toBe(403);
    expect(await get('/pypi/simple/')).toBe(403); // another route
  });

  it('judges each request on its own header on a kept-alive connection that switches between restricted and unrestricted tokens', async () => {
    const { token: narrow } = await gw.createToken({ restrictions: { packages: ['@acme/*'] } });
    const { token: wide } = await gw.createToken();
    const conn = await openRawConnection(gw.url);
    try {
      const ask = async (token: string, target: string) =>
        (
          await conn.request(
            requestBytes('GET', target, [
              ['Host', 'gw'],
              ['Authorization', bearer(token)],
            ]),
          )
        ).status;
      expect(await ask(narrow, '/npm/lodash')).toBe(403);
      expect(await ask(wide, '/npm/lodash')).toBe(200);
      expect(await ask(narrow, '/npm/lodash')).toBe(403);
      expect(await ask(narrow, '/npm/@acme%2fx')).toBe(200);
      expect(await ask(wide, '/npm/@acme%2fx')).toBe(200);
    } finally {
      conn.destroy();
    }
  });

  it('refuses a token used from outside its networks exactly as an unknown token, counting it as a failed authentication', async () => {
    const { token } = await gw.createToken({ restrictions: { networks: ['10.0.0.0/8'] } });
    const from = (ip: string, t: string) =>
      fetch(`${gw.url}/npm/lodash`, { headers: { authorization: bearer(t), 'x-forwarded-for': ip } });
    expect((await from('10.1.2.3', token)).status).toBe(200);
    const outside = await from('203.0.113.5', token);
    const unknown = await from('203.0.113.6', generateToken('production'));
    expect(outside.status).toBe(401);
    expect([outside.headers.get('www-authenticate'), await outside.text()]).toEqual([
      unknown.headers.get('www-authenticate'),
      await unknown.text(),
    ]);
    expect(await scrape('tollgate_auth_failures_total')).toMatch(
      /tollgate_auth_failures_total\{reason="network"\} [1-9]/,
    );
    expect(await scrape('tollgate_token_restriction_refusals_total')).toMatch(/reason="network"\} [1-9]/);
    const line = gw.logRecords().find((r) => r.clientIp === '203.0.113.5' && r.path === '/npm/lodash');
    expect(line).toMatchObject({ status: 401, authFailure: 'network' });
    expect(line!.tokenId).toBeUndefined(); // nothing says the token is live
  });

  it('writes no activity event for a refused request, and counts the refusal by restriction', async () => {
    const { token, record } = await gw.createToken({
      type: 'production',
      restrictions: { routes: ['/pypi/'], rate: '1/min' },
    });
    const get = async (p: string) =>
      (await fetch(`${gw.url}${p}`, { headers: { authorization: bearer(token) } })).status;
    expect(await get('/npm/lodash')).toBe(403); // route
    expect(await get('/pypi/simple/requests/')).toBe(200); // the one allowed this minute
    expect(await get('/pypi/simple/requests/')).toBe(429); // rate
    await expect.poll(() => productionEvents(gw).filter((e) => e.tokenId === record.id).length).toBe(1);
    expect(
      productionEvents(gw)
        .filter((e) => e.tokenId === record.id)
        .map((e) => e.status),
    ).toEqual([200]);
    const refusals = await scrape('tollgate_token_restriction_refusals_total');
    expect(refusals).toMatch(/reason="route"\} [1-9]/);
    expect(refusals).toMatch(/reason="rate"\} [1-9]/);
    // One request line each; the 200's is written when its response has finished, which may be
    // after the next request's, so the lines are compared without their order.
    const refusedBy = () =>
      gw
        .logRecords()
        .filter((r) => r.tokenId === record.id)
        .map((r) => (typeof r.refusedBy === 'string' ? r.refusedBy : 'none'))
        .sort();
    await expect.poll(refusedBy).toEqual(['none', 'rate', 'route']);
  });
});

describe('a rate shared by two gateways on one Redis', () => {
  let redis: RedisServer;
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(async () => {
    redis = await startRedisServer();
    a = await startTestGateway({ TOLLGATE_CONFIG: routes(), TOLLGATE_REDIS_URL: redis.url });
    b = await startTestGateway({ TOLLGATE_CONFIG: routes(), TOLLGATE_REDIS_URL: redis.url });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await redis?.stop();
  });

  it('never lets more than N requests a minute through across the fleet', async () => {
    const { token } = await a.createToken({ restrictions: { rate: '4/min' } });
    const get = async (gw: TestGateway) =>
      (await fetch(`${gw.url}/npm/lodash`, { headers: { authorization: bearer(token) } })).status;
    const statuses = [await get(a), await get(b), await get(a), await get(b), await get(a), await get(b)];
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
  });
});

function productionEvents(gw: TestGateway): { tokenId: string; status: number }[] {
  const activity = path.join(gw.dataDir, 'activity');
  let names: string[];
  try {
    names = readdirSync(activity).filter((n) => n.startsWith('production-'));
  } catch {
    return [];
  }
  return names.flatMap((n) =>
    readFileSync(path.join(activity, n), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { tokenId: string; status: number }),
  );
}
