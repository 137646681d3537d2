import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../src/config/index.js';
import { createRouteMatcher, isSafePath, MAX_PATH_LENGTH } from '../../src/proxy/paths.js';

describe('isSafePath', () => {
  it.each([
    '/',
    '/left-pad',
    '/@scope%2fname',
    '/@scope%2Fname/-/name-1.0.0.tgz',
    '/simple/zope%2Binterface/',
    '/packages/a+b-1.0.tar.gz',
    '/.well-known/security.txt',
    '/pkg/.npmrc-like/1.0',
    '/pkg/...',
    '/pkg/..foo/bar..',
    '/org/example/lib/1.0/lib-1.0.jar',
    '/search?a=1&b=%2F',
    '/search?q=../../etc/passwd',
    '/search?path=a\\b',
    '/~user/%7Etilde%20space',
    '/caf%C3%A9/1.0',
    `/${'a'.repeat(MAX_PATH_LENGTH - 1)}`,
  ])('accepts %s', (path) => {
    expect(isSafePath(path)).toBe(true);
  });

  it.each([
    ['an empty target', ''],
    ['a relative target', 'left-pad'],
    ['an absolute-form target', 'http://127.0.0.1/left-pad'],
    ['an asterisk-form target', '*'],
    ['"..", plain', '/../secret'],
    ['"..", at the end', '/pkg/..'],
    ['".", plain', '/pkg/./x'],
    ['"..", percent-encoded', '/%2e%2e/secret'],
    ['"..", upper-case percent-encoding', '/%2E%2E%2Fsecret'],
    ['"..", half encoded', '/.%2e/secret'],
    ['"..%2f" inside one segment', '/..%2fsecret'],
    ['"%2f.." inside one segment', '/pkg%2f..%2fsecret'],
    ['"." inside one encoded segment', '/pkg%2f.%2fx'],
    ['an encoded backslash', '/%2e%2e%5csecret'],
    ['a raw backslash', '/..\\secret'],
    ['a raw backslash without dots', '/pkg\\x'],
    ['a double-encoded dot', '/%252e%252e/secret'],
    ['a double-encoded slash', '/..%252fsecret'],
    ['a double-encoded backslash', '/..%255csecret'],
    ['a double-encoded NUL', '/pkg%2500'],
    ['a NUL byte', '/pkg%00.tgz'],
    ['an overlong UTF-8 dot', '/%c0%ae%c0%ae/secret'],
    ['an overlong UTF-8 slash', '/..%c0%afsecret'],
    ['a truncated escape', '/pkg%2'],
    ['an invalid escape', '/pkg%zz'],
    ['a path over MAX_PATH_LENGTH', `/${'a'.repeat(MAX_PATH_LENGTH)}`],
  ])('refuses %s', (_what, path) => {
    expect(isSafePath(path)).toBe(false);
  });
});

function route(prefix: string): RouteConfig {
  return {
    prefix,
    ecosystem: 'generic',
    upstream: { kind: 'dir', root: `/srv${prefix}` },
    upstreamAuthHeader: undefined,
    allowPost: [],
    rewriteBases: undefined,
    followRedirects: false,
  };
}

describe('createRouteMatcher', () => {
  // As loadConfig hands them over: longest prefix first.
  const npmPrivate = route('/npm/private/');
  const npm = route('/npm/');
  const pypi = route('/pypi/');
  const matchWithoutRoot = createRouteMatcher([npmPrivate, npm, pypi]);
  const root = route('/');
  const matchWithRoot = createRouteMatcher([npmPrivate, npm, pypi, root]);

  it.each([
    ['/npm/left-pad', npm, 'left-pad'],
    ['/npm/@scope%2fname', npm, '@scope%2fname'],
    ['/npm/-/v1/search?text=a%2Fb&size=20', npm, '-/v1/search?text=a%2Fb&size=20'],
    ['/npm/private/internal-lib', npmPrivate, 'internal-lib'],
    ['/pypi/simple/requests/', pypi, 'simple/requests/'],
    ['/npm/', npm, ''],
  ])('matches %s to its longest prefix and keeps the rest byte for byte', (path, expected, rest) => {
    expect(matchWithoutRoot(path)).toEqual({ route: expected, rest });
  });

  it.each([
    ['/npm', npm, ''],
    ['/npm?cache=1', npm, '?cache=1'],
    ['/npm/private', npmPrivate, ''],
    ['/pypi', pypi, ''],
  ])('matches %s (the prefix without its slash) to that route', (path, expected, rest) => {
    expect(matchWithoutRoot(path)).toEqual({ route: expected, rest });
  });

  it.each(['/npmx/left-pad', '/npmx', '/NPM/left-pad', '/np', '/', '/maven/x.jar', '/npm%2fleft-pad'])(
    'matches nothing for %s when there is no "/" route',
    (path) => {
      expect(matchWithoutRoot(path)).toBeUndefined();
    },
  );

  it.each(['/npmx/left-pad', '/maven/x.jar', '/'])('falls back to the "/" route for %s', (path) => {
    expect(matchWithRoot(path)).toEqual({ route: root, rest: path.slice(1) });
  });

  it('still prefers a longer prefix when a "/" route exists', () => {
    expect(matchWithRoot('/npm/left-pad')).toEqual({ route: npm, rest: 'left-pad' });
  });
});
