import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { generateToken, generateTokenId, hashToken } from '../../src/tokens/format.js';
import { createRedisTokenStore, DEFAULT_REDIS_PREFIX } from '../../src/tokens/redis-store.js';
import { createSqliteTokenStore } from '../../src/tokens/sqlite-store.js';
import { changeSubject, tokenState, type TokenStore } from '../../src/tokens/store.js';
import { asStored, expectCode, newRecord, T0 } from '../helpers/token-records.js';
import { freePort, startRedisServer, startTcpRelay, type RedisServer } from '../helpers/redis-server.js';

/** Stores opened by a test, closed after it. */
const opened: TokenStore[] = [];
const track = <S extends TokenStore>(store: S): S => {
  opened.push(store);
  return store;
};
afterEach(async () => {
  await Promise.all(opened.splice(0).map((store) => store.close()));
});

interface Backend {
  name: 'sqlite' | 'redis';
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** An empty store of its own, and a way to open a second handle on the same data. */
  open(): { store: TokenStore; second: () => TokenStore };
}

function sqliteBackend(): Backend {
  let root = '';
  let n = 0;
  return {
    name: 'sqlite',
    async setup() {
      root = mkdtempSync(path.join(tmpdir(), 'tollgate-store-'));
    },
    async teardown() {
      rmSync(root, { recursive: true, force: true });
    },
    open() {
      const dataDir = path.join(root, `store-${++n}`);
      return {
        store: track(createSqliteTokenStore({ dataDir })),
        second: () => track(createSqliteTokenStore({ dataDir })),
      };
    },
  };
}

function redisBackend(): Backend {
  let server: RedisServer | undefined;
  let n = 0;
  return {
    name: 'redis',
    async setup() {
      server = await startRedisServer();
    },
    async teardown() {
      await server?.stop();
    },
    open() {
      const prefix = `{tollgate-contract-${++n}}:`;
      const url = server!.url;
      return {
        store: track(createRedisTokenStore({ url, prefix })),
        second: () => track(createRedisTokenStore({ url, prefix })),
      };
    },
  };
}

describe.each([sqliteBackend(), redisBackend()])('$name token store contract', (backend) => {
  beforeAll(() => backend.setup());
  afterAll(() => backend.teardown());

  it('inserts a token and finds it by hash, by id and by name', async () => {
    const { store } = backend.open();
    const record = newRecord({ type: 'development', expiresAt: Date.now() + 60_000 });
    expect(await store.insert(record)).toEqual(asStored(record));
    expect(await store.findByHash(record.hash)).toEqual(asStored(record));
    expect(await store.get(record.id)).toEqual(asStored(record));
    expect(await store.get(record.name)).toEqual(asStored(record));
  });

  it('returns undefined for an unknown hash, id or name', async () => {
    const { store } = backend.open();
    await store.insert(newRecord());
    expect(await store.findByHash(hashToken(generateToken('production')))).toBeUndefined();
    expect(await store.get(generateTokenId())).toBeUndefined();
    expect(await store.get('no-such-name')).toBeUndefined();
  });

  it('lists every token newest first, revoked ones included', async () => {
    const { store } = backend.open();
    const middle = newRecord({ createdAt: T0 + 20 });
    const oldest = newRecord({ createdAt: T0 + 10 });
    const newest = newRecord({ createdAt: T0 + 30 });
    for (const record of [middle, oldest, newest]) await store.insert(record);
    await store.revoke(oldest.id, 'bob', T0 + 40);
    const listed = await store.list();
    expect(listed.map((r) => r.id)).toEqual([newest.id, middle.id, oldest.id]);
    expect(listed[2]).toMatchObject({ revokedAt: T0 + 40, revokedBy: 'bob' });
    expect(await backend.open().store.list()).toEqual([]);
  });

  it.each([
    ['without expiry', null],
    ['expiring later', Date.now() + 3_600_000],
  ])('refuses a second token named like a live one %s', async (_, expiresAt) => {
    const { store } = backend.open();
    const first = newRecord({ name: 'ci', expiresAt });
    await store.insert(first);
    await expectCode(store.insert(newRecord({ name: 'ci' })), 'TOLLGATE_ERR_TOKEN_NAME_TAKEN');
    expect((await store.list()).map((r) => r.id)).toEqual([first.id]);
  });

  it('lets a name be reused once its token is revoked', async () => {
    const { store } = backend.open();
    const first = newRecord({ name: 'ci' });
    await store.insert(first);
    await store.revoke(first.id, 'bob');
    const second = newRecord({ name: 'ci' });
    await store.insert(second);
    expect((await store.get('ci'))?.id).toBe(second.id);
  });

  it('lets a name be reused once its token has expired', async () => {
    const { store } = backend.open();
    const expired = newRecord({ name: 'ci', expiresAt: Date.now() - 1 });
    await store.insert(expired);
    const fresh = newRecord({ name: 'ci' });
    await store.insert(fresh);
    expect((await store.get('ci'))?.id).toBe(fresh.id);
    expect((await store.list()).map((r) => r.id)).toEqual([fresh.id, expired.id]);
  });

  it('revokes by id, recording who and when', async () => {
    const { store } = backend.open();
    const record = newRecord();
    await store.insert(record);
    const revoked = await store.revoke(record.id, 'bob', T0 + 123_456);
    expect(revoked).toEqual({ ...asStored(record), revokedAt: T0 + 123_456, revokedBy: 'bob' });
    const found = await store.findByHash(record.hash);
    expect(found).toMatchObject({ revokedAt: T0 + 123_456, revokedBy: 'bob' });
    expect(tokenState(found!)).toBe('revoked');
  });

  it('revokes by name the newest token not yet revoked, then the next one', async () => {
    const { store } = backend.open();
    const older = newRecord({ name: 'deploy', expiresAt: Date.now() - 1 });
    const newer = newRecord({ name: 'deploy' });
    await store.insert(older);
    await store.insert(newer);
    expect((await store.revoke('deploy', 'bob')).id).toBe(newer.id);
    // The expired one is not revoked: the name now resolves to it.
    expect((await store.get('deploy'))?.id).toBe(older.id);
    expect((await store.revoke('deploy', 'bob')).id).toBe(older.id);
    expect(await store.get('deploy')).toBeUndefined();
    await expectCode(store.revoke('deploy', 'bob'), 'TOLLGATE_ERR_TOKEN_NOT_FOUND');
    // By id it stays reachable.
    expect((await store.get(newer.id))?.revokedBy).toBe('bob');
  });

  it('returns a revoked token unchanged when revoked again, and logs no change', async () => {
    const { store } = backend.open();
    const record = newRecord();
    await store.insert(record);
    const first = await store.revoke(record.id, 'bob', T0 + 1);
    const revision = await store.revision();
    expect(await store.revoke(record.id, 'carol', T0 + 2)).toEqual(first);
    expect(await store.revision()).toBe(revision);
    expect((await store.changesSince(revision)).changes).toEqual([]);
  });

  it('throws TOLLGATE_ERR_TOKEN_NOT_FOUND when revoking an unknown id or name', async () => {
    const { store } = backend.open();
    await store.insert(newRecord({ name: 'known' }));
    const err = await store.revoke(generateTokenId(), 'bob').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TOLLGATE_ERR_TOKEN_NOT_FOUND', status: 404 });
    await expectCode(store.revoke('unknown', 'bob'), 'TOLLGATE_ERR_TOKEN_NOT_FOUND');
  });

  it('records batches of last-used times, keeping the latest, and shows them in list', async () => {
    const { store } = backend.open();
    const a = newRecord();
    const b = newRecord();
    await store.insert(a);
    await store.insert(b);
    const revision = await store.revision();
    await store.recordLastUsed([
      { id: a.id, hash: a.hash, at: T0 + 5_000 },
      { id: b.id, hash: b.hash, at: T0 + 6_000 },
      { id: a.id, hash: a.hash, at: T0 + 7_000 },
    ]);
    await store.recordLastUsed([{ id: a.id, hash: a.hash, at: T0 + 1_000 }]);
    await store.recordLastUsed([]);
    const unknown = newRecord();
    await store.recordLastUsed([{ id: unknown.id, hash: unknown.hash, at: T0 + 9_000 }]);
    const lastUsed = Object.fromEntries((await store.list()).map((r) => [r.id, r.lastUsedAt]));
    expect(lastUsed).toEqual({ [a.id]: T0 + 7_000, [b.id]: T0 + 6_000 });
    expect(await store.findByHash(unknown.hash)).toBeUndefined();
    expect(await store.revision()).toBe(revision);
  });

  it('bumps the revision on insert and on revoke', async () => {
    const { store } = backend.open();
    const start = await store.revision();
    const record = newRecord();
    await store.insert(record);
    const afterInsert = await store.revision();
    expect(afterInsert).toBeGreaterThan(start);
    await store.revoke(record.id, 'bob');
    expect(await store.revision()).toBeGreaterThan(afterInsert);
  });

  it('returns exactly the hashes changed since a revision, in order', async () => {
    const { store } = backend.open();
    const a = newRecord();
    const b = newRecord();
    const c = newRecord();
    await store.insert(a);
    const since = await store.revision();
    await store.insert(b);
    await store.insert(c);
    await store.revoke(a.id, 'bob');
    await store.revoke(a.id, 'bob');
    await store.recordLastUsed([{ id: b.id, hash: b.hash, at: T0 }]);
    const current = await store.revision();

    const result = await store.changesSince(since);
    expect(result.complete).toBe(true);
    expect(result.revision).toBe(current);
    expect(result.changes.map((change) => change.hash)).toEqual([b.hash, c.hash, a.hash]);
    const revs = result.changes.map((change) => change.rev);
    expect(revs).toEqual([...revs].sort((x, y) => x - y));
    expect(revs[0]).toBeGreaterThan(since);
    expect(revs.at(-1)).toBe(current);

    expect(await store.changesSince(revs[0]!)).toEqual({
      changes: result.changes.slice(1),
      revision: current,
      complete: true,
    });
    expect(await store.changesSince(current)).toEqual({ changes: [], revision: current, complete: true });
  });

  it('refuses a second live token whose name differs only in case, and finds a token by its name in any case', async () => {
    const { store } = backend.open();
    const first = newRecord({ name: 'Deploy-Bot' });
    await store.insert(first);
    await expectCode(store.insert(newRecord({ name: 'deploy-bot' })), 'TOLLGATE_ERR_TOKEN_NAME_TAKEN');
    await expectCode(store.insert(newRecord({ name: 'DEPLOY-BOT' })), 'TOLLGATE_ERR_TOKEN_NAME_TAKEN');
    expect((await store.get('dEPLOY-bOT'))?.id).toBe(first.id);
    expect((await store.revoke('deploy-bot', 'bob')).id).toBe(first.id);
    const second = newRecord({ name: 'deploy-bot' });
    await store.insert(second);
    expect((await store.get('Deploy-Bot'))?.id).toBe(second.id);
  });

  it('records a signed-out session until its expiry and tells every handle, logging one change', async () => {
    const { store, second } = backend.open();
    const other = second();
    const since = await other.revision();
    const expiresAt = Date.now() + 60_000;
    expect(await other.isSessionRevoked('s1')).toBe(false);
    await store.revokeSession('s1', expiresAt);
    await store.revokeSession('s1', expiresAt);
    await store.revokeSession('s-expired', Date.now() - 1);
    expect(await other.isSessionRevoked('s1')).toBe(true);
    expect(await other.isSessionRevoked('s-expired')).toBe(false);
    expect(await other.isSessionRevoked('s2')).toBe(false);
    const { changes } = await other.changesSince(since);
    expect(changes.map((c) => [c.hash, changeSubject(c)])).toEqual([['session:s1', { kind: 'session', id: 's1' }]]);
  });

  it('replaces the admin credential record only over the one read, logging a change each time', async () => {
    const { store, second } = backend.open();
    const other = second();
    expect(await store.readAdminCredential()).toBeUndefined();
    const first = { salt: 'salt', fingerprint: 'fp-1', since: 0 };
    const since = await store.revision();
    expect(await store.replaceAdminCredential(undefined, first)).toBe(true);
    expect(await other.readAdminCredential()).toEqual(first);
    expect(await other.replaceAdminCredential(undefined, { ...first, fingerprint: 'fp-x' })).toBe(false);
    const next = { salt: 'salt', fingerprint: 'fp-2', since: T0 };
    expect(await other.replaceAdminCredential('fp-1', next)).toBe(true);
    expect(await store.replaceAdminCredential('fp-1', { ...first, fingerprint: 'fp-3' })).toBe(false);
    expect(await store.readAdminCredential()).toEqual(next);
    const { changes } = await store.changesSince(since);
    expect(changes.map((c) => changeSubject(c))).toEqual([{ kind: 'admin-credential' }, { kind: 'admin-credential' }]);
  });

  it('shares its data with a second handle on the same backend', async () => {
    const { store, second } = backend.open();
    const other = second();
    const record = newRecord();
    const since = await other.revision();
    await store.insert(record);
    expect(await other.findByHash(record.hash)).toEqual(asStored(record));
    await other.revoke(record.name, 'bob', T0 + 5);
    expect((await store.get(record.id))?.revokedAt).toBe(T0 + 5);
    expect(await store.revision()).toBe(await other.revision());
    expect((await store.changesSince(since)).changes.map((change) => change.hash)).toEqual([record.hash, record.hash]);
  });

  it("keeps a token's restrictions and CI identity, and returns them wherever it returns the token", async () => {
    const { store, second } = backend.open();
    const restrictions = {
      routes: ['/npm/'],
      packages: ['@acme/*', 'left-pad'],
      networks: ['10.0.0.0/8'],
      ratePerMinute: 600,
    };
    const ci = {
      provider: 'github',
      subject: 'repo:acme/app:ref:refs/heads/main',
      repository: 'acme/app',
      runId: '42',
    };
    const record = newRecord({ restrictions, ci });
    const stored = { ...asStored(record), restrictions, ci };
    expect(await store.insert(record)).toEqual(stored);
    const other = second();
    expect(await other.findByHash(record.hash)).toEqual(stored);
    expect(await other.get(record.name)).toEqual(stored);
    expect((await other.list()).find((r) => r.id === record.id)).toEqual(stored);
    const plain = newRecord();
    await store.insert(plain);
    expect(await other.findByHash(plain.hash)).toMatchObject({ restrictions: null, ci: null });
  });

  describe('rotation', () => {
    const at = () => Date.now();
    /** A token named `name`, rotated: the old one in an overlap of a minute. */
    async function rotatedPair(store: TokenStore, name: string) {
      const old = newRecord({ name });
      await store.insert(old);
      const next = newRecord({ name });
      await store.rotate(old.id, next, Date.now() + 60_000, Date.now());
      return { old, next };
    }

    it('replaces a token: the new one takes its name, type and restrictions; the old one works until the overlap ends', async () => {
      const { store, second } = backend.open();
      const old = newRecord({
        name: 'deploy',
        restrictions: { packages: ['@acme/*'] },
        expiresAt: Date.now() + 86_400_000,
      });
      await store.insert(old);
      const now = at();
      const next = newRecord({
        name: 'deploy',
        restrictions: { packages: ['@acme/*'] },
        expiresAt: old.expiresAt,
        createdAt: now,
      });
      const since = await store.revision();
      const { previous, current } = await store.rotate(old.id, next, now + 60_000, now);
      expect(current).toEqual({ ...asStored(next), replaces: old.id });
      expect(previous).toEqual({ ...asStored(old), replacedBy: next.id, overlapEndsAt: now + 60_000 });
      expect(tokenState(previous, now)).toBe('rotated');
      expect(tokenState(previous, now + 60_000)).toBe('expired');
      const other = second();
      expect(await other.findByHash(old.hash)).toEqual(previous);
      expect(await other.findByHash(next.hash)).toEqual(current);
      // Every gateway hears of both: the old token's new end, and the new token.
      expect((await other.changesSince(since)).changes.map((c) => c.hash)).toEqual([old.hash, next.hash]);
      // The name designates the new generation; lookup adds the old one, still live.
      expect((await other.get('DEPLOY'))?.id).toBe(next.id);
      expect((await other.lookup('deploy')).map((r) => r.id)).toEqual([next.id, old.id]);
      expect((await other.lookup(old.id)).map((r) => r.id)).toEqual([old.id]);
    });

    it.each([
      [
        'revoked',
        async (store: TokenStore, id: string) => {
          await store.revoke(id, 'bob');
        },
      ],
      [
        'rotated already',
        async (store: TokenStore, id: string) => {
          await store.rotate(id, newRecord({ name: 'twice' }), Date.now() + 60_000, Date.now());
        },
      ],
    ])(
      'refuses to rotate a token that is %s (TOLLGATE_ERR_TOKEN_NOT_LIVE), changing nothing',
      async (_what, prepare) => {
        const { store } = backend.open();
        const old = newRecord({ name: 'twice' });
        await store.insert(old);
        await prepare(store, old.id);
        const before = await store.list();
        const revision = await store.revision();
        const next = newRecord({ name: 'twice' });
        await expectCode(store.rotate(old.id, next, Date.now() + 60_000, Date.now()), 'TOLLGATE_ERR_TOKEN_NOT_LIVE');
        expect(await store.findByHash(next.hash)).toBeUndefined();
        expect(await store.list()).toEqual(before);
        expect(await store.revision()).toBe(revision);
      },
    );

    it('refuses to rotate an expired token, and an unknown id', async () => {
      const { store } = backend.open();
      const expired = newRecord({ expiresAt: Date.now() - 1000 });
      await store.insert(expired);
      await expectCode(
        store.rotate(expired.id, newRecord({ name: expired.name }), Date.now() + 1000, Date.now()),
        'TOLLGATE_ERR_TOKEN_NOT_LIVE',
      );
      await expectCode(
        store.rotate(generateTokenId(), newRecord(), Date.now() + 1000, Date.now()),
        'TOLLGATE_ERR_TOKEN_NOT_FOUND',
      );
    });

    it('lets a rotated-out token keep working without holding its name', async () => {
      const { store } = backend.open();
      const { old, next } = await rotatedPair(store, 'ci');
      // The new generation holds the name...
      await expectCode(store.insert(newRecord({ name: 'CI' })), 'TOLLGATE_ERR_TOKEN_NAME_TAKEN');
      // ...the old one, in its overlap, does not: once the new one is revoked the name is free.
      await store.revoke(next.id, 'bob');
      const third = newRecord({ name: 'ci' });
      await store.insert(third);
      expect((await store.get('ci'))?.id).toBe(third.id);
      expect(tokenState((await store.findByHash(old.hash))!)).toBe('rotated');
    });

    it('revokes both generations by name, and only the one named by id', async () => {
      const { store } = backend.open();
      const { old, next } = await rotatedPair(store, 'pair');
      const since = await store.revision();
      const revoked = await store.revoke('PAIR', 'bob', T0 + 5);
      expect(revoked).toMatchObject({ id: next.id, revokedAt: T0 + 5, revokedBy: 'bob' });
      expect(await store.findByHash(old.hash)).toMatchObject({ revokedAt: T0 + 5, revokedBy: 'bob' });
      expect((await store.changesSince(since)).changes.map((c) => c.hash).sort()).toEqual([old.hash, next.hash].sort());

      const { old: a, next: b } = await rotatedPair(store, 'by-id');
      await store.revoke(a.id, 'bob');
      expect(tokenState((await store.findByHash(a.hash))!)).toBe('revoked');
      expect(tokenState((await store.findByHash(b.hash))!)).toBe('active');
    });
  });

  it('revokes by ids at once, recording a leak report, and returns only what it revoked', async () => {
    const { store } = backend.open();
    const a = newRecord();
    const b = newRecord();
    await store.insert(a);
    await store.insert(b);
    await store.revoke(b.id, 'carol', T0 + 1);
    const since = await store.revision();
    const leak = { source: 'gitleaks', url: 'https://git.example/acme/app/commit/abc', location: 'commit' };
    const revoked = await store.revokeIds([a.id, b.id, generateTokenId(), a.id], 'admin', T0 + 2, leak);
    expect(revoked).toEqual([{ ...asStored(a), revokedAt: T0 + 2, revokedBy: 'admin', leak }]);
    expect(await store.findByHash(b.hash)).toMatchObject({ revokedBy: 'carol', leak: null });
    expect((await store.changesSince(since)).changes.map((c) => c.hash)).toEqual([a.hash]);
    expect(await store.revokeIds([a.id], 'admin', T0 + 3)).toEqual([]);
    expect(await store.revokeIds([], 'admin', T0 + 3)).toEqual([]);
  });
});

describe('sqlite token store', () => {
  let root = '';
  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'tollgate-sqlite-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('reports complete:false once the log no longer reaches the caller', async () => {
    const store = track(createSqliteTokenStore({ dataDir: root }));
    await store.insert(newRecord());
    const since = await store.revision();
    for (let i = 0; i < 3; i++) await store.insert(newRecord());
    // Trimming happens every 100 changes down to CHANGE_LOG_KEEP; simulate it directly.
    const db = new Database(store.file);
    db.prepare('DELETE FROM token_changes WHERE rev <= ?').run(since + 1);
    db.close();
    const result = await store.changesSince(since);
    expect(result.complete).toBe(false);
    expect(result.changes).toHaveLength(2);
    expect((await store.changesSince(since + 1)).complete).toBe(true);
  });
});

describe('redis token store', () => {
  let server: RedisServer;
  let n = 0;
  const nextPrefix = () => `{tollgate-redis-${++n}}:`;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server.stop());

  /** Resolves on the first listener call: the subscription is then in place. */
  function listen(store: TokenStore): { calls: () => number; subscribed: Promise<void> } {
    let calls = 0;
    let resolve!: () => void;
    const subscribed = new Promise<void>((r) => {
      resolve = r;
    });
    store.onChange(() => {
      calls++;
      resolve();
    });
    return { calls: () => calls, subscribed };
  }

  it('reports complete:false once the change log was trimmed past the caller', async () => {
    const store = track(createRedisTokenStore({ url: server.url, prefix: nextPrefix(), changeLogKeep: 3 }));
    const records = Array.from({ length: 5 }, () => newRecord());
    await store.insert(records[0]!);
    const since = await store.revision();
    for (const record of records.slice(1)) await store.insert(record);
    const trimmed = await store.changesSince(since);
    expect(trimmed.complete).toBe(false);
    expect(trimmed.changes.map((c) => c.hash)).toEqual(records.slice(2).map((r) => r.hash));
    const kept = await store.changesSince(since + 1);
    expect(kept.complete).toBe(true);
    expect(kept.changes.map((c) => c.hash)).toEqual(records.slice(2).map((r) => r.hash));
  });

  it('notifies onChange within one second when another client revokes', async () => {
    const prefix = nextPrefix();
    const gateway = track(createRedisTokenStore({ url: server.url, prefix }));
    const cli = track(createRedisTokenStore({ url: server.url, prefix }));
    const record = newRecord();
    await cli.insert(record);
    const { calls, subscribed } = listen(gateway);
    await subscribed;
    const before = calls();
    await cli.revoke(record.id, 'bob');
    await vi.waitFor(() => expect(calls()).toBeGreaterThan(before), { timeout: 1_000, interval: 5 });
  });

  it('stops calling a listener once unsubscribed', async () => {
    const prefix = nextPrefix();
    const gateway = track(createRedisTokenStore({ url: server.url, prefix }));
    const { calls, subscribed } = listen(gateway);
    await subscribed;
    let removedCalls = 0;
    const unsubscribe = gateway.onChange(() => {
      removedCalls++;
    });
    unsubscribe();
    await gateway.insert(newRecord());
    await vi.waitFor(() => expect(calls()).toBe(2));
    expect(removedCalls).toBe(0);
  });

  it('shows a revoke made during a network cut once the subscriber reconnects', async () => {
    const relay = await startTcpRelay(server.port);
    try {
      const prefix = nextPrefix();
      const gateway = track(createRedisTokenStore({ url: relay.url, prefix, onError: () => {} }));
      const cli = track(createRedisTokenStore({ url: server.url, prefix }));
      const record = newRecord();
      await cli.insert(record);
      const { calls, subscribed } = listen(gateway);
      await subscribed;
      const seen = await gateway.revision();

      await relay.cut();
      await cli.revoke(record.id, 'bob');
      await expectCode(gateway.findByHash(record.hash), 'TOLLGATE_ERR_STORE');
      const before = calls();
      await relay.heal();

      await vi.waitFor(() => expect(calls()).toBeGreaterThan(before), { timeout: 10_000, interval: 10 });
      const result = await gateway.changesSince(seen);
      expect(result).toMatchObject({ complete: true, changes: [{ hash: record.hash }] });
      expect((await gateway.findByHash(record.hash))?.revokedBy).toBe('bob');
    } finally {
      await relay.close();
    }
  });

  it('notifies onChange after Redis is killed and restarted, and flags the lost log as incomplete', async () => {
    const own = await startRedisServer();
    try {
      const prefix = nextPrefix();
      const gateway = track(createRedisTokenStore({ url: own.url, prefix, onError: () => {} }));
      const cli = track(createRedisTokenStore({ url: own.url, prefix, onError: () => {} }));
      const record = newRecord();
      await cli.insert(record);
      const { calls, subscribed } = listen(gateway);
      await subscribed;
      const seen = await gateway.revision();

      await own.kill();
      // An outage fails fast instead of hanging the request.
      await expectCode(gateway.findByHash(record.hash), 'TOLLGATE_ERR_STORE');
      const before = calls();
      await own.restart();
      // Nothing is published after the restart: only the reconnect can call the listener.
      await vi.waitFor(() => expect(calls()).toBeGreaterThan(before), { timeout: 10_000, interval: 10 });

      // The restarted Redis has no data (no persistence), so the revision went back to nothing.
      expect(await gateway.findByHash(record.hash)).toBeUndefined();
      expect(await gateway.changesSince(seen)).toEqual({ changes: [], revision: 0, complete: false });
      await vi.waitFor(() => cli.ping(), { timeout: 10_000, interval: 10 });
      const next = newRecord();
      await cli.insert(next);
      await cli.revoke(next.id, 'bob');
      const result = await gateway.changesSince(seen);
      expect(result.complete).toBe(false);
      expect(result.revision).toBeGreaterThan(seen);
      expect(result.changes.map((c) => c.hash)).toEqual([next.hash, next.hash]);
    } finally {
      await own.stop();
    }
  });

  it('finds, refuses to duplicate and revokes a token a gateway of schema 1 writes during an upgrade (no namekey entry)', async () => {
    const prefix = nextPrefix();
    const store = track(createRedisTokenStore({ url: server.url, prefix }));
    await store.migrate();
    const legacy = newRecord({ name: 'Legacy-CI' });
    const admin = new Redis(server.url);
    try {
      // What the schema 1 insert script wrote: the record, the id, the exact-name index, the list.
      await admin.hset(`${prefix}token:${legacy.hash}`, {
        id: legacy.id,
        name: legacy.name,
        type: legacy.type,
        hash: legacy.hash,
        createdAt: String(legacy.createdAt),
        createdBy: legacy.createdBy,
      });
      await admin.set(`${prefix}id:${legacy.id}`, legacy.hash);
      await admin.zadd(`${prefix}name:${legacy.name}`, legacy.createdAt, legacy.hash);
      await admin.zadd(`${prefix}tokens`, legacy.createdAt, legacy.hash);
    } finally {
      admin.disconnect();
    }
    expect((await store.get('Legacy-CI'))?.id).toBe(legacy.id);
    await expectCode(store.insert(newRecord({ name: 'Legacy-CI' })), 'TOLLGATE_ERR_TOKEN_NAME_TAKEN');
    expect((await store.revoke('Legacy-CI', 'bob')).id).toBe(legacy.id);
    expect(await store.get('Legacy-CI')).toBeUndefined();
  });

  it('keeps every key under the configured prefix', async () => {
    const check = async (db: number, prefix: string | undefined) => {
      const url = `${server.url}/${db}`;
      const store = track(createRedisTokenStore({ url, ...(prefix === undefined ? {} : { prefix }) }));
      const a = newRecord();
      const b = newRecord({ expiresAt: Date.now() + 60_000 });
      await store.insert(a);
      await store.insert(b);
      await store.revoke(a.id, 'bob');
      await store.recordLastUsed([{ id: b.id, hash: b.hash, at: T0 }]);
      await store.list();
      await store.get(b.name);
      await store.changesSince(0);
      const admin = new Redis(url);
      try {
        const keys = await admin.keys('*');
        expect(keys.length).toBeGreaterThan(5);
        for (const key of keys) expect(key.startsWith(prefix ?? DEFAULT_REDIS_PREFIX)).toBe(true);
      } finally {
        admin.disconnect();
      }
    };
    await check(3, '{acme-tollgate}:tokens:');
    await check(4, undefined);
    expect(DEFAULT_REDIS_PREFIX).toBe('{tollgate}:');
  });

  it.each([
    ['a known token', true],
    ['an unknown token', false],
  ])('reads %s with exactly one Redis command', async (_, known) => {
    const store = track(createRedisTokenStore({ url: server.url, prefix: nextPrefix() }));
    const record = newRecord();
    await store.insert(record);
    const hash = known ? record.hash : hashToken(generateToken('production'));
    const before = await server.commandStats();
    const found = await store.findByHash(hash);
    const after = await server.commandStats();
    expect(found?.id).toBe(known ? record.id : undefined);
    const used: Record<string, number> = {};
    for (const [command, calls] of Object.entries(after)) {
      const delta = calls - (before[command] ?? 0);
      if (delta > 0 && command !== 'info') used[command] = delta;
    }
    expect(used).toEqual({ hgetall: 1 });
  });

  it('waits for the first connection instead of failing a command issued right away', async () => {
    const store = track(createRedisTokenStore({ url: server.url, prefix: nextPrefix() }));
    const record = newRecord();
    expect(await store.insert(record)).toEqual(asStored(record));
  });

  it('reports connection errors to onError and fails ping when Redis is unreachable', async () => {
    const errors: Error[] = [];
    const url = `redis://127.0.0.1:${await freePort()}`;
    const store = track(createRedisTokenStore({ url, connectTimeoutMs: 200, onError: (err) => errors.push(err) }));
    store.onChange(() => {});
    await expectCode(store.ping(), 'TOLLGATE_ERR_STORE');
    expect(errors.length).toBeGreaterThan(0);
  });

  it('uses a caller-provided client without closing it', async () => {
    const client = new Redis(server.url);
    try {
      const store = createRedisTokenStore({ client, prefix: nextPrefix() });
      const record = newRecord();
      await store.insert(record);
      const { subscribed } = listen(store);
      await subscribed;
      await store.close();
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });
});
