import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openTokenStore } from '../../src/tokens/index.js';
import type { TokenStore } from '../../src/tokens/store.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { untilCacheHit } from '../helpers/fleet.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startSentinelSetup, stopAllTopologies, type SentinelSetup } from '../helpers/redis-topologies.js';

/**
 * A Redis Sentinel failover during traffic. This suite starts, on loopback: a master, one replica
 * (`--replicaof`) and three sentinels (quorum 2, down-after 1 s, failover-timeout 3 s), and two
 * gateways with TOLLGATE_REDIS_URL=redis-sentinel://s1,s2,s3/mymaster. It SIGKILLs the master
 * while one token downloads in a loop and waits for the sentinels to name the replica.
 *
 * Replication is asynchronous: a write acknowledged by the master just before it dies can be
 * missing on the promoted replica. The suite therefore waits (`WAIT 1 1000` on the master) until
 * the replica has every token before the kill. Without that, a token created in the last
 * moment before a failover may be lost, exactly as with any Redis Sentinel deployment.
 */

let setup: SentinelSetup;
let origin: Origin;
let a: TestGateway;
let b: TestGateway;
/** A separate handle on the store, as the CLI opens one. */
let cli: TokenStore;

beforeAll(async () => {
  setup = await startSentinelSetup({
    masterName: 'mymaster',
    replicas: 1,
    sentinels: 3,
    downAfterMs: 1000,
    failoverTimeoutMs: 3000,
  });
  origin = await startOrigin();
  const env = {
    TOLLGATE_UPSTREAM: origin.url,
    TOLLGATE_REDIS_URL: setup.url,
    TOLLGATE_CACHE_TTL_MS: '600000',
    TOLLGATE_NEGATIVE_CACHE_TTL_MS: '500',
    TOLLGATE_CHANGE_POLL_MS: '600000',
    TOLLGATE_LOG_LEVEL: 'warn',
  };
  [a, b] = await Promise.all([startTestGateway(env), startTestGateway(env)]);
  cli = await openTokenStore(a.config);
}, 60_000);
afterAll(async () => {
  await cli?.close();
  await Promise.all([a?.close(), b?.close()]);
  await origin?.close();
  await setup?.stop();
  await stopAllTopologies();
});

const status = (gw: TestGateway, token: string, path = '/sentinel/artifact.txt'): Promise<number> =>
  fetch(`${gw.url}${path}`, { headers: { authorization: bearer(token) } }).then(async (r) => {
    await r.arrayBuffer();
    return r.status;
  });

describe('a Redis Sentinel failover during traffic', () => {
  it('starts with both gateways on the master the sentinels name', async () => {
    expect(await setup.masterPort()).toBe(setup.master.port);
    const { token } = await a.createToken();
    expect(await status(a, token)).toBe(200);
    expect(await status(b, token)).toBe(200);
  });

  it('keeps tokens working through the failover: cached ones throughout, uncached and new ones after it, and revokes within 1 s', async () => {
    const cached = await a.createToken({ name: 'sentinel-cached' });
    const uncached = await a.createToken({ name: 'sentinel-uncached' });
    for (const gw of [a, b]) await untilCacheHit(gw, cached.token);
    // Every write so far is on the replica before the master dies (see the note at the top).
    const master = setup.master.client();
    try {
      expect(await master.call('WAIT', 1, 1000)).toBe(1);
    } finally {
      master.disconnect();
    }

    // Download in a loop on both gateways while the master is killed and the replica promoted.
    const seen: number[] = [];
    let traffic = true;
    const loop = (async () => {
      while (traffic) {
        seen.push(await status(a, cached.token), await status(b, cached.token));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const oldPort = setup.master.port;
    await setup.master.kill();
    const newPort = await setup.waitForFailover(oldPort, 30_000);
    expect(newPort).toBe(setup.replicas[0]!.port);

    // The token the gateways had not cached is read from the new master once they follow it.
    for (const gw of [a, b]) {
      await expect
        .poll(() => status(gw, uncached.token), {
          timeout: 15_000,
          message: `uncached token accepted on ${gw.url} after failover`,
        })
        .toBe(200);
    }
    traffic = false;
    await loop;
    expect(seen.length).toBeGreaterThan(10);
    expect(seen.filter((s) => s !== 200)).toEqual([]);

    // Both gateways' change subscribers follow the new master (they reconnect through the sentinels).
    const promoted = setup.replicas[0]!;
    await expect
      .poll(async () => ((await promoted.command('PUBSUB', 'NUMSUB', '{tollgate}:changes')) as [string, number])[1], {
        timeout: 15_000,
        message: 'both gateways subscribed on the new master',
      })
      .toBeGreaterThanOrEqual(2);

    // A token created after the failover (through a separate handle, as the CLI would) works on both.
    // Retried while the handle follows the new master (commands fail fast meanwhile).
    const { createToken } = await import('../../src/tokens/service.js');
    const created = await vi.waitFor(
      () => createToken(cli, { name: 'sentinel-after', type: 'production', createdBy: 'sentinel-test' }),
      { timeout: 15_000, interval: 50 },
    );
    for (const gw of [a, b]) {
      await expect
        .poll(() => status(gw, created.token), { timeout: 5000, message: `new token accepted on ${gw.url}` })
        .toBe(200);
    }

    // A revocation after the failover reaches both (pub/sub on the new master) within one second.
    for (const gw of [a, b]) await untilCacheHit(gw, created.token);
    const started = Date.now();
    await cli.revoke(created.record.id, 'sentinel-test');
    await Promise.all(
      [a, b].map((gw) =>
        expect.poll(() => status(gw, created.token), { timeout: 1000, message: `401 on ${gw.url}` }).toBe(401),
      ),
    );
    expect(Date.now() - started).toBeLessThanOrEqual(1500); // includes the revoke round trip
    // The cached token revoked after failover too, through the other gateway's store.
    await b.store.revoke(cached.record.id, 'sentinel-test');
    await Promise.all(
      [a, b].map((gw) =>
        expect.poll(() => status(gw, cached.token), { timeout: 1000, message: `401 on ${gw.url}` }).toBe(401),
      ),
    );
  }, 90_000);
});
