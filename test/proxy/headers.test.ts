import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  clientResponseHeaders,
  privateCacheControl,
  upstreamRequestHeaders,
  type ForwardedInfo,
} from '../../src/proxy/headers.js';

const direct: ForwardedInfo = {
  clientIp: '192.0.2.10',
  peerIp: '192.0.2.10',
  priorForwardedFor: undefined,
  proto: 'http',
  host: 'artifacts.example.com',
};

function toUpstream(incoming: IncomingHttpHeaders, forwarded = direct, auth?: { name: string; value: string }) {
  return upstreamRequestHeaders(incoming, 'registry.example.org', forwarded, 'req-1', auth);
}

describe('upstreamRequestHeaders', () => {
  it("removes the client's Authorization and Proxy-Authorization", () => {
    const out = toUpstream({ authorization: 'Bearer tgp_secret', 'proxy-authorization': 'Basic cDpz' });
    expect(out.authorization).toBeUndefined();
    expect(out['proxy-authorization']).toBeUndefined();
  });

  it("adds the route's upstream credential in place of the client's", () => {
    const out = toUpstream({ authorization: 'Bearer tgp_secret' }, direct, {
      name: 'authorization',
      value: 'Bearer upstream',
    });
    expect(out.authorization).toBe('Bearer upstream');
  });

  it('adds a header-type upstream credential and no Authorization', () => {
    const out = toUpstream({ authorization: 'Bearer tgp_secret' }, direct, { name: 'x-api-key', value: 'k' });
    expect(out['x-api-key']).toBe('k');
    expect(out.authorization).toBeUndefined();
  });

  it('drops hop-by-hop headers', () => {
    const out = toUpstream({
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      te: 'trailers',
      trailer: 'x-checksum',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
    });
    for (const name of [
      'connection',
      'keep-alive',
      'proxy-connection',
      'te',
      'trailer',
      'transfer-encoding',
      'upgrade',
    ]) {
      expect(out[name], name).toBeUndefined();
    }
  });

  it.each([
    { what: 'one name', connection: 'x-hop', dropped: ['x-hop'] },
    {
      what: 'a list with odd spacing and case',
      connection: 'close ,X-Hop,  x-OTHER-hop',
      dropped: ['x-hop', 'x-other-hop'],
    },
    {
      what: 'repeated Connection headers',
      connection: ['keep-alive, x-hop', 'x-other-hop'],
      dropped: ['x-hop', 'x-other-hop'],
    },
  ])('drops headers named in Connection ($what)', ({ connection, dropped }) => {
    const out = toUpstream({
      connection: connection as string,
      'x-hop': '1',
      'x-other-hop': '2',
      accept: '*/*',
      range: 'bytes=0-1',
    });
    for (const name of dropped) expect(out[name], name).toBeUndefined();
    expect(out.accept).toBe('*/*');
    // A header the allow-list forwards is still dropped when Connection names it.
    expect(toUpstream({ connection: 'range', range: 'bytes=0-1' }).range).toBeUndefined();
  });

  it('keeps end-to-end headers clients rely on (Accept, Range, conditionals, User-Agent)', () => {
    const incoming = {
      accept: 'application/vnd.npm.install-v1+json',
      range: 'bytes=0-9',
      'if-none-match': '"abc"',
      'if-modified-since': 'Mon, 01 Jan 2024 00:00:00 GMT',
      'user-agent': 'pip/24.0',
      'accept-encoding': 'gzip',
    };
    expect(toUpstream(incoming)).toMatchObject(incoming);
  });

  it.each([
    'x-http-method-override',
    'x-method-override',
    'x-http-method',
    'x-original-url',
    'x-rewrite-url',
    'x-forwarded-prefix',
    'cookie',
    'true-client-ip',
    'x-client-ip',
    'x-forwarded-server',
    'x-original-host',
    'x-custom-anything',
  ])(
    'prevents asking the upstream to do something else: %s is not forwarded (an allow-list, not a deny-list)',
    (name) => {
      expect(
        toUpstream({ [name]: 'DELETE /admin' }, direct, { name: 'authorization', value: 'Basic Z2F0ZXdheTpzZWNyZXQ=' })[
          name
        ],
      ).toBeUndefined();
    },
  );

  it.each([
    [
      'npm',
      {
        'npm-command': 'install',
        'npm-session': 'abc',
        'npm-scope': '@acme',
        'npm-in-ci': 'true',
        referer: 'install lodash',
      },
    ],
    ['NuGet', { 'x-nuget-session-id': 's', 'x-nuget-client-version': '6.9', 'x-nuget-protocol-version': '4.1.0' }],
    ['Maven', { 'cache-control': 'no-cache', pragma: 'no-cache', 'accept-language': 'en' }],
    ['a read-only POST', { 'content-type': 'application/json', 'content-length': '12', 'content-encoding': 'gzip' }],
  ])('forwards what %s sends', (_client, headers) => {
    expect(toUpstream(headers)).toMatchObject(headers);
  });

  it("sends the upstream its own Host, never the client's", () => {
    expect(toUpstream({ host: 'artifacts.example.com' }).host).toBe('registry.example.org');
  });

  it('sets X-Forwarded-For/-Proto/-Host and X-Request-Id from what the gateway believes', () => {
    const out = toUpstream({});
    expect(out['x-forwarded-for']).toBe('192.0.2.10');
    expect(out['x-forwarded-proto']).toBe('http');
    expect(out['x-forwarded-host']).toBe('artifacts.example.com');
    expect(out['x-request-id']).toBe('req-1');
  });

  it("replaces a client's own X-Forwarded-*, Forwarded and X-Real-IP", () => {
    const out = toUpstream({
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-port': '1',
      forwarded: 'for=203.0.113.7',
      'x-real-ip': '203.0.113.7',
    });
    expect(out['x-forwarded-for']).toBe('192.0.2.10');
    expect(out['x-forwarded-proto']).toBe('http');
    expect(out['x-forwarded-host']).toBe('artifacts.example.com');
    expect(out['x-forwarded-port']).toBeUndefined();
    expect(out.forwarded).toBeUndefined();
    expect(out['x-real-ip']).toBeUndefined();
  });

  it("extends a trusted proxy's X-Forwarded-For chain with the proxy's own address, not the client's again", () => {
    const viaProxy: ForwardedInfo = {
      clientIp: '203.0.113.7',
      peerIp: '10.0.0.2',
      priorForwardedFor: '198.51.100.9, 203.0.113.7',
      proto: 'https',
      host: 'artifacts.example.com',
    };
    expect(toUpstream({ 'x-forwarded-for': '198.51.100.9, 203.0.113.7' }, viaProxy)['x-forwarded-for']).toBe(
      '198.51.100.9, 203.0.113.7, 10.0.0.2',
    );
  });

  it('omits X-Forwarded-Host when the gateway knows no host', () => {
    expect(toUpstream({}, { ...direct, host: undefined })['x-forwarded-host']).toBeUndefined();
  });
});

describe('clientResponseHeaders', () => {
  it('drops hop-by-hop headers, headers named in Connection, and Set-Cookie', () => {
    const out = clientResponseHeaders(
      {
        connection: 'keep-alive, x-upstream-hop',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        trailer: 'x-sum',
        upgrade: 'h2c',
        'proxy-authenticate': 'Basic',
        'x-upstream-hop': '1',
        'set-cookie': ['session=upstream'],
      },
      'req-1',
    );
    for (const name of [
      'connection',
      'keep-alive',
      'transfer-encoding',
      'trailer',
      'upgrade',
      'proxy-authenticate',
      'x-upstream-hop',
      'set-cookie',
    ]) {
      expect(out[name], name).toBeUndefined();
    }
  });

  it('keeps what download clients need (length, type, range, validators)', () => {
    const upstream = {
      'content-length': '10',
      'content-type': 'application/octet-stream',
      'content-range': 'bytes 10-19/100',
      'accept-ranges': 'bytes',
      etag: '"v1"',
      'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT',
      'content-encoding': 'gzip',
    };
    expect(clientResponseHeaders(upstream, 'req-1')).toMatchObject(upstream);
  });

  it.each([
    'text/html; charset=utf-8',
    'TEXT/HTML',
    'image/svg+xml',
    'application/xhtml+xml',
    'text/xml',
    'application/json',
    'application/octet-stream',
    undefined,
  ])('never lets an artifact be a page of the gateway: nosniff and a sandbox for %s', (type) => {
    const out = clientResponseHeaders(type === undefined ? {} : { 'content-type': type }, 'r');
    expect(out['x-content-type-options']).toBe('nosniff');
    expect(out['content-security-policy']).toBe('sandbox');
  });

  it("keeps an upstream's own Content-Security-Policy beside the sandbox (a browser enforces both)", () => {
    const out = clientResponseHeaders(
      { 'content-type': 'text/html', 'content-security-policy': "default-src 'none'" },
      'r',
    );
    expect(out['content-security-policy']).toBe("default-src 'none', sandbox");
  });

  it('adds Cache-Control: private and X-Request-Id', () => {
    const out = clientResponseHeaders({}, 'req-7');
    expect(out['cache-control']).toBe('private');
    expect(out['x-request-id']).toBe('req-7');
  });
});

describe('privateCacheControl', () => {
  it.each([
    [undefined, 'private'],
    ['', 'private'],
    ['public, max-age=300', 'private, max-age=300'],
    ['PUBLIC, Max-Age=300', 'private, Max-Age=300'],
    ['max-age=60, s-maxage=600, proxy-revalidate', 'private, max-age=60'],
    ['private', 'private'],
    ['private="set-cookie", max-age=5', 'private, max-age=5'],
    ['no-cache', 'private, no-cache'],
    ['no-store', 'private, no-store'],
    ['public,max-age=31536000,immutable', 'private, max-age=31536000, immutable'],
    ['public', 'private'],
  ])('turns %j into %j', (upstream, expected) => {
    expect(privateCacheControl(upstream)).toBe(expected);
  });
});
