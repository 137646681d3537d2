import http from 'node:http';
import net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { patternBytes, startOrigin, type Origin } from '../helpers/origin.js';
import { sleep } from '../helpers/wait.js';

/**
 * Slow clients are bounded by the server's timeouts, and a paused reader makes the gateway
 * stop reading from the upstream instead of buffering the artifact. The memory bound for a
 * slow (not stopped) reader of a 200 MiB artifact is test/e2e/memory.test.ts; the upstream
 * request being aborted when a client disconnects is test/proxy/forwarding.test.ts.
 */

const MiB = 1024 * 1024;
const ARTIFACT_BYTES = 64 * MiB;
const BLOCK = patternBytes(64 * 1024);
const HEADERS_TIMEOUT_MS = 1000;
const CLIENT_IDLE_TIMEOUT_MS = 1500;

/** A full garbage collection, so memory figures count live objects only. */
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** One GET on its own connection (no keep-alive pool holding a socket open afterwards). */
function getOnce(url: string, authorization: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, headers: { authorization } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

interface Download {
  /** Bytes the origin handed to its socket so far. */
  written: number;
  /** Resolves when the origin's response closes: finished or cut. */
  closed: Promise<{ finished: boolean; written: number }>;
}

let origin: Origin;
const downloads: Download[] = [];

beforeAll(async () => {
  // Streams 64 MiB with backpressure: it writes only as fast as the gateway reads, so whatever
  // memory grows while a client is paused is the gateway's doing, not the origin's.
  origin = await startOrigin((req, res) => {
    if (!req.url?.startsWith('/big')) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('small');
      return;
    }
    let resolveClosed!: (v: { finished: boolean; written: number }) => void;
    const d: Download = {
      written: 0,
      closed: new Promise((r) => {
        resolveClosed = r;
      }),
    };
    downloads.push(d);
    res.once('close', () => resolveClosed({ finished: res.writableFinished, written: d.written }));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': ARTIFACT_BYTES });
    const pump = (): void => {
      while (d.written < ARTIFACT_BYTES && !res.destroyed) {
        d.written += BLOCK.length;
        if (!res.write(BLOCK)) {
          res.once('drain', pump);
          return;
        }
      }
      if (!res.destroyed) res.end();
    };
    pump();
  });
});
afterAll(async () => {
  await origin?.close();
});

/** A raw client that reads `readFirst` bytes of the download, then stops reading (pauses the socket). */
async function startPausedDownload(gw: TestGateway, token: string, readFirst: number) {
  const socket = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
  socket.on('error', () => {});
  let received = 0;
  let closed = false;
  const closedP = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  let stopped = false;
  const paused = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= readFirst && !stopped) {
        stopped = true;
        socket.pause();
        resolve();
      }
    });
  });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(`GET /big HTTP/1.1\r\nHost: x\r\nAuthorization: ${bearer(token)}\r\n\r\n`);
  await paused;
  return {
    socket,
    received: () => received,
    closed: () => closed,
    /** Reads whatever is left until the connection ends. */
    async drainToEnd(): Promise<number> {
      socket.resume();
      await closedP;
      return received;
    },
  };
}

/** Resolves once the origin has written nothing for `quietMs` (the gateway stopped reading). */
async function originStalls(d: Download, quietMs: number, withinMs: number): Promise<number> {
  let last = { written: d.written, at: Date.now() };
  await vi.waitFor(
    () => {
      if (d.written !== last.written) last = { written: d.written, at: Date.now() };
      if (Date.now() - last.at < quietMs)
        throw new Error(`origin still writing after ${withinMs} ms (${d.written} bytes)`);
    },
    { timeout: withinMs, interval: 50 },
  );
  return d.written;
}

describe('slow and stopped clients (TOLLGATE_HEADERS_TIMEOUT_MS=1000, TOLLGATE_CLIENT_IDLE_TIMEOUT_MS=1500)', () => {
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    gw = await startTestGateway({
      TOLLGATE_UPSTREAM: origin.url,
      TOLLGATE_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      TOLLGATE_CLIENT_IDLE_TIMEOUT_MS: String(CLIENT_IDLE_TIMEOUT_MS),
    });
    ({ token } = await gw.createToken());
  });
  afterAll(async () => {
    await gw?.close();
  });

  const connections = () =>
    new Promise<number>((resolve, reject) => {
      gw.gateway.proxyServer.getConnections((err, n) => (err ? reject(err) : resolve(n)));
    });

  it(
    'prevents slowloris: connections sending headers one byte every 200 ms are cut within a few headers timeouts, while others are served',
    { timeout: 30_000 },
    async () => {
      const head = `GET /small HTTP/1.1\r\nHost: x\r\nAuthorization: ${bearer(token)}\r\nX-Padding: ${'a'.repeat(200)}`; // never finished
      const slow = await Promise.all(
        Array.from(
          { length: 10 },
          () =>
            new Promise<{ socket: net.Socket; start: number; ended: Promise<{ afterMs: number; reply: string }> }>(
              (resolve) => {
                const socket = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
                socket.on('error', () => {});
                let reply = '';
                socket.on('data', (chunk: Buffer) => {
                  reply += chunk.toString('latin1');
                });
                socket.once('connect', () => {
                  const start = Date.now();
                  let i = 0;
                  const timer = setInterval(() => {
                    if (socket.destroyed || i >= head.length) return;
                    socket.write(head[i++]!);
                  }, 200);
                  socket.write(head[i++]!);
                  const ended = new Promise<{ afterMs: number; reply: string }>((r) =>
                    socket.once('close', () => {
                      clearInterval(timer);
                      r({ afterMs: Date.now() - start, reply });
                    }),
                  );
                  resolve({ socket, start, ended });
                });
              },
            ),
        ),
      );

      // Meanwhile, ordinary clients are served.
      const served: number[] = [];
      for (let i = 0; i < 20; i++) {
        served.push(await getOnce(`${gw.url}/small`, bearer(token)));
        await sleep(50);
      }
      expect(served.every((s) => s === 200)).toBe(true);

      const bound = 5 * HEADERS_TIMEOUT_MS;
      const results = await Promise.all(
        slow.map(async (s) => {
          let timer: NodeJS.Timeout | undefined;
          const r = await Promise.race([
            s.ended,
            new Promise<undefined>((res) => {
              timer = setTimeout(() => res(undefined), bound + 2000);
            }),
          ]);
          clearTimeout(timer);
          if (!r) s.socket.destroy();
          return r;
        }),
      );
      for (const r of results) {
        expect(r, 'slowloris connection still open').toBeDefined();
        expect(r!.afterMs).toBeLessThanOrEqual(bound);
        // Cut with an error status (or nothing), never answered as a request.
        expect(r!.reply === '' || /^HTTP\/1\.1 (400|408) /.test(r!.reply), r!.reply).toBe(true);
      }
      expect(origin.seen.filter((s) => s.url === '/small').length).toBe(20);
    },
  );

  it(
    'prevents a stopped reader from holding the upstream: cut after the idle timeout, and the origin sees its response closed unfinished',
    { timeout: 30_000 },
    async () => {
      await expect.poll(connections, { timeout: 5000, interval: 50 }).toBe(0);
      const before = downloads.length;
      const client = await startPausedDownload(gw, token, 1 * MiB);
      expect(downloads.length).toBe(before + 1);
      const d = downloads.at(-1)!;

      // Bounded wait: the gateway must give up on the client and release its upstream request.
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        d.closed,
        new Promise<undefined>((r) => {
          timer = setTimeout(() => r(undefined), 20_000);
        }),
      ]);
      clearTimeout(timer);
      expect(
        outcome,
        'the origin response was never closed: the upstream socket is held by a client that stopped reading',
      ).toBeDefined();
      expect(outcome!.finished).toBe(false);
      expect(outcome!.written).toBeLessThan(ARTIFACT_BYTES);
      await expect.poll(connections, { timeout: 5000, interval: 50 }).toBe(0);

      // The client, reading again, gets what was in flight and then the end: never the whole artifact.
      const total = await client.drainToEnd();
      expect(total).toBeLessThan(ARTIFACT_BYTES);
    },
  );
});

describe('backpressure while a client is paused (default idle timeout)', () => {
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    gw = await startTestGateway({ TOLLGATE_UPSTREAM: origin.url, TOLLGATE_LOG_LEVEL: 'info' });
    ({ token } = await gw.createToken());
  });
  afterAll(async () => {
    await gw?.close();
  });

  it(
    "prevents buffering the artifact: with the client paused, the origin stalls and the gateway's memory does not grow with the 64 MiB artifact",
    { timeout: 30_000 },
    async () => {
      // Warm-up so that first-use allocations (agents, parsers, JIT) are not counted.
      const warm = await startPausedDownload(gw, token, 4 * MiB);
      warm.socket.destroy();
      await downloads.at(-1)!.closed;
      await sleep(200);

      const mem = () => {
        gc();
        const m = process.memoryUsage();
        return { buffers: m.arrayBuffers, heap: m.heapUsed };
      };
      /** Memory once it has settled: sockets closing a moment ago still hold their last buffers. */
      const settled = async () => {
        let last = mem();
        for (let i = 0; i < 30; i++) {
          await sleep(100);
          const next = mem();
          const stable = Math.abs(next.buffers - last.buffers) < 256 * 1024;
          last = next;
          if (stable) break;
        }
        return last;
      };
      const baseline = await settled();
      const client = await startPausedDownload(gw, token, 1 * MiB);
      const d = downloads.at(-1)!;
      const writtenAtStall = await originStalls(d, 500, 20_000);
      const held = await settled(); // what the origin, the gateway and the client hold while the client is paused

      client.socket.destroy();
      const closed = await d.closed;
      const idle = await settled();

      const heldBuffers = held.buffers - Math.min(baseline.buffers, idle.buffers);
      const heldHeap = held.heap - Math.min(baseline.heap, idle.heap);
      console.log(
        `paused reader: origin stalled after ${(writtenAtStall / MiB).toFixed(1)} MiB of ${ARTIFACT_BYTES / MiB} MiB; ` +
          `client read ${(client.received() / MiB).toFixed(1)} MiB; while paused the process held ${(heldBuffers / MiB).toFixed(1)} MiB of buffers ` +
          `and ${(heldHeap / MiB).toFixed(1)} MiB of heap more than idle`,
      );
      // The origin stopped writing long before the end: backpressure reached it.
      expect(writtenAtStall).toBeLessThan(ARTIFACT_BYTES / 2);
      expect(closed.finished).toBe(false);
      // What the origin wrote but the client has not read (~10 MiB here) sits in kernel socket
      // buffers, not in this process (which holds the origin, the gateway and the client).
      expect(heldBuffers).toBeLessThan(4 * MiB);
      expect(heldHeap).toBeLessThan(8 * MiB);
    },
  );
});
