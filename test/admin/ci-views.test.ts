import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken, generateTokenId, hashToken } from '../../src/tokens/format.js';
import type { CiIdentity, TokenRecord } from '../../src/tokens/store.js';
import { activityEvent, ORIGIN, startAdminHarness, type AdminHarness } from './harness.js';

/**
 * What the security team sees of tokens issued to CI jobs (issue 22): GET /tokens lists the tokens
 * admins made and counts the live CI-issued ones per provider; ?source=ci&provider= lists those
 * with their identity; GET /activity shows each event's CI identity and filters by repository.
 */

interface ListJson {
  tokens: { id: string; name: string; createdBy: string; state: string; ci: CiIdentity | null }[];
  routes: string[];
  ciLive: Record<string, number>;
  matched: number;
}

const HOUR_MS = 3_600_000;

describe('CI-issued tokens and identities in the admin API', () => {
  let h: AdminHarness;
  let cookie: string;
  const read = (pathname: string) => h.request(pathname, { headers: { cookie } });
  const list = async (query = ''): Promise<ListJson> => {
    const res = await read(`/api/v1/tokens${query}`);
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as ListJson;
  };

  /** A token as the exchange issues it: through the store's insert, with its CI identity. */
  async function issue(ci: CiIdentity, over: { expiresAt?: number; createdAt?: number } = {}): Promise<TokenRecord> {
    const now = over.createdAt ?? Date.now();
    return h.store.insert({
      id: generateTokenId(),
      name: `ci:${ci.provider}:${ci.repository ?? ci.subject}#${ci.runId ?? '0'}`,
      type: 'production',
      hash: hashToken(generateToken('production')),
      createdAt: now,
      createdBy: `ci:${ci.provider}`,
      expiresAt: over.expiresAt ?? now + HOUR_MS,
      ci,
    });
  }
  const github = (repository: string, runId: string): CiIdentity => ({
    provider: 'github',
    subject: `repo:${repository}:ref:refs/heads/main`,
    project: repository,
    repository,
    ref: 'refs/heads/main',
    sha: 'a'.repeat(40),
    workflow: 'release',
    runId,
    actor: 'alice',
  });
  const gitlab = (repository: string, runId: string): CiIdentity => ({
    provider: 'gitlab',
    subject: `project_path:${repository}:ref_type:branch:ref:feature`,
    repository,
    ref: 'refs/heads/feature',
    runId,
  });

  let adminMade: string[];
  let expiredCi: TokenRecord;
  let revokedCi: TokenRecord;

  beforeAll(async () => {
    h = await startAdminHarness();
    const session = await h.signIn();
    cookie = session.cookie;
    const created = [];
    for (const name of ['laptop', 'ci-main-legacy']) {
      const res = await h.request('/api/v1/tokens', {
        method: 'POST',
        headers: { cookie, origin: ORIGIN, 'x-csrf-token': session.csrf, 'content-type': 'application/json' },
        body: JSON.stringify({ name, type: 'production' }),
      });
      expect(res.status).toBe(201);
      created.push(((await res.json()) as { id: string }).id);
    }
    adminMade = created;
    for (let run = 1; run <= 3; run++) await issue(github('acme/payments', String(4240 + run)));
    await issue(gitlab('acme/web', '99'));
    expiredCi = await issue(github('acme/payments', '4000'), {
      createdAt: Date.now() - 3 * HOUR_MS,
      expiresAt: Date.now() - 2 * HOUR_MS,
    });
    revokedCi = await issue(github('acme/payments', '4001'));
    await h.store.revoke(revokedCi.id, 'admin');
  });
  afterAll(async () => {
    await h?.close();
  });

  it('lists only the tokens admins made by default, with the live CI-issued tokens counted per provider', async () => {
    const body = await list();
    expect(body.tokens.map((t) => t.id).sort()).toEqual([...adminMade].sort());
    expect(body.tokens.every((t) => t.ci === null)).toBe(true);
    // Expired and revoked CI tokens are not counted.
    expect(body.ciLive).toEqual({ github: 3, gitlab: 1 });
    expect(body.matched).toBe(2);
    // The fields the list had before are all still there.
    expect(body.routes).toEqual(expect.any(Array));
    expect(await list('?source=admin')).toEqual(body);
  });

  it("lists CI-issued tokens with their identity on ?source=ci, one provider's with &provider=", async () => {
    const ci = await list('?source=ci');
    expect(ci.tokens).toHaveLength(6);
    expect(ci.tokens.every((t) => t.ci !== null)).toBe(true);
    expect(ci.tokens.find((t) => t.id === expiredCi.id)).toMatchObject({ state: 'expired' });
    expect(ci.tokens.find((t) => t.id === revokedCi.id)).toMatchObject({ state: 'revoked' });
    const one = ci.tokens.find((t) => t.name === 'ci:github:acme/payments#4243')!;
    expect(one.ci).toEqual(github('acme/payments', '4243'));
    expect(ci.ciLive).toEqual({ github: 3, gitlab: 1 });

    const gl = await list('?provider=gitlab'); // a provider alone means CI-issued
    expect(gl.tokens.map((t) => t.ci)).toEqual([gitlab('acme/web', '99')]);
    expect(gl.matched).toBe(1);
    expect((await list('?source=ci&provider=circleci')).tokens).toEqual([]);

    const all = await list('?source=all');
    expect(all.tokens).toHaveLength(8);
    expect((await list('?source=all&provider=gitlab')).tokens).toHaveLength(1);
  });

  it('bounds a list of CI-issued tokens by ?limit=, newest first, and says how many matched', async () => {
    const body = await list('?source=ci&limit=2');
    expect(body.tokens).toHaveLength(2);
    expect(body.matched).toBe(6);
    const full = await list('?source=ci');
    expect(body.tokens.map((t) => t.id)).toEqual(full.tokens.slice(0, 2).map((t) => t.id));
  });

  it.each([
    ['an unknown source', '?source=robots', /^Bad query parameter: source must be admin, ci or all, got "robots"$/],
    [
      'a provider that is no provider name',
      '?source=ci&provider=Git%20Hub',
      /^Bad query parameter: provider must be a CI provider name/,
    ],
    ['an over-long provider', `?provider=${'a'.repeat(41)}`, /provider must be/],
    [
      'a provider with admin-made tokens',
      '?source=admin&provider=github',
      /provider names CI-issued tokens: it needs source ci or all/,
    ],
  ])('refuses %s with 400 naming the field', async (_what, query, message) => {
    const res = await read(`/api/v1/tokens${query}`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: string; code: string };
    expect(body.code).toBe('TOLLGATE_ERR_ADMIN_QUERY');
    expect(body.error).toMatch(message);
  });

  describe('audit', () => {
    interface AuditJson {
      entries: { action: string; tokenId: string; tokenName: string; by: string; ci?: CiIdentity }[];
    }
    const audit = async (query = '') => ((await (await read(`/api/v1/audit${query}`)).json()) as AuditJson).entries;

    it('shows what people did by default: not each issuance to a CI job, but an admin revoking a CI-issued token', async () => {
      const entries = await audit();
      expect(
        entries
          .filter((e) => e.action === 'created')
          .map((e) => e.tokenId)
          .sort(),
      ).toEqual([...adminMade].sort());
      const ciEntries = entries.filter((e) => e.ci !== undefined);
      expect(ciEntries).toEqual([
        expect.objectContaining({ action: 'revoked', tokenId: revokedCi.id, by: 'admin', ci: revokedCi.ci }),
      ]);
      expect(await audit('?source=admin')).toEqual(entries);
    });

    it('shows the issuance of CI-issued tokens, with the job, on ?source=ci or all', async () => {
      const ci = await audit('?source=ci');
      expect(ci.filter((e) => e.action === 'created')).toHaveLength(6);
      expect(ci.every((e) => e.ci !== undefined)).toBe(true);
      expect(ci.find((e) => e.tokenName === 'ci:gitlab:acme/web#99')!.ci).toEqual(gitlab('acme/web', '99'));
      expect(await audit('?source=all')).toHaveLength(2 + 6 + 1);
      const bad = await read('/api/v1/audit?source=people');
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({
        code: 'TOLLGATE_ERR_ADMIN_QUERY',
        error: expect.stringMatching(/source must be admin, ci or all/) as string,
      });
    });

    it('keeps a purged CI token on record: its issuance, and the purge itself', async () => {
      const gone = await issue(github('acme/purged', '7001'), {
        createdAt: Date.now() - 2 * HOUR_MS,
        expiresAt: Date.now() - HOUR_MS,
      });
      expect((await h.store.purgeExpiredCi(Date.now())).map((r) => r.id)).toContain(gone.id);
      expect(await h.store.get(gone.id)).toBeUndefined();
      const entries = (await audit('?source=ci')).filter((e) => e.tokenId === gone.id);
      expect(entries).toEqual([
        expect.objectContaining({ action: 'purged', by: 'tollgate', tokenName: gone.name, ci: gone.ci }),
        expect.objectContaining({ action: 'created', by: 'ci:github', tokenName: gone.name, ci: gone.ci }),
      ]);
      // Not in what people did.
      expect((await audit()).some((e) => e.tokenId === gone.id)).toBe(false);
    });
  });

  describe('activity', () => {
    /** As the recorder puts it in an event: without its project (the event's own). */
    const inEvent = ({ project: _project, ...identity }: CiIdentity) => identity;

    beforeAll(async () => {
      await h.activity.deliver(
        [
          activityEvent({
            tokenName: 'ci:github:acme/payments#4241',
            package: 'log4j-core',
            version: '2.14.1',
            ci: inEvent(github('acme/payments', '4241')),
          }),
          activityEvent({
            tokenName: 'ci:github:acme/web#5',
            package: 'left-pad',
            ci: { ...inEvent(github('acme/web', '5')), workflow: 'acme/payments' },
          }),
          activityEvent({ tokenName: 'laptop', package: 'lodash', ci: null }),
        ],
        'ci-views-1',
      );
    });

    it("shows each event's CI identity (null for a token an admin made)", async () => {
      const res = await read('/api/v1/activity');
      const { events } = (await res.json()) as { events: { package: string; ci: unknown }[] };
      expect(events.map((e) => e.package)).toEqual(['lodash', 'left-pad', 'log4j-core']);
      expect(events[2]!.ci).toEqual(inEvent(github('acme/payments', '4241')));
      expect(events[0]!.ci).toBeNull();
    });

    it("filters by a CI job's repository, exactly, server-side", async () => {
      const res = await read('/api/v1/activity?repository=acme%2Fpayments');
      const { events } = (await res.json()) as {
        events: { package: string; version: string; ci: { repository: string; ref: string; runId: string } }[];
      };
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        package: 'log4j-core',
        version: '2.14.1',
        ci: { repository: 'acme/payments', ref: 'refs/heads/main', runId: '4241' },
      });
      expect(((await (await read('/api/v1/activity?repository=acme')).json()) as { events: unknown[] }).events).toEqual(
        [],
      );
      expect(
        ((await (await read('/api/v1/activity?repository=')).json()) as { events: unknown[] }).events,
      ).toHaveLength(3);
    });

    it.each([
      ['an over-long repository', `?repository=${'a'.repeat(161)}`],
      ['a repository with a control character', '?repository=acme%0Apayments'],
    ])('refuses %s with 400 naming the field', async (_what, query) => {
      const res = await read(`/api/v1/activity${query}`);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        code: 'TOLLGATE_ERR_ADMIN_QUERY',
        error: 'Bad query parameter: repository must be at most 160 characters, without control characters',
      });
    });
  });
});
