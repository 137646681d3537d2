import Database from 'better-sqlite3';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/tokens/migrations.js';
import { openTokenStore } from '../../src/tokens/index.js';
import { createToken, rotateToken } from '../../src/tokens/service.js';
import { tokenState, type TokenStore } from '../../src/tokens/store.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { loadKeyspace } from '../helpers/redis-keyspace.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

/**
 * Token stores written by earlier versions (test/tokens/fixtures/v1: before schema versions;
 * fixtures/v2: schema 2; see their READMEs), opened by today's gateway: each is migrated on start,
 * once, and every token in it works exactly as it did.
 */
interface Fixture {
  tokens: { id: string; name: string; type: string; token: string; revoke?: boolean; expiresAt?: number }[];
}
const readFixture = (dir: URL) => JSON.parse(readFileSync(new URL('redis-keyspace.json', dir), 'utf8')) as Fixture;
const FIXTURES = new URL('./fixtures/v1/', import.meta.url);
const FIXTURES_V2 = new URL('./fixtures/v2/', import.meta.url);
const FIXTURES_V3 = new URL('./fixtures/v3/', import.meta.url);
const fixture = readFixture(FIXTURES);
const fixtureV2 = readFixture(FIXTURES_V2);
const fixtureV3 = readFixture(FIXTURES_V3);
const ARTIFACT = '/generic/hello/1.0.0/hello-1.0.0.txt';
const byName = (name: string) => fixture.tokens.find((t) => t.name === name)!;

interface Backend {
  name: string;
  start(): Promise<TestGateway>;
  /** The schema version the store records, read without Tollgate. */
  recordedVersion(): Promise<number | undefined>;
  /** A second handle on the same data, as the CLI opens one. */
  openAgain(): Promise<TokenStore>;
  stop(): Promise<void>;
}

function sqliteBackend(fixtures = FIXTURES): Backend {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tollgate-migrate-'));
  let gw: TestGateway | undefined;
  return {
    name: 'sqlite (tollgate.db)',
    async start() {
      copyFileSync(new URL('tollgate.db', fixtures), path.join(dataDir, 'tollgate.db'));
      gw = await startTestGateway({ TOLLGATE_DATA_DIR: dataDir });
      return gw;
    },
    async recordedVersion() {
      const db = new Database(path.join(dataDir, 'tollgate.db'), { readonly: true });
      try {
        return db
          .prepare<[], { version: number }>("SELECT version FROM tollgate_schema WHERE component = 'tokens'")
          .get()?.version;
      } finally {
        db.close();
      }
    },
    openAgain: () => openTokenStore({ redis: undefined, dataDir }),
    async stop() {
      await gw?.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function redisBackend(fixtures = FIXTURES): Backend {
  let server: RedisServer | undefined;
  let gw: TestGateway | undefined;
  return {
    name: 'redis (redis-keyspace.json)',
    async start() {
      server = await startRedisServer();
      await loadKeyspace(server.url, new URL('redis-keyspace.json', fixtures));
      gw = await startTestGateway({ TOLLGATE_REDIS_URL: server.url });
      return gw;
    },
    async recordedVersion() {
      const client = new Redis(server!.url);
      try {
        const value = await client.get('{tollgate}:schema');
        return value === null ? undefined : Number(value);
      } finally {
        client.disconnect();
      }
    },
    openAgain: () => openTokenStore({ redis: { url: server!.url, prefix: '{tollgate}:' }, dataDir: gw!.dataDir }),
    async stop() {
      await gw?.close();
      await server?.stop();
    },
  };
}

/** The gateway's start migrated the store from `from`; a second handle (the CLI's) finds nothing left to do. */
async function expectMigratedOnce(gw: TestGateway, backend: Backend, from: number): Promise<void> {
  expect(await gw.store.migrate()).toEqual({ from, to: SCHEMA_VERSION });
  expect(await backend.recordedVersion()).toBe(SCHEMA_VERSION);
  const again = await backend.openAgain();
  try {
    expect(await again.migrate()).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
  } finally {
    await again.close();
  }
}

/** What each fixture token got before the migration: 401 for a revoked or expired one, else 200. */
const statusesBefore = (f: Fixture) => f.tokens.map((t) => [t.name, t.revoke || t.expiresAt !== undefined ? 401 : 200]);

async function statusWith(gw: TestGateway, token: string): Promise<number> {
  const res = await fetch(`${gw.url}${ARTIFACT}`, { headers: { authorization: bearer(token) } });
  await res.arrayBuffer();
  return res.status;
}

describe.each([sqliteBackend(), redisBackend()])("a v1 token store opened by today's gateway: $name", (backend) => {
  let gw: TestGateway;
  const status = (token: string) => statusWith(gw, token);

  beforeAll(async () => {
    gw = await backend.start();
  });
  afterAll(() => backend.stop());

  it('migrates it on start and records the schema version, so the migration runs once', async () => {
    await expectMigratedOnce(gw, backend, 0);
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.at(-1)!.version);
  });

  it('authenticates every fixture token (or refuses it) exactly as before', async () => {
    const got = [];
    for (const t of fixture.tokens) got.push([t.name, await status(t.token)]);
    expect(got).toEqual(statusesBefore(fixture));
  });

  it('keeps every token listed with its name, state and last use, the clashing names included', async () => {
    const listed = await gw.store.list();
    expect(listed.map((r) => [r.id, r.name, tokenState(r)]).sort()).toEqual(
      fixture.tokens
        .map((t) => [t.id, t.name, t.revoke ? 'revoked' : t.expiresAt !== undefined ? 'expired' : 'active'])
        .sort(),
    );
    expect(listed.find((r) => r.name === 'ci-main')?.lastUsedAt).toBe(1793534460000);
    expect(listed.filter((r) => r.name.toLowerCase() === 'deploy-bot')).toHaveLength(2);
  });

  it('refuses to revoke by a name two live tokens share ignoring case, and asks for the id', async () => {
    for (const name of ['deploy-bot', 'Deploy-Bot', 'DEPLOY-BOT']) {
      const err = await gw.store.revoke(name, 'test').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'TOLLGATE_ERR_TOKEN_AMBIGUOUS' });
      expect(String((err as Error).message)).toContain(byName('Deploy-Bot').id);
      expect(String((err as Error).message)).toContain(byName('deploy-bot').id);
    }
    expect(await status(byName('Deploy-Bot').token)).toBe(200);
    expect(await status(byName('deploy-bot').token)).toBe(200);
  });

  it('refuses a new token whose name clashes ignoring case with a live one', async () => {
    const err = await createToken(gw.store, { name: 'CI-MAIN', type: 'production', createdBy: 'test' }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'TOLLGATE_ERR_TOKEN_NAME_TAKEN' });
  });

  it('revokes by id, by a legacy id-shaped name, and by a name that is no longer ambiguous; the gateway refuses them', async () => {
    const lower = byName('deploy-bot');
    expect((await gw.store.revoke(lower.id, 'test')).name).toBe('deploy-bot');
    expect((await gw.store.revoke('deploy-BOT', 'test')).id).toBe(byName('Deploy-Bot').id);
    expect((await gw.store.revoke('tok_looksLikeAnId12', 'test')).id).toBe(byName('tok_looksLikeAnId12').id);
    expect((await gw.store.revoke('LAPTOP', 'test')).id).toBe(byName('laptop').id);
    for (const name of ['deploy-bot', 'Deploy-Bot', 'tok_looksLikeAnId12', 'laptop']) {
      await expect.poll(() => status(byName(name).token), { timeout: 1000, interval: 20 }).toBe(401);
    }
    expect(await status(byName('ci-main').token)).toBe(200);
  });

  it('lets a revoked clashing name be taken again, in any case', async () => {
    const { record, token } = await createToken(gw.store, {
      name: 'DEPLOY-BOT',
      type: 'development',
      createdBy: 'test',
    });
    expect((await gw.store.get('deploy-bot'))?.id).toBe(record.id);
    expect(await status(token)).toBe(200);
  });
});

describe.each([sqliteBackend(FIXTURES_V2), redisBackend(FIXTURES_V2)])(
  "a schema-2 token store opened by today's gateway: $name",
  (backend) => {
    let gw: TestGateway;
    const status = (token: string) => statusWith(gw, token);
    const v2 = (name: string) => fixtureV2.tokens.find((t) => t.name === name)!;

    beforeAll(async () => {
      gw = await backend.start();
    });
    afterAll(() => backend.stop());

    it('migrates it from schema 2 on start, once', async () => {
      await expectMigratedOnce(gw, backend, 2);
    });

    it('authenticates every fixture token (or refuses it) exactly as before, and keeps what it knew', async () => {
      const got = [];
      for (const t of fixtureV2.tokens) got.push([t.name, await status(t.token)]);
      expect(got).toEqual(statusesBefore(fixtureV2));
      const listed = await gw.store.list();
      expect(listed.map((r) => [r.id, r.name, tokenState(r)]).sort()).toEqual(
        fixtureV2.tokens
          .map((t) => [t.id, t.name, t.revoke ? 'revoked' : t.expiresAt !== undefined ? 'expired' : 'active'])
          .sort(),
      );
      expect(listed.find((r) => r.name === 'ci-main')).toMatchObject({
        lastUsedAt: 1795168800000,
        restrictions: null,
        replaces: null,
        replacedBy: null,
        overlapEndsAt: null,
        leak: null,
        ci: null,
      });
      expect(listed.find((r) => r.name === 'old-ci')).toMatchObject({ revokedBy: 'admin', revokedAt: 1795165210000 });
      expect(await gw.store.isSessionRevoked('session-fixture-1')).toBe(true);
      expect((await gw.store.get('laptop-alice'))?.id).toBe(v2('Laptop-Alice').id);
    });

    it('rotates a token written by schema 2: both generations work during the overlap, the name designates the new one', async () => {
      const rotated = await rotateToken(gw.store, 'ci-main', { overlap: '1h', by: 'test' });
      expect(rotated.record).toMatchObject({ name: 'ci-main', replaces: v2('ci-main').id });
      expect(await status(rotated.token)).toBe(200);
      expect(tokenState((await gw.store.findByHash(rotated.previous.hash))!)).toBe('rotated');
      expect(await status(v2('ci-main').token)).toBe(200);
      expect((await gw.store.get('CI-MAIN'))?.id).toBe(rotated.record.id);
    });

    it('keeps the restrictions of a token created after the migration', async () => {
      const { record } = await createToken(gw.store, {
        name: 'restricted-after-upgrade',
        type: 'production',
        createdBy: 'test',
        restrictions: { packages: ['hello'], rate: '60/min' },
        knownRoutes: [],
      });
      expect((await gw.store.findByHash(record.hash))?.restrictions).toEqual({
        packages: ['hello'],
        ratePerMinute: 60,
      });
    });
  },
);

describe.each([sqliteBackend(FIXTURES_V3), redisBackend(FIXTURES_V3)])(
  "a schema-3 token store opened by today's gateway: $name",
  (backend) => {
    let gw: TestGateway;
    const status = (token: string) => statusWith(gw, token);
    const v3 = (id: string) => fixtureV3.tokens.find((t) => t.id === id)!;

    beforeAll(async () => {
      gw = await backend.start();
    });
    afterAll(() => backend.stop());

    it('migrates it from schema 3 on start, once', async () => {
      await expectMigratedOnce(gw, backend, 3);
    });

    it('authenticates every fixture token (or refuses it) exactly as before, and keeps what it knew', async () => {
      const got = [];
      for (const t of fixtureV3.tokens) got.push([t.id, await status(t.token)]);
      expect(got).toEqual(fixtureV3.tokens.map((t) => [t.id, t.revoke || t.expiresAt !== undefined ? 401 : 200]));
      const listed = await gw.store.list();
      expect(listed).toHaveLength(fixtureV3.tokens.length);
      expect(listed.find((r) => r.id === 'tok_v3Restricted000B')?.restrictions).toEqual({ packages: ['hello'] });
      expect(listed.find((r) => r.id === 'tok_v3Leaked0000000E')).toMatchObject({
        revokedBy: 'secret-scanning:github',
        leak: { source: 'github' },
      });
      expect(listed.find((r) => r.id === 'tok_v3Deploy0000000F')).toMatchObject({ replacedBy: 'tok_v3Deploy0000000G' });
      expect(listed.find((r) => r.id === 'tok_v3CiLive0000000D')?.ci).toMatchObject({
        provider: 'github',
        repository: 'acme/app',
        runId: '42',
      });
    });

    it('purges the CI token that expired before the upgrade, and no other', async () => {
      const purged = await gw.store.purgeExpiredCi(Date.now());
      expect(purged.map((r) => r.id)).toEqual(['tok_v3CiExpired0000C']);
      expect(await gw.store.get('tok_v3CiExpired0000C')).toBeUndefined();
      expect(await status(v3('tok_v3CiLive0000000D').token)).toBe(200);
      expect((await gw.store.list()).length).toBe(fixtureV3.tokens.length - 1);
    });

    it('claims ID tokens once', async () => {
      expect(await gw.store.claimOnce('jti:upgrade', Date.now() + 60_000)).toBe(true);
      expect(await gw.store.claimOnce('jti:upgrade', Date.now() + 60_000)).toBe(false);
    });
  },
);
