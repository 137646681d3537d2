import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { createParkingServer } from '../../src/proxy/parking.js';
import { selfSignedCert } from '../helpers/certs.js';
import { openRawConnection, ResponseStreamParser, type RawConnection } from '../helpers/raw-http.js';
import { sleep } from '../helpers/wait.js';

/**
 * The proxy port's listener parks idle kept-alive connections off node:http (src/proxy/parking.ts).
 * What must hold: a parked connection answers its next request as before; no request byte is lost
 * or read twice, however the bytes are split or pipelined, with or without bodies; node:http's
 * timeouts still close what they closed; closing the server closes parked connections too.
 * The memory it saves is `npm run bench -- --only=keepalive`.
 */

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

/** node:http behind the parking listener on loopback; answers `<method> <url> <body> <n>` by default. */
async function start(
  options: {
    handler?: Handler;
    parkAfterMs?: number;
    nativeConnections?: number;
    keepAliveTimeout?: number;
    headersTimeout?: number;
    tls?: boolean;
  } = {},
) {
  let served = 0;
  const sockets: unknown[] = [];
  const handler: Handler =
    options.handler ??
    ((req, res) => {
      sockets.push(req.socket);
      const n = ++served;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.end(`${req.method} ${req.url} ${Buffer.concat(chunks).toString()} ${n}`));
    });
  const inner = http.createServer(
    {
      keepAliveTimeout: options.keepAliveTimeout ?? 30_000,
      headersTimeout: options.headersTimeout ?? 10_000,
      requestTimeout: 60_000,
      connectionsCheckingInterval: 100,
    },
    handler,
  );
  let dir: string | undefined;
  let tlsOptions: tls.TlsOptions | undefined;
  if (options.tls) {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-parking-'));
    const { cert, key } = selfSignedCert(dir);
    tlsOptions = { cert, key };
  }
  const server = createParkingServer(inner, {
    tls: tlsOptions,
    parkAfterMs: options.parkAfterMs ?? 100,
    nativeConnections: options.nativeConnections ?? 0,
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const handle = {
    server,
    inner,
    port,
    url: `http://127.0.0.1:${port}`,
    sockets,
    /** Resolves when the next connection is parked. */
    parked: () => once(server, 'parked') as Promise<[Socket]>,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  servers.push(handle);
  return handle;
}

const get = (target: string, extra = ''): string => `GET ${target} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;
const post = (target: string, body: string): string =>
  `POST ${target} HTTP/1.1\r\nHost: t\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

/** A connection that made one request (GET `target`) and was parked after its answer. */
async function parkedConnection(
  s: { url: string; parked(): Promise<[Socket]> },
  target = '/a',
): Promise<RawConnection> {
  const c = await openRawConnection(s.url);
  const parked = s.parked();
  await c.request(get(target));
  await parked;
  return c;
}

describe('parking idle kept-alive connections', () => {
  it('parks a connection after its first answer and serves its next request through a new stand-in', async () => {
    const s = await start();
    const c = await openRawConnection(s.url);
    const parked = s.parked();
    expect((await c.request(get('/a'))).body.toString()).toBe('GET /a  1');
    await parked;
    expect(s.server.stats()).toEqual({ open: 1, native: 0, parked: 1 });

    expect((await c.request(get('/b'))).body.toString()).toBe('GET /b  2');
    expect(s.sockets[1]).not.toBe(s.sockets[0]); // node:http's state was let go in between
    c.destroy();
  });

  it('keeps a connection that comes back for more with node:http until it rests for parkAfterMs', async () => {
    const s = await start({ parkAfterMs: 300 });
    const c = await openRawConnection(s.url);
    const first = s.parked();
    await c.request(get('/1'));
    await first; // the first answer parks at once
    const started = performance.now();
    const parked = s.parked();
    for (let i = 2; i <= 6; i++) expect((await c.request(get(`/${i}`))).status).toBe(200);
    // Requests 2-6 went through one stand-in: the connection was not parked between them.
    expect(new Set(s.sockets.slice(1)).size).toBe(1);
    await parked;
    expect(performance.now() - started).toBeGreaterThanOrEqual(300);
    expect(s.server.stats().parked).toBe(1);
    c.destroy();
  });

  it('answers requests pipelined in one write, in order, whatever is parked between them', async () => {
    const s = await start({ parkAfterMs: 50 });
    const c = await openRawConnection(s.url);
    c.write(get('/1') + get('/2') + post('/3', 'body\r\n\r\n') + get('/4'));
    const bodies = [];
    for (let i = 0; i < 4; i++) bodies.push((await c.next()).body.toString());
    expect(bodies).toEqual(['GET /1  1', 'GET /2  2', 'POST /3 body\r\n\r\n 3', 'GET /4  4']);
    c.destroy();
  });

  it('loses no byte of a request sent one byte at a time to a parked connection', async () => {
    const s = await start();
    const c = await parkedConnection(s, '/first');
    const bytes = Buffer.from(post('/second', 'x\r\n\r\ny') + get('/third'), 'latin1');
    for (const byte of bytes) {
      c.write(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve)); // each byte its own read
    }
    expect((await c.next()).body.toString()).toBe('POST /second x\r\n\r\ny 2');
    expect((await c.next()).body.toString()).toBe('GET /third  3');
    c.destroy();
  });

  it('does not park while a pipelined request is half-sent, and answers it when the rest comes', async () => {
    const s = await start({ parkAfterMs: 20 });
    const c = await openRawConnection(s.url);
    const parks: Socket[] = [];
    s.server.on('parked', (socket: Socket) => parks.push(socket));
    c.write(get('/1') + 'GET /2 HTTP/1.1\r\nHost: t\r\n');
    expect((await c.next()).body.toString()).toBe('GET /1  1');
    await sleep(100); // five parking rounds go by
    expect(parks).toHaveLength(0);
    c.write('\r\n');
    expect((await c.next()).body.toString()).toBe('GET /2  2');
    c.destroy();
  });

  it('reads a body answered before it arrived to its end before parking, and then parks', async () => {
    const s = await start({
      handler: (req, res) => res.end(`early ${req.url}`), // answers without reading the body
    });
    const c = await openRawConnection(s.url);
    const parks: Socket[] = [];
    s.server.on('parked', (socket: Socket) => parks.push(socket));
    c.write(`POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345`);
    expect((await c.next()).body.toString()).toBe('early /up');
    await sleep(300); // three parking rounds go by
    expect(parks).toHaveLength(0); // half the body still to come
    const parked = s.parked();
    c.write('6\r\n\r\n'); // the body's end (it happens to end with an empty line)
    await parked;
    expect((await c.request(get('/after'))).body.toString()).toBe('early /after');
    c.destroy();
  });

  it('keeps a connection whose last body ended otherwise with node:http until its next request', async () => {
    const s = await start();
    const c = await openRawConnection(s.url);
    const parks: Socket[] = [];
    s.server.on('parked', (socket: Socket) => parks.push(socket));
    expect((await c.request(post('/up', '0123456789'))).body.toString()).toBe('POST /up 0123456789 1');
    // "...6789" could as well be the start of a next request: it stays where node:http can read on.
    await sleep(300);
    expect(parks).toHaveLength(0);
    const parked = s.parked();
    expect((await c.request(get('/next'))).body.toString()).toBe('GET /next  2');
    await parked;
    c.destroy();
  });

  it('closes a parked connection when the keep-alive timeout node:http set runs out', async () => {
    const s = await start({ keepAliveTimeout: 300 });
    const c = await parkedConnection(s);
    const { closedByServer } = await c.drain(5000);
    expect(closedByServer).toBe(true);
    await expect.poll(() => s.server.stats().open).toBe(0);
  });

  it('still closes a connection that sends no request within headersTimeout', async () => {
    const s = await start({ headersTimeout: 300 });
    const c = await openRawConnection(s.url);
    const { closedByServer } = await c.drain(5000);
    expect(closedByServer).toBe(true);
  });

  it('ends a parked connection the client half-closes', async () => {
    const s = await start();
    const c = await parkedConnection(s);
    c.socket.end();
    await c.whenClosed;
    await expect.poll(() => s.server.stats().open).toBe(0);
  });

  it('closeIdleConnections closes parked connections and leaves a request in progress to finish', async () => {
    let release!: () => void;
    const s = await start({
      handler: (req, res) => {
        if (req.url === '/slow') release = () => res.end('slow done');
        else res.end('ok');
      },
    });
    const idle = await parkedConnection(s);
    const busy = await openRawConnection(s.url);
    busy.write(get('/slow'));
    await expect.poll(() => release !== undefined).toBe(true);

    s.server.close();
    s.server.closeIdleConnections();
    await idle.whenClosed;
    expect(busy.closed).toBe(false);
    release();
    expect((await busy.next()).body.toString()).toBe('slow done');
    // A closing server closes a connection that falls idle instead of parking it.
    await busy.whenClosed;
  });

  it('forwards the client address to node:http', async () => {
    const s = await start({
      handler: (req, res) => res.end(`${req.socket.remoteAddress} ${req.socket.localPort}`),
    });
    const c = await openRawConnection(s.url);
    expect((await c.request(get('/'))).body.toString()).toBe(`127.0.0.1 ${s.port}`);
    c.destroy();
  });

  it('terminates TLS: two requests on one TLS connection, parked in between, seen as encrypted', async () => {
    const s = await start({
      tls: true,
      handler: (req, res) => res.end(`${req.url} ${(req.socket as { encrypted?: boolean }).encrypted === true}`),
    });
    const socket = tls.connect({ host: '127.0.0.1', port: s.port, rejectUnauthorized: false });
    await once(socket, 'secureConnect');
    const parser = new ResponseStreamParser();
    const responses: string[] = [];
    const next = () =>
      new Promise<string>((resolve) => {
        const onData = (chunk: Buffer) => {
          for (const r of parser.push(chunk)) responses.push(r.body.toString());
          if (responses.length > 0) {
            socket.off('data', onData);
            resolve(responses.shift()!);
          }
        };
        socket.on('data', onData);
      });
    const parked = s.parked();
    socket.write(get('/one'));
    expect(await next()).toBe('/one true');
    await parked;
    socket.write(get('/two'));
    expect(await next()).toBe('/two true');
    socket.destroy();
  });

  it('passes backpressure through: a large answer to a client that reads late arrives whole', async () => {
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    const s = await start({ handler: (_req, res) => res.end(big) });
    const c = await openRawConnection(s.url);
    c.socket.pause();
    c.write(get('/big'));
    await sleep(200); // the gateway's buffers fill
    c.socket.resume();
    const response = await c.next();
    expect(response.complete).toBe(true);
    expect(response.body.equals(big)).toBe(true);
    c.destroy();
  });
  it('answers bytes that are no request, sent to a parked connection, with 400, closes it, and serves others', async () => {
    const s = await start();
    const inner400: string[] = [];
    s.inner.on('clientError', (error: Error, socket: { end(data: string): void }) => {
      inner400.push(error.message);
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    const c = await parkedConnection(s);
    c.write('NOT A REQUEST\r\n\r\n');
    const { responses, closedByServer } = await c.drain(5000);
    expect(responses.at(-1)?.status).toBe(400);
    expect(closedByServer).toBe(true);
    expect(inner400).toHaveLength(1);
    const other = await openRawConnection(s.url);
    expect((await other.request(get('/after'))).status).toBe(200);
    other.destroy();
  });

  it('reads a chunked body to its end (its last chunk ends with an empty line) and then parks', async () => {
    const s = await start();
    const c = await parkedConnection(s);
    const parked = s.parked();
    c.write('POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab\r\nc\r\n0\r\n\r\n');
    expect((await c.next()).body.toString()).toBe('POST /chunked ab\r\nc 2');
    await parked;
    expect((await c.request(get('/after'))).body.toString()).toBe('GET /after  3');
    c.destroy();
  });

  it('gives up to nativeConnections connections at a time to node:http as they are, and parks the others', async () => {
    const s = await start({ nativeConnections: 1 });
    const first = await openRawConnection(s.url);
    expect((await first.request(get('/a'))).body.toString()).toBe('GET /a  1');
    expect((await first.request(get('/b'))).body.toString()).toBe('GET /b  2');
    // node:http was given the socket itself (it parses from its handle), and kept it both times
    expect(s.sockets[0]).toBeInstanceOf(net.Socket);
    expect(s.sockets[1]).toBe(s.sockets[0]);
    expect(s.server.stats()).toEqual({ open: 1, native: 1, parked: 0 });

    const second = await parkedConnection(s, '/c');
    expect(s.sockets[2]).not.toBeInstanceOf(net.Socket);
    expect(s.server.stats()).toEqual({ open: 2, native: 1, parked: 1 });

    // a place among the native ones frees up when one closes
    const firstClosed = once(s.sockets[0] as net.Socket, 'close');
    first.destroy();
    await firstClosed;
    expect(s.server.stats()).toEqual({ open: 1, native: 0, parked: 1 });
    const third = await openRawConnection(s.url);
    expect((await third.request(get('/d'))).body.toString()).toBe('GET /d  4');
    expect(s.sockets[3]).toBeInstanceOf(net.Socket);
    expect(s.server.stats()).toEqual({ open: 2, native: 1, parked: 1 });

    // closeIdleConnections closes both kinds when idle
    s.server.closeIdleConnections();
    await Promise.all([second.whenClosed, third.whenClosed]);
    await expect.poll(() => s.server.stats().open).toBe(0);
  });
});
