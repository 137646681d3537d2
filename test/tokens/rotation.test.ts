import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { DEFAULT_UPSTREAM_DIR } from '../../src/config/index.js';
import { openTokenStore } from '../../src/tokens/index.js';
import { createToken, revokeToken, rotateToken } from '../../src/tokens/service.js';
import { tokenEndsAt, type TokenStore } from '../../src/tokens/store.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { patternBytes, startOrigin, type Origin } from '../helpers/origin.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { tempDir, type TempDir } from '../helpers/route-config.js';

/**
 * Rotation on running gateways: two gateways sharing a store, and a third handle on it (as the
 * CLI or the admin API of another instance has) that rotates and revokes. The caches' TTL is far
 * beyond every wait: what the gateways learn, they learn from the change log.
 *
 * Routes: `/` is the shipped example tree; `/slow/` is an origin that sends the first part of
 * each body at once and the rest only when the test opens its gate (a download in flight for as
 * long as the test wants).
 */

const ARTIFACT = '/generic/hello/1.0.0/hello-1.0.0.txt';
const SLOW_ARTIFACT = '/slow/big/-/big-1.0.0.tgz';
const FAR_FUTURE_TTL = '600000';
const SLOW_BYTES = 512 * 1024;
/** What the slow origin sends before it waits for the gate. */
const FIRST_PART = 64 * 1024;

interface Gate {
  open(): void;
  opened: Promise<void>;
}
function closedGate(): Gate {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}
/** The gate the slow origin waits on; each download test sets a new one. */
let gate = closedGate();
let origin: Origin;
let scratch: TempDir;

beforeAll(async () => {
  origin = await startOrigin((_req, res) => {
    const body = patternBytes(SLOW_BYTES);
    const waitFor = gate.opened;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': SLOW_BYTES });
    res.write(body.subarray(0, FIRST_PART));
    void waitFor.then(() => res.end(body.subarray(FIRST_PART)));
  });
  scratch = tempDir('tollgate-rotation-routes-');
});
afterAll(async () => {
  gate.open(); // no response left waiting
  await origin?.close();
  scratch?.remove();
});

/** A GET of ARTIFACT through `agent`: its status, and whether it went on a connection used before. */
function getVia(agent: http.Agent, gw: TestGateway, token: string): Promise<{ status: number; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${gw.url}${ARTIFACT}`, { headers: { authorization: bearer(token) }, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

interface Download {
  status: number;
  /** The whole body once the response is over, and whether it ended by its framing (not cut). */
  finished: Promise<{ body: Buffer; complete: boolean }>;
}

/**
 * Starts a GET (on a connection of its own unless `agent` keeps one) and resolves once FIRST_PART
 * bytes of the body have arrived: the download is then in flight, its rest held back by the
 * origin's gate.
 */
function startDownload(gw: TestGateway, token: string, agent: http.Agent | false = false): Promise<Download> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${gw.url}${SLOW_ARTIFACT}`, { headers: { authorization: bearer(token) }, agent }, (res) => {
      const chunks: Buffer[] = [];
      let received = 0;
      let started = false;
      let finish!: (result: { body: Buffer; complete: boolean }) => void;
      const finished = new Promise<{ body: Buffer; complete: boolean }>((r) => {
        finish = r;
      });
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        received += chunk.length;
        if (!started && received >= FIRST_PART) {
          started = true;
          resolve({ status: res.statusCode ?? 0, finished });
        }
      });
      res.on('error', () => {}); // a cut body: `complete` says so
      res.on('close', () => {
        finish({ body: Buffer.concat(chunks), complete: res.complete });
        if (!started)
          reject(new Error(`status ${res.statusCode}: ended after ${received} bytes, before the first part`));
      });
    });
    req.on('error', reject);
  });
}

async function status(gw: TestGateway, token: string): Promise<number> {
  const res = await fetch(`${gw.url}${ARTIFACT}`, { headers: { authorization: bearer(token) } });
  await res.arrayBuffer();
  return res.status;
}

interface Backend {
  name: string;
  setup(): Promise<Record<string, string>>;
  teardown(): Promise<void>;
}

let redis: RedisServer | undefined;
const backends: Backend[] = [
  {
    name: 'embedded SQLite store',
    async setup() {
      return { TOLLGATE_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'tollgate-rotation-')) };
    },
    async teardown() {},
  },
  {
    name: 'Redis store',
    async setup() {
      redis = await startRedisServer();
      return { TOLLGATE_REDIS_URL: redis.url };
    },
    async teardown() {
      await redis?.stop();
    },
  },
];

describe.each(backends)('token rotation with the $name', (backend) => {
  let env: Record<string, string>;
  let gateways: TestGateway[];
  /** The handle that rotates and revokes: not either gateway's. */
  let admin: TokenStore;

  beforeAll(async () => {
    env = await backend.setup();
    const common = {
      ...env,
      TOLLGATE_CACHE_TTL_MS: FAR_FUTURE_TTL,
      TOLLGATE_CONFIG: scratch.configFile([
        { prefix: '/slow/', upstream: origin.url },
        { prefix: '/', upstream: DEFAULT_UPSTREAM_DIR },
      ]),
    };
    gateways = [await startTestGateway(common), await startTestGateway(common)];
    admin = await openTokenStore({
      redis: env.TOLLGATE_REDIS_URL ? { url: env.TOLLGATE_REDIS_URL, prefix: '{tollgate}:' } : undefined,
      dataDir: gateways[0]!.dataDir,
    });
  });
  afterAll(async () => {
    await admin?.close();
    for (const gw of gateways ?? []) await gw.close();
    await backend.teardown();
    if (env?.TOLLGATE_DATA_DIR) rmSync(env.TOLLGATE_DATA_DIR, { recursive: true, force: true });
  });

  /** Every gateway's answer to this token, in order. */
  const everywhere = (token: string) => Promise.all(gateways.map((gw) => status(gw, token)));
  /**
   * Every gateway has read the change log so far: a token created before is cached from then on
   * and only a later change can drop it (otherwise its own creation might, and hide a missing one).
   */
  const caughtUp = () => Promise.all(gateways.map((gw) => gw.gateway.cache.sync()));

  it('lets the new token work at once and the old one until its overlap ends, then refuses it with 401 within a second on every gateway', async () => {
    const { token: old } = await createToken(admin, { name: 'rotate-me', type: 'production', createdBy: 'test' });
    await caughtUp();
    expect(await everywhere(old)).toEqual([200, 200]); // cached on both

    const rotated = await rotateToken(admin, 'rotate-me', { overlap: '2s', by: 'test' });
    const endsAt = tokenEndsAt(rotated.previous)!;
    expect(endsAt).toBe(rotated.record.createdAt + 2000);
    expect(await everywhere(rotated.token)).toEqual([200, 200]);

    // Each gateway: every answer before the overlap's end is 200; the first 401 comes within a second after it.
    await Promise.all(
      gateways.map(async (gw) => {
        // `at`: when the request was sent; `answeredAt`: when its answer came. A request sent just
        // before the end may be judged just after it: only an answer that came before the end counts.
        const answers: { at: number; answeredAt: number; status: number }[] = [];
        await expect
          .poll(
            async () => {
              const at = Date.now();
              const answer = await status(gw, old);
              answers.push({ at, answeredAt: Date.now(), status: answer });
              return answer;
            },
            { timeout: endsAt - Date.now() + 5000, interval: 25 },
          )
          .toBe(401);
        const refused = answers.find((a) => a.status === 401)!;
        expect(answers.filter((a) => a.status !== 401 && a.status !== 200)).toEqual([]);
        expect(answers.filter((a) => a.status === 401 && a.answeredAt < endsAt)).toEqual([]);
        expect(refused.at - endsAt).toBeLessThan(1000);
      }),
    );
    expect(await everywhere(rotated.token)).toEqual([200, 200]);
  });

  it.each([
    ['with an overlap of 0', '0'],
    ['across the end of a 1 s overlap', '1s'],
  ])(
    'finishes a download begun with the old token, every byte, when the token is rotated mid-body %s; new requests with the old token then get 401, the new token 200',
    async (_when, overlap) => {
      gate = closedGate();
      const { token: old, record } = await createToken(admin, {
        name: `mid-download-${overlap}`,
        type: 'production',
        createdBy: 'test',
      });
      await caughtUp();
      // One kept-alive connection: the download, then the next requests after it.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      onTestFinished(() => agent.destroy());
      const download = await startDownload(gateways[0]!, old, agent);
      expect(download.status).toBe(200);
      let over = false;
      void download.finished.then(() => {
        over = true;
      });

      // The body is in flight (its first part arrived, the rest waits for the gate) while the
      // token is rotated and its overlap ends.
      const rotated = await rotateToken(admin, record.id, { overlap, by: 'test' });
      const endsAt = tokenEndsAt(rotated.previous)!;
      await expect
        .poll(() => everywhere(old), { timeout: endsAt - Date.now() + 5000, interval: 20 })
        .toEqual([401, 401]);
      expect(await everywhere(rotated.token)).toEqual([200, 200]);
      expect(over).toBe(false); // still in flight: authentication was judged when it began

      gate.open();
      const { body, complete } = await download.finished;
      expect(complete).toBe(true);
      expect(body.length).toBe(SLOW_BYTES);
      expect(body.equals(patternBytes(SLOW_BYTES))).toBe(true);
      // The gateway's own account of it: whole, not aborted, and the old token's.
      const line = () => gateways[0]!.logRecords().find((r) => r.path === SLOW_ARTIFACT && r.tokenId === record.id);
      await expect.poll(line).toBeDefined();
      expect(line()).toMatchObject({ status: 200, bytes: SLOW_BYTES });
      expect(line()).not.toHaveProperty('aborted');
      expect(line()).not.toHaveProperty('upstreamError');
      // The next request on the download's own connection is judged afresh.
      expect(await getVia(agent, gateways[0]!, old)).toEqual({ status: 401, reused: true });
      expect(await getVia(agent, gateways[0]!, rotated.token)).toEqual({ status: 200, reused: true });

      // The same download with the new token (the gate is open now: straight through).
      const again = await startDownload(gateways[1]!, rotated.token);
      expect(again.status).toBe(200);
      expect((await again.finished).body.equals(patternBytes(SLOW_BYTES))).toBe(true);
    },
  );

  it('refuses both generations within a second on every gateway once the name is revoked', async () => {
    const { token: first } = await createToken(admin, {
      name: 'Both-Generations',
      type: 'development',
      createdBy: 'test',
    });
    const rotated = await rotateToken(admin, 'both-generations', { overlap: '1h', by: 'test' });
    await caughtUp();
    expect(await everywhere(first)).toEqual([200, 200]);
    expect(await everywhere(rotated.token)).toEqual([200, 200]);

    const { record, revoked } = await revokeToken(admin, 'BOTH-GENERATIONS', 'test');
    expect(record.id).toBe(rotated.record.id);
    expect(revoked.map((r) => r.id).sort()).toEqual([rotated.record.id, rotated.previous.id].sort());
    const revokedAt = Date.now();
    await expect.poll(() => everywhere(first), { timeout: 1000, interval: 20 }).toEqual([401, 401]);
    await expect.poll(() => everywhere(rotated.token), { timeout: 1000, interval: 20 }).toEqual([401, 401]);
    expect(Date.now() - revokedAt).toBeLessThan(1000);
  });

  it('refuses the old token at once with an overlap of 0, and refuses to rotate it again', async () => {
    const { token: old, record } = await createToken(admin, {
      name: 'no-overlap',
      type: 'production',
      createdBy: 'test',
    });
    await caughtUp();
    expect(await everywhere(old)).toEqual([200, 200]);
    const rotated = await rotateToken(admin, record.id, { overlap: '0', by: 'test' });
    await expect.poll(() => everywhere(old), { timeout: 1000, interval: 20 }).toEqual([401, 401]);
    expect(await everywhere(rotated.token)).toEqual([200, 200]);
    await expect(rotateToken(admin, record.id, { by: 'test' })).rejects.toMatchObject({
      code: 'TOLLGATE_ERR_TOKEN_NOT_LIVE',
    });
  });

  it('keeps the name, type, restrictions and expiry date; refuses revoked and expired tokens', async () => {
    const expires = '2031-05-04';
    const { record } = await createToken(admin, {
      name: 'keeps-everything',
      type: 'development',
      expires,
      createdBy: 'test',
      restrictions: { packages: ['hello'], networks: ['127.0.0.0/8'], rate: 600 },
      knownRoutes: ['/'],
    });
    const rotated = await rotateToken(admin, 'keeps-everything', { by: 'rotator' });
    expect(rotated.record).toMatchObject({
      name: record.name,
      type: 'development',
      expiresAt: record.expiresAt,
      restrictions: record.restrictions,
      replaces: record.id,
      createdBy: 'rotator',
    });
    expect(rotated.previous.overlapEndsAt).toBe(rotated.record.createdAt + 24 * 3_600_000);
    expect(await everywhere(rotated.token)).toEqual([200, 200]);

    const { record: revoked } = await createToken(admin, {
      name: 'revoked-one',
      type: 'production',
      createdBy: 'test',
    });
    await admin.revoke(revoked.id, 'test');
    await expect(rotateToken(admin, revoked.id, { by: 'test' })).rejects.toMatchObject({
      code: 'TOLLGATE_ERR_TOKEN_NOT_LIVE',
    });
    const { record: expiring } = await createToken(admin, {
      name: 'expires-soon',
      type: 'production',
      createdBy: 'test',
      expires: new Date(Date.now() + 50).toISOString(),
    });
    await expect.poll(() => Date.now() > expiring.expiresAt!).toBe(true);
    await expect(rotateToken(admin, expiring.id, { by: 'test' })).rejects.toMatchObject({
      code: 'TOLLGATE_ERR_TOKEN_NOT_LIVE',
    });
  });
});
