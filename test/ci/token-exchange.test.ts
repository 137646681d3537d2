import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import { basic, bearer } from '../helpers/authorization.js';
import { DEFAULT_AUDIENCE, githubClaims, startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { githubPolicy } from './ci-config.js';
import { postExchange, productionEventOf, productionEvents, startCiGateway, type ExchangeReply } from './ci-gateway.js';

/**
 * Issue 22: `POST /-/tollgate/token-exchange` on a real gateway, against a real OIDC issuer on
 * loopback, on both stores. A CI job's ID token becomes an ordinary short-lived token, typed by
 * the branch; everything else gets an RFC 8693 error naming the failed check, never the expected
 * value and never a token.
 */

let issuer: OidcIssuer;
let origin: Origin;
let redis: RedisServer;
let kid: string;
let seq = 0;

beforeAll(async () => {
  [issuer, origin, redis] = await Promise.all([startOidcIssuer(), startOrigin(), startRedisServer()]);
  kid = await issuer.addKey();
});
afterAll(async () => {
  await Promise.all([issuer?.close(), origin?.close(), redis?.stop()]);
});
afterEach(() => {
  vi.useRealTimers();
});

const OWNER_ID = '4200';
const policy = () =>
  githubPolicy(issuer.url, { allow: { repository_owner_id: OWNER_ID }, restrictions: { routes: ['/npm/'] } });
/** A job of its own: a fresh `sub` and run id, so the per-subject limit counts only this test's exchanges. */
const job = (over: Record<string, unknown> = {}) => {
  seq++;
  const ref = (over.ref as string | undefined) ?? 'refs/heads/main';
  return githubClaims({ sub: `repo:acme/app-${seq}:ref:${ref}`, run_id: String(4200 + seq), ...over });
};
/** A client address of its own. */
const address = () => `10.22.${Math.floor(++seq / 250)}.${seq % 250}`;

const backends: [string, () => Record<string, string>][] = [
  ['sqlite', () => ({})],
  // The file sink with Redis too: the events are read where the SQLite run reads them.
  [
    'redis',
    () => ({
      TOLLGATE_REDIS_URL: redis.url,
      TOLLGATE_REDIS_PREFIX: `{exchange-${++seq}}:`,
      TOLLGATE_ACTIVITY_SINKS: 'file',
    }),
  ],
];

describe.each(backends)('token exchange on the %s store', (_, storeEnv) => {
  let gw: TestGateway & { removeConfig(): void };
  const replies: { reply: ExchangeReply; idToken: string }[] = [];
  const exchange = async (idToken: string, options: Parameters<typeof postExchange>[2] = {}) => {
    const reply = await postExchange(gw.url, idToken, { address: address(), ...options });
    replies.push({ reply, idToken });
    return reply;
  };
  const download = (token: string, pkg = 'left-pad') =>
    fetch(`${gw.url}/npm/${pkg}/-/${pkg}-1.3.0.tgz`, { headers: { authorization: bearer(token) } });

  beforeAll(async () => {
    gw = await startCiGateway(origin.url, [policy()], {
      ...storeEnv(),
      TOLLGATE_CI_EXCHANGES_PER_ADDRESS_PER_MINUTE: '5',
      TOLLGATE_CI_EXCHANGES_PER_SUBJECT_PER_MINUTE: '3',
    });
  });
  afterAll(async () => {
    await gw?.close();
    gw?.removeConfig();
  });

  it("gives a main-branch job a Production token that downloads, whose Production event carries the job's CI identity", async () => {
    const claims = job();
    const reply = await exchange(await issuer.mint(claims, { ttlS: 300 }));
    expect(reply.status).toBe(200);
    expect(reply.headers.get('cache-control')).toBe('no-store');
    expect(reply.body).toMatchObject({
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      tollgate_type: 'production',
      tollgate_provider: 'github',
      tollgate_project: 'acme/app',
      tollgate_name: `ci:github:acme/app#${String(claims.run_id)}`,
    });
    expect(reply.body.expires_in).toBeGreaterThan(3590);
    expect(reply.body.expires_in).toBeLessThanOrEqual(3600);
    const token = reply.body.access_token as string;
    expect(token).toMatch(/^tgp_/);

    const record = (await gw.store.get(reply.body.tollgate_id as string))!;
    expect(record).toMatchObject({
      type: 'production',
      createdBy: 'ci:github',
      restrictions: { routes: ['/npm/'] },
      revokedAt: null,
    });
    expect(record.expiresAt! - record.createdAt).toBe(3_600_000);
    expect(record.ci).toMatchObject({
      provider: 'github',
      subject: claims.sub,
      repository: 'acme/app',
      ref: 'refs/heads/main',
      runId: claims.run_id,
    });

    const res = await download(token);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const event = await productionEventOf(gw, res.headers.get('x-request-id')!);
    expect(event).toMatchObject({
      tokenName: record.name,
      tokenType: 'production',
      project: 'acme/app',
      package: 'left-pad',
      ci: {
        provider: 'github',
        subject: claims.sub,
        repository: 'acme/app',
        ref: 'refs/heads/main',
        sha: claims.sha,
        runId: claims.run_id,
      },
    });
    // The restriction of the policy holds: another route is refused.
    expect((await fetch(`${gw.url}/pypi/x`, { headers: { authorization: bearer(token) } })).status).not.toBe(200);
    // The admin audit list has it (with the tokens issued to CI jobs), created by the policy.
    const adminToken = readFileSync(path.join(gw.dataDir, 'admin-token'), 'utf8').trim();
    const audit = (await (
      await fetch(`${gw.adminUrl}/api/v1/audit?source=ci&limit=1000`, {
        headers: { authorization: bearer(adminToken) },
      })
    ).json()) as {
      entries: { action: string; by: string; tokenId: string; tokenName: string }[];
    };
    expect(audit.entries).toContainEqual(
      expect.objectContaining({ action: 'created', by: 'ci:github', tokenId: record.id, tokenName: record.name }),
    );
  });

  it('gives a branch job a Development token: it downloads, and no Production event is written', async () => {
    const reply = await exchange(await issuer.mint(job({ ref: 'refs/heads/feature-x' })));
    expect(reply.status).toBe(200);
    expect(reply.body.tollgate_type).toBe('development');
    expect(reply.body.access_token).toMatch(/^tgd_/);
    const dev = await download(reply.body.access_token as string);
    expect(dev.status).toBe(200);
    await dev.arrayBuffer();
    // A Production download after it: once its event is written, the Development one would be too.
    const prod = await exchange(await issuer.mint(job()));
    const res = await download(prod.body.access_token as string);
    await res.arrayBuffer();
    await productionEventOf(gw, res.headers.get('x-request-id')!);
    expect(productionEvents(gw).find((e) => e.requestId === dev.headers.get('x-request-id'))).toBeUndefined();
  });

  it("counts an exchanged token's downloads against the policy's project claim, not a Basic user name; a created token's against the user", async () => {
    const reply = await exchange(await issuer.mint(job()));
    expect(reply.status).toBe(200);
    const { token: created } = await gw.createToken({ type: 'production' });
    const projectOf = async (token: string) => {
      const res = await fetch(`${gw.url}/npm/left-pad/-/left-pad-1.3.0.tgz`, {
        headers: { authorization: basic('billing', token) },
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      const requestId = res.headers.get('x-request-id')!;
      const event = await productionEventOf(gw, requestId);
      const line = await vi.waitFor(() => {
        const found = gw.logRecords().find((r) => r.msg === 'request' && r.requestId === requestId);
        if (!found) throw new Error(`no log line for ${requestId} yet`);
        return found;
      });
      return { event: event.project, line: line.project };
    };
    // The `repository` claim of the ID token, which the policy names as its project.
    expect(await projectOf(reply.body.access_token as string)).toEqual({ event: 'acme/app', line: 'acme/app' });
    expect(await projectOf(created)).toEqual({ event: 'billing', line: 'billing' });
  });

  const encode = (part: unknown) => Buffer.from(JSON.stringify(part)).toString('base64url');
  const now = () => Math.floor(Date.now() / 1000);

  it.each<[string, () => Promise<string>, RegExp]>([
    [
      'a foreign owner',
      () => issuer.mint(job({ repository_owner_id: '9999', repository_owner: 'evil' })),
      /\(allow:repository_owner_id\)/,
    ],
    ['a wrong audience', () => issuer.mint(job({ aud: 'https://other.example' })), /\(audience\)/],
    ['an expired ID token', () => issuer.mint(job(), { iatS: now() - 900, ttlS: 600 }), /\(expired\)/],
    ['nbf in the future', () => issuer.mint(job({ nbf: now() + 600 })), /\(not-yet-valid\)/],
    [
      'an unknown kid',
      async () => issuer.mint(job(), { kid: await issuer.addKey({ publish: false }) }),
      /\(signature\)/,
    ],
    [
      'alg none',
      async () =>
        `${encode({ alg: 'none', typ: 'JWT' })}.${encode({ ...job(), iss: issuer.url, aud: DEFAULT_AUDIENCE, iat: now(), exp: now() + 300 })}.AA`,
      /\(algorithm\)/,
    ],
    [
      "HS256 keyed with the issuer's public key",
      async () =>
        new SignJWT({ ...job(), iss: issuer.url, aud: DEFAULT_AUDIENCE })
          .setProtectedHeader({ alg: 'HS256', kid })
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode(await issuer.publicPem(kid))),
      /\(algorithm\)/,
    ],
    ['a wrong issuer', () => issuer.mint(job({ iss: 'https://token.actions.githubusercontent.com' })), /\(issuer\)/],
    ['a Tollgate token as subject', async () => (await gw.createToken({ type: 'production' })).token, /\(malformed\)/],
  ])('refuses %s with 400 invalid_request naming the check', async (_, make, reason) => {
    const idToken = await make();
    const reply = await exchange(idToken);
    expect(reply.status).toBe(400);
    expect(reply.body.error).toBe('invalid_request');
    expect(reply.body.error_description).toMatch(reason);
    expect(reply.body.access_token).toBeUndefined();
    expect(reply.headers.get('cache-control')).toBe('no-store');
  });

  it('exchanges an ID token once: a replay is refused, and issues nothing', async () => {
    const idToken = await issuer.mint(job());
    expect((await exchange(idToken)).status).toBe(200);
    const count = (await gw.store.list()).length;
    const again = await exchange(idToken);
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({
      error: 'invalid_request',
      error_description: expect.stringMatching(/\(replayed\)/) as string,
    });
    // Without a jti, the token's hash is the key.
    const bare = await issuer.mint(job({ jti: undefined }));
    expect((await exchange(bare)).status).toBe(200);
    expect((await exchange(bare)).body.error_description).toMatch(/\(replayed\)/);
    expect((await gw.store.list()).length).toBe(count + 1);
  });

  it.each<[string, Parameters<typeof postExchange>[2], number, string, RegExp]>([
    ['another grant type', { form: { grant_type: 'client_credentials' } }, 400, 'unsupported_grant_type', /grant_type/],
    ['no subject token', { form: { subject_token: undefined } }, 400, 'invalid_request', /subject_token is required/],
    ['a JSON body', { contentType: 'application/json' }, 400, 'invalid_request', /x-www-form-urlencoded/],
    [
      'an actor token',
      { form: { actor_token: 'x', actor_token_type: 'urn:ietf:params:oauth:token-type:jwt' } },
      400,
      'invalid_request',
      /delegation/,
    ],
  ])('answers %s as RFC 8693 says', async (_, options, status, error, description) => {
    const reply = await exchange(await issuer.mint(job()), options);
    expect(reply.status).toBe(status);
    expect(reply.body).toMatchObject({ error, error_description: expect.stringMatching(description) as string });
  });

  it("refuses an oversized body: 400 over the form's 32 KiB, 413 over the namespace's 64 KiB", async () => {
    const big = await exchange('x'.repeat(40 * 1024));
    expect(big.status).toBe(400);
    expect(big.body.error_description).toMatch(/at most 32768 bytes/);
    const huge = await exchange('x'.repeat(70 * 1024));
    expect(huge.status).toBe(413);
    expect(huge.body.code).toBe('TOLLGATE_ERR_REQUEST_BODY');
  });

  it('answers 429 with Retry-After past the per-address limit, before looking at the ID token', async () => {
    const from = address();
    const jwks = issuer.fetches.jwks;
    for (let i = 0; i < 5; i++) expect((await exchange('not-a-jwt', { address: from })).status).toBe(400);
    const limited = await exchange(await issuer.mint(job()), { address: from });
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({
      error: 'slow_down',
      error_description: expect.stringMatching(/this address/) as string,
    });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(issuer.fetches.jwks).toBe(jwks);
    expect((await exchange(await issuer.mint(job()))).status).toBe(200); // another address
  });

  it('answers 429 past the per-subject limit, whatever the address', async () => {
    const claims = job();
    for (let i = 0; i < 3; i++) expect((await exchange(await issuer.mint(claims))).status).toBe(200);
    const limited = await exchange(await issuer.mint(claims));
    expect(limited.status).toBe(429);
    expect(limited.body.error_description).toMatch(/this CI identity/);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('names the tokens of one run apart, each unique', async () => {
    const claims = job();
    const names = [];
    for (let i = 0; i < 3; i++) names.push((await exchange(await issuer.mint(claims))).body.tollgate_name);
    expect(new Set(names).size).toBe(3);
    expect(names[1]).toBe(`${String(names[0])} (2)`);
  });

  it('counts exchanges by provider, outcome and type, and logs each without a token', async () => {
    const values = (await gw.gateway.metrics.ciExchanges.get()).values;
    const count = (labels: Record<string, string>) =>
      values
        .filter((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l))
        .reduce((sum, v) => sum + v.value, 0);
    expect(count({ provider: 'github', outcome: 'issued', type: 'production' })).toBeGreaterThan(0);
    expect(count({ provider: 'github', outcome: 'issued', type: 'development' })).toBeGreaterThan(0);
    expect(count({ provider: 'none', outcome: 'refused', type: 'none' })).toBeGreaterThan(0);
    expect(count({ outcome: 'replayed' })).toBe(2);
    expect(count({ outcome: 'rate_limited' })).toBe(2);
    const lines = gw.logRecords().filter((l) => l.event === 'ci.exchange');
    expect(lines.filter((l) => l.outcome === 'issued').length).toBe(count({ outcome: 'issued' }));
    expect(lines.find((l) => l.outcome === 'issued')).toMatchObject({
      provider: 'github',
      repository: 'acme/app',
      tokenId: expect.stringMatching(/^tok_/) as string,
    });
  });

  it('never echoes, logs or reveals a token, an ID token or an expected value', () => {
    const logs = gw.logs();
    for (const { reply, idToken } of replies) {
      expect(logs).not.toContain(idToken);
      if (typeof reply.body.access_token === 'string') expect(logs).not.toContain(reply.body.access_token);
      if (reply.status !== 200) {
        expect(reply.text).not.toContain(idToken);
        for (const expected of [OWNER_ID, DEFAULT_AUDIENCE, issuer.url]) expect(reply.text).not.toContain(expected);
      }
    }
    expect(replies.length).toBeGreaterThan(20);
  });
});

describe('the issuer and its keys', () => {
  let gw: TestGateway & { removeConfig(): void };
  beforeAll(async () => {
    gw = await startCiGateway(origin.url, [policy()]);
  });
  afterAll(async () => {
    await gw?.close();
    gw?.removeConfig();
  });
  const download = (token: string, on = gw) =>
    fetch(`${on.url}/npm/left-pad/-/left-pad-1.3.0.tgz`, { headers: { authorization: bearer(token) } });

  it('fails the exchange with 503 while the issuer is down, never opens it, and tokens issued before keep working', async () => {
    const issued = await postExchange(gw.url, await issuer.mint(job()), { address: address() });
    expect(issued.status).toBe(200);
    // A second gateway on the same store, which has not fetched the issuer's keys yet.
    const second = await startCiGateway(origin.url, [policy()], { TOLLGATE_DATA_DIR: gw.dataDir });
    issuer.down = true;
    try {
      const idToken = await issuer.mint(job());
      const reply = await postExchange(second.url, idToken, { address: address() });
      expect(reply.status).toBe(503);
      expect(reply.body).toMatchObject({ error: 'temporarily_unavailable' });
      expect(reply.headers.get('retry-after')).toBeTruthy();
      expect(reply.text).not.toContain(idToken);
      for (const on of [gw, second]) expect((await download(issued.body.access_token as string, on)).status).toBe(200);
      expect(second.logRecords().find((l) => l.event === 'ci.exchange')).toMatchObject({ outcome: 'unavailable' });
      expect((await second.gateway.metrics.ciExchanges.get()).values).toEqual([
        expect.objectContaining({ labels: { provider: 'none', outcome: 'unavailable', type: 'none' }, value: 1 }),
      ]);
    } finally {
      issuer.down = false;
      await second.close();
      second.removeConfig();
    }
  });

  it('follows a key rotation mid-run: a new key works once published, a retired one stops', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    expect((await postExchange(gw.url, await issuer.mint(job()), { address: address() })).status).toBe(200);
    const rotated = await issuer.addKey({ alg: 'ES256' });
    vi.setSystemTime(Date.now() + 5_001);
    const reply = await postExchange(gw.url, await issuer.mint(job(), { kid: rotated }), { address: address() });
    expect(reply.status).toBe(200);
    expect((await download(reply.body.access_token as string)).status).toBe(200);
    // Retired: gone from the key set at the next refetch (an unknown kid, after the cooldown).
    issuer.retireKey(rotated);
    vi.setSystemTime(Date.now() + 5_001);
    const unknown = await postExchange(
      gw.url,
      await issuer.mint(job(), { kid: await issuer.addKey({ publish: false }) }),
      { address: address() },
    );
    expect(unknown.body.error_description).toMatch(/\(signature\)/);
    const retired = await postExchange(gw.url, await issuer.mint(job(), { kid: rotated }), { address: address() });
    expect(retired.body.error_description).toMatch(/\(signature\)/);
    // Tokens it signed before keep working: the request path never verifies a JWT.
    expect((await download(reply.body.access_token as string)).status).toBe(200);
    expect((await postExchange(gw.url, await issuer.mint(job()), { address: address() })).status).toBe(200);
  });
});

describe('without trust policies', () => {
  it("answers the exchange path with the namespace's 404", async () => {
    const { startTestGateway } = await import('../helpers/gateway.js');
    const gw = await startTestGateway({ TOLLGATE_UPSTREAM: origin.url });
    try {
      const reply = await postExchange(gw.url, await issuer.mint(job()));
      expect(reply.status).toBe(404);
      expect(reply.body.code).toBe('TOLLGATE_ERR_REQUEST_NO_ROUTE');
    } finally {
      await gw.close();
    }
  });
});

describe('with the Redis store unreachable', () => {
  it('answers 503 temporarily_unavailable, issues nothing, and exchanges once Redis is back', async () => {
    const { startTcpRelay } = await import('../helpers/redis-server.js');
    const relay = await startTcpRelay(redis.port);
    const gw = await startCiGateway(origin.url, [policy()], {
      TOLLGATE_REDIS_URL: relay.url,
      TOLLGATE_REDIS_PREFIX: `{exchange-cut-${++seq}}:`,
      TOLLGATE_ACTIVITY_SINKS: 'file',
    });
    try {
      expect((await postExchange(gw.url, await issuer.mint(job()), { address: address() })).status).toBe(200);
      await relay.cut();
      const idToken = await issuer.mint(job());
      const reply = await postExchange(gw.url, idToken, { address: address() });
      expect(reply.status).toBe(503);
      expect(reply.body).toMatchObject({
        error: 'temporarily_unavailable',
        error_description: expect.stringMatching(/token store/) as string,
      });
      expect(reply.headers.get('retry-after')).toBeTruthy();
      expect(gw.logRecords().find((l) => l.event === 'ci.exchange' && l.outcome === 'error')).toMatchObject({
        reason: 'store',
      });
      expect(gw.logs()).not.toContain(idToken);
      await relay.heal();
      await expect
        .poll(async () => (await postExchange(gw.url, await issuer.mint(job()), { address: address() })).status, {
          timeout: 10_000,
          interval: 200,
        })
        .toBe(200);
    } finally {
      await gw.close();
      gw.removeConfig();
      await relay.close();
    }
  });
});
