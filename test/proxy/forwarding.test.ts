import { createHash } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { basic, bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { defaultHandler, patternBytes, startOrigin, type Origin, type SeenRequest } from '../helpers/origin.js';
import { closedPort, startFaultyOrigin, type FaultyOrigin } from '../helpers/faulty-origin.js';
import { rawRequest } from '../helpers/raw-http.js';
import { selfSignedCert } from '../helpers/certs.js';
import { tempDir, type TempDir } from '../helpers/route-config.js';
import { startSourceGateway } from '../helpers/source-gateway.js';
import { createToken } from '../../src/tokens/service.js';
import { createSqliteTokenStore } from '../../src/tokens/sqlite-store.js';

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** The request the origin saw for exactly this path and query. */
function seenAt(origin: Origin, url: string): SeenRequest {
  const found = origin.seen.filter((r) => r.url === url);
  expect(found, `origin requests for ${url}`).toHaveLength(1);
  return found[0]!;
}

/** The gateway's log line for one request (written when its response closes). */
async function requestLog(gw: TestGateway, requestId: string): Promise<Record<string, unknown>> {
  return vi.waitFor(() => {
    const line = gw.logRecords().find((r) => r.msg === 'request' && r.requestId === requestId);
    if (!line) throw new Error(`no log line for ${requestId} yet`);
    return line;
  });
}

async function readBody(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function parseJson(body: Buffer): Record<string, unknown> {
  return JSON.parse(body.toString('utf8')) as Record<string, unknown>;
}

/** Both ways a client presents its token. */
const schemes = [
  { scheme: 'Bearer', authorization: (t: string) => bearer(t) },
  { scheme: 'Basic', authorization: (t: string) => basic('ci-project', t) },
];

/** An artifact of 100 bytes with an ETag, answering Range and If-None-Match itself. */
const RANGED = patternBytes(100);
const RANGED_ETAG = '"ranged-v1"';

function rangedArtifact(req: IncomingMessage, res: ServerResponse): void {
  if (req.headers['if-none-match'] === RANGED_ETAG) {
    res.writeHead(304, { etag: RANGED_ETAG });
    res.end();
    return;
  }
  const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (range) {
    const start = Number(range[1]);
    const end = Number(range[2]);
    res.writeHead(206, {
      'content-type': 'application/octet-stream',
      'content-range': `bytes ${start}-${end}/${RANGED.length}`,
      'content-length': end - start + 1,
      etag: RANGED_ETAG,
    });
    res.end(RANGED.subarray(start, end + 1));
    return;
  }
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': RANGED.length,
    etag: RANGED_ETAG,
  });
  res.end(RANGED);
}

describe('forwarding to an http upstream (TOLLGATE_UPSTREAM)', () => {
  let origin: Origin;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    origin = await startOrigin((req, res) =>
      req.url === '/ranged.bin' ? rangedArtifact(req, res) : defaultHandler(req, res),
    );
    gw = await startTestGateway({ TOLLGATE_UPSTREAM: origin.url });
    ({ token } = await gw.createToken());
  });
  afterAll(async () => {
    await gw?.close();
    await origin?.close();
  });

  describe('downloads', () => {
    it.each(schemes)(
      'returns the upstream status and body to a $scheme-authenticated GET',
      async ({ scheme, authorization }) => {
        const res = await fetch(`${gw.url}/pkg/${scheme}/artifact-1.0.tgz`, {
          headers: { authorization: authorization(token) },
        });
        expect(res.status).toBe(200);
        expect(await res.text()).toBe(`origin:/pkg/${scheme}/artifact-1.0.tgz`);
      },
    );

    it.each([404, 410, 500])('passes an upstream %i through with its status', async (status) => {
      const res = await fetch(`${gw.url}/status/${status}`, { headers: { authorization: bearer(token) } });
      expect(res.status).toBe(status);
      expect(await res.text()).toBe(`status ${status}\n`);
    });

    it.each(schemes)(
      'answers a $scheme-authenticated HEAD with the upstream headers and no body',
      async ({ authorization }) => {
        const res = await rawRequest(gw.url, {
          method: 'HEAD',
          path: '/bytes/1000',
          headers: { Authorization: authorization(token) },
        });
        expect(res.status).toBe(200);
        expect(res.headers['content-length']).toBe('1000');
        expect(res.body).toHaveLength(0);
        expect(origin.seen.at(-1)?.method).toBe('HEAD');
      },
    );

    it('marks responses Cache-Control: private so no shared cache stores them', async () => {
      const res = await fetch(`${gw.url}/bytes/10`, { headers: { authorization: bearer(token) } });
      expect(res.headers.get('cache-control')).toBe('private');
    });

    it('turns an upstream "public, max-age=300" into "private, max-age=300"', async () => {
      const res = await fetch(`${gw.url}/metadata/left-pad`, { headers: { authorization: bearer(token) } });
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('private, max-age=300');
    });

    it('answers Range: bytes=10-19 with 206 and exactly those bytes from the upstream', async () => {
      const res = await fetch(`${gw.url}/ranged.bin`, {
        headers: { authorization: bearer(token), range: 'bytes=10-19' },
      });
      expect(res.status).toBe(206);
      expect(res.headers.get('content-range')).toBe('bytes 10-19/100');
      expect(Buffer.from(await res.arrayBuffer())).toEqual(RANGED.subarray(10, 20));
      expect(origin.seen.at(-1)?.headers.range).toBe('bytes=10-19');
    });

    it('passes a conditional request through and returns the upstream 304', async () => {
      const res = await rawRequest(gw.url, {
        path: '/ranged.bin',
        headers: { Authorization: bearer(token), 'If-None-Match': RANGED_ETAG },
      });
      expect(res.status).toBe(304);
      expect(res.headers.etag).toBe(RANGED_ETAG);
      expect(res.body).toHaveLength(0);
    });

    it("streams a 20 MiB artifact whole (SHA-256 equal to the origin's)", async () => {
      const size = 20 * 1024 * 1024;
      const expected = createHash('sha256').update(patternBytes(size)).digest('hex');
      const res = await fetch(`${gw.url}/bytes/${size}`, { headers: { authorization: bearer(token) } });
      expect(res.status).toBe(200);
      const hash = createHash('sha256');
      let received = 0;
      for await (const chunk of res.body as ReadableStream<Uint8Array>) {
        hash.update(chunk);
        received += chunk.length;
      }
      expect(received).toBe(size);
      expect(hash.digest('hex')).toBe(expected);
    });
  });

  describe('paths and query strings reach the upstream byte for byte', () => {
    it.each([
      '/@scope%2fname',
      '/@scope%2Fname/-/name-1.0.0.tgz',
      '/simple/zope%2Binterface/',
      '/packages/a+b-1.0.tar.gz',
      '/search?a=1&b=%2F',
      '/search?q=%40scope%2Fname+x&size=20',
      '/~user/%7Etilde%20space',
    ])('%s', async (target) => {
      const res = await rawRequest(gw.url, { path: target, headers: { Authorization: bearer(token) } });
      expect(res.status).toBe(200);
      expect(seenAt(origin, target).url).toBe(target);
      expect(res.body.toString()).toBe(`origin:${target}`);
    });
  });

  describe('request headers the upstream receives', () => {
    it.each(schemes)("never receives the client's $scheme Authorization header", async ({ scheme, authorization }) => {
      const path = `/no-auth-leak/${scheme}`;
      const res = await rawRequest(gw.url, { path, headers: { Authorization: authorization(token) } });
      expect(res.status).toBe(200);
      const seen = seenAt(origin, path);
      expect(seen.headers.authorization).toBeUndefined();
      expect(JSON.stringify(seen.headers)).not.toContain(token);
      expect(JSON.stringify(seen.headers)).not.toContain(authorization(token).split(' ')[1]);
    });

    it('drops Proxy-Authorization and hop-by-hop headers, including those named in Connection', async () => {
      const path = '/hop-by-hop';
      const res = await rawRequest(gw.url, {
        path,
        headers: {
          Authorization: bearer(token),
          Connection: 'keep-alive, X-Hop-Secret, x-other-hop',
          'Keep-Alive': 'timeout=5, max=100',
          TE: 'trailers',
          Upgrade: 'h2c',
          'Proxy-Authorization': 'Basic cHJveHk6c2VjcmV0',
          'Proxy-Connection': 'keep-alive',
          'X-Hop-Secret': 'must-not-pass',
          'X-Other-Hop': 'must-not-pass',
          'If-None-Match': '"kept"',
          Accept: 'application/vnd.npm.install-v1+json',
          'User-Agent': 'npm/10.8.0',
        },
      });
      expect(res.status).toBe(200);
      const { headers } = seenAt(origin, path);
      for (const name of [
        'proxy-authorization',
        'proxy-connection',
        'keep-alive',
        'te',
        'upgrade',
        'x-hop-secret',
        'x-other-hop',
      ]) {
        expect(headers[name], name).toBeUndefined();
      }
      expect(headers.connection ?? 'keep-alive').toBe('keep-alive'); // the gateway's own hop, not the client's list
      expect(JSON.stringify(headers)).not.toContain('must-not-pass');
      // An end-to-end header a client sends for a download (an arbitrary X- header is not forwarded: the allow-list).
      expect(headers['if-none-match']).toBe('"kept"');
      expect(headers.accept).toBe('application/vnd.npm.install-v1+json');
      expect(headers['user-agent']).toBe('npm/10.8.0');
    });

    it('sends the upstream its own Host and sets X-Forwarded-For/-Proto/-Host from the socket', async () => {
      const path = '/forwarded-headers';
      const gatewayHost = new URL(gw.url).host;
      const res = await rawRequest(gw.url, { path, headers: { Authorization: bearer(token) } });
      expect(res.status).toBe(200);
      const { headers } = seenAt(origin, path);
      expect(headers.host).toBe(new URL(origin.url).host);
      expect(headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(headers['x-forwarded-proto']).toBe('http');
      expect(headers['x-forwarded-host']).toBe(gatewayHost);
      expect(headers['x-request-id']).toBe(res.headers['x-request-id']);
    });

    it("ignores a client's own X-Forwarded-*, Forwarded and X-Real-IP when the peer is not a trusted proxy", async () => {
      const path = '/spoofed-forwarded';
      const res = await rawRequest(gw.url, {
        path,
        headers: {
          Authorization: bearer(token),
          'X-Forwarded-For': '203.0.113.7',
          'X-Forwarded-Proto': 'https',
          'X-Forwarded-Host': 'evil.example',
          Forwarded: 'for=203.0.113.7;proto=https',
          'X-Real-IP': '203.0.113.7',
        },
      });
      expect(res.status).toBe(200);
      const { headers } = seenAt(origin, path);
      expect(headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(headers['x-forwarded-proto']).toBe('http');
      expect(headers['x-forwarded-host']).toBe(new URL(gw.url).host);
      expect(headers.forwarded).toBeUndefined();
      expect(headers['x-real-ip']).toBeUndefined();
      const line = await requestLog(gw, res.headers['x-request-id']!);
      expect(line.clientIp).toBe('127.0.0.1');
    });
  });
});

describe('behind a trusted proxy (TOLLGATE_TRUSTED_PROXIES)', () => {
  let origin: Origin;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    origin = await startOrigin();
    gw = await startTestGateway({ TOLLGATE_UPSTREAM: origin.url, TOLLGATE_TRUSTED_PROXIES: '127.0.0.1' });
    ({ token } = await gw.createToken());
  });
  afterAll(async () => {
    await gw?.close();
    await origin?.close();
  });

  it('uses the real client address from X-Forwarded-For and keeps the chain, adding the proxy hop', async () => {
    const path = '/behind-proxy';
    const res = await rawRequest(gw.url, {
      path,
      headers: {
        Authorization: bearer(token),
        'X-Forwarded-For': '198.51.100.9, 203.0.113.7',
        'X-Forwarded-Proto': 'https',
      },
    });
    expect(res.status).toBe(200);
    const { headers } = seenAt(origin, path);
    expect(headers['x-forwarded-for']).toBe('198.51.100.9, 203.0.113.7, 127.0.0.1');
    expect(headers['x-forwarded-proto']).toBe('https');
    const line = await requestLog(gw, res.headers['x-request-id']!);
    expect(line.clientIp).toBe('203.0.113.7');
  });

  it('uses the socket address when the trusted proxy sends no X-Forwarded-For', async () => {
    const path = '/proxy-without-xff';
    const res = await rawRequest(gw.url, { path, headers: { Authorization: bearer(token) } });
    expect(res.status).toBe(200);
    expect(seenAt(origin, path).headers['x-forwarded-for']).toBe('127.0.0.1');
  });
});

describe('with TOLLGATE_PUBLIC_URL', () => {
  let origin: Origin;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    origin = await startOrigin();
    gw = await startTestGateway({
      TOLLGATE_UPSTREAM: origin.url,
      TOLLGATE_PUBLIC_URL: 'https://artifacts.example.com',
    });
    ({ token } = await gw.createToken());
  });
  afterAll(async () => {
    await gw?.close();
    await origin?.close();
  });

  it('tells the upstream the public host in X-Forwarded-Host, whatever Host the client sent', async () => {
    const res = await rawRequest(gw.url, {
      path: '/public-host',
      headers: { Host: 'internal-name:8080', Authorization: bearer(token) },
    });
    expect(res.status).toBe(200);
    expect(seenAt(origin, '/public-host').headers['x-forwarded-host']).toBe('artifacts.example.com');
  });
});

describe('with routes from a config file', () => {
  const npmBodies: string[] = [];
  let npmFirstChunk = deferred();
  let npm: Origin;
  let pypi: Origin;
  let dir: TempDir;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    npm = await startOrigin((req, res) => {
      if (req.method !== 'POST') return defaultHandler(req, res);
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        npmFirstChunk.resolve();
      });
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        npmBodies.push(body);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ received: body }));
      });
    });
    pypi = await startOrigin();
    dir = tempDir();
    dir.write('files/hello.txt', 'hello from the directory route\n');
    const config = dir.configFile([
      {
        prefix: '/npm/',
        upstream: `${npm.url}/registry`,
        ecosystem: 'npm',
        upstreamAuth: { type: 'bearer', token: 'upstream-npm-credential' },
        allowPost: ['/-/npm/v1/security/'],
      },
      {
        prefix: '/pypi/',
        upstream: pypi.url,
        ecosystem: 'pypi',
        upstreamAuth: { type: 'header', name: 'X-Api-Key', value: 'upstream-pypi-key' },
      },
      { prefix: '/files/', upstream: `${dir.path}/files` },
    ]);
    gw = await startTestGateway({ TOLLGATE_CONFIG: config });
    ({ token } = await gw.createToken());
  });
  afterAll(async () => {
    await gw?.close();
    await npm?.close();
    await pypi?.close();
    dir?.remove();
  });

  describe('routing', () => {
    it('sends /npm/ to the npm upstream under its base path', async () => {
      const res = await rawRequest(gw.url, { path: '/npm/@types%2fnode', headers: { Authorization: bearer(token) } });
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe('origin:/registry/@types%2fnode');
      expect(pypi.seen.some((r) => r.url.includes('@types'))).toBe(false);
    });

    it('sends /pypi/ to the pypi upstream', async () => {
      const res = await fetch(`${gw.url}/pypi/simple/requests/`, { headers: { authorization: bearer(token) } });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('origin:/simple/requests/');
      expect(npm.seen.some((r) => r.url.includes('/simple/requests/'))).toBe(false);
    });

    it('serves /files/ from its directory', async () => {
      const res = await fetch(`${gw.url}/files/hello.txt`, { headers: { authorization: bearer(token) } });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('hello from the directory route\n');
    });

    it.each([
      ['/npm', '/registry/'],
      ['/npm?cache=1', '/registry/?cache=1'],
    ])('matches %s (no trailing slash) to the /npm/ route', async (target, upstreamPath) => {
      const res = await rawRequest(gw.url, { path: target, headers: { Authorization: bearer(token) } });
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe(`origin:${upstreamPath}`);
    });

    it.each(['/maven/org/x/1.0/x-1.0.jar', '/npmx/left-pad', '/NPM/left-pad', '/'])(
      'answers 404 to a valid token for %s when no route matches and no "/" route exists',
      async (target) => {
        const before = npm.seen.length + pypi.seen.length;
        const res = await rawRequest(gw.url, { path: target, headers: { Authorization: bearer(token) } });
        expect(res.status).toBe(404);
        expect(npm.seen.length + pypi.seen.length).toBe(before);
      },
    );

    it('answers 401, not 404, to an unknown prefix without a token (routes are not revealed)', async () => {
      const res = await rawRequest(gw.url, { path: '/maven/secret-layout' });
      expect(res.status).toBe(401);
    });
  });

  describe('upstream credentials', () => {
    it.each(schemes)(
      "gives the npm upstream the route's bearer credential instead of the client's $scheme header",
      async ({ scheme, authorization }) => {
        const res = await rawRequest(gw.url, {
          path: `/npm/cred-${scheme}`,
          headers: { Authorization: authorization(token) },
        });
        expect(res.status).toBe(200);
        const seen = seenAt(npm, `/registry/cred-${scheme}`);
        expect(seen.headers.authorization).toBe('Bearer upstream-npm-credential');
        expect(JSON.stringify(seen.headers)).not.toContain(token);
      },
    );

    it("gives the pypi upstream the route's header credential and no Authorization at all", async () => {
      const res = await rawRequest(gw.url, {
        path: '/pypi/cred-header',
        headers: { Authorization: basic('proj', token) },
      });
      expect(res.status).toBe(200);
      const seen = seenAt(pypi, '/cred-header');
      expect(seen.headers['x-api-key']).toBe('upstream-pypi-key');
      expect(seen.headers.authorization).toBeUndefined();
      expect(JSON.stringify(seen.headers)).not.toContain(token);
    });
  });

  describe('methods', () => {
    it('streams an allowed POST body to the upstream as it arrives and returns the upstream answer', async () => {
      npmFirstChunk = deferred();
      const req = http.request(`${gw.url}/npm/-/npm/v1/security/audits/quick`, {
        method: 'POST',
        headers: { authorization: bearer(token), 'content-type': 'application/json' },
      });
      const response = once(req, 'response') as Promise<[IncomingMessage]>;
      req.write('{"name":"app",');
      await npmFirstChunk.promise; // the upstream has the first part before the client sends the rest
      req.end('"requires":{"left-pad":"1.3.0"}}');
      const [res] = await response;
      expect(res.statusCode).toBe(200);
      const body = parseJson(await readBody(res));
      expect(body.received).toBe('{"name":"app","requires":{"left-pad":"1.3.0"}}');
      const seen = seenAt(npm, '/registry/-/npm/v1/security/audits/quick');
      expect(seen.method).toBe('POST');
      expect(seen.headers.authorization).toBe('Bearer upstream-npm-credential');
    });

    it('forwards a POST with Content-Length to an allowed path', async () => {
      const payload = JSON.stringify({ 'left-pad': ['1.3.0'] });
      const res = await fetch(`${gw.url}/npm/-/npm/v1/security/advisories/bulk`, {
        method: 'POST',
        headers: { authorization: bearer(token), 'content-type': 'application/json' },
        body: payload,
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ received: payload });
    });

    it('answers a POST sent with Expect: 100-continue itself and gives the upstream the body without Expect', async () => {
      const payload = JSON.stringify({ 'left-pad': ['1.3.0'] });
      const req = http.request(`${gw.url}/npm/-/npm/v1/security/advisories/bulk`, {
        method: 'POST',
        headers: {
          authorization: bearer(token),
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          expect: '100-continue',
        },
      });
      req.on('continue', () => req.end(payload)); // the body only after the gateway's 100 Continue
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      expect(res.statusCode).toBe(200);
      expect(parseJson(await readBody(res))).toEqual({ received: payload });
      const seen = npm.seen.filter((r) => r.url === '/registry/-/npm/v1/security/advisories/bulk').at(-1)!;
      expect(seen.headers.expect).toBeUndefined();
    });

    const refused = [
      { method: 'POST', path: '/npm/left-pad' },
      { method: 'POST', path: '/pypi/-/npm/v1/security/audits' },
      { method: 'POST', path: '/files/-/npm/v1/security/audits' },
      { method: 'PUT', path: '/npm/left-pad' },
      { method: 'DELETE', path: '/npm/left-pad/-/left-pad-1.3.0.tgz' },
      { method: 'PATCH', path: '/npm/left-pad' },
      { method: 'OPTIONS', path: '/npm/left-pad' },
      { method: 'PUT', path: '/files/hello.txt' },
    ];
    const withAndWithoutToken = refused.flatMap((r) => [
      { ...r, auth: 'with a valid token' },
      { ...r, auth: 'without a token' },
    ]);

    it.each(withAndWithoutToken)(
      'refuses $method $path $auth with 405, Allow: GET, HEAD, and the upstream sees nothing',
      async ({ method, path, auth }) => {
        const before = npm.seen.length + pypi.seen.length;
        const headers: Record<string, string> = { 'Content-Type': 'application/json' };
        if (auth === 'with a valid token') headers.Authorization = bearer(token);
        const res = await rawRequest(gw.url, {
          method,
          path,
          headers,
          body: method === 'OPTIONS' || method === 'DELETE' ? undefined : '{"publish":true}',
        });
        expect(res.status).toBe(405);
        expect(res.headers.allow).toBe('GET, HEAD');
        expect(npm.seen.length + pypi.seen.length).toBe(before);
        expect(readFileSync(`${dir.path}/files/hello.txt`, 'utf8')).toBe('hello from the directory route\n');
      },
    );
  });
});

describe('upstream failures', () => {
  let faulty: FaultyOrigin;
  let gw: TestGateway;
  let token: string;
  const partial = patternBytes(100);
  const large = patternBytes(32 * 1024 * 1024);
  /** When the faulty origin's socket took the last byte of /large. */
  let largeFlushedAt = 0;
  /** A reset right after a write can overtake the data; the resets wait until the client has the head. */
  let clientHasHead = deferred();
  const resetOnceClientHasHead = (socket: Socket): void => {
    void clientHasHead.promise.then(() => socket.resetAndDestroy());
  };

  beforeAll(async () => {
    faulty = await startFaultyOrigin((socket, head) => {
      const path = head.split(' ')[1];
      switch (path) {
        case '/never-answers':
          return; // accepts, reads, says nothing
        case '/resets-before-head':
          socket.resetAndDestroy();
          return;
        case '/resets-mid-body-chunked':
          socket.write(
            'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n',
          );
          socket.write(`${partial.length.toString(16)}\r\n`);
          socket.write(partial);
          socket.write('\r\n');
          resetOnceClientHasHead(socket);
          return;
        case '/resets-mid-body-length':
          socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n');
          socket.write(partial);
          resetOnceClientHasHead(socket);
          return;
        case '/short-body':
          socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n');
          socket.end(partial);
          return;
        case '/complete-body':
          socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n');
          socket.write(partial);
          return; // every byte sent; the connection stays open
        case '/early-hints':
          socket.write('HTTP/1.1 103 Early Hints\r\nLink: </left-pad.tgz>; rel=preload\r\n\r\n');
          socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n');
          socket.write(partial);
          return;
        case '/stalls-mid-body':
          socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n');
          socket.write(partial);
          return; // and then silence, past TOLLGATE_UPSTREAM_TIMEOUT_MS
        case '/trickles': {
          // 8 chunks 150 ms apart: 1.2 s in all, never 300 ms without a byte.
          socket.write(
            `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${8 * partial.length}\r\n\r\n`,
          );
          let sent = 0;
          const timer = setInterval(() => {
            socket.write(partial);
            if (++sent === 8) clearInterval(timer);
          }, 150);
          socket.once('close', () => clearInterval(timer));
          return;
        }
        case '/large':
          socket.write(
            `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${large.length}\r\n\r\n`,
          );
          socket.write(large, () => {
            largeFlushedAt = performance.now();
          });
          return;
        default:
          socket.end('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      }
    });
    gw = await startTestGateway({ TOLLGATE_UPSTREAM: faulty.url, TOLLGATE_UPSTREAM_TIMEOUT_MS: '300' });
    ({ token } = await gw.createToken());
  });
  afterAll(async () => {
    await gw?.close();
    await faulty?.close();
  });

  function expectErrorJson(
    res: { status: number; headers: Record<string, string>; body: Buffer },
    status: number,
    code: string,
  ): void {
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = parseJson(res.body);
    expect(body.code).toBe(code);
    expect(body.requestId).toEqual(expect.any(String));
    expect(body.requestId).toBe(res.headers['x-request-id']);
  }

  it('answers 502 JSON with a request id when the upstream port is closed', async () => {
    const down = await startTestGateway({ TOLLGATE_UPSTREAM: `http://127.0.0.1:${await closedPort()}` });
    try {
      const { token: downToken } = await down.createToken();
      const res = await rawRequest(down.url, {
        path: '/left-pad/-/left-pad-1.3.0.tgz',
        headers: { Authorization: bearer(downToken) },
      });
      expectErrorJson(res, 502, 'TOLLGATE_ERR_UPSTREAM_UNREACHABLE');
      expect(res.complete).toBe(true);
    } finally {
      await down.close();
    }
  });

  it('answers 502 JSON when the upstream resets the connection before answering', async () => {
    const res = await rawRequest(gw.url, { path: '/resets-before-head', headers: { Authorization: bearer(token) } });
    expectErrorJson(res, 502, 'TOLLGATE_ERR_UPSTREAM_UNREACHABLE');
  });

  it('answers 504 JSON with a request id when the upstream never answers within TOLLGATE_UPSTREAM_TIMEOUT_MS', async () => {
    const res = await rawRequest(gw.url, { path: '/never-answers', headers: { Authorization: bearer(token) } });
    expectErrorJson(res, 504, 'TOLLGATE_ERR_UPSTREAM_TIMEOUT');
    expect(res.complete).toBe(true);
  });

  it('relays a body that arrives slowly but steadily: the timeout counts silence, not the whole transfer', async () => {
    const res = await rawRequest(gw.url, { path: '/trickles', headers: { Authorization: bearer(token) } });
    expect(res.status).toBe(200);
    expect(res.complete).toBe(true);
    expect(res.body).toEqual(Buffer.concat(Array.from({ length: 8 }, () => partial)));
  });

  it('times out only the requests whose upstream went silent, while others in flight go on', async () => {
    const get = (path: string) => rawRequest(gw.url, { path, headers: { Authorization: bearer(token) } });
    const results = await Promise.all(
      ['/trickles', '/never-answers', '/trickles', '/never-answers', '/complete-body', '/trickles'].map(get),
    );
    expect(results.map((r) => [r.status, r.complete])).toEqual([
      [200, true],
      [504, true],
      [200, true],
      [504, true],
      [200, true],
      [200, true],
    ]);
    expect(results[0]!.body.length).toBe(8 * partial.length);
  });

  it('does not cut a download whose client holds it back for longer than the timeout: backpressure is not silence', async () => {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      http.get(`${gw.url}/large`, { headers: { authorization: bearer(token) } }, resolve).on('error', reject);
    });
    res.pause();
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // 5 timeouts
    const resumedAt = performance.now();
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    expect(res.complete).toBe(true);
    expect(Buffer.concat(chunks).equals(large)).toBe(true);
    // The pause reached the origin: it could not hand over the last byte until the client read again.
    expect(largeFlushedAt).toBeGreaterThan(resumedAt);
  });

  it('delivers a response complete when the upstream sends every byte (control for the cuts below)', async () => {
    const res = await rawRequest(gw.url, { path: '/complete-body', headers: { Authorization: bearer(token) } });
    expect(res.status).toBe(200);
    expect(res.complete).toBe(true);
    expect(res.body).toEqual(partial);
  });

  it('relays the final answer after an informational 103 Early Hints, and only that', async () => {
    const res = await rawRequest(gw.url, { path: '/early-hints', headers: { Authorization: bearer(token) } });
    expect(res.status).toBe(200);
    expect(res.complete).toBe(true);
    expect(res.body).toEqual(partial);
  });

  const truncations = ['/resets-mid-body-chunked', '/resets-mid-body-length', '/short-body', '/stalls-mid-body'];

  it.each([
    { path: '/resets-before-head', kind: 'reset' },
    { path: '/never-answers', kind: 'timeout' },
    { path: '/resets-mid-body-chunked', kind: 'reset' },
    { path: '/resets-mid-body-length', kind: 'reset' },
    { path: '/short-body', kind: 'reset' },
    { path: '/stalls-mid-body', kind: 'timeout' },
  ])(
    'names the failure in the request log line when the upstream $path: upstreamError "$kind"',
    async ({ path, kind }) => {
      clientHasHead = deferred();
      const res = await rawRequest(gw.url, {
        path,
        headers: { Authorization: bearer(token) },
        onHead: () => clientHasHead.resolve(),
      });
      const line = await requestLog(gw, res.headers['x-request-id']!);
      expect(line.upstreamError).toBe(kind);
    },
  );

  it.each(truncations)(
    'cuts the client connection, never a clean complete response, when the upstream %s',
    async (path) => {
      clientHasHead = deferred();
      const res = await rawRequest(gw.url, {
        path,
        headers: { Authorization: bearer(token) },
        onHead: () => clientHasHead.resolve(),
      });
      expect(res.status).toBe(200);
      expect(res.complete).toBe(false);
      expect(res.body.length).toBeLessThanOrEqual(partial.length);
    },
  );

  it.each(truncations)(
    'makes a real client (fetch) fail instead of saving a short file when the upstream %s',
    async (path) => {
      clientHasHead = deferred();
      const res = await fetch(`${gw.url}${path}`, { headers: { authorization: bearer(token) } });
      clientHasHead.resolve();
      expect(res.status).toBe(200);
      await expect(res.arrayBuffer()).rejects.toThrow();
    },
  );
});

describe('a pooled upstream connection that closes as a request goes out', () => {
  it('sends a GET once more on another connection: the client gets the artifact, not a 502', async () => {
    // Each connection answers its first request and is closed, unanswered, on its second: what
    // a pooled connection looks like when the upstream's idle timeout fires as a request arrives.
    const answered = new WeakSet<Socket>();
    const origin = await startFaultyOrigin((socket) => {
      if (answered.has(socket)) {
        socket.destroy();
        return;
      }
      answered.add(socket);
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 2\r\n\r\nok');
    });
    const gw = await startTestGateway({ TOLLGATE_UPSTREAM: origin.url });
    try {
      const { token } = await gw.createToken();
      const get = () => rawRequest(gw.url, { path: '/artifact.bin', headers: { Authorization: bearer(token) } });
      expect((await get()).status).toBe(200);
      const second = await get();
      expect(second.status).toBe(200);
      expect(second.body.toString()).toBe('ok');
      expect(origin.requests).toHaveLength(3); // the first, the one cut, and its retry
    } finally {
      await gw.close();
      await origin.close();
    }
  });

  it('does not send a GET a third time: an upstream that keeps closing gets the client a 502', async () => {
    const origin = await startFaultyOrigin((socket) => socket.destroy());
    const gw = await startTestGateway({ TOLLGATE_UPSTREAM: origin.url });
    try {
      const { token } = await gw.createToken();
      const res = await rawRequest(gw.url, { path: '/artifact.bin', headers: { Authorization: bearer(token) } });
      expect(res.status).toBe(502);
      expect(origin.requests).toHaveLength(2);
    } finally {
      await gw.close();
      await origin.close();
    }
  });
});

describe('a client that goes away', () => {
  let events: { requestSeen: Deferred<void>; responseClosed: Deferred<{ finished: boolean }> };
  let origin: Origin;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      const current = events;
      res.once('close', () => current.responseClosed.resolve({ finished: res.writableFinished }));
      current.requestSeen.resolve();
      if (req.url === '/slow-download') {
        // Headers and a first chunk, then hold the rest back until the connection goes.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 10 * 1024 * 1024 });
        res.write(patternBytes(64 * 1024));
      }
      // '/slow-headers': nothing at all until the connection goes.
    });
    gw = await startTestGateway({ TOLLGATE_UPSTREAM: origin.url });
    ({ token } = await gw.createToken());
  });
  afterAll(async () => {
    await gw?.close();
    await origin?.close();
  });

  it('aborts the upstream request when the client disconnects mid-download', async () => {
    events = { requestSeen: deferred(), responseClosed: deferred() };
    const req = http.get(`${gw.url}/slow-download`, { headers: { authorization: bearer(token) }, agent: false });
    req.on('error', () => {});
    req.on('response', (res) => res.once('data', () => req.destroy()));
    const { finished } = await events.responseClosed.promise;
    expect(finished).toBe(false);
  });

  it('aborts the upstream request when the client disconnects while waiting for headers', async () => {
    events = { requestSeen: deferred(), responseClosed: deferred() };
    const req = http.get(`${gw.url}/slow-headers`, { headers: { authorization: bearer(token) }, agent: false });
    req.on('error', () => {});
    await events.requestSeen.promise;
    req.destroy();
    const { finished } = await events.responseClosed.promise;
    expect(finished).toBe(false);
  });
});

describe('memory held by a download in flight', () => {
  let origin: Origin;
  let gw: TestGateway;
  let token: string;
  let release: Deferred<void>;

  beforeAll(async () => {
    origin = await startOrigin((_req, res) => {
      // Headers and a first piece of body in one read, then the rest once the test says so.
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 2000 });
      res.write(patternBytes(1000));
      void release.promise.then(() => res.end(patternBytes(1000, 1000)));
    });
    gw = await startTestGateway({ TOLLGATE_UPSTREAM: origin.url });
    ({ token } = await gw.createToken());
  });
  afterAll(async () => {
    release?.resolve();
    await gw?.close();
    await origin?.close();
  });

  it('lets go of the socket read that carried the upstream headers (up to 64 KiB) while the body is still coming', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    release = deferred();
    // undici publishes the raw headers it parsed: views of that socket read's ArrayBuffer.
    let headerRead: WeakRef<ArrayBufferLike> | undefined;
    const onHeaders = (message: unknown) => {
      const first = (message as { response: { headers: unknown[] } }).response.headers[0];
      if (Buffer.isBuffer(first)) headerRead = new WeakRef(first.buffer);
    };
    diagnosticsChannel.subscribe('undici:request:headers', onHeaders);
    try {
      const req = http.get(`${gw.url}/in-flight.bin`, { headers: { authorization: bearer(token) }, agent: false });
      const res = await once(req, 'response').then(([r]) => r as IncomingMessage);
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      await vi.waitFor(() => expect(Buffer.concat(chunks).length).toBe(1000));
      expect(headerRead, 'undici published the raw headers as buffers').toBeDefined();
      // The download is in flight (1000 of 2000 bytes): the header read must be collectable now.
      await vi.waitFor(
        async () => {
          await new Promise((r) => setTimeout(r, 10));
          gc();
          expect(headerRead!.deref()).toBeUndefined();
        },
        { timeout: 3000, interval: 20 },
      );
      release.resolve();
      await once(res, 'end');
      expect(Buffer.concat(chunks).equals(Buffer.concat([patternBytes(1000), patternBytes(1000, 1000)]))).toBe(true);
    } finally {
      diagnosticsChannel.unsubscribe('undici:request:headers', onHeaders);
    }
  });
});

describe('TLS on the proxy port (TOLLGATE_TLS_CERT, TOLLGATE_TLS_KEY)', () => {
  let dir: TempDir;
  let cert: Buffer;
  let origin: Origin;
  let gw: TestGateway;
  let httpsUrl: string;
  let token: string;

  beforeAll(async () => {
    dir = tempDir('tollgate-tls-');
    let certFile: string;
    let keyFile: string;
    ({ certFile, keyFile, cert } = selfSignedCert(dir.path));
    origin = await startOrigin();
    gw = await startTestGateway({
      TOLLGATE_UPSTREAM: origin.url,
      TOLLGATE_TLS_CERT: certFile,
      TOLLGATE_TLS_KEY: keyFile,
    });
    httpsUrl = `https://127.0.0.1:${gw.gateway.proxyPort}`;
    ({ token } = await gw.createToken());
  });
  afterAll(async () => {
    await gw?.close();
    await origin?.close();
    dir?.remove();
  });

  it('speaks HTTPS and serves a download, telling the upstream X-Forwarded-Proto: https', async () => {
    const req = https.get(`${httpsUrl}/bytes/65536`, {
      ca: cert,
      headers: { authorization: bearer(token) },
      agent: false,
    });
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    expect(res.statusCode).toBe(200);
    expect(await readBody(res)).toEqual(patternBytes(65536));
    expect(seenAt(origin, '/bytes/65536').headers['x-forwarded-proto']).toBe('https');
  });

  it('does not answer plain HTTP on the TLS port with an artifact', async () => {
    const result = await rawRequest(`http://127.0.0.1:${gw.gateway.proxyPort}`, {
      path: '/bytes/10',
      headers: { Authorization: bearer(token) },
    }).then(
      (res) => res.status,
      () => 'refused',
    );
    expect(result === 'refused' || result === 400).toBe(true);
    expect(origin.seen.filter((r) => r.url === '/bytes/10')).toHaveLength(0);
  });
});

describe('an https upstream (gateway in its own process)', () => {
  let dir: TempDir;
  let tls: ReturnType<typeof selfSignedCert>;
  let upstream: https.Server;
  let upstreamUrl: string;
  let seen = 0;
  let token: string;

  beforeAll(async () => {
    dir = tempDir('tollgate-https-upstream-');
    tls = selfSignedCert(dir.path);
    upstream = https.createServer({ cert: tls.cert, key: tls.key }, (_req, res) => {
      seen++;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '100' });
      res.end(patternBytes(100));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `https://127.0.0.1:${(upstream.address() as { port: number }).port}/`;
    const store = createSqliteTokenStore({ dataDir: dir.path });
    ({ token } = await createToken(store, { name: 'https-upstream', type: 'production', createdBy: 'test' }));
    await store.close();
  });
  afterAll(async () => {
    upstream?.closeAllConnections();
    await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
    dir?.remove();
  });

  it(
    'verifies the upstream certificate against NODE_EXTRA_CA_CERTS (a private CA) and serves the artifact',
    { timeout: 30_000 },
    async () => {
      const gw = await startSourceGateway({
        TOLLGATE_UPSTREAM: upstreamUrl,
        TOLLGATE_DATA_DIR: dir.path,
        NODE_EXTRA_CA_CERTS: tls.certFile,
      });
      try {
        const res = await rawRequest(gw.url, { path: '/artifact.bin', headers: { Authorization: bearer(token) } });
        expect(res.status).toBe(200);
        expect(res.body).toEqual(patternBytes(100));
      } finally {
        await gw.stop();
      }
    },
  );

  it(
    'refuses an upstream whose certificate it cannot verify: 502, and the upstream gets no request',
    { timeout: 30_000 },
    async () => {
      const before = seen;
      // The system's CA bundle only: a self-signed certificate is not in it.
      const gw = await startSourceGateway({
        TOLLGATE_UPSTREAM: upstreamUrl,
        TOLLGATE_DATA_DIR: dir.path,
        NODE_EXTRA_CA_CERTS: '',
      });
      try {
        const res = await rawRequest(gw.url, { path: '/artifact.bin', headers: { Authorization: bearer(token) } });
        expect(res.status).toBe(502);
        expect(seen).toBe(before);
        // The log line (stdout is written in blocks, at least every 200 ms) names the TLS failure.
        const line = await vi.waitFor(() => {
          const found = gw
            .output()
            .split('\n')
            .find((l) => l.includes('"msg":"request"'));
          if (!found) throw new Error('no request log line yet');
          return found;
        });
        expect((JSON.parse(line) as { upstreamError?: string }).upstreamError).toMatch(/CERT|SELF_SIGNED/);
      } finally {
        await gw.stop();
      }
    },
  );
});

describe('pooled upstream connections', () => {
  /**
   * An upstream that counts the connections opened and closed, closing idle ones itself after
   * `keepAliveTimeout` (announced as "Keep-Alive: timeout=N"), and a gateway in front of it.
   */
  async function pooledUpstream(keepAliveTimeout: number, upstreamTimeoutMs: number) {
    const counts = { opened: 0, closed: 0 };
    const upstream = http.createServer({ keepAliveTimeout }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '2' });
      res.end('ok');
    });
    upstream.on('connection', (socket: Socket) => {
      counts.opened++;
      socket.on('close', () => counts.closed++);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const { port } = upstream.address() as { port: number };
    const gateway = await startTestGateway({
      TOLLGATE_UPSTREAM: `http://127.0.0.1:${port}/`,
      TOLLGATE_UPSTREAM_TIMEOUT_MS: String(upstreamTimeoutMs),
    });
    const { token } = await gateway.createToken();
    return {
      counts,
      get: () =>
        rawRequest(gateway.url, { path: '/left-pad/-/left-pad-1.3.0.tgz', headers: { Authorization: bearer(token) } }),
      close: async () => {
        await gateway.close();
        upstream.closeAllConnections();
        await new Promise<void>((resolve) => upstream.close(() => resolve()));
      },
    };
  }

  it('closes a kept-alive upstream connection idle for TOLLGATE_UPSTREAM_TIMEOUT_MS and opens a new one for the next request', async () => {
    const pooled = await pooledUpstream(60_000, 300);
    try {
      expect((await pooled.get()).status).toBe(200);
      expect((await pooled.get()).status).toBe(200);
      expect(pooled.counts.opened).toBe(1); // kept alive and reused
      await vi.waitFor(() => expect(pooled.counts.closed).toBe(1), { timeout: 5_000, interval: 50 });
      expect((await pooled.get()).status).toBe(200);
      expect(pooled.counts.opened).toBe(2);
    } finally {
      await pooled.close();
    }
  });

  it('closes a pooled connection before the upstream does when the upstream announces a shorter Keep-Alive timeout', async () => {
    // Node's server announces "Keep-Alive: timeout=3" and closes idle connections after 3 s.
    const pooled = await pooledUpstream(3_000, 30_000);
    try {
      expect((await pooled.get()).status).toBe(200);
      expect((await pooled.get()).status).toBe(200);
      expect(pooled.counts.opened).toBe(1);
      const idleSince = Date.now();
      await vi.waitFor(() => expect(pooled.counts.closed).toBe(1), { timeout: 5_000, interval: 50 });
      // Closed by the gateway (2 s before the upstream's announced 3 s), so a request can never be
      // sent on a connection the upstream is closing at that moment.
      expect(Date.now() - idleSince).toBeLessThan(2_500);
      expect((await pooled.get()).status).toBe(200);
      expect(pooled.counts.opened).toBe(2);
    } finally {
      await pooled.close();
    }
  });
});
