import { describe, expect, it } from 'vitest';
import { ciConfig, ciProblems, githubPolicy } from './ci-config.js';

const GITHUB = 'https://token.actions.githubusercontent.com';

describe('ciProviders', () => {
  it('is empty by default, with the exchange limits at their defaults', () => {
    const config = ciConfig(undefined);
    expect(config.ciProviders).toEqual([]);
    expect(config.ciExchange).toEqual({
      maxIdTokenLifetimeMs: 3_600_000,
      clockSkewMs: 60_000,
      perAddressPerMinute: 60,
      perSubjectPerMinute: 30,
      purgeGraceMs: 3_600_000,
      purgeIntervalMs: 60_000,
    });
  });

  it("reads a policy, its kind from GitHub's issuer, its ttl, and restrictions checked against the routes", () => {
    const [policy] = ciConfig([
      {
        name: 'github',
        issuer: GITHUB,
        audience: 'https://artifacts.example.com',
        allow: { repository_owner: 'acme' },
        production: { ref: 'refs/heads/main' },
        project: 'repository',
        tokenTtl: '90m',
        restrictions: { routes: ['/npm'], packages: ['@acme/*'], networks: [], rate: '600/min' },
      },
    ]).ciProviders;
    expect(policy).toEqual({
      name: 'github',
      kind: 'github',
      issuer: GITHUB,
      jwksUrl: undefined,
      audience: 'https://artifacts.example.com',
      allow: { repository_owner: 'acme' },
      production: { ref: 'refs/heads/main' },
      project: 'repository',
      tokenTtlMs: 5_400_000,
      restrictions: { routes: ['/npm/'], packages: ['@acme/*'], ratePerMinute: 600 },
      claims: {},
    });
  });

  it('defaults to a 1 h ttl, no production rule (always Development) and the generic kind for an unknown issuer', () => {
    const [policy] = ciConfig([
      {
        name: 'k8s',
        issuer: 'https://kubernetes.default.svc',
        audience: 'tollgate',
        allow: { sub: 'system:serviceaccount:ci:*' },
      },
    ]).ciProviders;
    expect(policy).toMatchObject({
      kind: 'generic',
      tokenTtlMs: 3_600_000,
      production: {},
      project: undefined,
      restrictions: null,
    });
  });

  it('refuses a policy without allow, saying why (exit 2 text)', () => {
    for (const allow of [undefined, {}]) {
      const problems = ciProblems([{ name: 'github', issuer: GITHUB, audience: 'x', allow }]);
      expect(problems).toEqual([
        expect.stringMatching(/tollgate\.json: ciProviders\[0\]\.allow is required .*every repository on the service/),
      ]);
    }
    expect(ciProblems([githubPolicy(GITHUB, { allow: { repository_owner: '**' } })])).toEqual([
      expect.stringContaining('matches every value'),
    ]);
  });

  it('refuses an http issuer or JWKS URL beyond loopback, and URLs with credentials or a query', () => {
    const problems = ciProblems([
      githubPolicy('http://issuer.example.com'),
      githubPolicy('http://127.0.0.1:8080', { name: 'b', jwksUrl: 'http://keys.example.com/jwks' }),
      githubPolicy('https://u:p@issuer.example.com', { name: 'c' }),
      githubPolicy('https://issuer.example.com/?x=1', { name: 'd' }),
      githubPolicy('not a url', { name: 'e' }),
    ]);
    expect(problems).toEqual([
      expect.stringMatching(/ciProviders\[0\]\.issuer: must be an https URL \(http only on loopback\)/),
      expect.stringMatching(/ciProviders\[1\]\.jwksUrl: must be an https URL \(http only on loopback\)/),
      expect.stringMatching(/ciProviders\[2\]\.issuer: must not carry credentials/),
      expect.stringMatching(/ciProviders\[3\]\.issuer: must not carry a query or fragment/),
      expect.stringMatching(/ciProviders\[4\]\.issuer: must be an https URL/),
    ]);
    expect(problems.join('\n')).not.toContain('u:p');
    expect(
      ciConfig([githubPolicy('http://localhost:9000'), githubPolicy('http://[::1]:9000', { name: 'v6' })]).ciProviders,
    ).toHaveLength(2);
  });

  it('refuses a ttl over 24 h or of another form', () => {
    expect(ciProblems([githubPolicy(GITHUB, { tokenTtl: '25h' })])).toEqual([
      expect.stringMatching(/tokenTtl: must be at most 24h.*got "25h"/),
    ]);
    expect(ciProblems([githubPolicy(GITHUB, { tokenTtl: '1d' })])).toEqual([
      expect.stringMatching(/tokenTtl: must be <N>s, <N>m or <N>h/),
    ]);
    expect(ciProblems([githubPolicy(GITHUB, { tokenTtl: '0s' })])).toHaveLength(1);
    expect(ciConfig([githubPolicy(GITHUB, { tokenTtl: '24h' })]).ciProviders[0]!.tokenTtlMs).toBe(86_400_000);
  });

  it('refuses bad restrictions as token create does, naming the field', () => {
    const problems = ciProblems([
      githubPolicy(GITHUB, { restrictions: { routes: ['/maven/'] } }),
      githubPolicy(GITHUB, { name: 'b', restrictions: { networks: ['nowhere'] } }),
      githubPolicy(GITHUB, { name: 'c', restrictions: { rate: '0/min' } }),
    ]);
    expect(problems).toEqual([
      expect.stringMatching(
        /ciProviders\[0\]\.restrictions: routes: "\/maven\/" is not a route prefix of this gateway/,
      ),
      expect.stringMatching(/ciProviders\[1\]\.restrictions: networks: "nowhere" is not an IP address or CIDR/),
      expect.stringMatching(/ciProviders\[2\]\.restrictions: rate must be a whole number/),
    ]);
    expect(ciProblems([githubPolicy(GITHUB, { restrictions: { colour: 'red' } })])).toEqual([
      expect.stringMatching(/ciProviders\[0\]\.restrictions: unknown setting\(s\) colour/),
    ]);
  });

  it('refuses duplicate or badly formed names, unknown fields, missing audience, and a claims map of unknown fields', () => {
    const problems = ciProblems([
      githubPolicy(GITHUB),
      githubPolicy(GITHUB),
      githubPolicy(GITHUB, { name: 'Git Hub' }),
      githubPolicy(GITHUB, { name: 'x', audiences: ['a'] }),
      githubPolicy(GITHUB, { name: 'y', audience: undefined }),
      githubPolicy(GITHUB, { name: 'z', claims: { branch: 'ref' } }),
    ]);
    const text = problems.join('\n');
    expect(text).toMatch(/ciProviders\[2\]\.name: name must be 1 to 40 characters of a-z, 0-9 and "-"/);
    expect(text).toMatch(/ciProviders\[3\]: unknown setting\(s\) audiences/);
    expect(text).toMatch(/ciProviders\[4\]\.audience: audience is required/);
    expect(text).toMatch(/ciProviders\[5\]\.claims: unknown setting\(s\) branch/);
    // Names are checked once the schema passes: alone, the duplicate is reported.
    expect(ciProblems([githubPolicy(GITHUB), githubPolicy(GITHUB)])).toEqual([
      expect.stringMatching(/ciProviders\[1\]\.name: "github" is the name of an earlier policy/),
    ]);
  });

  it('refuses policies sharing an issuer with different JWKS URLs', () => {
    expect(
      ciProblems([githubPolicy(GITHUB), githubPolicy(GITHUB, { name: 'b', jwksUrl: 'https://keys.example.com/jwks' })]),
    ).toEqual([
      expect.stringMatching(/ciProviders\[1\]\.jwksUrl: policies sharing the issuer .* must name the same jwksUrl/),
    ]);
  });

  it('reads the exchange limits from the environment, and refuses a large clock skew', () => {
    const config = ciConfig(undefined, {
      TOLLGATE_CI_MAX_ID_TOKEN_LIFETIME_MS: '600000',
      TOLLGATE_CI_CLOCK_SKEW_MS: '5000',
      TOLLGATE_CI_EXCHANGES_PER_ADDRESS_PER_MINUTE: '10',
      TOLLGATE_CI_EXCHANGES_PER_SUBJECT_PER_MINUTE: '3',
      TOLLGATE_CI_PURGE_GRACE_MS: '0',
      TOLLGATE_CI_PURGE_INTERVAL_MS: '5000',
    });
    expect(config.ciExchange).toEqual({
      maxIdTokenLifetimeMs: 600_000,
      clockSkewMs: 5000,
      perAddressPerMinute: 10,
      perSubjectPerMinute: 3,
      purgeGraceMs: 0,
      purgeIntervalMs: 5000,
    });
    expect(ciProblems(undefined, { TOLLGATE_CI_CLOCK_SKEW_MS: '600000' })).toEqual([
      expect.stringMatching(/^TOLLGATE_CI_CLOCK_SKEW_MS: must be at most 300000 ms/),
    ]);
    expect(ciProblems(undefined, { TOLLGATE_CI_MAX_ID_TOKEN_LIFETIME_MS: '90000000' })).toEqual([
      expect.stringMatching(/at most 86400000 ms/),
    ]);
    expect(ciProblems(undefined, { TOLLGATE_CI_PURGE_GRACE_MS: '2592000001' })).toEqual([
      expect.stringMatching(/^TOLLGATE_CI_PURGE_GRACE_MS: must be at most 2592000000 ms/),
    ]);
    expect(ciProblems(undefined, { TOLLGATE_CI_PURGE_INTERVAL_MS: '10' })).toEqual([
      expect.stringMatching(/^TOLLGATE_CI_PURGE_INTERVAL_MS: must be at least 100 ms/),
    ]);
  });
});
