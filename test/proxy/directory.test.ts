import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { patternBytes } from '../helpers/origin.js';
import { rawRequest } from '../helpers/raw-http.js';
import { tempDir, type TempDir } from '../helpers/route-config.js';

/**
 * A directory upstream: a static artifact tree served by the gateway itself. The tree lives in
 * <tmp>/served; a secret sits just outside it, in <tmp>/secret.txt and <tmp>/served-sibling/.
 */
const SECRET = `TOP-SECRET-${randomBytes(8).toString('hex')}`;
const ARTIFACT = patternBytes(1000);

function artifactTree(): TempDir {
  const dir = tempDir('tollgate-dir-');
  dir.write('secret.txt', `${SECRET}\n`);
  dir.write('served-sibling/secret.txt', `${SECRET}\n`);
  dir.write('served/artifact.bin', ARTIFACT);
  dir.write('served/hello.txt', 'hello\n');
  dir.write('served/sub/index.html', '<a href="pkg-1.0.tar.gz">pkg-1.0.tar.gz</a>\n');
  dir.write('served/sub/pkg-1.0.tar.gz', 'tarball\n');
  dir.write('served/noindex/file.txt', 'no index here\n');
  dir.write('served/.hidden', `${SECRET}\n`);
  return dir;
}

describe('a directory upstream on a "/files/" route', () => {
  let dir: TempDir;
  let gw: TestGateway;
  let auth: string;

  beforeAll(async () => {
    dir = artifactTree();
    gw = await startTestGateway({
      TOLLGATE_CONFIG: dir.configFile([{ prefix: '/files/', upstream: `${dir.path}/served` }]),
    });
    auth = bearer((await gw.createToken()).token);
  });
  afterAll(async () => {
    await gw?.close();
    dir?.remove();
  });

  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
    rawRequest(gw.url, { method, path, headers: { Authorization: auth, ...headers } });

  it('serves a file with ETag, Last-Modified, Accept-Ranges and Cache-Control: private', async () => {
    const res = await get('/files/artifact.bin');
    expect(res.status).toBe(200);
    expect(res.body).toEqual(ARTIFACT);
    expect(res.headers['content-length']).toBe('1000');
    expect(res.headers.etag).toMatch(/^(W\/)?"/);
    expect(Date.parse(res.headers['last-modified']!)).not.toBeNaN();
    expect(res.headers['accept-ranges']).toBe('bytes');
    expect(res.headers['cache-control']).toBe('private');
  });

  it("answers HEAD with the file's headers and no body", async () => {
    const res = await get('/files/artifact.bin', {}, 'HEAD');
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe('1000');
    expect(res.headers.etag).toBeDefined();
    expect(res.headers['last-modified']).toBeDefined();
    expect(res.body).toHaveLength(0);
  });

  it('answers Range: bytes=10-19 with 206 and exactly those bytes', async () => {
    const res = await get('/files/artifact.bin', { Range: 'bytes=10-19' });
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe('bytes 10-19/1000');
    expect(res.body).toEqual(ARTIFACT.subarray(10, 20));
  });

  it('answers an unsatisfiable Range with 416 and the file size', async () => {
    const res = await get('/files/artifact.bin', { Range: 'bytes=5000-6000' });
    expect(res.status).toBe(416);
    expect(res.headers['content-range']).toBe('bytes */1000');
    expect(res.body).toHaveLength(0);
  });

  it('answers If-None-Match with the current ETag with 304 and no body', async () => {
    const { headers } = await get('/files/artifact.bin');
    const res = await get('/files/artifact.bin', { 'If-None-Match': headers.etag! });
    expect(res.status).toBe(304);
    expect(res.body).toHaveLength(0);
    expect(res.headers.etag).toBe(headers.etag);
  });

  it('answers If-Modified-Since with the current Last-Modified with 304', async () => {
    const { headers } = await get('/files/artifact.bin');
    const res = await get('/files/artifact.bin', { 'If-Modified-Since': headers['last-modified']! });
    expect(res.status).toBe(304);
  });

  it('redirects a directory without its trailing slash to the same gateway path with one', async () => {
    const res = await get('/files/sub');
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe('/files/sub/');
  });

  it('keeps the query string when redirecting a directory', async () => {
    const res = await get('/files/sub?page=2');
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe('/files/sub/?page=2');
  });

  it("serves a directory's index.html for the path with a trailing slash", async () => {
    const res = await get('/files/sub/');
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('<a href="pkg-1.0.tar.gz">pkg-1.0.tar.gz</a>\n');
    expect(res.headers['cache-control']).toBe('private');
  });

  it('answers 404 for a directory without index.html (no listing)', async () => {
    const res = await get('/files/noindex/');
    expect(res.status).toBe(404);
    expect(res.body.toString()).not.toContain('file.txt');
  });

  it('answers 404 JSON with a request id for a missing file', async () => {
    const res = await get('/files/missing-1.0.tgz');
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body.toString())).toMatchObject({ requestId: res.headers['x-request-id'] });
  });

  it('refuses dotfiles inside the tree', async () => {
    const res = await get('/files/.hidden');
    expect(res.status).toBe(404);
    expect(res.body.toString()).not.toContain(SECRET);
  });

  it('serves nothing without a token', async () => {
    const res = await rawRequest(gw.url, { path: '/files/hello.txt' });
    expect(res.status).toBe(401);
    expect(res.body.toString()).not.toContain('hello');
  });
});

/** `..` in every encoding a decoder somewhere might undo, each aimed at a file just outside the root. */
function traversals(prefix: string): string[] {
  return [
    `${prefix}../secret.txt`,
    `${prefix}sub/../../secret.txt`,
    `${prefix}./../secret.txt`,
    `${prefix}/../secret.txt`,
    `${prefix}%2e%2e/secret.txt`,
    `${prefix}%2E%2E%2Fsecret.txt`,
    `${prefix}.%2e/secret.txt`,
    `${prefix}..%2fsecret.txt`,
    `${prefix}..%2Fserved-sibling%2Fsecret.txt`,
    `${prefix}%2e%2e%5csecret.txt`,
    `${prefix}..%5csecret.txt`,
    `${prefix}..\\secret.txt`,
    `${prefix}sub\\..\\..\\secret.txt`,
    `${prefix}%252e%252e%252fsecret.txt`,
    `${prefix}%252e%252e/secret.txt`,
    `${prefix}..%252fsecret.txt`,
    `${prefix}%25252e%25252e/secret.txt`,
    `${prefix}%c0%ae%c0%ae/secret.txt`,
    `${prefix}%c0%ae%c0%ae%c0%afsecret.txt`,
    `${prefix}%e0%80%ae%e0%80%ae/secret.txt`,
    `${prefix}%uff0e%uff0e/secret.txt`,
    `${prefix}..%00/secret.txt`,
    `${prefix}%00../secret.txt`,
    `${prefix}../secret.txt%00.bin`,
    `${prefix}..;/secret.txt`,
    `${prefix}${'../'.repeat(40)}secret.txt`,
    `${prefix}${'a/'.repeat(1100)}${'../'.repeat(1101)}secret.txt`,
  ];
}

describe.each([
  {
    name: 'a "/files/" route (config file)',
    prefix: '/files/',
    env: (dir: TempDir) => ({
      TOLLGATE_CONFIG: dir.configFile([{ prefix: '/files/', upstream: `${dir.path}/served` }]),
    }),
  },
  {
    name: 'TOLLGATE_UPSTREAM (route "/")',
    prefix: '/',
    env: (dir: TempDir) => ({ TOLLGATE_UPSTREAM: `${dir.path}/served` }),
  },
])('a directory upstream on $name never serves a file outside its root', ({ prefix, env }) => {
  let dir: TempDir;
  let gw: TestGateway;
  let auth: string;

  beforeAll(async () => {
    dir = artifactTree();
    gw = await startTestGateway(env(dir));
    auth = bearer((await gw.createToken()).token);
  });
  afterAll(async () => {
    await gw?.close();
    dir?.remove();
  });

  it('serves a file inside the root (so the refusals below are not vacuous)', async () => {
    expect(existsSync(`${dir.path}/secret.txt`) && readFileSync(`${dir.path}/secret.txt`, 'utf8')).toContain(SECRET);
    const res = await rawRequest(gw.url, { path: `${prefix}hello.txt`, headers: { Authorization: auth } });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('hello\n');
  });

  it.each(
    traversals(prefix).map((path) => [path.length > 120 ? `${path.slice(0, 60)}… (${path.length} bytes)` : path, path]),
  )('refuses %s with 400 or 404', async (_label, path) => {
    const res = await rawRequest(gw.url, { path, headers: { Authorization: auth } });
    expect([400, 404]).toContain(res.status);
    expect(res.body.toString('latin1')).not.toContain(SECRET);
  });

  it('refuses an absolute-form request target that climbs out of the root', async () => {
    const path = `${gw.url}${prefix}../secret.txt`;
    const res = await rawRequest(gw.url, { path, headers: { Authorization: auth } });
    expect([400, 404]).toContain(res.status);
    expect(res.body.toString('latin1')).not.toContain(SECRET);
  });
});

describe('a directory upstream as the "/" route', () => {
  let dir: TempDir;
  let gw: TestGateway;
  let auth: string;

  beforeAll(async () => {
    dir = artifactTree();
    gw = await startTestGateway({ TOLLGATE_UPSTREAM: `${dir.path}/served` });
    auth = bearer((await gw.createToken()).token);
  });
  afterAll(async () => {
    await gw?.close();
    dir?.remove();
  });

  it('never redirects to another host (a "//host" path must not become a protocol-relative Location)', async () => {
    const res = await rawRequest(gw.url, { path: '//sub', headers: { Authorization: auth } });
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe('/sub/');
  });
});
