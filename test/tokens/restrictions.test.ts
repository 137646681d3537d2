import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isGatewayError } from '../../src/errors.js';
import {
  compileRestrictions,
  matchesGlob,
  networkAllowed,
  packageAllowed,
  parseRate,
  parseRestrictions,
  summariseRestrictions,
} from '../../src/tokens/restrictions.js';
import { createLocalTokenRateLimiter, RATE_WINDOW_MS } from '../../src/auth/token-rate.js';

const ROUTES = ['/npm/', '/pypi/', '/maven/'];

function inputError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isGatewayError(err) && err.code === 'TOLLGATE_ERR_TOKEN_INPUT') return err.message;
    throw err;
  }
  throw new Error('expected TOLLGATE_ERR_TOKEN_INPUT');
}

describe('token restrictions: input', () => {
  it('takes routes, package patterns, networks and a rate, and nothing means none', () => {
    expect(parseRestrictions({}, ROUTES)).toBeNull();
    expect(
      parseRestrictions(
        { routes: ['/npm', '/pypi/'], packages: ['@acme/*'], networks: ['10.0.0.0/8', '192.0.2.7'], rate: '600/min' },
        ROUTES,
      ),
    ).toEqual({
      routes: ['/npm/', '/pypi/'],
      packages: ['@acme/*'],
      networks: ['10.0.0.0/8', '192.0.2.7'],
      ratePerMinute: 600,
    });
    expect(parseRestrictions({ rate: 30 }, ROUTES)).toEqual({ ratePerMinute: 30 });
  });

  it.each([
    [{ routes: ['/cargo/'] }, /routes: "\/cargo\/" is not a route prefix/],
    [{ packages: [''] }, /packages: a pattern must not be empty/],
    [{ packages: ['a b'] }, /packages: .*spaces/],
    [{ networks: ['10.0.0.0/33'] }, /networks: "10.0.0.0\/33" is not an IP address or CIDR/],
    [{ networks: ['example.com'] }, /networks: .*not an IP address/],
    [{ rate: '0/min' }, /rate must be a whole number/],
    [{ rate: 'fast' }, /rate must be a whole number/],
    [{ routes: 'x'.repeat(5) }, /routes: "xxxxx"/],
    [{ packages: [1] }, /packages must be a list of strings/],
  ])('refuses %j with an error naming the field', (input, message) => {
    expect(inputError(() => parseRestrictions(input, ROUTES))).toMatch(message);
  });

  it('reads rates as N, N/min or N/m', () => {
    expect([parseRate('600'), parseRate('600/min'), parseRate('600 / m'), parseRate(undefined)]).toEqual([
      600,
      600,
      600,
      undefined,
    ]);
  });

  it('summarises restrictions for a table', () => {
    expect(summariseRestrictions(null)).toBe('-');
    expect(
      summariseRestrictions({ routes: ['/npm/'], packages: ['@acme/*'], networks: ['10.0.0.0/8'], ratePerMinute: 60 }),
    ).toBe('routes /npm/; packages @acme/*; networks 10.0.0.0/8; 60/min');
  });
});

describe('token restrictions: on the request path', () => {
  it('compiles nothing for a token without restrictions', () => {
    expect(compileRestrictions(null)).toBeUndefined();
    expect(compileRestrictions(undefined)).toBeUndefined();
  });

  it.each([
    ['@acme/*', '@acme/lib', true],
    ['@acme/*', '@acme/', true],
    ['@acme/*', '@other/lib', false],
    ['@acme/*', 'acme', false],
    ['com.acme:*', 'com.acme:core', true],
    ['com.acme:*', 'com.acmex:core', false],
    ['requests', 'requests', true],
    ['requests', 'requests-oauth', false],
    ['*-internal', 'auth-internal', true],
    ['a*b*c', 'a-b-c', true],
    ['a*b*c', 'a-c-b', false],
    ['a*a', 'a', false],
    ['*', 'anything', true],
  ])('matches %s against %s: %s', (pattern, name, expected) => {
    expect(matchesGlob(pattern.split('*'), name)).toBe(expected);
  });

  it('matches in linear time whatever the pattern and name (no backtracking)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a*]{0,40}$/), fc.stringMatching(/^a{0,3000}b?$/), (pattern, name) => {
        const started = performance.now();
        matchesGlob(pattern.split('*'), name);
        return performance.now() - started < 50;
      }),
      { numRuns: 200 },
    );
  });

  it('allows a package when any pattern matches', () => {
    const r = compileRestrictions({ packages: ['@acme/*', 'lodash'] })!;
    expect([packageAllowed(r, '@acme/x'), packageAllowed(r, 'lodash'), packageAllowed(r, 'left-pad')]).toEqual([
      true,
      true,
      false,
    ]);
  });

  it.each([
    ['10.1.2.3', true],
    ['10.255.0.1', true],
    ['11.0.0.1', false],
    ['::ffff:10.1.2.3', true],
    ['192.0.2.7', true],
    ['192.0.2.8', false],
    ['fd00::1', true],
    ['fe80::1', false],
    ['not-an-address', false],
  ])('checks the client address %s against the networks: %s', (address, expected) => {
    const r = compileRestrictions({ networks: ['10.0.0.0/8', '192.0.2.7', 'fd00::/8'] })!;
    expect(networkAllowed(r, address)).toBe(expected);
  });
});

describe('per-token request rate (sliding log)', () => {
  it('never lets more than N through in any 60 s, and says when the next may go', () => {
    const limiter = createLocalTokenRateLimiter();
    const t0 = 1_000_000;
    const times = [t0, t0 + 10_000, t0 + 20_000];
    for (const t of times) expect(limiter.takeLocal('tok_a', 3, t)).toBe(0);
    // The fourth within the window waits until the first leaves it.
    expect(limiter.takeLocal('tok_a', 3, t0 + 30_000)).toBe(30);
    expect(limiter.takeLocal('tok_a', 3, t0 + RATE_WINDOW_MS - 1)).toBe(1);
    expect(limiter.takeLocal('tok_a', 3, t0 + RATE_WINDOW_MS)).toBe(0);
    // Other tokens have their own log.
    expect(limiter.takeLocal('tok_b', 3, t0 + 30_000)).toBe(0);
  });

  it('holds the promise for any arrival pattern (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 300 }),
        (n, gaps) => {
          const limiter = createLocalTokenRateLimiter();
          let now = 0;
          const admitted: number[] = [];
          for (const gap of gaps) {
            now += gap;
            if (limiter.takeLocal('tok', n, now) === 0) admitted.push(now);
          }
          // In every window of 60 s, at most n admitted.
          return admitted.every(
            (t, i) => admitted.filter((u) => u > t - RATE_WINDOW_MS && u <= t).length <= n && i >= 0,
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});
