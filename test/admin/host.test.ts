import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminHostCheck } from '../../src/admin/host.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw-http.js';

/**
 * DNS rebinding: a page on evil.example makes its name resolve to 127.0.0.1 and reads the admin
 * listener as same-origin. The browser still sends `Host: evil.example`, so the admin listener
 * answers only its own names, on every path, and 421 to anything else.
 */
describe('the Host names the admin listener answers', () => {
  const check = createAdminHostCheck({ publicOrigin: 'https://tollgate-admin.example.com' });
  const anyAddress = createAdminHostCheck({ adminHost: '0.0.0.0' });
  const named = createAdminHostCheck({ adminHost: 'Admin.Internal' });
  const boundV6 = createAdminHostCheck({ adminHost: 'fd00::2' });

  it.each([
    ['localhost', 'localhost:9090', '127.0.0.1'],
    ['localhost in capitals', 'LOCALHOST:9090', '127.0.0.1'],
    ['127.0.0.1', '127.0.0.1:9090', '127.0.0.1'],
    ['anywhere in 127.0.0.0/8', '127.3.2.1', '127.0.0.1'],
    ['[::1]', '[::1]:9090', '::1'],
    ["the public admin URL's host", 'tollgate-admin.example.com', '127.0.0.1'],
    ["the public admin URL's host with its default port", 'tollgate-admin.example.com:443', '127.0.0.1'],
  ])('accepts %s', (_what, host, local) => {
    expect(check(host, local)).toBe(true);
  });

  it.each([
    ['another site', 'evil.example'],
    ['another site on the admin port', 'evil.example:9090'],
    ['a name that starts like loopback', '127.0.0.1.evil.example'],
    ['a subdomain of another site named localhost', 'localhost.evil.example'],
    ['the public admin host on another port', 'tollgate-admin.example.com:9090'],
    ['the public admin host over http', 'tollgate-admin.example.com:80'],
    ['an interface address the connection did not reach', '192.0.2.2:9090'],
    ['userinfo', 'user@127.0.0.1'],
    ['a path', '127.0.0.1/x'],
    ['nothing', ''],
    ['no Host at all', undefined],
  ])('prevents DNS rebinding: refuses %s', (_what, host) => {
    expect(check(host, '127.0.0.1')).toBe(false);
  });

  it('accepts the address the connection reached, on a listener bound to every interface (a probe by pod IP)', () => {
    expect(anyAddress('192.0.2.2:9090', '192.0.2.2')).toBe(true);
    expect(anyAddress('192.0.2.2', '::ffff:192.0.2.2')).toBe(true);
    expect(anyAddress('[fd00::2]:9090', 'fd00:0:0:0:0:0:0:2')).toBe(true);
    expect(anyAddress('192.0.2.3:9090', '192.0.2.2')).toBe(false);
    expect(anyAddress('0.0.0.0:9090', '192.0.2.2')).toBe(false);
    expect(anyAddress('pod-7.internal:9090', '192.0.2.2')).toBe(false);
  });

  it('accepts TOLLGATE_ADMIN_HOST, a name or an address, in any spelling', () => {
    expect(named('admin.internal:9090', '10.0.0.1')).toBe(true);
    expect(named('ADMIN.INTERNAL', '10.0.0.1')).toBe(true);
    expect(named('other.internal', '10.0.0.1')).toBe(false);
    expect(boundV6('[fd00:0::2]:9090', undefined)).toBe(true);
  });
});

describe("a running gateway's admin listener (real sockets)", () => {
  let gw: TestGateway;
  let published: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway();
    published = await startTestGateway({ TOLLGATE_PUBLIC_ADMIN_URL: 'https://tollgate-admin.example.com' });
  });
  afterAll(async () => {
    await gw?.close();
    await published?.close();
  });

  it.each(['/healthz', '/readyz', '/metrics', '/api/v1/session', '/api/v1/tokens', '/settings', '/assets/app.js', '/'])(
    'prevents DNS rebinding: %s answers 421 to Host: evil.example, and reveals nothing',
    async (pathname) => {
      const res = await rawRequest(gw.adminUrl, {
        path: pathname,
        headers: { Host: `evil.example:${gw.gateway.adminPort}` },
      });
      expect(res.status).toBe(421);
      expect(JSON.parse(res.body.toString())).toEqual({
        error: expect.stringMatching(/Misdirected/) as string,
        code: 'TOLLGATE_ERR_ADMIN_HOST',
      });
    },
  );

  it('refuses an absolute-form request naming another host, whatever the Host header says', async () => {
    const res = await rawRequest(gw.adminUrl, { path: 'http://evil.example/healthz', headers: { Host: '127.0.0.1' } });
    expect(res.status).toBe(421);
  });

  it.each([
    ['127.0.0.1 (a container HEALTHCHECK)', (port: number) => `127.0.0.1:${port}`],
    ['localhost', (port: number) => `localhost:${port}`],
    ['localhost through a port mapping', () => 'localhost:19090'],
  ])('answers health checks that name %s', async (_what, host) => {
    for (const pathname of ['/healthz', '/readyz']) {
      const res = await rawRequest(gw.adminUrl, { path: pathname, headers: { Host: host(gw.gateway.adminPort) } });
      expect(res.status).toBe(200);
    }
  });

  it("answers TOLLGATE_PUBLIC_ADMIN_URL's host (a TLS proxy passing Host through), and only on its port", async () => {
    const ok = await rawRequest(published.adminUrl, {
      path: '/healthz',
      headers: { Host: 'tollgate-admin.example.com' },
    });
    expect(ok.status).toBe(200);
    const wrongPort = await rawRequest(published.adminUrl, {
      path: '/healthz',
      headers: { Host: 'tollgate-admin.example.com:8443' },
    });
    expect(wrongPort.status).toBe(421);
  });
});
