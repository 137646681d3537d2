import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import { bearer } from '../helpers/authorization.js';
import { githubClaims, startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { githubPolicy } from './ci-config.js';
import { postExchange, startCiGateway } from './ci-gateway.js';

/**
 * Issued tokens do not pile up: once expired (plus the grace), the gateway's periodic purge
 * deletes them from the store, logs each, and counts them; tokens created by people are left
 * alone. With Redis, several gateways purge at once and each token goes once.
 */

let issuer: OidcIssuer;
let origin: Origin;
let redis: RedisServer;
let seq = 0;

beforeAll(async () => {
  [issuer, origin, redis] = await Promise.all([startOidcIssuer(), startOrigin(), startRedisServer()]);
  await issuer.addKey();
});
afterAll(async () => {
  await Promise.all([issuer?.close(), origin?.close(), redis?.stop()]);
});

const job = () => githubClaims({ sub: `repo:acme/purge-${++seq}:ref:refs/heads/main`, run_id: String(seq) });
const PURGE_ENV = { TOLLGATE_CI_PURGE_GRACE_MS: '0', TOLLGATE_CI_PURGE_INTERVAL_MS: '100' };
const purgedBy = async (gw: TestGateway) =>
  (await gw.gateway.metrics.ciTokensPurged.get()).values.reduce((s, v) => s + v.value, 0);

describe.each<[string, () => Record<string, string>]>([
  ['sqlite', () => ({})],
  ['redis', () => ({ TOLLGATE_REDIS_URL: redis.url, TOLLGATE_REDIS_PREFIX: `{purge-${++seq}}:` })],
])('the purge of expired CI tokens on the %s store', (_, storeEnv) => {
  let gw: TestGateway & { removeConfig(): void };
  beforeAll(async () => {
    gw = await startCiGateway(origin.url, [githubPolicy(issuer.url, { tokenTtl: '1s' })], {
      ...storeEnv(),
      ...PURGE_ENV,
    });
  });
  afterAll(async () => {
    await gw?.close();
    gw?.removeConfig();
  });

  it('deletes an issued token once it has expired, logging its record, and leaves created tokens alone', async () => {
    const created = await gw.createToken({ name: 'by-a-person', expires: new Date(Date.now() + 1_000).toISOString() });
    const reply = await postExchange(gw.url, await issuer.mint(job()), { address: '10.9.0.1' });
    expect(reply.status).toBe(200);
    const token = reply.body.access_token as string;
    const id = reply.body.tollgate_id as string;
    expect((await fetch(`${gw.url}/npm/x`, { headers: { authorization: bearer(token) } })).status).toBe(200);

    await expect.poll(async () => gw.store.get(id), { timeout: 10_000, interval: 100 }).toBeUndefined();
    expect((await fetch(`${gw.url}/npm/x`, { headers: { authorization: bearer(token) } })).status).toBe(401);
    expect(await purgedBy(gw)).toBe(1);
    expect(gw.logRecords().find((l) => l.event === 'ci.token_purged')).toMatchObject({
      tokenId: id,
      tokenName: reply.body.tollgate_name,
      provider: 'github',
      repository: 'acme/app',
      createdBy: 'ci:github',
    });
    expect(gw.logs()).not.toContain(token);
    // The created token expired too, and stays (shown as expired).
    expect((await gw.store.get(created.record.id))?.id).toBe(created.record.id);
  });
});

describe('several gateways on one Redis', () => {
  it('purge each expired CI token once between them', async () => {
    const env = { TOLLGATE_REDIS_URL: redis.url, TOLLGATE_REDIS_PREFIX: `{purge-many-${++seq}}:`, ...PURGE_ENV };
    const gateways = await Promise.all(
      [0, 1, 2].map(() => startCiGateway(origin.url, [githubPolicy(issuer.url, { tokenTtl: '1s' })], env)),
    );
    try {
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        const reply = await postExchange(gateways[i % 3]!.url, await issuer.mint(job()), { address: `10.9.1.${i}` });
        expect(reply.status).toBe(200);
        ids.push(reply.body.tollgate_id as string);
      }
      await expect
        .poll(async () => (await gateways[0]!.store.list()).length, { timeout: 10_000, interval: 100 })
        .toBe(0);
      const counts = await Promise.all(gateways.map(purgedBy));
      expect(counts.reduce((a, b) => a + b, 0)).toBe(12);
      const logged = gateways.flatMap((g) =>
        g
          .logRecords()
          .filter((l) => l.event === 'ci.token_purged')
          .map((l) => l.tokenId),
      );
      expect(logged.sort()).toEqual(ids.sort());
    } finally {
      for (const g of gateways) {
        await g.close();
        g.removeConfig();
      }
    }
  });
});
