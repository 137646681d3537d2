import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LeakReportInput, LeakReporter } from '../../src/tokens/leaks.js';
import { generateToken } from '../../src/tokens/format.js';
import { tempDir, type TempDir } from '../helpers/route-config.js';
import { ADMIN_TOKEN, ORIGIN, sessionPost, startAdminHarness, type AdminHarness } from './harness.js';

/**
 * The admin API's token restrictions, rotation and leaked-token revocation: what the page and
 * scripts send, what they get back, and what the audit trail says afterwards.
 */

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

interface TokenJson {
  id: string;
  name: string;
  type: string;
  token?: string;
  state: string;
  restrictions: Record<string, unknown> | null;
  replaces: string | null;
  replacedBy: string | null;
  overlapEndsAt: string | null;
  endsAt: string | null;
  expiresAt: string | null;
  revokedBy: string | null;
  leak: { source: string; url: string | null; location: string | null } | null;
  previous?: TokenJson;
}

interface AuditJson {
  time: string;
  action: string;
  by: string;
  tokenId: string;
  tokenName: string;
  detail: string | null;
  replaces?: string;
  leak?: unknown;
}

describe('admin API: restrictions, rotation, leaked tokens', () => {
  let h: AdminHarness;
  let dir: TempDir;
  let session: { cookie: string; csrf: string };
  const secrets: string[] = [ADMIN_TOKEN];

  const write = (pathname: string, body?: unknown) => sessionPost(h, session, pathname, body);
  /** A script's way: the admin token as a Bearer, no cookie, no CSRF token. */
  const script = (pathname: string, body: unknown) =>
    h.request(pathname, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const read = async <T>(pathname: string) =>
    (await h.request(pathname, { headers: { cookie: session.cookie } })).json() as Promise<T>;
  const create = async (body: Record<string, unknown>) => {
    const res = await write('/api/v1/tokens', { type: 'production', ...body });
    expect(res.status, await res.clone().text()).toBe(201);
    const created = (await res.json()) as TokenJson;
    secrets.push(created.token!);
    return created;
  };
  const audit = async () => (await read<{ entries: AuditJson[] }>('/api/v1/audit?limit=1000')).entries;

  beforeAll(async () => {
    dir = tempDir('tollgate-admin-routes-');
    h = await startAdminHarness({
      TOLLGATE_CONFIG: dir.configFile([
        { prefix: '/npm/', upstream: 'http://127.0.0.1:9', ecosystem: 'npm' },
        { prefix: '/pypi/', upstream: 'http://127.0.0.1:9', ecosystem: 'pypi' },
      ]),
    });
    session = await h.signIn();
  });
  afterAll(async () => {
    const logs = h.logs();
    for (const secret of secrets) expect(logs).not.toContain(secret);
    await h.close();
    dir.remove();
  });

  describe('restrictions', () => {
    it('lists the route prefixes a token may be restricted to beside the tokens', async () => {
      const { routes } = await read<{ routes: string[] }>('/api/v1/tokens');
      expect([...routes].sort()).toEqual(['/npm/', '/pypi/']);
    });

    it('creates a restricted token and returns its restrictions in the shape it took them, in the list too', async () => {
      const created = await create({
        name: 'restricted',
        restrictions: {
          routes: ['/npm'],
          packages: ['@acme/*'],
          networks: ['10.0.0.0/8', '2001:db8::/32'],
          rate: '600/min',
        },
      });
      const expected = {
        routes: ['/npm/'],
        packages: ['@acme/*'],
        networks: ['10.0.0.0/8', '2001:db8::/32'],
        rate: 600,
      };
      expect(created.restrictions).toEqual(expected);
      expect((await h.store.get(created.id))?.restrictions).toEqual({
        ...expected,
        rate: undefined,
        ratePerMinute: 600,
      });
      const { tokens } = await read<{ tokens: TokenJson[] }>('/api/v1/tokens');
      expect(tokens.find((t) => t.id === created.id)?.restrictions).toEqual(expected);
      expect((await create({ name: 'rate-only', restrictions: { rate: 30 } })).restrictions).toEqual({ rate: 30 });
      expect((await create({ name: 'unrestricted', restrictions: null })).restrictions).toBeNull();
      expect(
        (await create({ name: 'empty-lists', restrictions: { routes: [], packages: [] } })).restrictions,
      ).toBeNull();
    });

    it.each([
      [
        'an unknown route prefix',
        { routes: ['/cargo/'] },
        /routes: "\/cargo\/" is not a route prefix of this gateway \((\/pypi\/, \/npm\/|\/npm\/, \/pypi\/)\)/,
      ],
      ['an empty package pattern', { packages: [''] }, /packages: a pattern must not be empty/],
      ['a package pattern with a space', { packages: ['a b'] }, /packages: .*spaces/],
      ['a bad CIDR', { networks: ['10.0.0.0/33'] }, /networks: "10.0.0.0\/33" is not an IP address or CIDR/],
      ['a host name as a network', { networks: ['ci.example.com'] }, /networks: .*not an IP address/],
      ['a zero rate', { rate: '0/min' }, /rate must be a whole number of requests a minute/],
      ['a rate in other units', { rate: '10/hour' }, /rate must be a whole number/],
      ['a list that is not strings', { packages: [1] }, /packages must be a list of strings/],
      ['restrictions that are not an object', ['/npm/'], /restrictions must be an object/],
    ])('refuses %s with 400 naming the field, and creates nothing', async (_what, restrictions, message) => {
      const before = (await h.store.list()).length;
      const res = await write('/api/v1/tokens', { name: 'refused', type: 'production', restrictions });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: string; code: string };
      expect(body.code).toBe('TOLLGATE_ERR_TOKEN_INPUT');
      expect(body.error).toMatch(message);
      expect((await h.store.list()).length).toBe(before);
    });
  });

  describe('rotation', () => {
    it('rotates by id: a new token with the same name, type, restrictions and expiry, shown once; the old one in its overlap', async () => {
      const old = await create({
        name: 'to-rotate',
        type: 'development',
        expires: '2099-12-31',
        restrictions: { packages: ['left-pad'] },
      });
      h.clock.now += 1000;
      const res = await write(`/api/v1/tokens/${old.id}/rotate`, { overlap: '2h' });
      expect(res.status).toBe(201);
      const rotated = (await res.json()) as TokenJson;
      secrets.push(rotated.token!);
      expect(rotated.token).toMatch(/^tgd_/);
      expect(rotated).toMatchObject({
        name: 'to-rotate',
        type: 'development',
        state: 'active',
        expiresAt: '2099-12-31T23:59:59.999Z',
        restrictions: { packages: ['left-pad'] },
        replaces: old.id,
        replacedBy: null,
      });
      const overlapEndsAt = new Date(h.clock.now + 2 * 3_600_000).toISOString();
      expect(rotated.previous).toMatchObject({
        id: old.id,
        state: 'rotated',
        replacedBy: rotated.id,
        overlapEndsAt,
        endsAt: overlapEndsAt,
      });
      expect(rotated.previous!.token).toBeUndefined();
      const { tokens } = await read<{ tokens: TokenJson[] }>('/api/v1/tokens');
      expect(JSON.stringify(tokens)).not.toContain(rotated.token);
      expect(tokens.find((t) => t.id === old.id)?.state).toBe('rotated');

      // The audit records the rotation, then (later) each revocation.
      h.clock.now += 1000;
      expect((await write(`/api/v1/tokens/${rotated.id}/revoke`)).status).toBe(200);
      expect((await write(`/api/v1/tokens/${old.id}/revoke`)).status).toBe(200);
      const entries = (await audit()).filter((e) => e.tokenName === 'to-rotate');
      // Newest first: the two revocations (same instant), the rotation, the creation.
      expect(
        entries
          .slice(0, 2)
          .map((e) => [e.action, e.tokenId])
          .sort(),
      ).toEqual(
        [
          ['revoked', old.id],
          ['revoked', rotated.id],
        ].sort(),
      );
      expect(entries.slice(2).map((e) => [e.action, e.tokenId])).toEqual([
        ['rotated', rotated.id],
        ['created', old.id],
      ]);
      expect(entries.find((e) => e.action === 'rotated')).toMatchObject({
        by: 'admin',
        replaces: old.id,
        detail: `replaces ${old.id}, which works until ${overlapEndsAt}`,
      });
      expect(h.logs()).toMatch(/"event":"admin.token_rotated".*"previousTokenId":"tok_/);
    });

    it('rotates with the default overlap of 24 hours when the body is left out', async () => {
      const old = await create({ name: 'default-overlap' });
      const res = await h.request(`/api/v1/tokens/${old.id}/rotate`, {
        method: 'POST',
        headers: { cookie: session.cookie, origin: ORIGIN, 'x-csrf-token': session.csrf },
      });
      expect(res.status).toBe(201);
      const rotated = (await res.json()) as TokenJson;
      secrets.push(rotated.token!);
      expect(rotated.previous!.overlapEndsAt).toBe(new Date(h.clock.now + 24 * 3_600_000).toISOString());
    });

    it('refuses to rotate a revoked or rotated-out token (409), an unknown id or a name (404), a bad overlap (400)', async () => {
      const revoked = await create({ name: 'revoked-then-rotated' });
      await write(`/api/v1/tokens/${revoked.id}/revoke`);
      const refused = await write(`/api/v1/tokens/${revoked.id}/rotate`, {});
      expect(refused.status).toBe(409);
      expect(await refused.json()).toMatchObject({ code: 'TOLLGATE_ERR_TOKEN_NOT_LIVE' });

      const once = await create({ name: 'rotate-once' });
      const first = (await (await write(`/api/v1/tokens/${once.id}/rotate`, { overlap: '1h' })).json()) as TokenJson;
      secrets.push(first.token!);
      expect((await write(`/api/v1/tokens/${once.id}/rotate`, { overlap: '1h' })).status).toBe(409);

      expect((await write('/api/v1/tokens/tok_doesnotexist/rotate', {})).status).toBe(404);
      expect((await write('/api/v1/tokens/rotate-once/rotate', {})).status).toBe(404);
      for (const overlap of ['1w', '100d', 5]) {
        const res = await write(`/api/v1/tokens/${first.id}/rotate`, { overlap });
        expect(res.status).toBe(400);
        expect(((await res.json()) as { error: string }).error).toMatch(/overlap must be/);
      }
    });
  });

  describe('revoke-leaked', () => {
    it('revokes the live tokens among the reported values and answers GitHub-style verdicts, never the values', async () => {
      const live = await create({ name: 'leaked-live' });
      const already = await create({ name: 'leaked-already' });
      await write(`/api/v1/tokens/${already.id}/revoke`);
      const unknown = generateToken('production');
      h.clock.now += 1000;
      const res = await write('/api/v1/tokens/revoke-leaked', {
        source: 'gitleaks',
        tokens: [
          { token: live.token, url: 'https://git.example/acme/app/commit/0123abc', location: 'commit' },
          already.token,
          unknown,
          'not-a-token',
        ],
      });
      expect(res.status).toBe(200);
      const text = await res.text();
      for (const value of [live.token!, already.token!, unknown]) expect(text).not.toContain(value);
      expect(JSON.parse(text)).toEqual({
        results: [
          { token_hash: sha256(live.token!), token_type: 'tollgate_token', label: 'true_positive' },
          { token_hash: sha256(already.token!), token_type: 'tollgate_token', label: 'false_positive' },
          { token_hash: sha256(unknown), token_type: 'tollgate_token', label: 'false_positive' },
          { token_hash: sha256('not-a-token'), token_type: 'tollgate_token', label: 'false_positive' },
        ],
      });
      const { tokens } = await read<{ tokens: TokenJson[] }>('/api/v1/tokens');
      expect(tokens.find((t) => t.id === live.id)).toMatchObject({
        state: 'revoked',
        revokedBy: 'admin',
        leak: { source: 'gitleaks', url: 'https://git.example/acme/app/commit/0123abc', location: 'commit' },
      });
      const entry = (await audit()).find((e) => e.tokenId === live.id && e.action === 'revoked');
      expect(entry).toMatchObject({
        by: 'admin',
        detail: 'leaked, found by gitleaks at https://git.example/acme/app/commit/0123abc (commit)',
      });
      expect(h.logs()).toMatch(/"event":"admin.leaks_reported","reported":4,"revoked":1,"source":"gitleaks"/);
    });

    it('takes the admin token as a Bearer (a scanner\'s job needs no session), with "admin-api" as the default source', async () => {
      const live = await create({ name: 'leaked-by-script' });
      const res = await script('/api/v1/tokens/revoke-leaked', { tokens: [live.token] });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ results: [{ label: 'true_positive' }] });
      expect((await h.store.get(live.id))?.leak).toEqual({ source: 'admin-api', url: null, location: null });
    });

    it.each([
      ['no list', {}, /tokens must be a list/],
      ['a list of numbers', { tokens: [1] }, /tokens\[0\] must be a string or an object/],
      ['an entry without a token', { tokens: [{ url: 'https://x' }] }, /tokens\[0\]\.token is required/],
      ['a URL that is not a string', { tokens: [{ token: 'tgp_x', url: 5 }] }, /tokens\[0\]\.url must be a string/],
      ['more than 1000 values', { tokens: Array.from({ length: 1001 }, () => 'tgp_x') }, /at most 1000/],
      ['a source with control characters', { tokens: [], source: 'git\nleaks' }, /source must be printable ASCII/],
    ])('refuses %s with 400', async (_what, body, message) => {
      const res = await write('/api/v1/tokens/revoke-leaked', body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(message);
    });

    it('needs an admin: 401 without a session', async () => {
      const res = await h.request('/api/v1/tokens/revoke-leaked', {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: ORIGIN },
        body: JSON.stringify({ tokens: [] }),
      });
      expect(res.status).toBe(401);
    });

    it("calls the reportLeaks it is given (the gateway's, which raises the alert) with the reports and the reporter", async () => {
      const calls: [LeakReportInput[], LeakReporter][] = [];
      const other = await startAdminHarness(
        {},
        {
          reportLeaks: async (reports, reporter) => {
            calls.push([reports, reporter]);
            return reports.map((r) => ({
              token_hash: sha256(r.token),
              token_type: r.type ?? 'tollgate_token',
              label: 'false_positive' as const,
            }));
          },
        },
      );
      try {
        const res = await other.request('/api/v1/tokens/revoke-leaked', {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            source: 'trufflehog',
            tokens: ['tgp_a', { token: 'tgd_b', url: 'https://u', location: 'l', type: 't' }],
          }),
        });
        expect(res.status).toBe(200);
        expect(calls).toEqual([
          [
            [{ token: 'tgp_a' }, { token: 'tgd_b', url: 'https://u', location: 'l', type: 't' }],
            { source: 'trufflehog', by: 'admin', clientIp: undefined },
          ],
        ]);
      } finally {
        await other.close();
      }
    });
  });
});
