import Database from 'better-sqlite3';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTENT_SECURITY_POLICY } from '../../src/admin/app.js';
import { hashToken } from '../../src/tokens/format.js';
import { activityEvent, ADMIN_TOKEN, ORIGIN, sessionPost, startAdminHarness, type AdminHarness } from './harness.js';

const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

interface TokenJson {
  id: string;
  name: string;
  type: string;
  token?: string;
  createdBy: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  revokedBy: string | null;
  state: string;
}

describe('admin API /api/v1', () => {
  let h: AdminHarness;
  let session: { cookie: string; csrf: string; setCookie: string };
  const secrets: string[] = [ADMIN_TOKEN];

  /** Cookie-authenticated write: the page's way (Origin, X-CSRF-Token). */
  const write = (pathname: string, body?: unknown, extra: Record<string, string> = {}) =>
    sessionPost(h, session, pathname, body, extra);
  const read = (pathname: string) => h.request(pathname, { headers: { cookie: session.cookie } });

  beforeAll(async () => {
    h = await startAdminHarness();
    session = await h.signIn();
  });
  afterAll(async () => {
    // A security regression check over every test in this file: no secret ever reached a log line.
    const logs = h.logs();
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of secrets) expect(logs).not.toContain(secret);
    await h.close();
  });

  describe('without a session', () => {
    it.each([
      ['GET', '/api/v1/session'],
      ['DELETE', '/api/v1/session'],
      ['GET', '/api/v1/tokens'],
      ['POST', '/api/v1/tokens'],
      ['POST', '/api/v1/tokens/tok_x/revoke'],
      ['GET', '/api/v1/activity'],
      ['GET', '/api/v1/audit'],
    ])('%s %s is 401 with a Bearer challenge and a JSON error', async (method, pathname) => {
      const res = await h.request(pathname, { method, headers: { origin: ORIGIN } });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="tollgate-admin"/);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({ error: 'Sign in required', code: 'TOLLGATE_ERR_ADMIN_UNAUTHENTICATED' });
    });

    it('refuses a wrong admin token with 401 and never echoes it', async () => {
      const wrong = 'wrong-admin-token-zyxwvutsrqponm';
      secrets.push(wrong);
      const res = await h.request('/api/v1/session', json({ token: wrong }, { origin: ORIGIN }));
      expect(res.status).toBe(401);
      expect(res.headers.get('set-cookie')).toBeNull();
      const text = await res.text();
      expect(text).not.toContain(wrong);
      expect(JSON.parse(text)).toMatchObject({ code: 'TOLLGATE_ERR_ADMIN_CREDENTIAL' });
      expect(h.logs()).toMatch(/admin sign-in refused/);
    });

    it('refuses a cookie that was not signed by this gateway', async () => {
      const forged = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from('{"sub":"admin"}').toString('base64url')}.AAAA`;
      const res = await h.request('/api/v1/tokens', { headers: { cookie: `tollgate_session=${forged}` } });
      expect(res.status).toBe(401);
    });

    it('refuses a sign-in posted from another origin (login CSRF)', async () => {
      const res = await h.request('/api/v1/session', json({ token: ADMIN_TOKEN }, { origin: 'https://evil.example' }));
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ code: 'TOLLGATE_ERR_ADMIN_ORIGIN' });
    });

    it('refuses a sign-in that is not JSON with 415 (no form posts)', async () => {
      const res = await h.request('/api/v1/session', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `token=${ADMIN_TOKEN}`,
      });
      expect(res.status).toBe(415);
    });
  });

  describe('session cookie', () => {
    it('is HttpOnly, SameSite=Strict, Path=/, short-lived, and not Secure on plain http', () => {
      const attrs = session.setCookie.split(';').map((s) => s.trim());
      expect(attrs[0]).toMatch(/^tollgate_session=[\w-]+\.[\w-]+\.[\w-]+$/);
      expect(attrs).toContain('HttpOnly');
      expect(attrs).toContain('SameSite=Strict');
      expect(attrs).toContain('Path=/');
      expect(attrs).toContain(`Max-Age=${8 * 3600}`);
      expect(attrs).not.toContain('Secure');
      expect(attrs.some((a) => /^Domain=/i.test(a))).toBe(false);
    });

    it('is Secure and __Host- prefixed when TOLLGATE_PUBLIC_ADMIN_URL is https', async () => {
      const tls = await startAdminHarness({ TOLLGATE_PUBLIC_ADMIN_URL: 'https://tollgate-admin.example.com' });
      try {
        const res = await tls.request(
          '/api/v1/session',
          json({ token: ADMIN_TOKEN }, { origin: 'https://tollgate-admin.example.com' }),
        );
        expect(res.status).toBe(200);
        const attrs = (res.headers.get('set-cookie') ?? '').split(';').map((s) => s.trim());
        expect(attrs[0]).toMatch(/^__Host-tollgate_session=/);
        expect(attrs).toEqual(expect.arrayContaining(['Secure', 'HttpOnly', 'SameSite=Strict', 'Path=/']));
        // Origin must be the configured public origin, not whatever Host says.
        const other = await tls.request('/api/v1/session', json({ token: ADMIN_TOKEN }, { origin: ORIGIN }));
        expect(other.status).toBe(403);
      } finally {
        await tls.close();
      }
    });

    it('GET /session says who is signed in and hands the page its CSRF token', async () => {
      const res = await read('/api/v1/session');
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toMatchObject({ identity: 'admin', via: 'token', csrfToken: session.csrf });
      expect(Date.parse(String(body.expiresAt)) - h.clock.now).toBeLessThanOrEqual(8 * 3600 * 1000);
    });

    it('rejects an expired session with 401 and clears the cookie', async () => {
      const s = await h.signIn();
      const saved = h.clock.now;
      try {
        h.clock.now = saved + 8 * 3600 * 1000 - 5_000;
        expect((await h.request('/api/v1/tokens', { headers: { cookie: s.cookie } })).status).toBe(200);
        h.clock.now = saved + 8 * 3600 * 1000 + 1_000;
        const res = await h.request('/api/v1/tokens', { headers: { cookie: s.cookie } });
        expect(res.status).toBe(401);
        expect(await res.json()).toMatchObject({ code: 'TOLLGATE_ERR_ADMIN_UNAUTHENTICATED' });
        expect(res.headers.get('set-cookie')).toMatch(/^tollgate_session=;.*Max-Age=0/);
      } finally {
        h.clock.now = saved;
      }
    });

    it('cannot be replayed after sign-out', async () => {
      const s = await h.signIn();
      const out = await h.request('/api/v1/session', {
        method: 'DELETE',
        headers: { cookie: s.cookie, origin: ORIGIN, 'x-csrf-token': s.csrf },
      });
      expect(out.status).toBe(204);
      expect(out.headers.get('set-cookie')).toMatch(/Max-Age=0/);
      expect((await h.request('/api/v1/tokens', { headers: { cookie: s.cookie } })).status).toBe(401);
      // The other session is untouched.
      expect((await read('/api/v1/tokens')).status).toBe(200);
    });
  });

  describe('CSRF', () => {
    it.each([
      ['no X-CSRF-Token', {}],
      ['a wrong X-CSRF-Token', { 'x-csrf-token': 'not-the-token' }],
      ['an empty X-CSRF-Token', { 'x-csrf-token': '' }],
    ])('refuses a cookie-authenticated POST with %s with 403', async (_what, headers: Record<string, string>) => {
      const res = await h.request(
        '/api/v1/tokens',
        json(
          { name: 'csrf-victim', type: 'production' },
          {
            cookie: session.cookie,
            origin: ORIGIN,
            ...headers,
          },
        ),
      );
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({
        error: expect.stringMatching(/CSRF/) as string,
        code: 'TOLLGATE_ERR_ADMIN_CSRF',
      });
      expect(await h.store.get('csrf-victim')).toBeUndefined();
    });

    it("refuses another session's CSRF token", async () => {
      const other = await h.signIn();
      const res = await write(
        '/api/v1/tokens',
        { name: 'csrf-victim', type: 'production' },
        { 'x-csrf-token': other.csrf },
      );
      expect(res.status).toBe(403);
    });

    it.each([
      ['from another origin', { origin: 'https://evil.example' }],
      ['with Origin: null', { origin: 'null' }],
      ['without an Origin', { origin: '' }],
      ['marked cross-site by the browser', { 'sec-fetch-site': 'cross-site' }],
      ['marked same-site (a sibling subdomain)', { 'sec-fetch-site': 'same-site' }],
    ])(
      'refuses a cookie-authenticated write %s with 403, even with the right CSRF token',
      async (_what, headers: Record<string, string>) => {
        const h2: Record<string, string> = {
          cookie: session.cookie,
          'x-csrf-token': session.csrf,
          origin: ORIGIN,
          ...headers,
        };
        if (h2.origin === '') delete h2.origin;
        const res = await h.request('/api/v1/tokens', json({ name: 'csrf-victim', type: 'production' }, h2));
        expect(res.status).toBe(403);
        expect(await res.json()).toMatchObject({ code: 'TOLLGATE_ERR_ADMIN_ORIGIN' });
      },
    );

    it('does not ask a Bearer client (a script, the CLI) for a CSRF token', async () => {
      const res = await h.request(
        '/api/v1/tokens',
        json({ name: 'bearer-made', type: 'development' }, { authorization: `Bearer ${ADMIN_TOKEN}` }),
      );
      expect(res.status).toBe(201);
      const body = (await res.json()) as TokenJson;
      secrets.push(body.token!);
      expect(body.createdBy).toBe('admin');
    });

    it('refuses a wrong Bearer even when a valid cookie is sent too', async () => {
      const res = await h.request('/api/v1/tokens', {
        headers: { cookie: session.cookie, authorization: 'Bearer nope-nope-nope' },
      });
      expect(res.status).toBe(401);
    });
  });

  describe('tokens', () => {
    it('creates a token and returns it once: never in the list, only its hash in the store', async () => {
      const res = await write('/api/v1/tokens', { name: 'ci-main', type: 'production', expires: 'never' });
      expect(res.status).toBe(201);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const created = (await res.json()) as TokenJson;
      secrets.push(created.token!);
      expect(created).toMatchObject({
        name: 'ci-main',
        type: 'production',
        createdBy: 'admin',
        expiresAt: null,
        state: 'active',
      });
      expect(created.token).toMatch(/^tgp_/);
      expect((await h.store.findByHash(hashToken(created.token!)))?.id).toBe(created.id);

      const list = await (await read('/api/v1/tokens')).text();
      expect(list).toContain(created.id);
      expect(list).not.toContain(created.token);
      expect(list).not.toMatch(/"hash"/);
    });

    it.each([
      ['30d', 30],
      ['90d', 90],
      ['365d', 365],
    ])('creates a token expiring in %s', async (expires, days) => {
      const res = await write('/api/v1/tokens', { name: `expiring-${expires}`, type: 'development', expires });
      expect(res.status).toBe(201);
      const body = (await res.json()) as TokenJson;
      secrets.push(body.token!);
      expect(body.token).toMatch(/^tgd_/);
      expect(Date.parse(body.expiresAt!) - h.clock.now).toBe(days * 86_400_000);
    });

    it('creates a token expiring at the end of a chosen day (UTC)', async () => {
      const res = await write('/api/v1/tokens', { name: 'dated', type: 'production', expires: '2099-12-31' });
      expect(res.status).toBe(201);
      const body = (await res.json()) as TokenJson;
      secrets.push(body.token!);
      expect(body.expiresAt).toBe('2099-12-31T23:59:59.999Z');
    });

    it.each([
      ['no name', { type: 'production' }, 400, /name is required/],
      ['a blank name', { name: '   ', type: 'production' }, 400, /name is required/],
      ['an unknown type', { name: 'x1', type: 'staging' }, 400, /type must be production or development/],
      ['a past date', { name: 'x2', type: 'production', expires: '2001-01-01' }, 400, /in the past/],
      ['a bad expiry', { name: 'x3', type: 'production', expires: 'soon' }, 400, /expiry must be/],
      ['a non-string name', { name: 42, type: 'production' }, 400, /name must be a string/],
      ['a taken name', { name: 'ci-main', type: 'production' }, 409, /live token with this name/],
      ['a taken name in another case', { name: 'CI-Main', type: 'production' }, 409, /ignoring case/],
      [
        'a name shaped like a token id',
        { name: 'tok_0123456789abcdef', type: 'production' },
        400,
        /must not start with "tok_"/,
      ],
      ['a name with a look-alike letter', { name: 'ci-m\u0430in', type: 'production' }, 400, /printable ASCII/],
    ])('refuses %s with a clear JSON error', async (_what, body, status, message) => {
      const res = await write('/api/v1/tokens', body);
      expect(res.status).toBe(status);
      const err = (await res.json()) as { error: string; code: string };
      expect(err.error).toMatch(message);
      expect(err.code).toMatch(/^TOLLGATE_ERR_TOKEN_/);
    });

    it('refuses a body that is not JSON', async () => {
      const res = await h.request('/api/v1/tokens', {
        method: 'POST',
        headers: {
          cookie: session.cookie,
          origin: ORIGIN,
          'x-csrf-token': session.csrf,
          'content-type': 'application/json',
        },
        body: '{"name":',
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'TOLLGATE_ERR_ADMIN_BODY' });
    });

    it('lists two live tokens whose names clash from before the case rule, and revokes them by id only', async () => {
      // Written as a store of the previous version could hold them: straight into the table.
      const db = new Database(path.join(h.dataDir, 'tollgate.db'));
      const row = db.prepare(
        'INSERT INTO tokens (id, name, type, hash, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)',
      );
      row.run('tok_twinUpper0000000', 'Twin', 'production', hashToken('tgp_twin-upper'), h.clock.now, 'legacy');
      row.run('tok_twinLower0000000', 'twin', 'production', hashToken('tgp_twin-lower'), h.clock.now, 'legacy');
      db.close();
      const list = (await (await read('/api/v1/tokens')).json()) as { tokens: TokenJson[] };
      expect(list.tokens.filter((t) => t.name.toLowerCase() === 'twin').map((t) => t.state)).toEqual([
        'active',
        'active',
      ]);
      expect((await write('/api/v1/tokens/twin/revoke')).status).toBe(404);
      expect((await write('/api/v1/tokens/tok_twinLower0000000/revoke')).status).toBe(200);
      expect((await write('/api/v1/tokens/tok_twinUpper0000000/revoke')).status).toBe(200);
    });

    it('revokes by id, records who and when, and keeps the token listed as revoked', async () => {
      const created = (await (
        await write('/api/v1/tokens', { name: 'to-revoke', type: 'production' })
      ).json()) as TokenJson;
      secrets.push(created.token!);
      h.clock.now += 1000;
      const res = await write(`/api/v1/tokens/${created.id}/revoke`);
      expect(res.status).toBe(200);
      const { token } = (await res.json()) as { token: TokenJson };
      expect(token).toMatchObject({
        id: created.id,
        state: 'revoked',
        revokedBy: 'admin',
        revokedAt: new Date(h.clock.now).toISOString(),
      });
      const list = (await (await read('/api/v1/tokens')).json()) as { tokens: TokenJson[] };
      expect(list.tokens.find((t) => t.id === created.id)?.state).toBe('revoked');
      // Again: idempotent.
      expect((await write(`/api/v1/tokens/${created.id}/revoke`)).status).toBe(200);
    });

    it('revokes by id only: an unknown id or a name is 404', async () => {
      expect((await write('/api/v1/tokens/tok_doesnotexist/revoke')).status).toBe(404);
      const byName = await write('/api/v1/tokens/ci-main/revoke');
      expect(byName.status).toBe(404);
      expect(await byName.json()).toMatchObject({ code: 'TOLLGATE_ERR_TOKEN_NOT_FOUND' });
      expect((await h.store.get('ci-main'))?.revokedAt).toBeNull();
    });

    it('keeps an audit trail of every create and revoke: who, when, what', async () => {
      const res = await read('/api/v1/audit');
      expect(res.status).toBe(200);
      const { entries } = (await res.json()) as {
        entries: { time: string; action: string; by: string; tokenName: string; tokenType: string }[];
      };
      expect(entries[0]).toMatchObject({
        action: 'revoked',
        by: 'admin',
        tokenName: 'to-revoke',
        tokenType: 'production',
      });
      expect(entries).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ action: 'created', by: 'admin', tokenName: 'ci-main' }),
          expect.objectContaining({ action: 'created', by: 'admin', tokenName: 'to-revoke' }),
        ]),
      );
      const times = entries.map((e) => e.time);
      expect([...times].sort().reverse()).toEqual(times);
      expect(h.logs()).toMatch(/"event":"admin.token_created".*"tokenName":"ci-main".*"by":"admin"/);
      expect(h.logs()).toMatch(/"event":"admin.token_revoked".*"tokenName":"to-revoke".*"by":"admin"/);
    });
  });

  describe('activity', () => {
    beforeAll(async () => {
      await h.activity.deliver(
        [
          activityEvent({ project: 'web', ecosystem: 'npm', tokenName: 'ci-main', package: 'left-pad' }),
          activityEvent({
            project: 'api',
            ecosystem: 'maven',
            tokenName: 'ci-main',
            package: 'com.acme:acme-lib',
            version: '2.0.0+sp1',
            sealed: true,
          }),
          activityEvent({
            project: 'web',
            ecosystem: 'npm',
            tokenName: 'release',
            kind: 'metadata',
            package: 'react',
            version: null,
          }),
          activityEvent({
            project: 'web',
            ecosystem: 'pypi',
            tokenName: 'release',
            package: 'requests',
            tokenType: 'development',
          }),
          activityEvent({ project: 'api', ecosystem: 'npm', tokenName: 'release', package: 'lodash' }),
        ],
        'batch-1',
      );
    });

    const events = async (query: string) => {
      const res = await read(`/api/v1/activity${query}`);
      expect(res.status).toBe(200);
      return ((await res.json()) as { events: { package: string; project: string; sealed: boolean }[] }).events.map(
        (e) => e.package,
      );
    };

    it('lists Production activity newest first, never Development', async () => {
      expect(await events('')).toEqual(['lodash', 'react', 'com.acme:acme-lib', 'left-pad']);
    });

    it.each([
      ['?project=web', ['react', 'left-pad']],
      ['?ecosystem=maven', ['com.acme:acme-lib']],
      ['?token=release', ['lodash', 'react']],
      ['?project=web&token=ci-main', ['left-pad']],
      ['?kind=download', ['lodash', 'com.acme:acme-lib', 'left-pad']],
      ['?limit=2', ['lodash', 'react']],
      ['?ecosystem=cobol', []],
    ])('filters %s', async (query, expected) => {
      expect(await events(query)).toEqual(expected);
    });

    it('returns what the page shows, not the client address', async () => {
      const res = await read('/api/v1/activity?ecosystem=maven');
      const {
        events: [e],
      } = (await res.json()) as { events: Record<string, unknown>[] };
      expect(e).toMatchObject({
        project: 'api',
        ecosystem: 'maven',
        package: 'com.acme:acme-lib',
        version: '2.0.0+sp1',
        tokenName: 'ci-main',
        sealed: true,
      });
      expect(e).not.toHaveProperty('clientIp');
      expect(e).not.toHaveProperty('userAgent');
    });

    it('refuses an unknown kind with 400', async () => {
      expect((await read('/api/v1/activity?kind=everything')).status).toBe(400);
    });
  });

  describe('what the browser gets', () => {
    it('fix-xss-token-name: stores and returns an HTML token name verbatim, as JSON only', async () => {
      const name = '<img src=x onerror=alert(1)>';
      const res = await write('/api/v1/tokens', { name, type: 'production' });
      expect(res.status).toBe(201);
      const created = (await res.json()) as TokenJson;
      secrets.push(created.token!);
      expect(created.name).toBe(name);
      const list = await read('/api/v1/tokens');
      expect(list.headers.get('content-type')).toMatch(/^application\/json/);
      expect(list.headers.get('x-content-type-options')).toBe('nosniff');
      expect(((await list.json()) as { tokens: TokenJson[] }).tokens.some((t) => t.name === name)).toBe(true);
    });

    it('serves the page with the strict CSP, and the page has no inline script, style or handler', async () => {
      const res = await h.request('/settings');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.headers.get('content-security-policy')).toBe(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
      );
      expect(res.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      const html = await res.text();
      for (const tag of html.match(/<script\b[^>]*>/g) ?? []) expect(tag).toMatch(/\ssrc="\/assets\/app\.js"/);
      expect(html).not.toMatch(/<script\b[^>]*>[^<]+<\/script>/);
      expect(html).not.toMatch(/\sstyle=/);
      expect(html).not.toMatch(/\son[a-z]+=/);
      expect(html).not.toMatch(/https?:\/\//); // nothing fetched from elsewhere
      for (const asset of [
        '/assets/app.js',
        '/assets/ui.js',
        '/assets/dialogs.js',
        '/assets/activity.js',
        '/assets/app.css',
      ]) {
        const a = await h.request(asset);
        expect(a.status).toBe(200);
        const etag = a.headers.get('etag')!;
        expect((await h.request(asset, { headers: { 'if-none-match': etag } })).status).toBe(304);
      }
      for (const module of ['/assets/app.js', '/assets/ui.js', '/assets/dialogs.js', '/assets/activity.js']) {
        const js = await (await h.request(module)).text();
        expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
        // Only its sibling modules, never elsewhere (JSDoc's import('./ui.js') types aside).
        const code = js.replace(/\/\*[\s\S]*?\*\//g, '');
        expect(code).not.toMatch(/\bimport\s*\(|from\s+'(?!\.\/)/);
      }
    });

    it('redirects / to /settings and keeps health, readiness and unknown paths as before', async () => {
      const root = await h.request('/');
      expect(root.status).toBe(302);
      expect(root.headers.get('location')).toBe('/settings');
      expect((await h.request('/healthz')).status).toBe(200);
      expect(await (await h.request('/readyz')).json()).toMatchObject({ status: 'ready' });
      expect((await h.request('/nope')).status).toBe(404);
      expect((await h.request('/api/v1/nope', { headers: { cookie: session.cookie } })).status).toBe(404);
    });
  });
});
