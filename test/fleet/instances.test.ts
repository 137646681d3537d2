import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken, generateTokenId, hashToken } from '../../src/tokens/format.js';
import { basic, bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { untilAllAnswer, untilCacheHit } from '../helpers/fleet.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { download, startGatewayProcess, type GatewayProcess } from '../helpers/process.js';
import { startRedisServer, startTcpRelay, type RedisServer, type TcpRelay } from '../helpers/redis-server.js';

/**
 * A fleet: three gateway instances sharing one Redis (this suite's own redis-server). The cache
 * TTL and the revision poll are far beyond every wait here, so whatever reaches an instance in
 * time was pushed (pub/sub) or caught up on reconnect, never aged out or polled.
 *
 * Instance C talks to Redis through a TCP relay, so the suite can cut it off without stopping Redis.
 */

const PREFIX = '{tollgate}:';
const ADMIN_TOKEN = 'fleet-admin-token-0123456789abcdef';
const FAR = '600000';

let redis: RedisServer;
let relay: TcpRelay;
let origin: Origin;
let a: TestGateway;
let b: TestGateway;
let c: TestGateway;
let all: TestGateway[];

const fleetEnv = (redisUrl: string): Record<string, string> => ({
  TOLLGATE_UPSTREAM: origin.url,
  TOLLGATE_REDIS_URL: redisUrl,
  TOLLGATE_REDIS_PREFIX: PREFIX,
  TOLLGATE_CACHE_TTL_MS: FAR,
  TOLLGATE_NEGATIVE_CACHE_TTL_MS: FAR,
  TOLLGATE_CHANGE_POLL_MS: FAR,
  TOLLGATE_CACHE_STALE_MS: FAR,
  TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN,
  TOLLGATE_ACTIVITY_FLUSH_MS: '20',
  TOLLGATE_LOG_LEVEL: 'warn',
});

beforeAll(async () => {
  redis = await startRedisServer();
  relay = await startTcpRelay(redis.port);
  origin = await startOrigin();
  [a, b, c] = await Promise.all([
    startTestGateway(fleetEnv(redis.url)),
    startTestGateway(fleetEnv(redis.url)),
    startTestGateway(fleetEnv(relay.url)),
  ]);
  all = [a, b, c];
});
afterAll(async () => {
  await Promise.all((all ?? []).map((gw) => gw.close()));
  await relay?.close();
  await origin?.close();
  await redis?.stop();
});

const status = (
  gw: TestGateway,
  token: string,
  path = '/fleet/artifact.txt',
  authorization = bearer(token),
): Promise<number> =>
  fetch(`${gw.url}${path}`, { headers: { authorization } }).then(async (r) => {
    await r.arrayBuffer();
    return r.status;
  });

const adminFetch = (gw: TestGateway, path: string, body?: unknown) =>
  fetch(`${gw.adminUrl}/api/v1${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

describe('three instances sharing one Redis', () => {
  it("refuses a token on all three within one second of a revoke through one instance's store", async () => {
    const { token, record } = await a.createToken();
    for (const gw of all) await untilCacheHit(gw, token);
    await b.store.revoke(record.id, 'fleet-test');
    const elapsed = await untilAllAnswer(all, token, 401, 1000);
    expect(Math.max(...elapsed)).toBeLessThanOrEqual(1000);
  });

  it('refuses a token on all three within one second of a revoke through the admin API of another', async () => {
    const created = await adminFetch(c, '/tokens', { name: 'fleet-admin-made', type: 'production' });
    expect(created.status).toBe(201);
    const { id, token } = (await created.json()) as { id: string; token: string };
    for (const gw of all) await untilCacheHit(gw, token);
    const revoked = await adminFetch(b, `/tokens/${id}/revoke`);
    expect(revoked.status).toBe(200);
    await untilAllAnswer(all, token, 401, 1000);
  });

  it('accepts a token created on one instance on the other two, even after they cached it as unknown', async () => {
    // Cache the future token as unknown first (negative cache, 10 min TTL): only the change
    // notification can make the others accept it in time.
    const token = generateToken('production');
    for (const gw of [b, c]) expect(await status(gw, token)).toBe(401);
    await a.store.insert({
      id: generateTokenId(),
      name: 'fleet-created-on-a',
      type: 'production',
      hash: hashToken(token),
      createdAt: Date.now(),
      createdBy: 'fleet-test',
      expiresAt: null,
    });
    await untilAllAnswer([a, b, c], token, 200, 1000);
  });

  it('applies a revocation it missed while cut off from Redis once it reconnects', async () => {
    const { token, record } = await a.createToken();
    for (const gw of all) await untilCacheHit(gw, token);
    await relay.cut();
    try {
      await a.store.revoke(record.id, 'fleet-test');
      await untilAllAnswer([a, b], token, 401, 1000);
      // C missed the pub/sub message and cannot poll: it keeps serving from its cache (serve-stale).
      await new Promise((r) => setTimeout(r, 300));
      expect(await status(c, token)).toBe(200);
    } finally {
      await relay.heal();
    }
    // Reconnect backoff is at most 2 s; the catch-up through the change log follows at once.
    await untilAllAnswer([c], token, 401, 5000);
  });
});

describe('activity from several instances into one Redis Stream', () => {
  it('writes each Production download exactly once: N downloads over two instances, N events, none lost', async () => {
    const raw = new Redis(redis.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
    raw.on('error', () => {});
    try {
      const key = `${PREFIX}activity:production`;
      const before = await raw.xlen(key);
      const { token, record } = await a.createToken();
      const N = 60;
      // Each download names its own project (the Basic user): the stream must hold each one once.
      const projects = Array.from({ length: N }, (_, i) => `fleet-dl-${i}`);
      const statuses = await Promise.all(
        projects.map((project, i) =>
          status(i % 2 === 0 ? a : b, token, `/fleet/activity/${i}.txt`, basic(project, token)),
        ),
      );
      expect(statuses.every((s) => s === 200)).toBe(true);

      // Only this token's events: earlier tests' downloads may still be on their way (instance C
      // delivers what it queued while it was cut off).
      type Event = { id: string; project: string; requestId: string; tokenId: string };
      const read = async (): Promise<Event[]> =>
        (await raw.xrange(key, '-', '+'))
          .slice(before)
          .map(([, fields]) => JSON.parse(fields[1]!) as Event)
          .filter((e) => e.tokenId === record.id);
      await expect
        .poll(async () => (await read()).length, { timeout: 10_000, interval: 50, message: 'N events' })
        .toBeGreaterThanOrEqual(N);
      // A duplicate (a batch resent after its reply was lost) is still queued until it is delivered:
      // once every instance's sinks have drained, whatever was going to arrive has arrived.
      await Promise.all(all.flatMap((gw) => gw.gateway.activity.runners.map((runner) => runner.drain(5000))));
      const events = await read();
      expect(events).toHaveLength(N);
      expect(new Set(events.map((e) => e.id)).size).toBe(N);
      expect(new Set(events.map((e) => e.requestId)).size).toBe(N);
      expect(events.map((e) => e.project).sort()).toEqual([...projects].sort());
    } finally {
      raw.disconnect();
    }
  });
});

describe('an instance running TOLLGATE_WORKERS=2 (subprocess) next to an in-process one', () => {
  let proc: GatewayProcess | undefined;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'tollgate-fleet-workers-'));
    proc = await startGatewayProcess(
      {
        TOLLGATE_UPSTREAM: origin.url,
        TOLLGATE_REDIS_URL: redis.url,
        TOLLGATE_REDIS_PREFIX: PREFIX,
        TOLLGATE_DATA_DIR: dataDir,
        TOLLGATE_WORKERS: '2',
        TOLLGATE_CACHE_TTL_MS: FAR,
        TOLLGATE_CHANGE_POLL_MS: FAR,
        TOLLGATE_ACTIVITY_FLUSH_MS: '20',
        TOLLGATE_LOG_LEVEL: 'info', // the harness waits for the "tollgate listening" line
      },
      { startTimeoutMs: 30_000 },
    );
  }, 60_000);
  afterAll(async () => {
    await proc?.stop(10_000);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /**
   * A fresh connection per request. The workers share the listening socket (SCHED_NONE): the
   * kernel, not the primary, picks the worker, so which worker serves which request is not
   * controlled here and not asserted; every worker holds its own cache and its own subscriber.
   */
  const procStatus = async (token: string, path = '/fleet/workers.txt', authorization = bearer(token)) =>
    (await download(`${proc!.url}${path}`, { headers: { authorization }, timeoutMs: 10_000 })).status;

  it('refuses a token revoked on another instance on both workers within one second', async () => {
    const { token, record } = await a.createToken();
    // Several downloads over fresh connections: both workers have it cached.
    for (let i = 0; i < 6; i++) expect(await procStatus(token)).toBe(200);
    await a.store.revoke(record.id, 'fleet-test');
    const started = Date.now();
    await expect
      .poll(async () => new Set(await Promise.all(Array.from({ length: 6 }, () => procStatus(token)))), {
        timeout: 1000,
        message: '401 on every worker',
      })
      .toEqual(new Set([401]));
    expect(Date.now() - started).toBeLessThanOrEqual(1500);
  });

  it('writes each Production download once: N downloads over the workers and another instance', async () => {
    const raw = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    raw.on('error', () => {});
    try {
      const key = `${PREFIX}activity:production`;
      const { token, record } = await a.createToken();
      const N = 40;
      const projects = Array.from({ length: N }, (_, i) => `workers-dl-${i}`);
      const statuses = await Promise.all(
        projects.map((project, i) =>
          i % 2 === 0
            ? status(a, token, `/fleet/w/${i}.txt`, basic(project, token))
            : procStatus(token, `/fleet/w/${i}.txt`, basic(project, token)),
        ),
      );
      expect(statuses.every((s) => s === 200)).toBe(true);
      type Event = { id: string; project: string; tokenId: string };
      const read = async (): Promise<Event[]> =>
        (await raw.xrange(key, '-', '+'))
          .map(([, fields]) => JSON.parse(fields[1]!) as Event)
          .filter((e) => e.tokenId === record.id);
      await expect
        .poll(async () => (await read()).length, { timeout: 10_000, message: 'N events' })
        .toBeGreaterThanOrEqual(N);
      await new Promise((r) => setTimeout(r, 300));
      const events = await read();
      expect(events).toHaveLength(N);
      expect(new Set(events.map((e) => e.id)).size).toBe(N);
      expect(events.map((e) => e.project).sort()).toEqual([...projects].sort());
    } finally {
      raw.disconnect();
    }
  });
});
