import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeSingleDotSegments } from '../../src/proxy/paths.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { rawRequest } from '../helpers/raw-http.js';
import { tempDir, type TempDir } from '../helpers/route-config.js';

/**
 * apt, given a flat repository (`deb http://gw/apt/ ./`), asks for `/apt/./Release` and
 * `/apt/./Packages`. Those were refused with 400 as dot segments; a single "." is now removed
 * (RFC 3986 normalisation) before the path is checked, routed and forwarded, while ".." and
 * encoded dots are refused exactly as before.
 */

describe('removeSingleDotSegments', () => {
  it.each([
    ['/apt/./Packages', '/apt/Packages'],
    ['/apt/./InRelease', '/apt/InRelease'],
    ['/a/././b', '/a/b'],
    ['/a/./././b/./c', '/a/b/c'],
    ['/a/.', '/a/'],
    ['/.', '/'],
    ['/./?q=/./', '/?q=/./'],
    ['/a/./b?x=1', '/a/b?x=1'],
  ])('turns %s into %s', (input, output) => {
    expect(removeSingleDotSegments(input)).toBe(output);
  });

  it.each([
    '/',
    '/apt/Packages',
    '/pkg/...',
    '/pkg/..',
    '/pkg/../x',
    '/.well-known/x',
    '/pkg/.npmrc',
    '/a/.b/c',
    '/@scope%2fname',
    '/%2e/x',
    '/search?q=/./',
  ])('leaves %s as it is', (input) => {
    expect(removeSingleDotSegments(input)).toBe(input);
  });

  it('never turns a path into one with ".." that was not there (it only removes)', () => {
    expect(removeSingleDotSegments('/a/./../x')).toBe('/a/../x');
    expect(removeSingleDotSegments('/a/.%2e/x')).toBe('/a/.%2e/x');
  });
});

describe('a "." segment through the gateway', () => {
  const SECRET = `SECRET-${randomBytes(6).toString('hex')}`;
  let dir: TempDir;
  let origin: Origin;
  let gw: TestGateway;
  let auth: string;

  beforeAll(async () => {
    dir = tempDir('tollgate-dot-');
    dir.write('served/Packages', 'Package: acme\n');
    dir.write('secret.txt', SECRET);
    origin = await startOrigin();
    gw = await startTestGateway({
      TOLLGATE_CONFIG: dir.configFile([
        { prefix: '/apt/', upstream: `${dir.path}/served`, ecosystem: 'deb' },
        { prefix: '/remote/', upstream: `${origin.url}/base/`, ecosystem: 'deb' },
      ]),
    });
    auth = bearer((await gw.createToken()).token);
  });
  afterAll(async () => {
    await gw?.close();
    await origin?.close();
    dir?.remove();
  });

  it("serves apt's flat-repository path /apt/./Packages from a directory upstream", async () => {
    const res = await rawRequest(gw.url, { path: '/apt/./Packages', headers: { Authorization: auth } });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('Package: acme\n');
  });

  it('forwards the normalised path to an http upstream', async () => {
    const res = await rawRequest(gw.url, { path: '/remote/./dists/./Release?x=/./', headers: { Authorization: auth } });
    expect(res.status).toBe(200);
    expect(origin.seen.at(-1)!.url).toBe('/base/dists/Release?x=/./');
  });

  it.each(['/apt/./../secret.txt', '/apt/.%2e/secret.txt', '/apt/%2e/Packages', '/apt/./%2e%2e/secret.txt'])(
    'still refuses %s with 400',
    async (path) => {
      const res = await rawRequest(gw.url, { path, headers: { Authorization: auth } });
      expect(res.status).toBe(400);
      expect(res.body.toString()).not.toContain(SECRET);
    },
  );

  it('still asks for a token', async () => {
    const res = await rawRequest(gw.url, { path: '/apt/./Packages' });
    expect(res.status).toBe(401);
  });
});
