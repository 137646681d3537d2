import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers/authorization.js';
import { freePort } from '../helpers/process.js';
import { ORIGIN, startAdminHarness, type AdminHarness } from './harness.js';

const ISSUER = 'https://idp.example.com/realms/acme';
const AUDIENCE = 'tollgate-admin';

/** A local identity provider: a key pair whose public half a test HTTP server serves as a JWKS. */
describe('OIDC bearer sign-in', () => {
  let server: http.Server;
  let jwksUrl: string;
  let jwksRequests = 0;
  let key: CryptoKey;
  let rogue: CryptoKey;
  let h: AdminHarness;

  async function sign(
    claims: JWTPayload,
    options: { key?: CryptoKey; kid?: string; expiresIn?: string | number } = {},
  ): Promise<string> {
    const jwt = new SignJWT({
      sub: 'user-1234',
      email: 'alice@example.com',
      roles: ['tollgate-admin', 'viewer'],
      ...claims,
    })
      .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? 'idp-key-1' })
      .setIssuer(typeof claims.iss === 'string' ? claims.iss : ISSUER)
      .setAudience(claims.aud ?? AUDIENCE)
      .setIssuedAt();
    jwt.setExpirationTime(options.expiresIn ?? '5m');
    return jwt.sign(options.key ?? key);
  }

  beforeAll(async () => {
    ({ privateKey: key } = await generateKeyPair('ES256', { extractable: true }));
    ({ privateKey: rogue } = await generateKeyPair('ES256', { extractable: true }));
    const jwk = await exportJWK(key);
    delete jwk.d; // the public half only
    const body = JSON.stringify({ keys: [{ ...jwk, kid: 'idp-key-1', alg: 'ES256', use: 'sig' }] });
    server = http.createServer((req, res) => {
      jwksRequests++;
      if (req.url !== '/protocol/openid-connect/certs') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/protocol/openid-connect/certs`;
    h = await startAdminHarness({
      TOLLGATE_OIDC_ISSUER: ISSUER,
      TOLLGATE_OIDC_AUDIENCE: AUDIENCE,
      TOLLGATE_OIDC_JWKS_URL: jwksUrl,
      TOLLGATE_OIDC_ADMIN_CLAIM: 'roles=tollgate-admin',
    });
  });
  afterAll(async () => {
    await h.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('accepts a JWT signed by a key in the JWKS with the right issuer, audience and admin claim', async () => {
    const res = await h.request('/api/v1/tokens', { headers: { authorization: bearer(await sign({})) } });
    expect(res.status).toBe(200);
    expect(jwksRequests).toBeGreaterThan(0);
    const session = await (
      await h.request('/api/v1/session', { headers: { authorization: bearer(await sign({})) } })
    ).json();
    expect(session).toEqual({ identity: 'alice@example.com', via: 'oidc', csrfToken: null, expiresAt: null });
  });

  it('records the JWT email as createdBy and revokedBy (no CSRF token needed for a bearer)', async () => {
    const jwt = await sign({});
    const res = await h.request('/api/v1/tokens', {
      method: 'POST',
      headers: { authorization: bearer(jwt), 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'oidc-made', type: 'production' }),
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { id: string; createdBy: string };
    expect(created.createdBy).toBe('alice@example.com');
    const revoked = await h.request(`/api/v1/tokens/${created.id}/revoke`, {
      method: 'POST',
      headers: { authorization: bearer(await sign({ email: undefined })) },
    });
    expect(revoked.status).toBe(200);
    expect(((await revoked.json()) as { token: { revokedBy: string } }).token.revokedBy).toBe('user-1234'); // sub when no email
  });

  it('turns a JWT into a browser session (POST /session with the bearer)', async () => {
    const res = await h.request('/api/v1/session', {
      method: 'POST',
      headers: { authorization: bearer(await sign({})), origin: ORIGIN },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { identity: string; via: string; csrfToken: string };
    expect(body).toMatchObject({ identity: 'alice@example.com', via: 'oidc' });
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    const created = await h.request('/api/v1/tokens', {
      method: 'POST',
      headers: { cookie, origin: ORIGIN, 'x-csrf-token': body.csrfToken, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'oidc-session-made', type: 'development' }),
    });
    expect(created.status).toBe(201);
    expect(((await created.json()) as { createdBy: string }).createdBy).toBe('alice@example.com');
  });

  it.each<[string, () => Promise<string>, number, RegExp]>([
    ['a wrong issuer', () => sign({ iss: 'https://evil.example.com' }), 401, /"iss" claim/],
    ['a wrong audience', () => sign({ aud: 'some-other-app' }), 401, /"aud" claim/],
    ['no admin claim', () => sign({ roles: undefined }), 403, /lacks the admin claim roles=tollgate-admin/],
    ['roles without the admin role', () => sign({ roles: ['viewer'] }), 403, /lacks the admin claim/],
    [
      'the admin role as a different type',
      () => sign({ roles: { 'tollgate-admin': true } }),
      403,
      /lacks the admin claim/,
    ],
    ['an expired token', () => sign({}, { expiresIn: Math.floor(Date.now() / 1000) - 120 }), 401, /expired/],
    ['a signature by a key not in the JWKS', () => sign({}, { key: rogue }), 401, /signature/],
    ['an unknown kid', () => sign({}, { kid: 'other', key: rogue }), 401, /no key in the JWKS/],
    [
      'an unsigned token (alg none)',
      async () => {
        const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        return `${enc({ alg: 'none' })}.${enc({ iss: ISSUER, aud: AUDIENCE, sub: 'x', roles: ['tollgate-admin'], exp: 9_999_999_999 })}.`;
      },
      401,
      /Invalid admin credential/,
    ],
  ])('rejects %s', async (_what, make, status, message) => {
    const jwt = await make();
    const res = await h.request('/api/v1/tokens', { headers: { authorization: bearer(jwt) } });
    expect(res.status).toBe(status);
    const body = (await res.json()) as { error: string; code: string };
    expect(body.error).toMatch(message);
    expect(JSON.stringify(body)).not.toContain(jwt);
    expect(h.logs()).not.toContain(jwt);
    // Nor can it open a browser session.
    expect(
      (await h.request('/api/v1/session', { method: 'POST', headers: { authorization: bearer(jwt) } })).status,
    ).toBe(status);
  });

  it.each([
    [
      'realm_access.roles=tollgate-admin',
      { realm_access: { roles: ['tollgate-admin'] } },
      { realm_access: { roles: ['user'] } },
    ],
    ['tollgate_admin=true', { tollgate_admin: true }, { tollgate_admin: false }],
    [
      'https://tollgate.example/admin=yes',
      { 'https://tollgate.example/admin': 'yes' },
      { 'https://tollgate.example/admin': 'no' },
    ],
  ])('reads the admin claim %s', async (claim, yes, no) => {
    const other = await startAdminHarness({
      TOLLGATE_OIDC_ISSUER: ISSUER,
      TOLLGATE_OIDC_AUDIENCE: AUDIENCE,
      TOLLGATE_OIDC_JWKS_URL: jwksUrl,
      TOLLGATE_OIDC_ADMIN_CLAIM: claim,
    });
    try {
      expect(
        (
          await other.request('/api/v1/tokens', {
            headers: { authorization: bearer(await sign({ roles: undefined, ...yes })) },
          })
        ).status,
      ).toBe(200);
      expect(
        (
          await other.request('/api/v1/tokens', {
            headers: { authorization: bearer(await sign({ roles: undefined, ...no })) },
          })
        ).status,
      ).toBe(403);
    } finally {
      await other.close();
    }
  });

  it('answers 503 (not 401) when the JWKS cannot be fetched', async () => {
    const down = await startAdminHarness({
      TOLLGATE_OIDC_ISSUER: ISSUER,
      TOLLGATE_OIDC_AUDIENCE: AUDIENCE,
      TOLLGATE_OIDC_JWKS_URL: `http://127.0.0.1:${await freePort()}/jwks`,
    });
    try {
      const res = await down.request('/api/v1/tokens', { headers: { authorization: bearer(await sign({})) } });
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ code: 'TOLLGATE_ERR_ADMIN_OIDC_UNAVAILABLE' });
    } finally {
      await down.close();
    }
  });

  it('refuses JWTs when OIDC is not configured', async () => {
    const plain = await startAdminHarness();
    try {
      const res = await plain.request('/api/v1/tokens', { headers: { authorization: bearer(await sign({})) } });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: string }).error).toMatch(/OIDC sign-in is not configured/);
    } finally {
      await plain.close();
    }
  });
});
