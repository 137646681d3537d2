import { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateToken, generateTokenId, hashToken } from '../../src/tokens/format.js';
import { createRedisTokenStore } from '../../src/tokens/redis-store.js';
import { type TokenStore } from '../../src/tokens/store.js';
import { basic, bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { untilCacheHit } from '../helpers/fleet.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { startRedisCluster, stopAllTopologies, type RedisCluster } from '../helpers/redis-topologies.js';
import { asStored, expectCode, newRecord, T0 } from '../helpers/token-records.js';
import { awaitWindowRoom } from '../helpers/windows.js';

/**
 * Tollgate on a 3-master Redis Cluster started here (`redis-server --cluster-enabled yes` ×3,
 * `redis-cli --cluster create`), reached through `redis-cluster://` URLs naming two of the nodes.
 * Every key shares the prefix's hash tag, so each store's keys (and its multi-key scripts) live in
 * one slot; the tests use several prefixes, whose slots fall on different masters.
 */

let cluster: RedisCluster;
let origin: Origin;

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3 });
  origin = await startOrigin();
}, 60_000);
afterAll(async () => {
  await origin?.close();
  await cluster?.stop();
  await stopAllTopologies();
});

describe('the Redis token store on a Redis Cluster', () => {
  const opened: TokenStore[] = [];
  let n = 0;
  /** A store with a prefix (hash tag) of its own, and a second handle on the same data. */
  const open = (): { store: TokenStore; second: () => TokenStore; prefix: string } => {
    const prefix = `{tg-cluster-${++n}}:`;
    const make = () => {
      const s = createRedisTokenStore({ url: cluster.url, prefix });
      opened.push(s);
      return s;
    };
    return { store: make(), second: make, prefix };
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });

  it('inserts a token and finds it by hash, by id and by name; unknown ones are undefined', async () => {
    const { store } = open();
    const record = newRecord({ type: 'development', expiresAt: Date.now() + 60_000 });
    expect(await store.insert(record)).toEqual(asStored(record));
    expect(await store.findByHash(record.hash)).toEqual(asStored(record));
    expect(await store.get(record.id)).toEqual(asStored(record));
    expect(await store.get(record.name)).toEqual(asStored(record));
    expect(await store.findByHash(hashToken(generateToken('production')))).toBeUndefined();
    expect(await store.get(generateTokenId())).toBeUndefined();
    expect(await store.get('no-such-name')).toBeUndefined();
  });

  it('lists every token newest first, revoked ones included', async () => {
    const { store } = open();
    const middle = newRecord({ createdAt: T0 + 20 });
    const oldest = newRecord({ createdAt: T0 + 10 });
    const newest = newRecord({ createdAt: T0 + 30 });
    for (const record of [middle, oldest, newest]) await store.insert(record);
    await store.revoke(oldest.id, 'bob', T0 + 40);
    const listed = await store.list();
    expect(listed.map((r) => r.id)).toEqual([newest.id, middle.id, oldest.id]);
    expect(listed[2]).toMatchObject({ revokedAt: T0 + 40, revokedBy: 'bob' });
  });

  it('keeps names unique among live tokens, and frees a name on revoke', async () => {
    const { store } = open();
    const first = newRecord({ name: 'ci' });
    await store.insert(first);
    await expectCode(store.insert(newRecord({ name: 'ci' })), 'TOLLGATE_ERR_TOKEN_NAME_TAKEN');
    await store.revoke('ci', 'bob');
    const second = newRecord({ name: 'ci' });
    await store.insert(second);
    expect((await store.get('ci'))?.id).toBe(second.id);
  });

  it('revokes by id and by name, recording who and when; unknown ones are TOLLGATE_ERR_TOKEN_NOT_FOUND', async () => {
    const { store } = open();
    const byId = newRecord();
    const byName = newRecord({ name: 'deploy' });
    await store.insert(byId);
    await store.insert(byName);
    expect(await store.revoke(byId.id, 'bob', T0 + 123)).toEqual({
      ...asStored(byId),
      revokedAt: T0 + 123,
      revokedBy: 'bob',
    });
    expect((await store.revoke('deploy', 'carol')).id).toBe(byName.id);
    expect(await store.findByHash(byName.hash)).toMatchObject({ revokedBy: 'carol' });
    await expectCode(store.revoke('deploy', 'bob'), 'TOLLGATE_ERR_TOKEN_NOT_FOUND');
    await expectCode(store.revoke(generateTokenId(), 'bob'), 'TOLLGATE_ERR_TOKEN_NOT_FOUND');
  });

  it('records batches of last-used times, keeping the latest', async () => {
    const { store } = open();
    const one = newRecord();
    const two = newRecord();
    await store.insert(one);
    await store.insert(two);
    await store.recordLastUsed([
      { id: one.id, hash: one.hash, at: T0 + 5 },
      { id: two.id, hash: two.hash, at: T0 + 7 },
    ]);
    await store.recordLastUsed([{ id: one.id, hash: one.hash, at: T0 + 3 }]);
    expect((await store.get(one.id))?.lastUsedAt).toBe(T0 + 5);
    expect((await store.get(two.id))?.lastUsedAt).toBe(T0 + 7);
  });

  it('bumps the revision and returns exactly the hashes changed since a revision', async () => {
    const { store } = open();
    const first = newRecord();
    await store.insert(first);
    const since = await store.revision();
    expect(since).toBeGreaterThan(0);
    const second = newRecord();
    await store.insert(second);
    await store.revoke(first.id, 'bob');
    const { changes, revision, complete } = await store.changesSince(since);
    expect(complete).toBe(true);
    expect(revision).toBe(since + 2);
    expect(changes.map((c) => c.hash)).toEqual([second.hash, first.hash]);
    expect(await store.changesSince(revision)).toEqual({ changes: [], revision, complete: true });
  });

  it('shares its data with a second handle and notifies its onChange within one second', async () => {
    const { store, second } = open();
    const other = second();
    let notified = 0;
    other.onChange(() => {
      notified++;
    });
    // The subscriber calls its listeners once subscribed: wait for that, then count from there.
    await expect.poll(() => notified, { timeout: 5000, message: 'subscribed' }).toBeGreaterThan(0);
    const record = newRecord();
    await store.insert(record);
    expect(await other.findByHash(record.hash)).toEqual(asStored(record));
    const before = notified;
    const started = Date.now();
    await store.revoke(record.id, 'bob');
    await expect.poll(() => notified, { timeout: 1000, message: 'onChange after a revoke' }).toBeGreaterThan(before);
    expect(Date.now() - started).toBeLessThanOrEqual(1000);
  });

  it('keeps every key of a store in the one slot of its hash tag', async () => {
    const { store, prefix } = open();
    await store.insert(newRecord());
    await store.recordLastUsed([]);
    const owner = await cluster.nodeForKey(`${prefix}rev`);
    const c = owner.client();
    try {
      const keys = await c.keys(`${prefix}*`);
      expect(keys.length).toBeGreaterThanOrEqual(5);
      const slots = new Set(await Promise.all(keys.map((k) => c.call('CLUSTER', 'KEYSLOT', k))));
      expect(slots.size).toBe(1);
    } finally {
      c.disconnect();
    }
  });
});

describe('gateways on a Redis Cluster (TOLLGATE_REDIS_URL=redis-cluster://...)', () => {
  const PREFIX = '{tollgate}:';
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    const env = {
      TOLLGATE_UPSTREAM: origin.url,
      TOLLGATE_REDIS_URL: cluster.url,
      TOLLGATE_REDIS_PREFIX: PREFIX,
      TOLLGATE_CACHE_TTL_MS: '600000',
      TOLLGATE_CHANGE_POLL_MS: '600000',
      TOLLGATE_ACTIVITY_FLUSH_MS: '20',
      TOLLGATE_TRUSTED_PROXIES: '127.0.0.1',
      TOLLGATE_AUTH_FAILURE_BURST: '20',
      TOLLGATE_AUTH_FAILURE_REFILL_PER_MINUTE: '6',
      TOLLGATE_AUTH_FAILURE_WINDOW_MS: '60000',
      TOLLGATE_LOG_LEVEL: 'warn',
    };
    [a, b] = await Promise.all([startTestGateway(env), startTestGateway(env)]);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  const status = (
    gw: TestGateway,
    authorization: string,
    path = '/cluster/artifact.txt',
    xff?: string,
  ): Promise<number> =>
    fetch(`${gw.url}${path}`, { headers: { authorization, ...(xff ? { 'x-forwarded-for': xff } : {}) } }).then(
      async (r) => {
        await r.arrayBuffer();
        return r.status;
      },
    );

  it('downloads with a token created on one gateway, and refuses it on both within one second of a revoke', async () => {
    const { token, record } = await a.createToken();
    for (const gw of [a, b]) await untilCacheHit(gw, token);
    const started = Date.now();
    await b.store.revoke(record.id, 'cluster-test');
    await Promise.all(
      [a, b].map((gw) =>
        expect.poll(() => status(gw, bearer(token)), { timeout: 1000, message: `401 on ${gw.url}` }).toBe(401),
      ),
    );
    expect(Date.now() - started).toBeLessThanOrEqual(1500); // the revoke call itself included
  });

  it('writes every Production download once to the activity stream in its hash-tag slot', async () => {
    const key = `${PREFIX}activity:production`;
    const client = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0]!.port }], { enableReadyCheck: true });
    client.on('error', () => {});
    try {
      const before = (await client.xrange(key, '-', '+')).length;
      const { token, record } = await a.createToken();
      const N = 20;
      const projects = Array.from({ length: N }, (_, i) => `cluster-dl-${i}`);
      const statuses = await Promise.all(
        projects.map((p, i) => status(i % 2 ? a : b, basic(p, token), `/cluster/${i}.txt`)),
      );
      expect(statuses.every((s) => s === 200)).toBe(true);
      let events: { id: string; project: string }[] = [];
      await expect
        .poll(
          async () => {
            const entries = (await client.xrange(key, '-', '+')).slice(before);
            events = entries
              .map(([, f]) => JSON.parse(f[1]!) as { id: string; project: string; tokenId: string })
              .filter((e) => e.tokenId === record.id);
            return events.length;
          },
          { timeout: 10_000, message: 'N events in the stream' },
        )
        .toBeGreaterThanOrEqual(N);
      await new Promise((r) => setTimeout(r, 200));
      events = (await client.xrange(key, '-', '+'))
        .slice(before)
        .map(([, f]) => JSON.parse(f[1]!) as { id: string; project: string; tokenId: string })
        .filter((e) => e.tokenId === record.id);
      expect(events).toHaveLength(N);
      expect(events.map((e) => e.project).sort()).toEqual([...projects].sort());
      expect(new Set(events.map((e) => e.id)).size).toBe(N);
    } finally {
      client.disconnect();
    }
  });

  it(
    'shares the failed-authentication count across gateways (pipelined INCRBY in one slot)',
    { timeout: 45_000 },
    async () => {
      const { token } = await a.createToken();
      await awaitWindowRoom(60_000, 15_000);
      const address = '203.0.113.77';
      const fail = (gw: TestGateway) => status(gw, bearer(generateToken('production')), '/x', address);
      const statuses: number[] = [];
      // 19 failures on each gateway: under each local bucket (20), over the fleet's (20 + 6).
      for (let i = 0; i < 18; i++) statuses.push(await fail(a), await fail(b));
      // A gateway reads the fleet-wide total when it flushes its own failures (every 250 ms while it
      // has some). Wait until every count has landed in the cluster, then one more failure each, so
      // each flush sees the total.
      const owner = await cluster.nodeForKey(`${PREFIX}authfail`);
      const shared = async () => {
        const [key] = (await owner.command('KEYS', `${PREFIX}authfail:*:${address}`)) as string[];
        return key ? Number(await owner.command('GET', key)) : 0;
      };
      await expect.poll(shared, { timeout: 10_000 }).toBeGreaterThanOrEqual(36);
      statuses.push(await fail(a), await fail(b));
      expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
      // Probed with valid tokens neither gateway has cached: a cached token would pass (the limit
      // refuses store reads, not service).
      for (const gw of [a, b]) {
        await expect
          .poll(async () => status(gw, bearer((await a.createToken()).token), '/x', address), {
            timeout: 3000,
            interval: 50,
          })
          .toBe(429);
      }
      // Another address is not affected.
      expect(await status(b, bearer(token), '/x', '203.0.113.78')).toBe(200);
      const keys = (await owner.command('KEYS', `${PREFIX}authfail:*:${address}`)) as string[];
      expect(keys.length).toBeGreaterThan(0);
    },
  );
});
