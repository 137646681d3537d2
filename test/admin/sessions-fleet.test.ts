import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../../src/config/index.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

/**
 * Admin sessions on several instances sharing one token store (as TOLLGATE_WORKERS=2 does, or a
 * fleet behind a load balancer): signing out, or starting an instance with another admin token,
 * ends a session on every instance within a second. A per-process deny list did not.
 */
const TOKEN_A = 'fleet-admin-token-aaaaaaaaaaaaaaaa';
const TOKEN_B = 'fleet-admin-token-bbbbbbbbbbbbbbbb';

interface Signed {
  cookie: string;
  csrf: string;
}

async function signIn(gw: TestGateway, token: string): Promise<Signed> {
  const res = await fetch(`${gw.adminUrl}/api/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: gw.adminUrl },
    body: JSON.stringify({ token }),
  });
  expect(res.status).toBe(200);
  const { csrfToken } = (await res.json()) as { csrfToken: string };
  return { cookie: res.headers.getSetCookie()[0]!.split(';')[0]!, csrf: csrfToken };
}

const list = async (gw: TestGateway, s: Signed) =>
  (await fetch(`${gw.adminUrl}/api/v1/tokens`, { headers: { cookie: s.cookie } })).status;

/** An admin write as the page makes it: cookie, CSRF token and Origin in hand. */
async function create(gw: TestGateway, s: Signed, name: string): Promise<number> {
  const res = await fetch(`${gw.adminUrl}/api/v1/tokens`, {
    method: 'POST',
    headers: { cookie: s.cookie, 'x-csrf-token': s.csrf, origin: gw.adminUrl, 'content-type': 'application/json' },
    body: JSON.stringify({ name, type: 'development' }),
  });
  await res.arrayBuffer();
  return res.status;
}

interface Backend {
  name: string;
  setup(): Promise<void>;
  env(): Env;
  teardown(): Promise<void>;
}

function sqliteBackend(): Backend {
  let dataDir = '';
  return {
    name: 'one SQLite data dir',
    async setup() {
      dataDir = mkdtempSync(path.join(tmpdir(), 'tollgate-sessions-'));
    },
    env: () => ({ TOLLGATE_DATA_DIR: dataDir }),
    async teardown() {
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function redisBackend(): Backend {
  let redis: RedisServer | undefined;
  let n = 0;
  return {
    name: 'one Redis',
    async setup() {
      redis = await startRedisServer();
    },
    // A prefix per test: each starts from an empty store.
    env: () => ({ TOLLGATE_REDIS_URL: redis!.url, TOLLGATE_REDIS_PREFIX: `{tollgate-sessions-${++n}}:` }),
    async teardown() {
      await redis?.stop();
    },
  };
}

describe.each([sqliteBackend(), redisBackend()])('admin sessions across instances on $name', (backend) => {
  const started: TestGateway[] = [];
  const start = async (adminToken: string, env: Env) => {
    const gw = await startTestGateway({ ...env, TOLLGATE_ADMIN_TOKEN: adminToken });
    started.push(gw);
    return gw;
  };
  beforeAll(() => backend.setup());
  afterEach(async () => {
    await Promise.all(started.splice(0).map((gw) => gw.close()));
  });
  afterAll(() => backend.teardown());

  it('prevents a signed-out session from working on another instance: refused there within a second, writes included', async () => {
    const env = backend.env();
    const a = await start(TOKEN_A, env);
    const b = await start(TOKEN_A, env);
    const session = await signIn(a, TOKEN_A);
    expect(await list(b, session)).toBe(200);
    expect(await create(b, session, 'before-sign-out')).toBe(201);

    const out = await fetch(`${a.adminUrl}/api/v1/session`, {
      method: 'DELETE',
      headers: { cookie: session.cookie, 'x-csrf-token': session.csrf, origin: a.adminUrl },
    });
    expect(out.status).toBe(204);
    expect(await list(a, session)).toBe(401);
    await expect.poll(() => list(b, session), { timeout: 1000, interval: 20 }).toBe(401);
    expect(await create(b, session, 'after-sign-out')).toBe(401);
    expect(await b.store.get('after-sign-out')).toBeUndefined();
    // Only that session ended.
    expect(await list(b, await signIn(b, TOKEN_A))).toBe(200);
  });

  it('prevents an admin token change on one instance from leaving older sessions alive on another', async () => {
    const env = backend.env();
    const a = await start(TOKEN_A, env);
    const session = await signIn(a, TOKEN_A);
    expect(await list(a, session)).toBe(200);

    const b = await start(TOKEN_B, env);
    await expect.poll(() => list(a, session), { timeout: 1000, interval: 20 }).toBe(401);
    expect(await create(a, session, 'after-change')).toBe(401);
    // The instance with the new token works, with its own sessions.
    expect(await list(b, await signIn(b, TOKEN_B))).toBe(200);
    expect(a.logs()).toMatch(/another instance started with a different admin token/);
    expect(b.logs()).toMatch(/admin sessions issued until now are void on every instance/);
    for (const gw of [a, b]) for (const secret of [TOKEN_A, TOKEN_B]) expect(gw.logs()).not.toContain(secret);
  });

  it('keeps sessions when an instance restarts with the same admin token', async () => {
    const env = backend.env();
    const a = await start(TOKEN_A, env);
    const session = await signIn(a, TOKEN_A);
    const again = await start(TOKEN_A, env);
    expect(await list(again, session)).toBe(200);
    await a.gateway.cache.sync();
    expect(await list(a, session)).toBe(200);
  });
});
