import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../src/tokens/format.js';
import { createToken, type CreateTokenInput } from '../../src/tokens/service.js';
import { basic, bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { openRawConnection, requestBytes, type RawResponse } from '../helpers/raw-http.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { tempDir, type TempDir } from '../helpers/route-config.js';

/**
 * Restrictions given when a token is created, kept by the store and enforced by a running
 * gateway: the token is created through the same service as the CLI and the admin API, so what
 * the request path sees is what the store wrote and read back. Every kind, allowed and refused,
 * with both credential forms, on one kept-alive connection that switches tokens, on each store
 * (test/auth/restrictions-path.test.ts: networks behind a trusted proxy, activity, a fleet's rate).
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

/** The requests in a token's rate log on Redis (the fleet-wide sliding log), by the gateway's key prefix. */
async function redisRateLog(prefix: string, tokenId: string): Promise<number> {
  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await client.connect();
    return await client.zcard(`${prefix}rate:${tokenId}`);
  } finally {
    client.disconnect();
  }
}

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

  it("matches a package pattern in the form the ecosystem names packages: `Zope_Interface*` reaches PyPI's zope-interface, not zope-event", async () => {
    const token = await restricted({ packages: ['Zope_Interface*'] });
    expect((await get(token, '/pypi/simple/zope-interface/')).status).toBe(200);
    expect((await get(token, '/pypi/simple/Zope.Interface/')).status).toBe(200);
    expect((await get(token, '/pypi/packages/zope_interface-6.0.tar.gz')).status).toBe(200);
    expect((await get(token, '/pypi/simple/zope-event/')).status).toBe(403);
    // On npm the pattern is matched as written: npm names are not normalised that way.
    expect((await get(token, '/npm/zope-interface')).status).toBe(403);
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

  it.each([
    ['Bearer', (token: string) => bearer(token)],
    ['Basic', (token: string) => basic('web-shop', token)],
  ])(
    'allows and refuses by route, package, network and rate with a %s credential, judging each request by its own token on one kept-alive connection',
    async (_scheme, authorization) => {
      const rated = await gw.createToken({ restrictions: { rate: '2/min' } });
      const tokens = {
        route: (await gw.createToken({ restrictions: { routes: ['/pypi/'] } })).token,
        package: (await gw.createToken({ restrictions: { packages: ['@acme/*'] } })).token,
        inside: (await gw.createToken({ restrictions: { networks: ['127.0.0.0/8'] } })).token,
        outside: (await gw.createToken({ restrictions: { networks: ['10.0.0.0/8'] } })).token,
        rate: rated.token,
        unknown: generateToken('production'),
      };
      type Which = keyof typeof tokens;
      // Each request presents another token than the one before it.
      const steps: [Which, string, number][] = [
        ['route', '/pypi/simple/', 200],
        ['package', '/npm/lodash', 403],
        ['outside', '/npm/lodash', 401],
        ['route', '/npm/@acme%2fwidget', 403],
        ['rate', '/npm/lodash', 200],
        ['package', '/npm/@acme%2fwidget', 200],
        ['inside', '/npm/lodash', 200],
        ['rate', '/pypi/simple/', 200],
        ['outside', '/pypi/simple/', 401],
        ['unknown', '/pypi/simple/', 401],
        ['rate', '/npm/lodash', 429],
        ['inside', '/pypi/simple/requests/', 200],
        ['package', '/npm/@acme/widget/-/widget-1.0.0.tgz', 200],
        ['route', '/pypi/simple/requests/', 200],
      ];
      const forwardedBefore = origin.seen.length;
      const conn = await openRawConnection(gw.url);
      const answers: RawResponse[] = [];
      try {
        for (const [which, target] of steps) {
          const head = requestBytes('GET', target, [
            ['Host', 'gw'],
            ['Authorization', authorization(tokens[which])],
          ]);
          answers.push(await conn.request(head));
        }
        expect(conn.closed).toBe(false);
      } finally {
        conn.destroy();
      }
      expect(answers.map((a) => a.status)).toEqual(steps.map(([, , status]) => status));

      /** The answers to one token's requests, in order, with their bodies as text. */
      const answersTo = (which: Which) =>
        answers.filter((_, i) => steps[i]![0] === which).map((a) => ({ text: a.body.toString(), headers: a.headers }));
      expect(answersTo('package')[0]!.text).toMatch(/not allowed to fetch this package/);
      expect(answersTo('route')[1]!.text).toMatch(/not allowed on this route/);
      // From outside its networks a live token gets the very 401 of a token that does not exist.
      const [unknown] = answersTo('unknown');
      for (const outside of answersTo('outside')) {
        expect([outside.text, outside.headers['www-authenticate']]).toEqual([
          unknown!.text,
          unknown!.headers['www-authenticate'],
        ]);
      }
      expect(Number(answersTo('rate')[2]!.headers['retry-after'])).toBeGreaterThan(0);
      // The refused requests never reached the upstream.
      expect(origin.seen.length - forwardedBefore).toBe(steps.filter(([, , status]) => status === 200).length);
      // With Redis the rate is counted in the fleet-wide log, not in the process.
      if (gw.config.redis) expect(await redisRateLog(gw.config.redis.prefix, rated.record.id)).toBe(2);
    },
  );
});
