import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTokenStore } from '../../src/tokens/index.js';
import { createToken, revokeToken, rotateToken } from '../../src/tokens/service.js';
import { tokenEndsAt, type TokenStore } from '../../src/tokens/store.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

/**
 * Rotation on running gateways: two gateways sharing a store, and a third handle on it (as the
 * CLI or the admin API of another instance has) that rotates and revokes. The caches' TTL is far
 * beyond every wait: what the gateways learn, they learn from the change log.
 */

const ARTIFACT = '/generic/hello/1.0.0/hello-1.0.0.txt';
const FAR_FUTURE_TTL = '600000';

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
    const common = { ...env, TOLLGATE_CACHE_TTL_MS: FAR_FUTURE_TTL };
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
