import { gzipSync, gunzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRewriteStream, replaceAll, replacementsFor } from '../../src/proxy/rewrite.js';
import { resolveLocation } from '../../src/proxy/forward/location.js';
import { npmTarballUrl, startOrigin, type Origin } from '../helpers/origin.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { tempDir } from '../helpers/route-config.js';

const UP = 'http://127.0.0.1:4873/';
const PUB = 'https://gw.example/npm/';

async function rewriteInChunks(input: string, chunkSize: number): Promise<string> {
  const bytes = Buffer.from(input);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  return text(Readable.from(chunks).pipe(createRewriteStream(replacementsFor([UP], PUB))));
}

describe('the body rewriter', () => {
  const doc = JSON.stringify({
    name: '@acme/lib',
    versions: {
      '1.0.0': { dist: { tarball: `${UP}@acme/lib/-/lib-1.0.0.tgz` } },
      '1.1.0': { dist: { tarball: `${UP}@acme/lib/-/lib-1.1.0.tgz` } },
    },
    escaped: 'ESCAPED',
    unicode: 'żółw ✓',
  }).replace('"ESCAPED"', String.raw`"http:\/\/127.0.0.1:4873\/p2\/x.json"`); // as PHP's json_encode writes it
  const expected = replaceAll(doc, replacementsFor([UP], PUB));

  it('replaces every upstream URL, JSON-escaped ones too', () => {
    expect(expected).not.toContain('127.0.0.1:4873');
    expect(expected).toContain(`${PUB}@acme/lib/-/lib-1.1.0.tgz`);
    expect(expected).toContain(String.raw`https:\/\/gw.example\/npm\/p2\/x.json`);
  });

  it.each([1, 2, 3, 7, 13, 64, 100_000])(
    'gives the same result when the body arrives in %i-byte chunks',
    async (size) => {
      expect(await rewriteInChunks(doc, size)).toBe(expected);
    },
  );

  it('never rewrites its own output again, even when the public base extends the upstream base', () => {
    const r = replacementsFor(['http://a/'], 'http://a/b/');
    expect(replaceAll('x http://a/y http://a/', r)).toBe('x http://a/b/y http://a/b/');
  });

  it('rewrites Location headers on the upstream, relative ones too (with the route prefix), and leaves other origins to the gateway', () => {
    const asked = `${UP}@acme/x`;
    expect(resolveLocation(`${UP}@acme/lib`, asked, [UP], PUB)).toEqual({
      kind: 'gateway',
      location: `${PUB}@acme/lib`,
    });
    expect(resolveLocation('/simple/x/', asked, [UP], PUB)).toEqual({ kind: 'gateway', location: `${PUB}simple/x/` });
    expect(resolveLocation('lib2', asked, [UP], PUB)).toEqual({ kind: 'gateway', location: `${PUB}@acme/lib2` });
    const elsewhere = (location: string) => {
      const got = resolveLocation(location, asked, [UP], PUB);
      return got.kind === 'elsewhere' ? got.target.host : got.kind;
    };
    expect(elsewhere('https://bucket.s3.example/obj?sig=1')).toBe('bucket.s3.example');
    expect(elsewhere('//evil.example/x')).toBe('evil.example');
  });

  it.each([
    ['/\\evil.example:8443/x', 'evil.example:8443'],
    ['\\\\evil.example/x', 'evil.example'],
    ['/\t/evil.example/x', 'evil.example'],
    ['/\n/evil.example/x', 'evil.example'],
    ['http:evil.example/x', null],
    ['HTTPS://EVIL.example/x', 'evil.example'],
  ])(
    'prevents sending a client elsewhere: Location %j is another origin (%s) to the gateway, as to a WHATWG client',
    (location, host) => {
      const got = resolveLocation(location, `${UP}@acme/x`, [UP], PUB);
      if (host === null) expect(got.kind).not.toBe('elsewhere');
      else expect(got.kind === 'elsewhere' ? got.target.host : got.kind).toBe(host);
    },
  );

  it('calls an unparsable or non-http Location invalid', () => {
    for (const location of ['http://[::1', 'ftp://files.example/x', 'javascript:alert(1)', 'http://exa mple.com/']) {
      expect(resolveLocation(location, `${UP}x`, [UP], PUB).kind).toBe('invalid');
    }
  });
});

describe('rewriting through the gateway', () => {
  let origin: Origin;
  let storage: Origin;
  let gw: TestGateway;
  let token: string;
  let files: ReturnType<typeof tempDir>;

  beforeAll(async () => {
    storage = await startOrigin((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(`object:${req.url}`);
    });
    origin = await startOrigin((req, res) => {
      const self = `http://127.0.0.1:${origin.port}/registry/`;
      const packument = JSON.stringify({
        name: 'lib',
        versions: { '1.0.0': { dist: { tarball: `${self}lib/-/lib-1.0.0.tgz` } } },
      });
      if (req.url === '/registry/lib') {
        res.writeHead(200, {
          'content-type': 'application/json',
          etag: '"abc"',
          'content-length': Buffer.byteLength(packument),
        });
        res.end(packument);
      } else if (req.url === '/registry/lib-gz') {
        const body = gzipSync(packument);
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-encoding': 'gzip',
          'content-length': body.length,
        });
        res.end(body);
      } else if (req.url === '/registry/moved') {
        res.writeHead(302, { location: `${self}lib` });
        res.end();
      } else if (req.url === '/registry/blob') {
        res.writeHead(302, { location: `${storage.url}/bucket/blob.tgz?X-Sig=abc` });
        res.end();
      } else {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(`tarball:${req.url}`);
      }
    });
    files = tempDir();
    // Object storage on loopback stands in for an internal one: the route allows it, as an operator would.
    const config = files.configFile([
      {
        prefix: '/npm/',
        upstream: `${origin.url}/registry/`,
        ecosystem: 'npm',
        followRedirects: { hosts: [], cidrs: ['127.0.0.0/8'] },
      },
    ]);
    gw = await startTestGateway({ TOLLGATE_CONFIG: config, TOLLGATE_PUBLIC_URL: 'https://artifacts.example' });
    token = (await gw.createToken()).token;
  });
  afterAll(async () => {
    await gw?.close();
    await origin?.close();
    await storage?.close();
    files?.remove();
  });

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${gw.url}${path}`, { headers: { authorization: bearer(token), ...headers }, redirect: 'manual' });

  it('points packument tarball URLs at the gateway, with a weak ETag and no stale Content-Length', async () => {
    const res = await get('/npm/lib', { 'accept-encoding': 'identity' });
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(npmTarballUrl(body, '1.0.0')).toBe('https://artifacts.example/npm/lib/-/lib-1.0.0.tgz');
    expect(body).not.toContain(`127.0.0.1:${origin.port}`);
    expect(res.headers.get('etag')).toBe('W/"abc"');
    expect(res.headers.get('content-length')).toBeNull();
  });

  it('rewrites a gzip body and sends it gzip to a client that accepts it', async () => {
    const { request } = await import('node:http');
    const raw = await new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
      const req = request(
        `${gw.url}/npm/lib-gz`,
        { headers: { authorization: bearer(token), 'accept-encoding': 'gzip' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(raw.headers['content-encoding']).toBe('gzip');
    expect(npmTarballUrl(gunzipSync(raw.body).toString(), '1.0.0')).toBe(
      'https://artifacts.example/npm/lib/-/lib-1.0.0.tgz',
    );
  });

  it('leaves artifact bodies byte for byte', async () => {
    const res = await get('/npm/lib/-/lib-1.0.0.tgz');
    expect(await res.text()).toBe('tarball:/registry/lib/-/lib-1.0.0.tgz');
  });

  it('rewrites a redirect to the upstream into one to the gateway', async () => {
    const res = await get('/npm/moved');
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('https://artifacts.example/npm/lib');
  });

  it('follows a redirect to another origin itself, without forwarding any credential', async () => {
    const res = await get('/npm/blob');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('object:/bucket/blob.tgz?X-Sig=abc');
    const seen = storage.seen.at(-1)!;
    expect(seen.headers.authorization).toBeUndefined();
    expect(JSON.stringify(seen.headers)).not.toContain(token);
  });

  it('does not tell a rewritten upstream the public host (it must use its own origin)', async () => {
    await get('/npm/lib');
    const seen = origin.seen.at(-1)!;
    expect(seen.headers['x-forwarded-host']).toBeUndefined();
    expect(seen.headers.host).toBe(`127.0.0.1:${origin.port}`);
  });
});
