import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateToken, generateTokenId, hashToken } from '../../src/tokens/format.js';
import { createRedisTokenStore } from '../../src/tokens/redis-store.js';
import { createSqliteTokenStore } from '../../src/tokens/sqlite-store.js';
import { SCHEMA_VERSION } from '../../src/tokens/migrations.js';
import type { CiIdentity, NewTokenRecord, TokenStore } from '../../src/tokens/store.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

/**
 * What the token exchange needs of both stores: an ID token claimed once (replay protection),
 * and expired CI-issued tokens purged, by several instances at once without a double delete.
 */

const NOW = Date.now();
const CI: CiIdentity = {
  provider: 'github',
  subject: 'repo:acme/app:ref:refs/heads/main',
  repository: 'acme/app',
  runId: '42',
};
let seq = 0;

function ciRecord(expiresAt: number | null, ci: CiIdentity | null = CI): NewTokenRecord {
  seq++;
  return {
    id: generateTokenId(),
    name: `ci:github:acme/app#${seq}`,
    type: 'production',
    hash: hashToken(generateToken('production')),
    createdAt: NOW - 7_200_000 + seq,
    createdBy: 'ci:github',
    expiresAt,
    ci,
  };
}

const opened: TokenStore[] = [];
const track = (store: TokenStore): TokenStore => {
  opened.push(store);
  return store;
};
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

interface Backend {
  name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  open(options?: { purgedKept?: number }): { store: TokenStore; second: () => TokenStore; where: string };
}

let root = '';
let redis: RedisServer | undefined;
const backends: Backend[] = [
  {
    name: 'sqlite',
    async setup() {
      root = mkdtempSync(path.join(tmpdir(), 'tollgate-ci-store-'));
    },
    async teardown() {
      rmSync(root, { recursive: true, force: true });
    },
    open(options) {
      const dataDir = path.join(root, `s-${++seq}`);
      return {
        store: track(createSqliteTokenStore({ dataDir, ...options })),
        second: () => track(createSqliteTokenStore({ dataDir })),
        where: dataDir,
      };
    },
  },
  {
    name: 'redis',
    async setup() {
      redis = await startRedisServer();
    },
    async teardown() {
      await redis?.stop();
    },
    open(options) {
      const prefix = `{ci-store-${++seq}}:`;
      const url = redis!.url;
      return {
        store: track(createRedisTokenStore({ url, prefix, ...options })),
        second: () => track(createRedisTokenStore({ url, prefix })),
        where: prefix,
      };
    },
  },
];

describe.each(backends)('$name store: ID tokens claimed once, CI tokens purged', (backend) => {
  beforeAll(() => backend.setup());
  afterAll(() => backend.teardown());

  it('claims a key once, on every handle, until it expires', async () => {
    const { store, second } = backend.open();
    const other = second();
    expect(await store.claimOnce('jti:a', NOW + 60_000, NOW)).toBe(true);
    expect(await store.claimOnce('jti:a', NOW + 60_000, NOW)).toBe(false);
    expect(await other.claimOnce('jti:a', NOW + 120_000, NOW)).toBe(false);
    expect(await other.claimOnce('jti:b', NOW + 60_000, NOW)).toBe(true);
  });

  it('lets exactly one of many concurrent claims of a key win', async () => {
    const { store, second } = backend.open();
    const handles = [store, second(), second()];
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => handles[i % 3]!.claimOnce('sha256:same', NOW + 60_000, NOW)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('prunes an expired claim: the key may be claimed again once its ID token has expired', async () => {
    const { store } = backend.open();
    const until = Date.now() + 300;
    expect(await store.claimOnce('jti:short', until)).toBe(true);
    expect(await store.claimOnce('jti:short', until)).toBe(false);
    await expect
      .poll(() => store.claimOnce('jti:short', Date.now() + 60_000), { timeout: 5_000, interval: 100 })
      .toBe(true);
  });

  it('purges CI tokens that expired before the cut-off, and nothing else, logging a change for each', async () => {
    const { store } = backend.open();
    const old = ciRecord(NOW - 3_600_000);
    const recent = ciRecord(NOW - 60_000);
    const live = ciRecord(NOW + 3_600_000);
    const createdExpired = { ...ciRecord(NOW - 3_600_000, null), name: 'created-expired' };
    const never = { ...ciRecord(null, null), name: 'forever' };
    for (const r of [old, recent, live, createdExpired, never]) await store.insert(r);
    const revision = await store.revision();

    const purged = await store.purgeExpiredCi(NOW - 600_000);
    expect(purged.map((r) => r.id)).toEqual([old.id]);
    expect(purged[0]).toMatchObject({ name: old.name, ci: CI, createdBy: 'ci:github' });
    expect(await store.findByHash(old.hash)).toBeUndefined();
    expect(await store.get(old.id)).toBeUndefined();
    expect((await store.list()).map((r) => r.name).sort()).toEqual(
      [createdExpired.name, live.name, never.name, recent.name].sort(),
    );
    const { changes } = await store.changesSince(revision);
    expect(changes.map((c) => c.hash)).toEqual([old.hash]);

    expect((await store.purgeExpiredCi(NOW)).map((r) => r.id)).toEqual([recent.id]);
    expect(await store.purgeExpiredCi(NOW)).toEqual([]);
  });

  it('keeps what it purged for the audit trail, newest first, without the hash, the newest purgedKept only', async () => {
    const { store } = backend.open({ purgedKept: 3 });
    expect(await store.purgedCi(100)).toEqual([]);
    const records = [1, 2, 3, 4].map((i) => ({
      ...ciRecord(NOW - 3_600_000 + i * 1000),
      name: `ci:github:acme/app#${i}`,
    }));
    for (const r of records) await store.insert(r);
    await store.revoke(records[3]!.id, 'admin', NOW - 1000);
    const before = Date.now();
    expect(await store.purgeExpiredCi(NOW, 2)).toHaveLength(2);
    expect(await store.purgeExpiredCi(NOW, 2)).toHaveLength(2);
    const kept = await store.purgedCi(100);
    // Oldest expiry purged first; the first purged has been dropped past the cap of 3.
    expect(kept.map((p) => p.record.id)).toEqual([records[3]!.id, records[2]!.id, records[1]!.id]);
    expect(kept[0]!.record).toMatchObject({
      name: records[3]!.name,
      type: 'production',
      hash: '',
      ci: CI,
      createdBy: 'ci:github',
      expiresAt: records[3]!.expiresAt,
      revokedAt: NOW - 1000,
      revokedBy: 'admin',
    });
    for (const p of kept) expect(p.purgedAt).toBeGreaterThanOrEqual(before - 1000);
    expect(JSON.stringify(kept)).not.toContain(records[2]!.hash);
    expect((await store.purgedCi(1)).map((p) => p.record.id)).toEqual([records[3]!.id]);
  });

  it('skips a damaged entry of the purged list and keeps the rest of the trail', async () => {
    const { store, where } = backend.open();
    const gone = ciRecord(NOW - 3_600_000);
    await store.insert(gone);
    expect(await store.purgeExpiredCi(NOW)).toHaveLength(1);
    // Entries that cannot be read back: not JSON, and JSON without a record's id.
    const damaged = ['{not json', JSON.stringify({ purgedAt: '1', record: '{"name":"x"}' })];
    if (backend.name === 'sqlite') {
      const db = new Database(path.join(where, 'tollgate.db'));
      for (const record of damaged) db.prepare('INSERT INTO ci_purged (purged_at, record) VALUES (1, ?)').run(record);
      db.close();
    } else {
      const admin = new Redis(redis!.url);
      await admin.lpush(`${where}ci-purged`, ...damaged);
      await admin.quit();
    }
    expect((await store.purgedCi(100)).map((p) => p.record.id)).toEqual([gone.id]);
  });

  it('frees the name of a purged token, and purges a revoked CI token too', async () => {
    const { store } = backend.open();
    const a = ciRecord(NOW - 3_600_000);
    await store.insert(a);
    await store.revoke(a.id, 'admin');
    expect((await store.purgeExpiredCi(NOW)).map((r) => r.id)).toEqual([a.id]);
    const again = { ...ciRecord(NOW + 60_000), name: a.name };
    await store.insert(again);
    expect((await store.get(a.name))?.id).toBe(again.id);
  });

  it('purges in batches, oldest expiry first', async () => {
    const { store } = backend.open();
    const records = [3, 1, 2].map((h) => ciRecord(NOW - h * 3_600_000));
    for (const r of records) await store.insert(r);
    expect((await store.purgeExpiredCi(NOW, 2)).map((r) => r.id)).toEqual([records[0]!.id, records[2]!.id]);
    expect((await store.purgeExpiredCi(NOW, 2)).map((r) => r.id)).toEqual([records[1]!.id]);
  });

  it('deletes each token once when several handles purge at the same time', async () => {
    const { store, second } = backend.open();
    const records = Array.from({ length: 40 }, () => ciRecord(NOW - 3_600_000));
    for (const r of records) await store.insert(r);
    const handles = [store, second(), second(), second()];
    const results = await Promise.all(
      handles.map((h) => h.purgeExpiredCi(NOW, 7)).concat(handles.map((h) => h.purgeExpiredCi(NOW, 50))),
    );
    const ids = results.flat().map((r) => r.id);
    expect(ids.sort()).toEqual(records.map((r) => r.id).sort());
    expect(await store.list()).toEqual([]);
  });

  it("purges a rotated CI token's replacement too (it keeps the identity and the expiry)", async () => {
    const { store } = backend.open();
    const a = ciRecord(Date.now() + 60_000);
    await store.insert(a);
    const next = { ...ciRecord(a.expiresAt), name: a.name };
    await store.rotate(a.id, next, Date.now() + 1_000, Date.now());
    expect((await store.purgeExpiredCi(a.expiresAt!)).map((r) => r.id).sort()).toEqual([a.id, next.id].sort());
  });

  it(`records schema ${SCHEMA_VERSION}`, async () => {
    const { store } = backend.open();
    expect((await store.migrate()).to).toBe(SCHEMA_VERSION);
  });
});

describe('upgrading a schema-3 store', () => {
  beforeAll(() => Promise.all(backends.map((b) => b.setup())));
  afterAll(() => Promise.all(backends.map((b) => b.teardown())));

  it('sqlite: adds the claims table, and purges CI tokens written before', async () => {
    const { store, second, where } = backends[0]!.open();
    const before = ciRecord(NOW - 3_600_000);
    await store.insert(before);
    await store.close();
    // Back to schema 3's layout: what a gateway of that version left.
    const db = new Database(path.join(where, 'tollgate.db'));
    db.exec(
      "DROP TABLE ci_claims; DROP INDEX tokens_ci_expiry; UPDATE tollgate_schema SET version = 3 WHERE component = 'tokens'",
    );
    db.close();
    const upgraded = second();
    expect(await upgraded.migrate()).toEqual({ from: 3, to: SCHEMA_VERSION });
    expect(await upgraded.claimOnce('jti:x', NOW + 60_000, NOW)).toBe(true);
    expect((await upgraded.purgeExpiredCi(NOW)).map((r) => r.id)).toEqual([before.id]);
  });

  it('redis: indexes the CI tokens written before by expiry, so that the purge finds them', async () => {
    const { store, second, where } = backends[1]!.open();
    const before = ciRecord(NOW - 3_600_000);
    const plain = { ...ciRecord(NOW - 3_600_000, null), name: 'plain' };
    await store.insert(before);
    await store.insert(plain);
    const admin = new Redis(redis!.url);
    try {
      await admin.del(`${where}ci-expiry`);
      await admin.set(`${where}schema`, '3');
    } finally {
      admin.disconnect();
    }
    const upgraded = second();
    expect(await upgraded.migrate()).toEqual({ from: 3, to: SCHEMA_VERSION });
    expect((await upgraded.purgeExpiredCi(NOW)).map((r) => r.id)).toEqual([before.id]);
    expect((await upgraded.findByHash(plain.hash))?.id).toBe(plain.id);
  });
});
