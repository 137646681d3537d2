import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken, hashToken } from '../../src/tokens/format.js';
import { openTokenStore } from '../../src/tokens/index.js';
import type { TokenStore } from '../../src/tokens/store.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { basic, bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedisServer, startTcpRelay, type RedisServer } from '../helpers/redis-server.js';

/**
 * Authentication on the proxy port, end to end over real sockets, against both token stores:
 * the embedded SQLite store and a real redis-server owned by this suite.
 */

const FAR_FUTURE_TTL = '600000'; // cache TTL far beyond every wait here: changes must be pushed

/** Polls `check` until it returns true or `withinMs` passes; returns the elapsed ms or throws. */
async function within(withinMs: number, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > withinMs) throw new Error(`condition not met within ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

type Backend = { name: string; env: () => Record<string, string>; reads: () => Promise<number> };

let redis: RedisServer;
let origin: Origin;

beforeAll(async () => {
  redis = await startRedisServer();
  origin = await startOrigin();
});
afterAll(async () => {
  await origin?.close();
  await redis?.stop();
});

const backends: Backend[] = [
  { name: 'embedded SQLite store', env: () => ({}), reads: async () => NaN },
  {
    name: 'Redis store',
    env: () => ({ TOLLGATE_REDIS_URL: redis.url }),
    reads: async () => (await redis.commandStats()).hgetall ?? 0,
  },
];

describe.each(backends)('with the $name', (backend) => {
  let gw: TestGateway;
  /** A second handle on the same store, as the CLI or another instance would have. */
  let admin: TokenStore;

  beforeAll(async () => {
    gw = await startTestGateway({
      TOLLGATE_UPSTREAM: origin.url,
      TOLLGATE_CACHE_TTL_MS: FAR_FUTURE_TTL,
      TOLLGATE_LAST_USED_FLUSH_MS: '200',
      TOLLGATE_REDIS_PREFIX: `{tg-${Math.random().toString(36).slice(2)}}:`,
      ...backend.env(),
    });
    admin = await openTokenStore(gw.config);
  });
  afterAll(async () => {
    await admin?.close();
    await gw?.close();
  });

  it('never writes a token to its log (checked over every request this suite made)', async () => {
    const { token } = await gw.createToken();
    await get('/log-check', bearer(token));
    await get('/log-check', basic('p', token));
    await get('/log-check', bearer(token.slice(0, -1)));
    await within(1000, async () => gw.logRecords().filter((r) => r.path === '/log-check').length === 3);
    const tokens = (await admin.list()).length;
    expect(tokens).toBeGreaterThan(0);
    expect(gw.logs()).not.toContain(token);
    expect(gw.logs()).not.toContain(token.slice(0, -1));
    expect(gw.logs()).not.toMatch(/tg[pd]_[0-9A-Za-z]{30,}/);
  });

  it('records when a token was last used, in batches rather than per request', async () => {
    const { token, record } = await gw.createToken();
    expect((await admin.get(record.id))!.lastUsedAt).toBeNull();
    const before = Date.now();
    for (let i = 0; i < 20; i++) expect((await get('/used', bearer(token))).status).toBe(200);
    await within(2000, async () => ((await admin.get(record.id))!.lastUsedAt ?? 0) >= before);
  });

  const get = (path: string, authorization?: string) =>
    fetch(`${gw.url}${path}`, { headers: authorization ? { authorization } : {} });

  it.each([
    ['Bearer', (t: string) => bearer(t)],
    ['Basic with a project as user', (t: string) => basic('my-project', t)],
    ['Basic with an empty user', (t: string) => basic('', t)],
    ['lower-case scheme names', (t: string) => `bearer ${t}`],
    ['upper-case scheme names', (t: string) => `BASIC ${Buffer.from(`p:${t}`).toString('base64')}`],
  ])('downloads with a freshly created token sent as %s', async (_label, header) => {
    const { token } = await gw.createToken();
    const res = await get('/pkg/a-1.0.0.tgz', header(token));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('origin:/pkg/a-1.0.0.tgz');
  });

  it('tags the request with the Basic user as project, `default` without one', async () => {
    const { token, record } = await gw.createToken({ type: 'development' });
    await get('/tagged/a', basic('web-shop', token));
    await get('/tagged/b', bearer(token));
    await within(1000, async () => gw.logRecords().filter((r) => String(r.path).startsWith('/tagged/')).length === 2);
    const lines = gw.logRecords().filter((r) => String(r.path).startsWith('/tagged/'));
    expect(lines.map((l) => [l.path, l.project, l.tokenId, l.tokenType])).toEqual([
      ['/tagged/a', 'web-shop', record.id, 'development'],
      ['/tagged/b', 'default', record.id, 'development'],
    ]);
  });

  it('challenges a request without credentials with 401 and WWW-Authenticate Basic', async () => {
    const res = await get('/pkg/a');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="tollgate"/);
    expect(origin.seen.some((s) => s.url === '/pkg/a')).toBe(false);
  });

  it('refuses unknown, expired-while-cached and revoked tokens with identical 401 responses', async () => {
    const unknown = generateToken('production');
    const expiring = await gw.createToken({ expires: new Date(Date.now() + 1500).toISOString() });
    const revoked = await gw.createToken();

    // Both real tokens work first, so they are in the cache.
    expect((await get('/warm', bearer(expiring.token))).status).toBe(200);
    expect((await get('/warm', bearer(revoked.token))).status).toBe(200);
    await admin.revoke(revoked.record.id, 'test');
    await within(1000, async () => (await get('/x', bearer(revoked.token))).status === 401);
    await within(3000, async () => (await get('/x', bearer(expiring.token))).status === 401);

    const responses = await Promise.all(
      [unknown, expiring.token, revoked.token].map(async (t) => {
        const res = await get('/same', bearer(t));
        const headers = [...res.headers].filter(([k]) => k !== 'date' && k !== 'x-request-id');
        return { status: res.status, headers, body: await res.text() };
      }),
    );
    expect(responses[0]!.status).toBe(401);
    expect(responses[0]!.headers).toContainEqual([
      'www-authenticate',
      expect.stringMatching(/^Basic realm="tollgate"/),
    ]);
    expect(responses[1]).toEqual(responses[0]);
    expect(responses[2]).toEqual(responses[0]);
    for (const t of [unknown, expiring.token, revoked.token]) expect(responses[0]!.body).not.toContain(t);
  });

  it('applies a revocation within one second although the cache TTL is ten minutes, after a proven cache hit', async () => {
    const { token, record } = await gw.createToken();
    await gw.gateway.cache.sync(); // the creation's own change notification is behind us
    expect((await get('/first', bearer(token))).status).toBe(200);
    const hitsBefore = gw.gateway.cache.stats.hits;
    expect((await get('/second', bearer(token))).status).toBe(200);
    expect(gw.gateway.cache.stats.hits).toBe(hitsBefore + 1);

    await admin.revoke(record.name, 'test');
    const elapsed = await within(1000, async () => (await get('/after', bearer(token))).status === 401);
    expect(elapsed).toBeLessThanOrEqual(1000);
  });

  it('accepts a token created in the store by another process', async () => {
    const { createToken } = await import('../../src/tokens/service.js');
    const created = await createToken(admin, { name: `other-${Date.now()}`, type: 'production', createdBy: 'test' });
    expect((await get('/new', bearer(created.token))).status).toBe(200);
  });

  it('rejects a token with a valid prefix and a wrong checksum', async () => {
    const { token } = await gw.createToken();
    const last = token.at(-1)!;
    const broken = token.slice(0, -1) + (last === 'a' ? 'b' : 'a');
    const res = await get('/x', bearer(broken));
    expect(res.status).toBe(401);
  });

  describe('on one kept-alive connection (the gateway remembers its last credential)', () => {
    /** Every request on the same socket: maxSockets 1, and each response says whether it reused it. */
    let agent: http.Agent;
    beforeAll(() => {
      agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    });
    afterAll(() => agent.destroy());
    const getOn = (path: string, authorization?: string) =>
      new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
        const req = http.get(`${gw.url}${path}`, { agent, headers: authorization ? { authorization } : {} }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket }));
        });
        req.on('error', reject);
      });

    it('judges every request on the credential it carries, whatever the connection sent before', async () => {
      const production = await gw.createToken();
      const development = await gw.createToken({ type: 'development' });
      const unknown = generateToken('production');
      const last = production.token.at(-1)!;
      const badChecksum = production.token.slice(0, -1) + (last === 'a' ? 'b' : 'a');
      const steps: [string, string | undefined, number][] = [
        ['/conn/1', bearer(production.token), 200],
        ['/conn/2', bearer(production.token), 200],
        ['/conn/3', basic('web-shop', production.token), 200],
        ['/conn/4', bearer(development.token), 200],
        ['/conn/5', bearer(unknown), 401],
        ['/conn/6', undefined, 401],
        ['/conn/7', bearer(badChecksum), 401],
        ['/conn/8', basic('web-shop', production.token), 200],
        ['/conn/9', `${bearer(production.token)} `, 200],
      ];
      const results = [];
      for (const [path, authorization] of steps) results.push(await getOn(path, authorization));
      expect(results.map((r) => r.status)).toEqual(steps.map(([, , status]) => status));
      expect(results.slice(1).every((r) => r.reused)).toBe(true);

      await within(
        1000,
        async () => gw.logRecords().filter((r) => String(r.path).startsWith('/conn/')).length === steps.length,
      );
      const lines = gw.logRecords().filter((r) => String(r.path).startsWith('/conn/'));
      expect(
        lines.map((l) => [
          l.path,
          l.status,
          l.tokenId ?? null,
          l.tokenType ?? null,
          l.project ?? null,
          l.authFailure ?? null,
        ]),
      ).toEqual([
        ['/conn/1', 200, production.record.id, 'production', 'default', null],
        ['/conn/2', 200, production.record.id, 'production', 'default', null],
        ['/conn/3', 200, production.record.id, 'production', 'web-shop', null],
        ['/conn/4', 200, development.record.id, 'development', 'default', null],
        ['/conn/5', 401, null, null, null, 'invalid'],
        ['/conn/6', 401, null, null, null, 'missing'],
        ['/conn/7', 401, null, null, null, 'malformed'],
        ['/conn/8', 200, production.record.id, 'production', 'web-shop', null],
        ['/conn/9', 200, production.record.id, 'production', 'default', null],
      ]);
    });

    it('applies a revocation to the next request on the same connection', async () => {
      const { token, record } = await gw.createToken();
      await gw.gateway.cache.sync();
      expect((await getOn('/conn-revoke/1', bearer(token))).status).toBe(200);
      const hitsBefore = gw.gateway.cache.stats.hits;
      const second = await getOn('/conn-revoke/2', bearer(token));
      expect(second).toEqual({ status: 200, reused: true });
      expect(gw.gateway.cache.stats.hits).toBe(hitsBefore + 1);

      await admin.revoke(record.id, 'test');
      await gw.gateway.cache.sync();
      expect(await getOn('/conn-revoke/3', bearer(token))).toEqual({ status: 401, reused: true });
    });
  });

  describe('on several kept-alive connections presenting one token (they share its verdict)', () => {
    const agents: http.Agent[] = [];
    afterAll(() => agents.forEach((a) => a.destroy()));
    /** A kept-alive connection of its own (maxSockets 1), and a GET on it. */
    const connection = () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      return (path: string, authorization: string) =>
        new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
          const req = http.get(`${gw.url}${path}`, { agent, headers: { authorization } }, (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket }));
          });
          req.on('error', reject);
        });
    };

    it('tags each with its own project and refuses all of them at their next request once the token is revoked', async () => {
      const { token, record } = await gw.createToken();
      await gw.gateway.cache.sync();
      const [a, b, c] = [connection(), connection(), connection()];
      const first = [
        await a('/shared/a1', bearer(token)),
        await b('/shared/b1', basic('web-shop', token)),
        await c('/shared/c1', bearer(token)),
      ];
      const again = [
        await a('/shared/a2', bearer(token)),
        await b('/shared/b2', basic('web-shop', token)),
        await c('/shared/c2', bearer(token)),
      ];
      expect([...first, ...again].map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
      expect(again.every((r) => r.reused)).toBe(true);
      await within(1000, async () => gw.logRecords().filter((r) => String(r.path).startsWith('/shared/')).length === 6);
      const projects = Object.fromEntries(
        gw
          .logRecords()
          .filter((r) => String(r.path).startsWith('/shared/'))
          .map((l) => [String(l.path), l.project] as const),
      );
      expect(projects).toEqual({
        '/shared/a1': 'default',
        '/shared/b1': 'web-shop',
        '/shared/c1': 'default',
        '/shared/a2': 'default',
        '/shared/b2': 'web-shop',
        '/shared/c2': 'default',
      });

      await admin.revoke(record.id, 'test');
      await gw.gateway.cache.sync();
      const afterRevoke = [
        await a('/shared/a3', bearer(token)),
        await b('/shared/b3', basic('web-shop', token)),
        await c('/shared/c3', bearer(token)),
      ];
      expect(afterRevoke).toEqual([
        { status: 401, reused: true },
        { status: 401, reused: true },
        { status: 401, reused: true },
      ]);
    });
  });

  if (backend.name === 'Redis store') {
    it('never reads the store for a malformed or bad-checksum token', async () => {
      const valid = generateToken('production');
      const badChecksum = valid.slice(0, -2) + (valid.endsWith('00') ? '11' : '00');
      const before = await backend.reads();
      const headers = [
        bearer(badChecksum),
        bearer('tgp_short'),
        bearer('not-a-token'),
        basic('p', badChecksum),
        'Basic !!!notbase64',
        'Digest abc',
        'Bearer',
        `Bearer ${'x'.repeat(5000)}`,
      ];
      for (const h of headers) expect((await get('/m', h)).status).toBe(401);
      expect(await backend.reads()).toBe(before);
    });

    it('makes one store read for many concurrent requests with the same unknown token', async () => {
      const unknown = generateToken('development');
      const before = await backend.reads();
      const statuses = await Promise.all(
        Array.from({ length: 25 }, () => get('/c', bearer(unknown)).then((r) => r.status)),
      );
      expect(statuses.every((s) => s === 401)).toBe(true);
      expect(await backend.reads()).toBe(before + 1);
      // ...and the miss is cached: asking again costs nothing.
      await get('/c', bearer(unknown));
      expect(await backend.reads()).toBe(before + 1);
    });

    it('makes one store read for many concurrent first requests with the same real token', async () => {
      const { token } = await gw.createToken();
      const before = await backend.reads();
      const statuses = await Promise.all(
        Array.from({ length: 25 }, () => get('/c', bearer(token)).then((r) => r.status)),
      );
      expect(statuses.every((s) => s === 200)).toBe(true);
      expect(await backend.reads()).toBe(before + 1);
    });
  }
});

describe('revocations missed while the gateway is cut off from Redis', () => {
  let gw: TestGateway;
  let relay: Awaited<ReturnType<typeof startTcpRelay>>;
  let direct: TokenStore;

  beforeAll(async () => {
    relay = await startTcpRelay(redis.port);
    gw = await startTestGateway({
      TOLLGATE_UPSTREAM: origin.url,
      TOLLGATE_REDIS_URL: relay.url,
      TOLLGATE_REDIS_PREFIX: '{tg-cut}:',
      TOLLGATE_CACHE_TTL_MS: FAR_FUTURE_TTL,
    });
    direct = await openTokenStore({ redis: { url: redis.url, prefix: '{tg-cut}:' }, dataDir: gw.dataDir });
  });
  afterAll(async () => {
    await direct?.close();
    await gw?.close();
    await relay?.close();
  });

  it('are applied once the gateway reconnects', async () => {
    const { token, record } = await gw.createToken();
    const keep = await gw.createToken();
    await gw.gateway.cache.sync(); // the creations' own change notifications are behind us
    const get = (t: string) => fetch(`${gw.url}/p`, { headers: { authorization: bearer(t) } }).then((r) => r.status);
    expect(await get(token)).toBe(200);
    expect(await get(keep.token)).toBe(200);

    await relay.cut();
    await direct.revoke(record.id, 'test'); // the pub/sub message is lost: the gateway is cut off
    // While cut off, cached tokens keep working (the revocation cannot be seen yet).
    expect(await get(keep.token)).toBe(200);

    await relay.heal();
    await within(5000, async () => (await get(token)) === 401);
    expect(await get(keep.token)).toBe(200);
  });
});

describe('the token store never holds the plaintext', () => {
  it('keeps only the SHA-256 of a token', async () => {
    const gw = await startTestGateway({});
    try {
      const { token, record } = await gw.createToken();
      expect(record.hash).toBe(hashToken(token));
      await fetch(`${gw.url}/generic/hello/1.0.0/hello-1.0.0.txt`, { headers: { authorization: bearer(token) } });
      const { readFileSync, readdirSync } = await import('node:fs');
      const files = readdirSync(gw.dataDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
      expect(files.length).toBeGreaterThan(0);
      for (const file of files) {
        expect(readFileSync(`${file.parentPath}/${file.name}`).includes(token)).toBe(false);
      }
    } finally {
      await gw.close();
    }
  });
});
