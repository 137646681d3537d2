import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { ResponseStreamParser } from '../helpers/raw-http.js';

// Larger than what the kernel may buffer between a paused reader and the gateway (a loopback
// socket's send buffer grows to 4 MiB here, net.ipv4.tcp_wmem), so a paused download is held back.
const BODY = Buffer.alloc(16 * 1024 * 1024, 'x');

/**
 * A GET whose client reads the response head, then stops reading: the download stays open,
 * paused by backpressure, holding its upstream connection. Resolves with the status once the head
 * is in (or the whole short answer, for a refusal).
 */
function slowDownload(
  url: string,
  path: string,
  token: string,
  clientIp: string,
): Promise<{ status: number; retryAfter: string | undefined; socket: net.Socket }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: gw\r\nAuthorization: ${bearer(token)}\r\nX-Forwarded-For: ${clientIp}\r\n\r\n`,
      );
    });
    const parser = new ResponseStreamParser({
      onHead: (status, headers) => {
        socket.off('data', onData);
        socket.pause(); // the slow reader: reads nothing more
        resolve({ status, retryAfter: headers['retry-after'], socket });
      },
    });
    const onData = (chunk: Buffer) => void parser.push(chunk);
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

describe('one credential cannot starve a route of its upstream connections', () => {
  let origin: Origin;
  const gateways: TestGateway[] = [];
  const sockets: net.Socket[] = [];

  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      if (req.url?.startsWith('/trickle')) {
        // Busy, never silent: a byte every 100 ms until the client goes away.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const timer = setInterval(() => res.write('.'), 100);
        res.on('close', () => clearInterval(timer));
        return;
      }
      if (req.url?.startsWith('/small')) {
        res.writeHead(200, { 'content-length': 2 });
        res.end('ok');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY.length });
      res.end(BODY);
    });
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(gateways.splice(0).map((gw) => gw.close()));
  });
  afterAll(async () => {
    await origin?.close();
  });

  async function gateway(env: Record<string, string>) {
    const gw = await startTestGateway({ TOLLGATE_UPSTREAM: origin.url, TOLLGATE_TRUSTED_PROXIES: '127.0.0.1', ...env });
    gateways.push(gw);
    return gw;
  }

  it('prevents starvation: while one token keeps many slow downloads open, another token from another address is answered at once, and the first gets 429 past its share', async () => {
    const gw = await gateway({ TOLLGATE_UPSTREAM_CONNECTIONS: '8', TOLLGATE_UPSTREAM_HELD_PER_TOKEN: '3' });
    const hog = (await gw.createToken({ name: 'hog' })).token;
    const other = (await gw.createToken({ name: 'other' })).token;
    // Twelve slow downloads: more than the route's 8 slots.
    const opened = await Promise.all(
      Array.from({ length: 12 }, () => slowDownload(gw.url, '/big', hog, '198.51.100.7')),
    );
    sockets.push(...opened.map((o) => o.socket));
    expect(opened.filter((o) => o.status === 200).length).toBeGreaterThanOrEqual(8);
    // Once they are held (paused more than a second), the hog's new requests are refused...
    await expect
      .poll(
        async () => {
          const next = await slowDownload(gw.url, '/big', hog, '198.51.100.7');
          sockets.push(next.socket);
          return next;
        },
        { timeout: 15_000, interval: 200 },
      )
      .toMatchObject({ status: 429, retryAfter: '10' });
    // ...and another token, from another address, is served normally.
    const started = Date.now();
    const res = await fetch(`${gw.url}/big`, {
      headers: { authorization: bearer(other), 'x-forwarded-for': '203.0.113.9' },
    });
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(BODY.length);
    expect(Date.now() - started).toBeLessThan(5_000);
    const line = gw.logRecords().find((r) => r.status === 429);
    expect(line).toMatchObject({ upstreamError: 'busy', tokenId: expect.any(String) as string });
  });

  it("never refuses fast downloads: a hundred at once with one token, more than the route's slots, all succeed", async () => {
    const gw = await gateway({ TOLLGATE_UPSTREAM_CONNECTIONS: '4', TOLLGATE_UPSTREAM_HELD_PER_TOKEN: '1' });
    const fleet = (await gw.createToken({ name: 'ci-fleet' })).token;
    const statuses = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const res = await fetch(`${gw.url}/small`, { headers: { authorization: bearer(fleet) } });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    expect(statuses.every((s) => s === 200)).toBe(true);
  });

  it('answers 504 to a request that waits for a slot longer than the upstream timeout', async () => {
    const gw = await gateway({ TOLLGATE_UPSTREAM_CONNECTIONS: '2', TOLLGATE_UPSTREAM_TIMEOUT_MS: '1500' });
    const { token } = await gw.createToken();
    // Two long downloads, never silent and read at full speed, hold both slots...
    const busy = new AbortController();
    const long = await Promise.all(
      [0, 1].map(() => fetch(`${gw.url}/trickle`, { headers: { authorization: bearer(token) }, signal: busy.signal })),
    );
    expect(long.map((r) => r.status)).toEqual([200, 200]);
    // ...so the third waits for a slot, and gets 504 rather than waiting without end.
    const waiting = await fetch(`${gw.url}/small`, { headers: { authorization: bearer(token) } });
    expect(waiting.status).toBe(504);
    expect(gw.logRecords().some((r) => r.upstreamError === 'slot-timeout')).toBe(true);
    // Held until here: fetch cancels the body of a Response that is garbage-collected unread,
    // which freed a slot (and the third request got 200) when a GC came first (Node 24, CI).
    expect(long.every((r) => !r.bodyUsed)).toBe(true);
    busy.abort();
  });

  it('gives a token its share back once its slow downloads end', async () => {
    const gw = await gateway({ TOLLGATE_UPSTREAM_CONNECTIONS: '8', TOLLGATE_UPSTREAM_HELD_PER_TOKEN: '2' });
    const { token } = await gw.createToken();
    const opened = await Promise.all(
      Array.from({ length: 4 }, () => slowDownload(gw.url, '/big', token, '198.51.100.8')),
    );
    await expect
      .poll(
        async () => {
          const next = await slowDownload(gw.url, '/big', token, '198.51.100.8');
          sockets.push(next.socket);
          return next.status;
        },
        { timeout: 15_000, interval: 200 },
      )
      .toBe(429);
    for (const o of opened) o.socket.destroy();
    for (const s of sockets.splice(0)) s.destroy();
    await expect
      .poll(async () => (await fetch(`${gw.url}/small`, { headers: { authorization: bearer(token) } })).status, {
        timeout: 10_000,
      })
      .toBe(200);
  });
});
