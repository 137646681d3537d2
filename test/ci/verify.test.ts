import { decodeJwt, SignJWT } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCiVerifier, type CiRefused, type CiVerification, type CiVerified } from '../../src/ci/index.js';
import { DEFAULT_AUDIENCE, githubClaims, startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.js';
import { freePort } from '../helpers/process.js';
import { closesAfterAll } from '../helpers/teardown.js';
import { ciConfig, githubPolicy } from './ci-config.js';

/**
 * The verifier against a real issuer on loopback: discovery, JWKS, key rotation, and every
 * check an ID token must pass. Every refusal is kept, and the last test checks that none names
 * an expected value or carries the token.
 */

const closing = closesAfterAll();
let issuer: OidcIssuer;
let firstKid: string;
const refusals: { refusal: CiRefused; token: string }[] = [];

beforeAll(async () => {
  issuer = closing(await startOidcIssuer());
  firstKid = await issuer.addKey();
});
afterEach(() => {
  vi.useRealTimers();
});

function verifierFor(policies: Record<string, unknown>[], env: Record<string, string> = {}) {
  const config = ciConfig(policies, env);
  return createCiVerifier(config.ciProviders, config.ciExchange);
}

async function accepted(verification: Promise<CiVerification>): Promise<CiVerified> {
  const result = await verification;
  if (!result.ok) throw new Error(`refused: ${result.reason}`);
  return result;
}

async function refusedWith(verify: (token: string) => Promise<CiVerification>, token: string): Promise<string> {
  const result = await verify(token);
  expect(result.ok, 'the token must be refused').toBe(false);
  if (result.ok) return '';
  refusals.push({ refusal: result, token });
  return result.reason;
}

describe('a GitHub Actions ID token', () => {
  let verifier: ReturnType<typeof verifierFor>;
  const verify = (token: string) => verifier.verify(token);
  beforeAll(() => {
    verifier = verifierFor([
      githubPolicy(issuer.url, { restrictions: { routes: ['/npm/'], packages: ['@acme/*'], rate: '600/min' } }),
    ]);
  });

  it("from the main branch is Production, with the job's identity, project, ttl and restrictions", async () => {
    const now = Date.now();
    const token = await issuer.mint(githubClaims(), { ttlS: 600 });
    const result = await accepted(verifier.verify(token, now));
    expect(result).toMatchObject({
      provider: 'github',
      type: 'production',
      project: 'acme/app',
      tokenTtlMs: 3_600_000,
      restrictions: { routes: ['/npm/'], packages: ['@acme/*'], ratePerMinute: 600 },
    });
    expect(result.identity).toEqual({
      provider: 'github',
      subject: 'repo:acme/app:ref:refs/heads/main',
      project: 'acme/app',
      repository: 'acme/app',
      ref: 'refs/heads/main',
      sha: '0123456789abcdef0123456789abcdef01234567',
      workflow: 'build',
      runId: '987654321',
      actor: 'octocat',
    });
    expect(result.replayKey).toMatch(/^jti:[0-9a-f]{64}$/);
    const { exp } = decodeJwt(token);
    expect(result.replayUntil).toBe((exp! + 60) * 1000);
  });

  it('from another branch is Development', async () => {
    const token = await issuer.mint(githubClaims({ ref: 'refs/heads/feature/x' }));
    expect(await accepted(verify(token))).toMatchObject({
      type: 'development',
      identity: { ref: 'refs/heads/feature/x' },
    });
  });

  it('of a repository of another owner is refused by allow', async () => {
    expect(
      await refusedWith(
        verify,
        await issuer.mint(githubClaims({ repository_owner: 'evil', repository_owner_id: '666' })),
      ),
    ).toBe('allow:repository_owner_id');
    expect(await refusedWith(verify, await issuer.mint(githubClaims({ repository_owner_id: undefined })))).toBe(
      'allow:repository_owner_id',
    );
  });

  it('compares number and boolean claims by their string form', async () => {
    expect(await accepted(verify(await issuer.mint(githubClaims({ repository_owner_id: 4200 }))))).toMatchObject({
      ok: true,
    });
  });

  it('for another audience is refused', async () => {
    expect(await refusedWith(verify, await issuer.mint(githubClaims({ aud: 'https://github.com/acme' })))).toBe(
      'audience',
    );
    expect(
      await accepted(verify(await issuer.mint(githubClaims({ aud: ['https://other.example', DEFAULT_AUDIENCE] })))),
    ).toMatchObject({ ok: true });
    expect(await refusedWith(verify, await issuer.mint(githubClaims({ aud: undefined })))).toBe('missing-claim:aud');
  });

  it('is refused once expired, allowing the clock skew', async () => {
    const iatS = Math.floor(Date.now() / 1000) - 400;
    expect(await refusedWith(verify, await issuer.mint(githubClaims(), { iatS, ttlS: 300 }))).toBe('expired');
    expect(await accepted(verify(await issuer.mint(githubClaims(), { iatS, ttlS: 350 })))).toMatchObject({ ok: true });
  });

  it('is refused before its nbf or its iat', async () => {
    const nowS = Math.floor(Date.now() / 1000);
    expect(await refusedWith(verify, await issuer.mint(githubClaims({ nbf: nowS + 120 })))).toBe('not-yet-valid');
    expect(await refusedWith(verify, await issuer.mint(githubClaims(), { iatS: nowS + 120 }))).toBe('not-yet-valid');
    expect(await accepted(verify(await issuer.mint(githubClaims({ nbf: nowS + 30 }))))).toMatchObject({ ok: true });
  });

  it('living longer than the longest lifetime is refused', async () => {
    expect(await refusedWith(verify, await issuer.mint(githubClaims(), { ttlS: 3601 }))).toBe('lifetime');
    expect(await accepted(verify(await issuer.mint(githubClaims(), { ttlS: 3600 })))).toMatchObject({ ok: true });
  });

  it('without exp (a legacy Kubernetes service-account token), iat or sub is refused', async () => {
    expect(await refusedWith(verify, await issuer.mint(githubClaims(), { ttlS: null }))).toBe('missing-claim:exp');
    expect(await refusedWith(verify, await issuer.mint(githubClaims({ iat: undefined })))).toBe('missing-claim:iat');
    expect(await refusedWith(verify, await issuer.mint(githubClaims({ sub: undefined })))).toBe('missing-claim:sub');
    expect(await refusedWith(verify, await issuer.mint(githubClaims({ sub: '' })))).toBe('missing-claim:sub');
  });

  it('without the project claim is refused', async () => {
    expect(await refusedWith(verify, await issuer.mint(githubClaims({ repository: undefined })))).toBe(
      'missing-claim:repository',
    );
  });

  it('whose payload was altered after signing is refused', async () => {
    const [header, , signature] = (await issuer.mint(githubClaims())).split('.');
    const forged = Buffer.from(
      JSON.stringify({ ...githubClaims(), iss: issuer.url, aud: DEFAULT_AUDIENCE, iat: 1, exp: 2 ** 31 }),
    ).toString('base64url');
    expect(await refusedWith(verify, `${header}.${forged}.${signature}`)).toBe('signature');
  });

  it('without a jti is remembered by its SHA-256', async () => {
    expect((await accepted(verify(await issuer.mint(githubClaims({ jti: undefined }))))).replayKey).toMatch(
      /^sha256:[0-9a-f]{64}$/,
    );
  });
});

describe('refused before any key is fetched', () => {
  it("prevents alg none, an HS256 token keyed with the issuer's public key, and an untrusted issuer", async () => {
    const verifier = verifierFor([githubPolicy(issuer.url)]);
    const verify = (token: string) => verifier.verify(token);
    const before = { ...issuer.fetches };
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const claims = {
      ...githubClaims(),
      iss: issuer.url,
      aud: DEFAULT_AUDIENCE,
      iat: Math.floor(Date.now() / 1000),
      exp: Math.floor(Date.now() / 1000) + 300,
    };
    expect(await refusedWith(verify, `${encode({ alg: 'none', typ: 'JWT' })}.${encode(claims)}.`)).toBe('malformed');
    expect(await refusedWith(verify, `${encode({ alg: 'none', typ: 'JWT' })}.${encode(claims)}.AA`)).toBe('algorithm');
    const hmac = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', kid: firstKid })
      .sign(new TextEncoder().encode(await issuer.publicPem(firstKid)));
    expect(await refusedWith(verify, hmac)).toBe('algorithm');
    expect(
      await refusedWith(
        verify,
        await issuer.mint(githubClaims({ iss: 'https://token.actions.githubusercontent.com' })),
      ),
    ).toBe('issuer');
    expect(await refusedWith(verify, await issuer.mint(githubClaims({ iss: undefined })))).toBe('missing-claim:iss');
    expect(issuer.fetches).toEqual(before);
  });

  it('prevents a Tollgate token, or anything else that is not a JWT, from being taken as one', async () => {
    const verify = (token: string) => verifierFor([githubPolicy(issuer.url)]).verify(token);
    for (const token of [
      'tgp_0123456789abcdefghijklmnopqrstuvwxyzAB',
      '',
      'a.b',
      'e30.e30.e30.e30.e30',
      '!!.!!.!!',
      'x'.repeat(20_000),
    ]) {
      expect(await refusedWith(verify, token)).toBe('malformed');
    }
  });
});

describe('keys', () => {
  it('refetch the key set for an unknown kid at most once per 5 s, so a rotated-in key works and a retired one stops', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const verifier = verifierFor([githubPolicy(issuer.url)]);
    const verify = (token: string) => verifier.verify(token);
    const jwksBefore = issuer.fetches.jwks;
    expect(await accepted(verify(await issuer.mint(githubClaims())))).toMatchObject({ ok: true });
    expect(issuer.fetches.jwks).toBe(jwksBefore + 1);

    const rotated = await issuer.addKey({ alg: 'ES256' });
    const signedByNew = await issuer.mint(githubClaims(), { kid: rotated });
    expect(await refusedWith(verify, signedByNew)).toBe('signature'); // within 5 s of the last fetch: no refetch
    expect(issuer.fetches.jwks).toBe(jwksBefore + 1);

    vi.setSystemTime(Date.now() + 5_001);
    expect(await accepted(verify(await issuer.mint(githubClaims(), { kid: rotated })))).toMatchObject({ ok: true });
    expect(issuer.fetches.jwks).toBe(jwksBefore + 2);
    const unknown = await issuer.addKey({ publish: false });
    expect(await refusedWith(verify, await issuer.mint(githubClaims(), { kid: unknown }))).toBe('signature');
    expect(await refusedWith(verify, await issuer.mint(githubClaims(), { kid: unknown }))).toBe('signature');
    expect(issuer.fetches.jwks).toBe(jwksBefore + 2);

    issuer.retireKey(rotated);
    vi.setSystemTime(Date.now() + 5_001);
    expect(await refusedWith(verify, await issuer.mint(githubClaims(), { kid: unknown }))).toBe('signature'); // refetches
    expect(issuer.fetches.jwks).toBe(jwksBefore + 3);
    expect(await refusedWith(verify, await issuer.mint(githubClaims(), { kid: rotated }))).toBe('signature');
    expect(await accepted(verify(await issuer.mint(githubClaims())))).toMatchObject({ ok: true });
    issuer.retireKey(unknown);
  });

  it('accept RSA-PSS, ECDSA and EdDSA signatures', async () => {
    for (const alg of ['PS256', 'ES384', 'EdDSA']) {
      const kid = await issuer.addKey({ alg });
      const verifier = verifierFor([githubPolicy(issuer.url)]);
      expect(await accepted(verifier.verify(await issuer.mint(githubClaims(), { kid })))).toMatchObject({ ok: true });
      issuer.retireKey(kid);
    }
  });

  it('fail the exchange as unavailable while the issuer is down, and work once it is back', async () => {
    const verifier = verifierFor([githubPolicy(issuer.url)]);
    const verify = (token: string) => verifier.verify(token);
    const token = await issuer.mint(githubClaims());
    issuer.down = true;
    try {
      expect(await refusedWith(verify, token)).toBe('unavailable');
    } finally {
      issuer.down = false;
    }
    expect(await accepted(verify(token))).toMatchObject({ ok: true });
  });

  it('fail as unavailable when the issuer cannot be reached or its discovery document names another issuer', async () => {
    const gone = `http://127.0.0.1:${await freePort()}`;
    const unreachable = verifierFor([githubPolicy(gone)]);
    const result = await unreachable.verify(await issuer.mint(githubClaims({ iss: gone })));
    expect(result).toMatchObject({
      ok: false,
      reason: 'unavailable',
      detail: expect.stringContaining('cannot be fetched') as string,
    });

    issuer.discovery = { issuer: 'https://elsewhere.example' };
    try {
      const verifier = verifierFor([githubPolicy(issuer.url)]);
      expect(await refusedWith((t) => verifier.verify(t), await issuer.mint(githubClaims()))).toBe('unavailable');
    } finally {
      issuer.discovery = {};
    }
    const explicit = verifierFor([githubPolicy(issuer.url, { jwksUrl: issuer.jwksUrl })]);
    const discoveries = issuer.fetches.discovery;
    expect(await accepted(explicit.verify(await issuer.mint(githubClaims())))).toMatchObject({ ok: true });
    expect(issuer.fetches.discovery).toBe(discoveries);
  });
});

describe('policies', () => {
  it('sharing an issuer are tried in order: the first whose allow matches wins', async () => {
    const verifier = verifierFor([
      githubPolicy(issuer.url, {
        name: 'acme-release',
        allow: { repository_owner_id: '4200', repository: 'acme/release-*' },
        tokenTtl: '10m',
      }),
      githubPolicy(issuer.url, { name: 'acme', production: {} }),
      githubPolicy(issuer.url, {
        name: 'partner',
        allow: { repository_owner_id: '777' },
        audience: 'https://partner.example',
      }),
    ]);
    const verify = (token: string) => verifier.verify(token);
    expect(await accepted(verify(await issuer.mint(githubClaims({ repository: 'acme/release-tools' }))))).toMatchObject(
      { provider: 'acme-release', type: 'production', tokenTtlMs: 600_000 },
    );
    expect(await accepted(verify(await issuer.mint(githubClaims())))).toMatchObject({
      provider: 'acme',
      type: 'development',
    });
    expect(
      await accepted(
        verify(await issuer.mint(githubClaims({ repository_owner_id: '777', aud: 'https://partner.example' }))),
      ),
    ).toMatchObject({ provider: 'partner' });
    expect(await refusedWith(verify, await issuer.mint(githubClaims({ repository_owner_id: '777' })))).toBe(
      'allow:repository_owner_id',
    );
  });

  it('map GitLab and Kubernetes claims to the CI identity, and `claims` overrides a field', async () => {
    const verifier = verifierFor([
      {
        name: 'gitlab',
        kind: 'gitlab',
        issuer: issuer.url,
        audience: 'https://gitlab-aud.example',
        allow: { namespace_id: '55' },
        production: { ref_protected: 'true', ref_path: 'refs/heads/main' },
        project: 'project_path',
      },
      {
        name: 'k8s',
        kind: 'kubernetes',
        issuer: issuer.url,
        audience: 'tollgate',
        allow: { 'kubernetes.io.namespace': 'builds' },
        claims: { actor: 'kubernetes.io.node.name' },
      },
    ]);
    const gitlab = await accepted(
      verifier.verify(
        await issuer.mint({
          aud: 'https://gitlab-aud.example',
          sub: 'project_path:acme/app:ref_type:branch:ref:main',
          namespace_id: '55',
          namespace_path: 'acme',
          project_id: '99',
          project_path: 'acme/app',
          ref: 'main',
          ref_type: 'branch',
          ref_path: 'refs/heads/main',
          ref_protected: true,
          sha: 'abc123',
          pipeline_id: '1234',
          pipeline_source: 'push',
          user_login: 'alice',
          ci_config_ref_uri: 'gitlab.example/acme/app//.gitlab-ci.yml@refs/heads/main',
        }),
      ),
    );
    expect(gitlab).toMatchObject({ provider: 'gitlab', type: 'production', project: 'acme/app' });
    expect(gitlab.identity).toEqual({
      provider: 'gitlab',
      subject: 'project_path:acme/app:ref_type:branch:ref:main',
      project: 'acme/app',
      repository: 'acme/app',
      ref: 'refs/heads/main',
      sha: 'abc123',
      workflow: 'gitlab.example/acme/app//.gitlab-ci.yml@refs/heads/main',
      runId: '1234',
      actor: 'alice',
    });
    const k8s = await accepted(
      verifier.verify(
        await issuer.mint({
          aud: ['tollgate'],
          sub: 'system:serviceaccount:builds:ci-runner',
          'kubernetes.io': {
            namespace: 'builds',
            serviceaccount: { name: 'ci-runner', uid: 'u1' },
            pod: { name: 'job-7f9c', uid: 'u2' },
            node: { name: 'node-3' },
          },
        }),
      ),
    );
    expect(k8s).toMatchObject({ provider: 'k8s', type: 'development', project: undefined });
    expect(k8s.identity).toEqual({
      provider: 'k8s',
      subject: 'system:serviceaccount:builds:ci-runner',
      repository: 'builds/ci-runner',
      runId: 'job-7f9c',
      actor: 'node-3',
    });
    expect(
      await refusedWith(
        (t) => verifier.verify(t),
        await issuer.mint({ aud: 'tollgate', 'kubernetes.io': { namespace: 'prod' } }),
      ),
    ).toBe('allow:kubernetes.io.namespace');
  });
});

describe('refusals', () => {
  it('never name an expected value, and never carry the token', () => {
    expect(refusals.length).toBeGreaterThan(20);
    const expected = [
      '4200',
      'refs/heads/main',
      DEFAULT_AUDIENCE,
      'https://partner.example',
      'acme/release',
      'builds',
      'https://elsewhere.example',
    ];
    for (const { refusal, token } of refusals) {
      if (token.length > 8) expect(JSON.stringify(refusal)).not.toContain(token.slice(0, 40));
      for (const value of expected) expect(refusal.reason).not.toContain(value);
    }
  });
});
