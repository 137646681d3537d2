import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Dispatcher } from 'undici';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { tempDir, type RouteEntry } from '../helpers/route-config.js';
import { createDestinationPolicy } from '../../src/proxy/forward/destinations.js';
import { createFollowAgent } from '../../src/proxy/forward/follow.js';

/**
 * An upstream's redirect to another origin is followed by the gateway itself (object storage), so
 * the upstream picks the destination. These tests stand loopback servers in for the internal
 * services a redirect must not reach (the gateway's own admin listener, "internal" storage): no
 * traffic leaves loopback, and address classes other than loopback are covered as pure functions
 * in test/proxy/destinations.test.ts.
 */
describe('redirects followed by the gateway (SSRF)', () => {
  let upstream: Origin;
  let storage: Origin;
  let files: ReturnType<typeof tempDir>;
  /** Where the upstream's /go redirect points: set by each test. */
  let location = '';
  const gateways: TestGateway[] = [];

  beforeAll(async () => {
    storage = await startOrigin((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`storage:${req.url}`);
    });
    upstream = await startOrigin((req, res) => {
      if (req.url?.startsWith('/base/go')) {
        res.writeHead(302, { location });
        res.end('redirect body');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`upstream:${req.url}`);
    });
    files = tempDir();
  });
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((gw) => gw.close()));
  });
  afterAll(async () => {
    await upstream?.close();
    await storage?.close();
    files?.remove();
  });

  async function gatewayWith(route: Partial<RouteEntry> = {}) {
    const config = files.configFile([
      { prefix: '/files/', upstream: `${upstream.url}/base/`, ecosystem: 'generic', ...route },
    ]);
    const gw = await startTestGateway({ TOLLGATE_CONFIG: config });
    gateways.push(gw);
    const { token } = await gw.createToken();
    const get = async (path = '/files/go') => {
      const res = await fetch(`${gw.url}${path}`, { headers: { authorization: bearer(token) }, redirect: 'manual' });
      return {
        status: res.status,
        location: res.headers.get('location'),
        headers: [...res.headers].join('\n'),
        requestId: res.headers.get('x-request-id'),
        body: await res.text(),
      };
    };
    return { gw, get };
  }

  function refusalLines(gw: TestGateway) {
    return gw.logRecords().filter((r) => r.msg === 'redirect refused');
  }

  it("prevents reading the admin listener through a redirect: 302 to the gateway's own /metrics is a 502, never its body", async () => {
    const { gw, get } = await gatewayWith();
    location = `${gw.adminUrl}/metrics`;
    const res = await get();
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'TOLLGATE_ERR_UPSTREAM_REDIRECT_REFUSED' });
    expect(res.body).not.toContain('tollgate_');
    const [line] = refusalLines(gw);
    expect(line).toMatchObject({ route: '/files/', host: new URL(gw.adminUrl).host });
    expect(String(line!.reason)).toMatch(/own listeners|loopback/);
  });

  it.each([
    ['an IP literal', () => `${storage.url}/private`],
    ['a name that resolves to loopback', () => `http://localhost:${storage.port}/private`],
    ['a decimal spelling of 127.0.0.1', () => `http://2130706433:${storage.port}/private`],
    ['an IPv4-mapped IPv6 literal', () => `http://[::ffff:127.0.0.1]:${storage.port}/private`],
    ['a backslash path the WHATWG parser reads as another origin', () => `/\\127.0.0.1:${storage.port}/private`],
  ])('prevents reaching an internal service by default (%s): 502, nothing sent to it', async (_what, target) => {
    const { gw, get } = await gatewayWith();
    location = target();
    const before = storage.seen.length;
    const res = await get();
    expect(res.status).toBe(502);
    expect(res.body).not.toContain('storage:');
    expect(storage.seen.length).toBe(before);
    expect(refusalLines(gw).length).toBe(1);
  });

  it("follows to the CIDRs a route allows, and still never to the gateway's own listeners", async () => {
    const { gw, get } = await gatewayWith({ followRedirects: { hosts: [], cidrs: ['127.0.0.0/8'] } });
    location = `${storage.url}/bucket/obj?sig=1`;
    expect(await get()).toMatchObject({ status: 200, body: 'storage:/bucket/obj?sig=1' });
    for (const own of [
      `${gw.adminUrl}/metrics`,
      `${gw.url}/files/x`,
      `http://127.0.0.2:${new URL(gw.url).port}/files/x`,
    ]) {
      location = own;
      const res = await get();
      expect(res.status, own).toBe(502);
      expect(res.body).not.toContain('tollgate_');
    }
  });

  it('follows to the hosts a route allows by name', async () => {
    const { get } = await gatewayWith({ followRedirects: { hosts: ['localhost'], cidrs: [] } });
    location = `http://localhost:${storage.port}/named`;
    expect(await get()).toMatchObject({ status: 200, body: 'storage:/named' });
  });

  it('follows no redirect at all with followRedirects: false', async () => {
    const { gw, get } = await gatewayWith({ followRedirects: false });
    location = `${storage.url}/anything`;
    expect((await get()).status).toBe(502);
    expect(String(refusalLines(gw)[0]!.reason)).toContain('followRedirects: false');
  });

  it.each([
    ['an IPv6 literal never closed', 'http://[::1'],
    ['a space in the host', 'http://exa mple/x'],
    ['a relative one with an unclosed IPv6 host', '//[::1/x'],
  ])(
    'prevents an unparsable Location (%s) from reaching the client: 502, neither the Location nor the body, a log line saying why',
    async (_what, target) => {
      const { gw, get } = await gatewayWith();
      location = target;
      const res = await get();
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'TOLLGATE_ERR_UPSTREAM_REDIRECT_REFUSED' });
      expect(res.location).toBeNull();
      for (const text of [res.headers, res.body]) {
        expect(text).not.toContain(target);
        expect(text).not.toContain('redirect body');
      }
      const { requestId } = res;
      expect(refusalLines(gw)).toEqual([
        expect.objectContaining({ requestId, route: '/files/', reason: 'the Location is not an http(s) URL' }),
      ]);
      await expect
        .poll(() => gw.logRecords().find((r) => r.msg === 'request' && r.requestId === requestId))
        .toMatchObject({ status: 502, upstreamError: 'redirect' });
      expect(gw.logs()).not.toContain(target);
    },
  );

  it('sends a relative Location back through the gateway with the route prefix', async () => {
    const { get } = await gatewayWith();
    location = '/base/moved/here';
    const res = await get();
    expect(res.status).toBe(302);
    expect(res.location).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/files\/moved\/here$/);
  });
});

describe('the follow dispatcher connects to the address it checked (DNS rebinding)', () => {
  let server: Server;
  let port = 0;
  const seenOn: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      seenOn.push(req.socket.localAddress ?? '');
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function get(agent: Dispatcher, host: string) {
    const { request } = await import('undici');
    return request(`http://${host}:${port}/x`, { dispatcher: agent }).then(
      async (r) => ({ status: r.statusCode, body: await r.body.text() }),
      (err: Error & { code?: string }) => ({ error: err.code }),
    );
  }

  it('connects to the first allowed address of those the name resolves to, never another', async () => {
    let lookups = 0;
    const agent = createFollowAgent({
      policy: createDestinationPolicy({ followRedirects: { hosts: [], cidrs: ['127.0.0.2/32'] } }),
      connectTimeoutMs: 2000,
      timeouts: {},
      // A resolver whose first answer is a forbidden address: a check-then-connect design would connect there.
      lookup: (_host, cb) => {
        lookups++;
        cb(null, [
          { address: '127.0.0.1', family: 4 },
          { address: '127.0.0.2', family: 4 },
        ]);
      },
    });
    expect(await get(agent, 'storage.test')).toEqual({ status: 200, body: 'ok' });
    expect(seenOn.at(-1)).toBe('127.0.0.2');
    expect(lookups).toBe(1);
    await agent.close();
  });

  it('refuses a name whose every address is forbidden, without connecting', async () => {
    const before = seenOn.length;
    const agent = createFollowAgent({
      policy: createDestinationPolicy({ followRedirects: { hosts: [], cidrs: [] } }),
      connectTimeoutMs: 2000,
      timeouts: {},
      lookup: (_host, cb) =>
        cb(null, [
          { address: '127.0.0.1', family: 4 },
          { address: '::1', family: 6 },
        ]),
    });
    expect(await get(agent, 'rebinding.test')).toEqual({ error: 'TOLLGATE_ERR_UPSTREAM_REDIRECT_REFUSED' });
    expect(seenOn.length).toBe(before);
    await agent.close();
  });
});
