import { describe, expect, it } from 'vitest';
import {
  ciTokenName,
  claimAt,
  createExchangeRateLimiter,
  exchangeSuccess,
  parseExchangeRequest,
  rateLimitedAnswer,
  refusalAnswer,
  ACCESS_TOKEN_TYPE,
  ID_TOKEN_TYPE,
  JWT_TOKEN_TYPE,
  TOKEN_EXCHANGE_GRANT,
  type CiRefusalReason,
} from '../../src/ci/index.js';
import { validateName } from '../../src/tokens/names.js';

const FORM = 'application/x-www-form-urlencoded';
const ID_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const valid = { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: ID_TOKEN, subject_token_type: ID_TOKEN_TYPE };

describe('parseExchangeRequest (RFC 8693 section 2.1)', () => {
  it('takes an ID token or a JWT as the subject token, ignoring resource, audience and scope', () => {
    expect(parseExchangeRequest(FORM, form(valid))).toEqual({
      ok: true,
      subjectToken: ID_TOKEN,
      subjectTokenType: ID_TOKEN_TYPE,
    });
    expect(
      parseExchangeRequest(
        `${FORM}; charset=UTF-8`,
        form({
          ...valid,
          subject_token_type: JWT_TOKEN_TYPE,
          requested_token_type: ACCESS_TOKEN_TYPE,
          audience: 'x',
          resource: 'https://y',
          scope: 'z',
        }),
      ),
    ).toMatchObject({ ok: true, subjectTokenType: JWT_TOKEN_TYPE });
  });

  it('answers unsupported_grant_type for another grant', () => {
    expect(parseExchangeRequest(FORM, form({ ...valid, grant_type: 'client_credentials' }))).toEqual({
      ok: false,
      status: 400,
      headers: { 'cache-control': 'no-store', pragma: 'no-cache' },
      body: {
        error: 'unsupported_grant_type',
        error_description: `the only grant_type supported is ${TOKEN_EXCHANGE_GRANT}`,
      },
    });
  });

  it.each([
    ['a missing subject_token_type', { ...valid, subject_token_type: '' }, /subject_token_type must be/],
    ['a wrong subject_token_type', { ...valid, subject_token_type: ACCESS_TOKEN_TYPE }, /subject_token_type must be/],
    [
      'a missing subject_token',
      { grant_type: TOKEN_EXCHANGE_GRANT, subject_token_type: ID_TOKEN_TYPE },
      /subject_token is required/,
    ],
    ['a missing grant_type', { subject_token: ID_TOKEN, subject_token_type: ID_TOKEN_TYPE }, /grant_type is required/],
    ['an actor token', { ...valid, actor_token: ID_TOKEN, actor_token_type: ID_TOKEN_TYPE }, /delegation/],
    ['another requested token type', { ...valid, requested_token_type: ID_TOKEN_TYPE }, /requested_token_type must be/],
  ])('answers invalid_request for %s, never echoing the token', (_, fields, description) => {
    const answer = parseExchangeRequest(FORM, form(fields));
    expect(answer).toMatchObject({
      ok: false,
      status: 400,
      body: { error: 'invalid_request', error_description: expect.stringMatching(description) as string },
    });
    expect(JSON.stringify(answer)).not.toContain(ID_TOKEN);
  });

  it('answers invalid_request for a repeated parameter, another media type or an oversized body', () => {
    expect(parseExchangeRequest(FORM, `${form(valid)}&subject_token=other`)).toMatchObject({
      ok: false,
      body: { error_description: 'subject_token must not be repeated' },
    });
    expect(parseExchangeRequest('application/json', JSON.stringify(valid))).toMatchObject({
      ok: false,
      body: { error: 'invalid_request' },
    });
    expect(parseExchangeRequest(undefined, form(valid))).toMatchObject({
      ok: false,
      body: { error: 'invalid_request' },
    });
    expect(parseExchangeRequest(FORM, form({ ...valid, subject_token: 'x'.repeat(40_000) }))).toMatchObject({
      ok: false,
      body: { error: 'invalid_request' },
    });
  });
});

describe('exchange answers (RFC 8693 section 2.2)', () => {
  it('gives the issued token with its type and lifetime, never cached', () => {
    expect(exchangeSuccess('tgd_x', 1_000_000 + 3_600_000, 1_000_000, { tollgate_type: 'development' })).toEqual({
      status: 200,
      headers: { 'cache-control': 'no-store', pragma: 'no-cache' },
      body: {
        access_token: 'tgd_x',
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: 'Bearer',
        expires_in: 3600,
        tollgate_type: 'development',
      },
    });
  });

  it('refuses with invalid_request naming the check, 503 when the keys are unavailable, 429 with Retry-After', () => {
    const reasons: CiRefusalReason[] = [
      'malformed',
      'algorithm',
      'issuer',
      'signature',
      'audience',
      'expired',
      'not-yet-valid',
      'lifetime',
      'missing-claim:exp',
      'allow:repository_owner_id',
    ];
    for (const reason of reasons) {
      const answer = refusalAnswer({ reason });
      expect(answer).toMatchObject({
        status: 400,
        body: { error: 'invalid_request', error_description: expect.stringContaining(`(${reason})`) as string },
      });
      expect(answer.body.error_description).not.toContain('refused): it was refused');
    }
    expect(refusalAnswer({ reason: 'unavailable' })).toMatchObject({
      status: 503,
      headers: { 'retry-after': '5' },
      body: { error: 'temporarily_unavailable' },
    });
    expect(rateLimitedAnswer(12, 'subject')).toMatchObject({
      status: 429,
      headers: { 'retry-after': '12' },
      body: { error: 'slow_down' },
    });
  });
});

describe('exchange rate limits', () => {
  it('allow N exchanges per address and per identity in any 60 s, then give the seconds to wait', () => {
    const limiter = createExchangeRateLimiter({ perAddressPerMinute: 3, perSubjectPerMinute: 2 });
    const t = 1_000_000;
    expect([1, 2, 3, 4].map((i) => limiter.takeAddress('10.0.0.1', t + i))).toEqual([0, 0, 0, 60]);
    expect(limiter.takeAddress('10.0.0.2', t)).toBe(0);
    expect(limiter.takeAddress('10.0.0.1', t + 60_002)).toBe(0);
    expect([
      limiter.takeSubject('github', 'repo:a', t),
      limiter.takeSubject('github', 'repo:a', t),
      limiter.takeSubject('github', 'repo:a', t + 30_000),
    ]).toEqual([0, 0, 30]);
    expect(limiter.takeSubject('gitlab', 'repo:a', t)).toBe(0);
  });
});

describe('ciTokenName', () => {
  it('is ci:<provider>:<repository or subject>#<run id>, a valid token name', () => {
    expect(
      ciTokenName({
        provider: 'github',
        subject: 'repo:acme/app:ref:refs/heads/main',
        repository: 'acme/app',
        runId: '987',
      }),
    ).toBe('ci:github:acme/app#987');
    expect(ciTokenName({ provider: 'k8s', subject: 'system:serviceaccount:ci:runner' })).toBe(
      'ci:k8s:system:serviceaccount:ci:runner',
    );
  });

  it('stays printable ASCII of at most 100 characters, keeping the provider and the run id', () => {
    const name = ciTokenName({
      provider: 'gitlab',
      subject: 's',
      repository: `grüppe/${'x'.repeat(200)}`,
      runId: '123456',
    });
    expect(name).toHaveLength(100);
    expect(name).toMatch(/^ci:gitlab:gr\?ppe\/x+~#123456$/);
    expect(validateName(name)).toBe(name);
    expect(ciTokenName({ provider: 'a', subject: 'tok_abc', runId: '\u0000\n' })).toBe('ci:a:tok_abc#??');
  });
});

describe('claimAt', () => {
  it('reads a top-level claim, else a path whose keys may hold dots', () => {
    const claims = {
      'oidc.circleci.com/vcs-ref': 'refs/heads/main',
      'kubernetes.io': { namespace: 'ci', pod: { name: 'p' } },
      a: { b: 1 },
    };
    expect(claimAt(claims, 'oidc.circleci.com/vcs-ref')).toBe('refs/heads/main');
    expect(claimAt(claims, 'kubernetes.io.namespace')).toBe('ci');
    expect(claimAt(claims, 'kubernetes.io.pod.name')).toBe('p');
    expect(claimAt(claims, 'a.b')).toBe(1);
    expect(claimAt(claims, 'a.c')).toBeUndefined();
    expect(claimAt(claims, 'toString')).toBeUndefined();
    expect(claimAt(claims, '__proto__.x')).toBeUndefined();
  });
});
