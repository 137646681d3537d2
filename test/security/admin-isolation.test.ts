import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../../src/config/index.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { rawRequest, type RawResponse } from '../helpers/raw-http.js';
import { tempDir } from '../helpers/route-config.js';
import { closesAfterAll } from '../helpers/teardown.js';

/**
 * The admin listener's routes are never reachable through the proxy port, whatever the path,
 * Host header, request-target form or credential. Through a "/" route they are plain upstream
 * paths (the origin answers them); with no route for them they are 404; without a valid token
 * they are 401. The admin app sets a Content-Security-Policy on every response, the proxy
 * never does: that header, and the admin bodies, tell the two apart.
 */

const ADMIN_TOKEN = 'admin-isolation-Zr5Tq8Wm2Xs4Jp6H';
const ADMIN_PATHS = [
  '/metrics',
  '/healthz',
  '/readyz',
  '/api/v1/tokens',
  '/api/v1/session',
  '/api/v1/activity',
  '/.well-known/jwks.json',
  '/jwks.json',
  '/settings',
  '/assets/app.js',
  '/',
];

function expectNotAdmin(res: RawResponse): void {
  // The admin port answers with its own page policy; an artifact or an error of the proxy port has
  // the artifact sandbox or none.
  expect([undefined, 'sandbox']).toContain(res.headers['content-security-policy']);
  const body = res.body.toString();
  expect(body).not.toMatch(/^(# (HELP|TYPE) )?tollgate_[a-z_]+/m); // Prometheus text
  expect(body).not.toMatch(/"keys"|"status":"(ok|ready|unavailable)"|"tokens"|"identity"|<html/i); // JWKS, health, API, page
}

const closing = closesAfterAll();

/** A gateway with an admin token, in front of a stub origin; `routes` says how it reaches the origin. */
async function startGatewayWithOrigin(
  routes: (origin: Origin) => Env,
): Promise<{ origin: Origin; gw: TestGateway; token: string }> {
  const origin = closing(await startOrigin());
  const gw = closing(await startTestGateway({ ...routes(origin), TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN }));
  return { origin, gw, token: (await gw.createToken()).token };
}

describe('a gateway whose "/" route forwards everything to an upstream', () => {
  let origin: Origin;
  let gw: TestGateway;
  let token: string;
  beforeAll(async () => {
    ({ origin, gw, token } = await startGatewayWithOrigin((o) => ({ TOLLGATE_UPSTREAM: o.url })));
  });

  it('serves those paths on the admin port (control: they exist there)', async () => {
    const res = await fetch(`${gw.adminUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toBeTruthy();
    expect(await (await fetch(`${gw.adminUrl}/metrics`)).text()).toContain('tollgate_');
  });

  it.each(ADMIN_PATHS)(
    "prevents admin exposure: %s with a valid token is the upstream's path, never the admin's answer",
    async (p) => {
      const res = await rawRequest(gw.url, { path: p, headers: { Authorization: bearer(token) } });
      expectNotAdmin(res);
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe(`origin:${p}`);
      expect(origin.seen.at(-1)!.url).toBe(p);
    },
  );

  it.each(ADMIN_PATHS)('prevents admin exposure: %s without a token is a 401 challenge', async (p) => {
    const res = await rawRequest(gw.url, { path: p });
    expect(res.status).toBe(401);
    expectNotAdmin(res);
  });

  it.each([
    ['the admin token as a Bearer token', () => bearer(ADMIN_TOKEN)],
    ['the admin token as a Basic password', () => `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`],
  ])('prevents admin credentials from working on the proxy port: %s is a 401', async (_what, header) => {
    const before = origin.seen.length;
    const res = await rawRequest(gw.url, { path: '/api/v1/tokens', headers: { Authorization: header() } });
    expect(res.status).toBe(401);
    expectNotAdmin(res);
    expect(origin.seen.length).toBe(before);
  });

  it('prevents Host-header routing to the admin listener: Host set to the admin address is still the upstream', async () => {
    const adminHost = new URL(gw.adminUrl).host;
    for (const p of ['/metrics', '/api/v1/tokens']) {
      const res = await rawRequest(gw.url, { path: p, headers: { Host: adminHost, Authorization: bearer(token) } });
      expectNotAdmin(res);
      expect(res.body.toString()).toBe(`origin:${p}`);
    }
  });

  it('prevents absolute-form requests for the admin listener: refused with 400', async () => {
    const before = origin.seen.length;
    for (const p of ['/metrics', '/api/v1/tokens']) {
      const res = await rawRequest(gw.url, { path: `${gw.adminUrl}${p}`, headers: { Authorization: bearer(token) } });
      expect(res.status).toBe(400);
      expectNotAdmin(res);
    }
    expect(origin.seen.length).toBe(before);
  });

  it('prevents cookie sign-in on the proxy port: an admin session cookie is not a credential there', async () => {
    const signIn = await fetch(`${gw.adminUrl}/api/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: ADMIN_TOKEN }),
    });
    const cookie = signIn.headers.getSetCookie()[0]!.split(';')[0]!;
    const res = await rawRequest(gw.url, { path: '/api/v1/tokens', headers: { Cookie: cookie } });
    expect(res.status).toBe(401);
    expectNotAdmin(res);
  });

  it('prevents token creation through the proxy port: POST /api/v1/tokens is 405 and reaches nothing', async () => {
    const before = origin.seen.length;
    const listBefore = (await gw.store.list()).length;
    const res = await rawRequest(gw.url, {
      method: 'POST',
      path: '/api/v1/tokens',
      headers: { Authorization: bearer(token), 'Content-Type': 'application/json' },
      body: '{"name":"x","type":"production"}',
    });
    expect(res.status).toBe(405);
    expect(origin.seen.length).toBe(before);
    expect((await gw.store.list()).length).toBe(listBefore);
  });
});

describe('a gateway whose routes do not cover the admin paths', () => {
  let origin: Origin;
  let gw: TestGateway;
  let token: string;
  beforeAll(async () => {
    const dir = closing(tempDir('tollgate-security-admin-'));
    ({ origin, gw, token } = await startGatewayWithOrigin((o) => ({
      TOLLGATE_CONFIG: dir.configFile([
        { prefix: '/npm/', upstream: o.url },
        { prefix: '/files/', upstream: dir.path },
      ]),
    })));
  });

  it.each(ADMIN_PATHS)('prevents admin exposure: %s with a valid token is 404, forwarded nowhere', async (p) => {
    const res = await rawRequest(gw.url, { path: p, headers: { Authorization: bearer(token) } });
    expect(res.status).toBe(404);
    expectNotAdmin(res);
    expect(origin.seen).toEqual([]);
  });

  it.each(['/files/metrics', '/files/../metrics', '/files/%2e%2e/healthz', '/npm/../api/v1/tokens'])(
    "prevents admin exposure through a route: %s is never the admin's answer",
    async (p) => {
      const res = await rawRequest(gw.url, { path: p, headers: { Authorization: bearer(token) } });
      expect([400, 404]).toContain(res.status);
      expectNotAdmin(res);
    },
  );
});
