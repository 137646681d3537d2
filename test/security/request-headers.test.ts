import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { npmTarballUrl, startOrigin, type Origin } from '../helpers/origin.js';
import { rawRequest } from '../helpers/raw-http.js';
import { tempDir } from '../helpers/route-config.js';

/**
 * What reaches the upstream and what comes back, end to end: an allow-list of request headers
 * (the upstream gets the gateway's own credential, so a client must not be able to ask it for
 * something else), a checked Host, and response headers that keep an artifact from being a page
 * of the gateway's origin.
 */
describe('headers across the gateway', () => {
  let origin: Origin;
  let gw: TestGateway;
  let trusting: TestGateway;
  let token: string;
  let files: ReturnType<typeof tempDir>;

  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      if (req.url?.startsWith('/registry/page')) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end('<html><script>alert(document.domain)</script></html>');
        return;
      }
      if (req.url?.startsWith('/registry/icon')) {
        res.writeHead(200, { 'content-type': 'image/svg+xml' });
        res.end('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>');
        return;
      }
      const self = `http://127.0.0.1:${origin.port}/registry/`;
      const body = JSON.stringify({
        name: 'lib',
        versions: { '1.0.0': { dist: { tarball: `${self}lib/-/lib-1.0.0.tgz` } } },
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
    files = tempDir();
    files.write('tree/index.html', '<html><script>alert(1)</script></html>');
    files.write('tree/pkg.tgz', 'tgz');
    files.write('tree/icon.svg', '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');
    files.write('tree/page.shtml', '<html><script>alert(1)</script></html>');
    const config = files.configFile([
      {
        prefix: '/npm/',
        upstream: `${origin.url}/registry/`,
        ecosystem: 'npm',
        upstreamAuth: { type: 'bearer', token: 'upstream-secret' },
      },
      { prefix: '/files/', upstream: `${files.path}/tree`, ecosystem: 'generic' },
    ]);
    gw = await startTestGateway({ TOLLGATE_CONFIG: config });
    trusting = await startTestGateway({
      TOLLGATE_CONFIG: config,
      TOLLGATE_TRUSTED_PROXIES: '127.0.0.1',
      TOLLGATE_DATA_DIR: gw.dataDir,
    });
    token = (await gw.createToken()).token;
  });
  afterAll(async () => {
    await trusting?.close();
    await gw?.close();
    await origin?.close();
    files?.remove();
  });

  it("prevents asking the upstream to do something else with the gateway's credential: override, rewrite and cookie headers stay at the gateway", async () => {
    const asks = {
      'X-HTTP-Method-Override': 'DELETE',
      'X-Method-Override': 'PUT',
      'X-HTTP-Method': 'DELETE',
      'X-Original-URL': '/admin/delete',
      'X-Rewrite-URL': '/admin',
      'X-Forwarded-Prefix': '/internal',
      Cookie: 'session=admin',
      'True-Client-IP': '10.0.0.1',
      'X-Client-IP': '10.0.0.1',
    };
    const res = await rawRequest(gw.url, {
      path: '/npm/lib',
      headers: { Authorization: bearer(token), 'User-Agent': 'npm/10.8.0', 'npm-command': 'install', ...asks },
    });
    expect(res.status).toBe(200);
    const seen = origin.seen.at(-1)!.headers;
    for (const name of Object.keys(asks)) expect(seen[name.toLowerCase()], name).toBeUndefined();
    expect(seen.authorization).toBe('Bearer upstream-secret');
    expect(seen['user-agent']).toBe('npm/10.8.0');
    expect(seen['npm-command']).toBe('install');
  });

  it('refuses a Host that is not host[:port] with 400, before it can reach rewritten metadata', async () => {
    const before = origin.seen.length;
    for (const host of [
      'evil.example"><b>x',
      'a b',
      'evil.example/path',
      'user@evil.example',
      'evil.example:99999',
      '[::1',
    ]) {
      const res = await rawRequest(gw.url, { path: '/npm/lib', headers: { Host: host, Authorization: bearer(token) } });
      expect(res.status, host).toBe(400);
      expect(JSON.parse(res.body.toString())).toMatchObject({ code: 'TOLLGATE_ERR_REQUEST_HOST' });
    }
    expect(origin.seen.length).toBe(before);
  });

  it('writes the parsed, serialised host into rewritten URLs', async () => {
    const res = await rawRequest(gw.url, {
      path: '/npm/lib',
      headers: { Host: 'Artifacts.EXAMPLE.com:80', Authorization: bearer(token) },
    });
    expect(res.status).toBe(200);
    expect(npmTarballUrl(res.body.toString(), '1.0.0')).toBe('http://artifacts.example.com/npm/lib/-/lib-1.0.0.tgz');
  });

  it("refuses a trusted proxy's X-Forwarded-Host that is not host[:port]", async () => {
    const ok = await rawRequest(trusting.url, {
      path: '/npm/lib',
      headers: { 'X-Forwarded-Host': 'gw.example', Authorization: bearer(token) },
    });
    expect(npmTarballUrl(ok.body.toString(), '1.0.0')).toBe('http://gw.example/npm/lib/-/lib-1.0.0.tgz');
    const bad = await rawRequest(trusting.url, {
      path: '/npm/lib',
      headers: { 'X-Forwarded-Host': 'gw.example"><x', Authorization: bearer(token) },
    });
    expect(bad.status).toBe(400);
  });

  it.each([
    ["an upstream's HTML", '/npm/page'],
    ["an upstream's SVG", '/npm/icon'],
    ["a directory's index.html", '/files/'],
    ["a directory's SVG", '/files/icon.svg'],
    ["a directory's .shtml (served as text/html)", '/files/page.shtml'],
    ["a directory's tarball", '/files/pkg.tgz'],
  ])('prevents an artifact from being a page of the gateway: %s gets nosniff and a sandbox', async (_what, path) => {
    for (const method of ['GET', 'HEAD']) {
      const res = await rawRequest(gw.url, { method, path, headers: { Authorization: bearer(token) } });
      expect(res.status, method).toBe(200);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-security-policy']).toBe('sandbox');
    }
  });

  it('sends nosniff with every error too', async () => {
    const refused = await rawRequest(gw.url, { path: '/files/pkg.tgz' });
    expect(refused.status).toBe(401);
    expect(refused.headers['x-content-type-options']).toBe('nosniff');
  });
});
