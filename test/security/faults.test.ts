import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { createToken } from '../../src/tokens/service.js';
import { createSqliteTokenStore } from '../../src/tokens/sqlite-store.js';
import { openTokenStore } from '../../src/tokens/index.js';
import { generateToken } from '../../src/tokens/format.js';
import { closedPort, startFaultyOrigin, targetOf } from '../helpers/faulty-origin.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { patternBytes } from '../helpers/origin.js';
import { openRawConnection, rawRequest, type RawResponse } from '../helpers/raw-http.js';
import { startRedisGateway, type RedisGateway } from '../helpers/redis-gateway.js';
import { tempDir } from '../helpers/route-config.js';
import { startSourceGateway } from '../helpers/source-gateway.js';
import { closesAfterAll } from '../helpers/teardown.js';

/**
 * Faults around the gateway: a misbehaving upstream, and Redis going away under load.
 * Single-request fault behaviour (502 on refuse/reset, 504 on stall, a cut connection on a
 * short body) is covered by test/proxy/forwarding.test.ts ("upstream failures"), serve-stale on
 * its own by test/auth/serve-stale.test.ts; this file adds what those do not: many faults at
 * once, then sockets back to baseline; Redis killed and cut under 20 concurrent clients.
 */

/** The faulty origin, scripted by request path. */
const startScriptedOrigin = (respond: (socket: net.Socket, path: string) => void) =>
  startFaultyOrigin((socket, head) => respond(socket, targetOf(head)));

const openFds = () => readdirSync('/proc/self/fd').length;

describe('an upstream that refuses, resets, stalls, answers 5xx or lies about its length', () => {
  const partial = patternBytes(64 * 1024);
  const closing = closesAfterAll();
  let origin: Awaited<ReturnType<typeof startScriptedOrigin>>;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    origin = closing(
      await startScriptedOrigin((socket, p) => {
        const head = (status: string, headers: string) => `HTTP/1.1 ${status}\r\n${headers}\r\n`;
        switch (p) {
          case '/complete':
            socket.write(head('200 OK', `Content-Length: ${partial.length}\r\nConnection: close\r\n`));
            socket.end(partial);
            return;
          case '/reset-before-head':
            socket.resetAndDestroy();
            return;
          case '/stall-before-head':
            return;
          case '/500':
            socket.end(head('500 Internal Server Error', 'Content-Length: 5\r\nConnection: close\r\n') + 'oops\n');
            return;
          case '/503':
            socket.end(
              head('503 Service Unavailable', 'Retry-After: 7\r\nContent-Length: 5\r\nConnection: close\r\n') +
                'busy\n',
            );
            return;
          case '/reset-mid-body':
            socket.write(head('200 OK', 'Content-Length: 1048576\r\n'));
            socket.write(partial);
            setTimeout(() => socket.resetAndDestroy(), 30);
            return;
          case '/short-body':
            socket.write(head('200 OK', 'Content-Length: 1048576\r\n'));
            socket.end(partial);
            return;
          case '/stall-mid-body':
            socket.write(head('200 OK', 'Content-Length: 1048576\r\n'));
            socket.write(partial);
            return;
          case '/chunked-then-reset':
            socket.write(head('200 OK', 'Transfer-Encoding: chunked\r\n'));
            socket.write(`${partial.length.toString(16)}\r\n`);
            socket.write(partial);
            socket.write('\r\n');
            setTimeout(() => socket.resetAndDestroy(), 30);
            return;
          case '/bad-chunk':
            socket.write(head('200 OK', 'Transfer-Encoding: chunked\r\n'));
            socket.end('zz\r\nnot a chunk\r\n');
            return;
          case '/not-http':
            socket.end('SSH-2.0-OpenSSH_9.6\r\n');
            return;
          default:
            socket.end(head('404 Not Found', 'Content-Length: 0\r\nConnection: close\r\n'));
        }
      }),
    );
    const dir = closing(tempDir('tollgate-security-faults-'));
    gw = closing(
      await startTestGateway({
        TOLLGATE_CONFIG: dir.configFile([
          { prefix: '/f/', upstream: origin.url },
          { prefix: '/down/', upstream: `http://127.0.0.1:${await closedPort()}` },
        ]),
        TOLLGATE_UPSTREAM_TIMEOUT_MS: '400',
      }),
    );
    ({ token } = await gw.createToken());
  });

  const connections = () =>
    new Promise<number>((resolve, reject) => {
      gw.gateway.proxyServer.getConnections((err, n) => (err ? reject(err) : resolve(n)));
    });

  /**
   * 502/504 as a complete JSON answer, the upstream's own 5xx complete, 200 with a cut body, or
   * the connection cut before any head: never a short body passed off as whole.
   */
  function expectNoTruncationPassedOffAsComplete(path: string, res: RawResponse | Error): void {
    if (res instanceof Error) {
      expect(res.message, path).toBe('connection closed before a response head arrived');
      return;
    }
    const ok =
      res.status === 502 || res.status === 504
        ? res.complete && (JSON.parse(res.body.toString()) as { requestId?: string }).requestId !== undefined
        : res.status === 500 || res.status === 503
          ? res.complete && path.endsWith(String(res.status))
          : res.status === 200
            ? !res.complete && res.body.length < 1048576
            : false;
    expect(ok, `${path}: ${res.status} complete=${res.complete} ${res.body.length} bytes`).toBe(true);
  }

  const faults = [
    '/down/x',
    '/f/reset-before-head',
    '/f/stall-before-head',
    '/f/500',
    '/f/503',
    '/f/reset-mid-body',
    '/f/short-body',
    '/f/stall-mid-body',
    '/f/chunked-then-reset',
    '/f/bad-chunk',
    '/f/not-http',
  ];

  it(
    'prevents socket leaks: 12 of each fault (6 at a time), plus a kept-alive client, leave proxy and upstream sockets and fds at baseline',
    { timeout: 60_000 },
    async () => {
      const warm = await rawRequest(gw.url, { path: '/f/complete', headers: { Authorization: bearer(token) } });
      expect(warm.status).toBe(200);
      expect(warm.complete).toBe(true);
      await expect.poll(connections, { timeout: 5000 }).toBe(0);
      await expect.poll(() => origin.open(), { timeout: 5000 }).toBe(0);
      const fdsBefore = openFds();

      for (const faultPath of faults) {
        const results = await Promise.all(
          Array.from({ length: 12 }, async (_, i) => {
            await new Promise((r) => setTimeout(r, (i % 6) * 5)); // staggered starts, not a wait
            return rawRequest(gw.url, { path: faultPath, headers: { Authorization: bearer(token) } }).catch(
              (err: Error) => err,
            );
          }),
        );
        for (const res of results) expectNoTruncationPassedOffAsComplete(faultPath, res);
      }

      // The same faults through a kept-alive client agent, which is then closed.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
      const statuses = await Promise.all(
        faults.map(
          (p) =>
            new Promise<string>((resolve) => {
              const req = http.get(`${gw.url}${p}`, { agent, headers: { authorization: bearer(token) } }, (res) => {
                res.on('data', () => {});
                res.on('end', () => resolve(`${res.statusCode}`));
                res.on('error', () => resolve(`${res.statusCode} cut`));
                res.on('aborted', () => resolve(`${res.statusCode} cut`));
              });
              req.on('error', () => resolve('cut'));
            }),
        ),
      );
      expect(statuses.filter((s) => s === '200')).toEqual([]); // nothing faulty ends as a clean 200
      agent.destroy();

      await expect.poll(connections, { timeout: 10_000, interval: 50 }).toBe(0);
      await expect.poll(() => origin.open(), { timeout: 10_000, interval: 50 }).toBe(0);
      await expect.poll(openFds, { timeout: 10_000, interval: 50 }).toBeLessThanOrEqual(fdsBefore + 2);
      expect(gw.gateway.activity).toBeDefined();
      expect(gw.logs()).not.toContain('unhandled error');

      // And it still serves.
      const after = await rawRequest(gw.url, { path: '/f/complete', headers: { Authorization: bearer(token) } });
      expect(after.status).toBe(200);
      expect(after.complete).toBe(true);
    },
  );

  // Node's http client hands a 101 answer to an 'upgrade' listener; forward-http.ts has none, so
  // Node destroys the upstream socket without 'response' or 'error': the client is never answered
  // and waits until TOLLGATE_CLIENT_IDLE_TIMEOUT_MS (60 s by default) cuts it.
  it('prevents a hung client: an upstream answering 101 Switching Protocols to a GET gets the client a 502', async () => {
    const upgrading = await startScriptedOrigin((socket) => {
      socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    });
    const ugw = await startTestGateway({ TOLLGATE_UPSTREAM: upgrading.url, TOLLGATE_UPSTREAM_TIMEOUT_MS: '400' });
    try {
      const { token: t } = await ugw.createToken();
      const conn = await openRawConnection(ugw.url);
      try {
        const res = await conn.request(`GET /x HTTP/1.1\r\nHost: x\r\nAuthorization: ${bearer(t)}\r\n\r\n`, 3000);
        expect(res.status).toBe(502);
      } finally {
        conn.destroy();
      }
    } finally {
      await ugw.close();
      await upgrading.close();
    }
  });
});

describe('an upstream answering a status outside 100-599 (gateway in its own process)', () => {
  let origin: Awaited<ReturnType<typeof startScriptedOrigin>>;
  let dataDir: string;
  let token: string;

  beforeAll(async () => {
    origin = await startScriptedOrigin((socket, p) => {
      if (p === '/weird-status') socket.end('HTTP/1.1 099 Weird\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
      else socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
    });
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-security-status-'));
    const store = createSqliteTokenStore({ dataDir });
    ({ token } = await createToken(store, { name: 'status', type: 'production', createdBy: 'test' }));
    await store.close();
  });
  afterAll(async () => {
    await origin?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(
    'serves through the subprocess gateway built from src/ (control for the test below)',
    { timeout: 30_000 },
    async () => {
      const gw = await startSourceGateway({ TOLLGATE_UPSTREAM: origin.url, TOLLGATE_DATA_DIR: dataDir });
      try {
        const res = await rawRequest(gw.url, { path: '/ok', headers: { Authorization: bearer(token) } });
        expect(res.status).toBe(200);
      } finally {
        await gw.stop();
      }
    },
  );

  // ServerResponse.writeHead throws ERR_HTTP_INVALID_STATUS_CODE for a status below 100, inside
  // the upstream request's 'response' listener: an uncaught exception that kills the gateway.
  // Any upstream (or anyone on the path to a plain-http upstream) can take the gateway down.
  it(
    'prevents a crash: an upstream "HTTP/1.1 099" gets the client a 502 and the gateway keeps serving',
    { timeout: 30_000 },
    async () => {
      const gw = await startSourceGateway({ TOLLGATE_UPSTREAM: origin.url, TOLLGATE_DATA_DIR: dataDir });
      try {
        const res = await rawRequest(gw.url, {
          path: '/weird-status',
          headers: { Authorization: bearer(token) },
        }).catch((err: Error) => err);
        // A crash happens while the gateway handles that answer, before it could answer anything:
        // the next request then finds nobody listening.
        const next = await rawRequest(gw.url, { path: '/ok', headers: { Authorization: bearer(token) } }).catch(
          (err: Error) => err,
        );
        const exited = `gateway exited:\n${gw.output().slice(-1500)}`;
        expect(next instanceof Error ? next.message : next.status, exited).toBe(200);
        expect(gw.alive(), exited).toBe(true);
        expect(res).toMatchObject({ status: 502 });
      } finally {
        await gw.stop();
      }
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Redis under load

interface Sample {
  kind: 'cached' | 'unknown' | 'victim';
  start: number;
  end: number;
  status: number;
  retryAfter: string | null;
}

/** Clients sending GETs one after another until stopped; every answer is a sample. */
interface Load {
  readonly samples: readonly Sample[];
  /** Stops the clients; resolves with every sample once the last request has ended. */
  stop(): Promise<Sample[]>;
}

/** Between one client's requests, to keep 20 clients from saturating a shared machine (pacing, not a wait). */
const PACE_MS = 5;

function startLoad(url: string, clients: number, pick: () => { kind: Sample['kind']; token: string }): Load {
  const samples: Sample[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  let stopped = false;
  const done = Promise.all(
    Array.from({ length: clients }, async () => {
      while (!stopped) {
        const { kind, token } = pick();
        const start = Date.now();
        const sample = await new Promise<Sample>((resolve) => {
          const req = http.get(`${url}/artifact`, { agent, headers: { authorization: bearer(token) } }, (res) => {
            res.resume();
            res.on('end', () =>
              resolve({
                kind,
                start,
                end: Date.now(),
                status: res.statusCode ?? 0,
                retryAfter: res.headers['retry-after'] ?? null,
              }),
            );
          });
          req.on('error', () => resolve({ kind, start, end: Date.now(), status: -1, retryAfter: null }));
        });
        samples.push(sample);
        await new Promise((r) => setTimeout(r, PACE_MS));
      }
    }),
  );
  return {
    samples,
    async stop() {
      stopped = true;
      await done;
      agent.destroy();
      return samples;
    },
  };
}

const tally = (samples: readonly Sample[]) =>
  samples.reduce<Record<string, number>>((acc, s) => {
    const key = `${s.kind}:${s.status}`;
    acc[key] = (acc[key] ?? 0) + 1;
    return acc;
  }, {});

/**
 * Waits until the samples answered so far include, for every `kind:status` key of `wanted`, at
 * least that many started after `since`. The phases of the tests below move on these events,
 * not on the clock: a slow machine makes them slower, never red.
 */
async function untilAnswered(load: Load, since: number, wanted: Record<string, number>): Promise<void> {
  await vi.waitFor(
    () => {
      const got = tally(load.samples.filter((s) => s.start > since));
      const missing = Object.entries(wanted).filter(([key, n]) => (got[key] ?? 0) < n);
      if (missing.length > 0)
        throw new Error(`waiting for ${JSON.stringify(wanted)} answers after ${since}; so far ${JSON.stringify(got)}`);
    },
    { timeout: 30_000, interval: 20 },
  );
}

/** The gateway's own word that it has lost Redis: /readyz answers 503 (its store ping fails). */
async function untilNotReady(gw: TestGateway): Promise<number> {
  await expect
    .poll(async () => (await fetch(`${gw.adminUrl}/readyz`)).status, { timeout: 10_000, interval: 20 })
    .toBe(503);
  return Date.now();
}

describe('Redis killed mid-load (20 concurrent clients)', () => {
  const closing = closesAfterAll();
  let stack: RedisGateway;
  beforeAll(async () => {
    stack = closing(
      await startRedisGateway({
        TOLLGATE_CACHE_STALE_MS: '30000',
        TOLLGATE_AUTH_FAILURE_BURST: '0', // the unknown tokens below would otherwise be rate-limited
        TOLLGATE_LOG_LEVEL: 'info',
      }),
    );
  });

  it(
    'prevents an outage from spreading: cached tokens keep working, unknown ones get 503 + Retry-After (never 401, never 500), and the gateway reconnects by itself',
    { timeout: 120_000 },
    async () => {
      const { gw, redis } = stack;
      const cached = await Promise.all(Array.from({ length: 5 }, async () => (await gw.createToken()).token));
      for (const t of cached)
        expect((await fetch(`${gw.url}/warm`, { headers: { authorization: bearer(t) } })).status).toBe(200);

      let i = 0;
      const pick = () =>
        i++ % 3 === 0
          ? { kind: 'unknown' as const, token: generateToken('production') } // never seen: a store read every time
          : { kind: 'cached' as const, token: cached[i % cached.length]! };
      const load = startLoad(gw.url, 20, pick);
      onTestFinished(async () => {
        await load.stop();
      }); // also when a phase below fails

      // Before: the traffic is answered as usual.
      await untilAnswered(load, 0, { 'cached:200': 20, 'unknown:401': 10 });
      const killedAt = Date.now();
      await redis.kill();
      // The outage, from the moment the gateway knows Redis is gone, until enough answers to judge it.
      const outageSeenAt = await untilNotReady(gw);
      await untilAnswered(load, outageSeenAt, { 'cached:200': 40, 'unknown:503': 15 });
      // The outage is judged up to the moment the restart begins: once redis-server is back, the gateway may
      // reconnect before restart() resolves, and an unknown token is rightly 401 again.
      const restartingAt = Date.now();
      await redis.restart(); // empty: the tokens above are gone with the data
      const restartedAt = Date.now();
      // Back: the gateway reconnects by itself and reads the (empty) store again.
      await untilAnswered(load, restartedAt, { 'unknown:401': 10 });
      const samples = await load.stop();

      // Nothing crashed and nothing failed in a way a client cannot act on.
      expect(
        samples.filter((s) => s.status === -1 || (s.status >= 500 && s.status !== 503)),
        JSON.stringify(tally(samples)),
      ).toEqual([]);
      expect(samples.filter((s) => s.status === 503 && !/^\d+$/.test(s.retryAfter ?? ''))).toEqual([]);
      // While Redis was down: cached tokens 200, unknown tokens 503, never 401.
      const inOutage = samples.filter((s) => s.start > outageSeenAt && s.end < restartingAt);
      expect(inOutage.length).toBeGreaterThan(50);
      expect(inOutage.filter((s) => s.kind === 'cached' && s.status !== 200)).toEqual([]);
      expect(inOutage.filter((s) => s.kind === 'unknown' && s.status !== 503)).toEqual([]);
      expect(inOutage.filter((s) => s.kind === 'unknown').length).toBeGreaterThan(10);
      // Before the outage, the same traffic was 200 and 401.
      const beforeOutage = samples.filter((s) => s.end < killedAt);
      expect(new Set(beforeOutage.map((s) => `${s.kind}:${s.status}`))).toEqual(new Set(['cached:200', 'unknown:401']));

      // Redis is back (empty): the gateway reconnects without help, sees a token created now, and answers 401, not 503, to unknown ones.
      const admin = await openTokenStore(gw.config);
      try {
        const fresh = await createToken(admin, { name: 'after-restart', type: 'production', createdBy: 'test' });
        await expect
          .poll(
            async () => (await fetch(`${gw.url}/after`, { headers: { authorization: bearer(fresh.token) } })).status,
            { timeout: 10_000, interval: 100 },
          )
          .toBe(200);
        expect(
          (await fetch(`${gw.url}/after`, { headers: { authorization: bearer(generateToken('production')) } })).status,
        ).toBe(401);
        expect((await fetch(`${gw.adminUrl}/readyz`)).status).toBe(200);
      } finally {
        await admin.close();
      }
      expect(gw.logs()).not.toContain('unhandled error');
    },
  );
});

describe('a revocation made while the gateway is cut off from Redis (20 concurrent clients)', () => {
  const closing = closesAfterAll();
  let stack: RedisGateway;
  beforeAll(async () => {
    // The gateway reaches Redis only through the relay; Redis keeps its data.
    stack = closing(
      await startRedisGateway(
        {
          TOLLGATE_CACHE_TTL_MS: '600000',
          TOLLGATE_CACHE_STALE_MS: '30000',
          TOLLGATE_AUTH_FAILURE_BURST: '0',
          TOLLGATE_LOG_LEVEL: 'info',
        },
        { relay: true },
      ),
    );
  });

  it(
    'prevents a lost revocation: it is applied once the gateway can see Redis again, and stays applied',
    { timeout: 120_000 },
    async () => {
      const { gw } = stack;
      const relay = stack.relay!;
      const direct = stack.direct!;
      const keep = await gw.createToken();
      const victim = await gw.createToken();
      await gw.gateway.cache.sync();
      for (const t of [keep.token, victim.token])
        expect((await fetch(`${gw.url}/warm`, { headers: { authorization: bearer(t) } })).status).toBe(200);

      let i = 0;
      const pick = () => {
        const n = i++ % 4;
        if (n === 0) return { kind: 'unknown' as const, token: generateToken('production') };
        if (n === 1) return { kind: 'victim' as const, token: victim.token };
        return { kind: 'cached' as const, token: keep.token };
      };
      const load = startLoad(gw.url, 20, pick);
      onTestFinished(async () => {
        await load.stop();
      }); // also when a phase below fails

      await untilAnswered(load, 0, { 'cached:200': 10, 'victim:200': 5, 'unknown:401': 5 });
      await relay.cut();
      await direct.revoke(victim.record.id, 'test'); // the pub/sub message never reaches the gateway
      // Cut off, from the moment the gateway knows it, until enough answers to judge it.
      const cutSeenAt = await untilNotReady(gw);
      await untilAnswered(load, cutSeenAt, { 'cached:200': 25, 'victim:200': 15, 'unknown:503': 15 });
      await relay.heal();
      const healedAt = Date.now();
      // Once the gateway can see Redis, the revocation arrives (change log catch-up on reconnect).
      await expect
        .poll(
          async () => (await fetch(`${gw.url}/probe`, { headers: { authorization: bearer(victim.token) } })).status,
          { timeout: 10_000, interval: 50 },
        )
        .toBe(401);
      const refusedAt = Date.now();
      // Then enough traffic to show it stays applied.
      await untilAnswered(load, refusedAt, { 'victim:401': 15, 'cached:200': 15 });
      const samples = await load.stop();

      expect(
        samples.filter((s) => s.status === -1 || (s.status >= 500 && s.status !== 503)),
        JSON.stringify(tally(samples)),
      ).toEqual([]);
      // Cut off: cached tokens (the victim included: the revocation cannot be seen yet) keep working; unknown ones 503.
      const cut = samples.filter((s) => s.start > cutSeenAt && s.end < healedAt);
      expect(cut.length).toBeGreaterThan(50);
      expect(cut.filter((s) => s.kind !== 'unknown' && s.status !== 200)).toEqual([]);
      expect(cut.filter((s) => s.kind === 'unknown' && s.status !== 503)).toEqual([]);
      // Once refused, always refused: no victim request started after that is served again.
      expect(samples.filter((s) => s.kind === 'victim' && s.start >= refusedAt && s.status !== 401)).toEqual([]);
      expect(samples.filter((s) => s.kind === 'victim' && s.start >= refusedAt).length).toBeGreaterThan(10);
      expect(samples.filter((s) => s.kind === 'cached' && s.start >= refusedAt && s.status !== 200)).toEqual([]);
      expect(gw.logs()).not.toContain('unhandled error');
    },
  );
});
