import { mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, bearer } from '../helpers/authorization.js';
import {
  allOutput,
  createTokenWithCli,
  download,
  REPO_ROOT,
  runCli,
  sha256Hex,
  spawnCli,
  spawnGateway,
  startGatewayProcess,
  tempDir,
  type CreatedToken,
  type GatewayProcess,
} from '../helpers/process.js';

/**
 * The built gateway and the `tollgate` command as separate processes sharing one embedded
 * store: what an operator runs. Every token created here is remembered, and the last test
 * checks that none of them appears in anything a gateway printed, or in any CLI stderr.
 */

const TOKEN_RE = { production: /^tgp_[0-9A-Za-z]{36}$/, development: /^tgd_[0-9A-Za-z]{36}$/ };
const CREATE_FIELDS = ['createdAt', 'expiresAt', 'id', 'name', 'restrictions', 'token', 'type'];
const LIST_FIELDS = ['createdAt', 'createdBy', 'expiresAt', 'id', 'lastUsedAt', 'name', 'state', 'type'];
const NO_STACK = '    at ';

/** Every plaintext token this file created (the whole-run log check looks for each). */
const createdTokens: string[] = [];
const dirs: string[] = [];

function newDataDir(): string {
  const dir = tempDir();
  dirs.push(dir);
  return dir;
}

async function create(
  env: Record<string, string>,
  name: string,
  type: 'production' | 'development' = 'production',
  extra: string[] = [],
): Promise<CreatedToken> {
  const created = await createTokenWithCli(env, name, type, extra);
  createdTokens.push(created.token);
  return created;
}

interface ListedToken {
  id: string;
  name: string;
  type: string;
  state: 'active' | 'rotated' | 'expired' | 'revoked';
  expiresAt: string | null;
  [field: string]: unknown;
}

async function list(env: Record<string, string>): Promise<{ tokens: ListedToken[]; stdout: string; stderr: string }> {
  const r = await runCli(['token', 'list', '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  return { tokens: JSON.parse(r.stdout) as ListedToken[], stdout: r.stdout, stderr: r.stderr };
}

/** A small artifact tree used as the directory upstream. */
function artifactTree(): { root: string; file: string; content: string } {
  const root = newDataDir();
  mkdirSync(path.join(root, 'generic', 'demo', '1.0'), { recursive: true });
  const content = 'demo artifact 1.0\n';
  writeFileSync(path.join(root, 'generic', 'demo', '1.0', 'demo-1.0.txt'), content);
  return { root, file: '/generic/demo/1.0/demo-1.0.txt', content };
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('tollgate token (CLI)', () => {
  let env: Record<string, string>;
  beforeAll(() => {
    env = { TOLLGATE_DATA_DIR: newDataDir() };
  });

  it('creates a production token and prints id, name, type, token, createdAt, expiresAt, restrictions with --json', async () => {
    const before = Date.now();
    const created = await create(env, 'ci-prod', 'production');
    expect(Object.keys(created).sort()).toEqual(CREATE_FIELDS);
    expect(created.token).toMatch(TOKEN_RE.production);
    expect(created).toMatchObject({ name: 'ci-prod', type: 'production', expiresAt: null, restrictions: null });
    expect(created.id).toMatch(/^tok_[0-9A-Za-z]+$/);
    const createdAt = Date.parse(created.createdAt);
    expect(createdAt).toBeGreaterThanOrEqual(before - 1000);
    expect(createdAt).toBeLessThanOrEqual(Date.now());
  });

  it('creates a development token with the tgd_ prefix', async () => {
    const created = await create(env, 'laptop', 'development');
    expect(created.token).toMatch(TOKEN_RE.development);
    expect(created.type).toBe('development');
    expect(created.expiresAt).toBeNull();
  });

  it('prints the token alone on stdout without --json, and nothing secret on stderr', async () => {
    const r = await runCli(['token', 'create', '--name', 'plain', '--type', 'production'], env);
    expect(r.code, r.stderr).toBe(0);
    const token = r.stdout.trim();
    createdTokens.push(token);
    expect(token).toMatch(TOKEN_RE.production);
    expect(r.stderr).toContain('plain');
    expect(r.stderr).not.toContain(token);
  });

  it.each([
    {
      expires: '30d',
      expected: (createdAt: string) => new Date(Date.parse(createdAt) + 30 * 86_400_000).toISOString(),
    },
    { expires: '2031-05-04', expected: () => '2031-05-04T23:59:59.999Z' },
    { expires: '2032-01-02T03:04:05+02:00', expected: () => '2032-01-02T01:04:05.000Z' },
    { expires: '2032-07-08T09:10:11.250Z', expected: () => '2032-07-08T09:10:11.250Z' },
    { expires: 'never', expected: () => null },
  ])('sets the expiry from --expires $expires', async ({ expires, expected }) => {
    const created = await create(env, `expires-${expires}`, 'production', ['--expires', expires]);
    expect(created.expiresAt).toBe(expected(created.createdAt));
  });

  it.each([
    {
      what: 'an unknown type',
      args: ['--name', 'bad-type', '--type', 'staging'],
      says: /type must be production or development/,
    },
    { what: 'a missing type', args: ['--name', 'no-type'], says: /--type/ },
    { what: 'a missing name', args: ['--type', 'production'], says: /--name/ },
    { what: 'an empty name', args: ['--name', '', '--type', 'production'], says: /name/ },
    {
      what: 'an unparseable expiry',
      args: ['--name', 'bad-exp', '--type', 'production', '--expires', 'tomorrow'],
      says: /expiry must be never, <N>d, a date/,
    },
    {
      what: 'a zero-day expiry',
      args: ['--name', 'zero', '--type', 'production', '--expires', '0d'],
      says: /at least 1d/,
    },
    {
      what: 'a date that does not exist',
      args: ['--name', 'feb30', '--type', 'production', '--expires', '2031-02-30'],
      says: /not a calendar date/,
    },
    {
      what: 'a past date',
      args: ['--name', 'past', '--type', 'production', '--expires', '2001-05-04'],
      says: /in the past/,
    },
    {
      what: 'a past timestamp',
      args: ['--name', 'past-ts', '--type', 'production', '--expires', '2001-05-04T10:00:00Z'],
      says: /in the past/,
    },
    { what: 'an unknown option', args: ['--name', 'opt', '--type', 'production', '--colour', 'red'], says: /colour/ },
    {
      what: 'a bad CIDR',
      args: ['--name', 'cidr', '--type', 'production', '--allow-ip', '10.0.0.0/33'],
      says: /networks: "10.0.0.0\/33" is not an IP address or CIDR/,
    },
    {
      what: 'a host name as a network',
      args: ['--name', 'host', '--type', 'production', '--allow-ip', 'ci.example.com'],
      says: /networks: "ci.example.com"/,
    },
    {
      what: 'an empty package pattern',
      args: ['--name', 'glob', '--type', 'production', '--package', ''],
      says: /packages: a pattern must not be empty/,
    },
    {
      what: 'an unknown route prefix',
      args: ['--name', 'route', '--type', 'production', '--route', '/npm/'],
      says: /routes: "\/npm\/" is not a route prefix of this gateway \(\/\)/,
    },
    {
      what: 'a rate that is not N/min',
      args: ['--name', 'rate', '--type', 'production', '--rate', '5/s'],
      says: /rate must be a whole number of requests a minute/,
    },
  ])('refuses $what with a clear message and exit code 2', async ({ args, says }) => {
    const r = await runCli(['token', 'create', ...args, '--json'], env);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(says);
    expect(r.stderr).not.toContain(NO_STACK);
  });

  it('refuses a second live token with the same name with exit code 1', async () => {
    const r = await runCli(['token', 'create', '--name', 'ci-prod', '--type', 'development', '--json'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/live token with this name exists.*ci-prod/);
    expect(r.stderr).not.toContain(NO_STACK);
  });

  it('lists every token with its metadata and state, never the token or its hash', async () => {
    const { tokens, stdout, stderr } = await list(env);
    const table = await runCli(['token', 'list'], env);
    expect(table.code, table.stderr).toBe(0);
    expect(tokens.map((t) => t.name)).toEqual(
      expect.arrayContaining(['ci-prod', 'laptop', 'plain', 'expires-30d', 'expires-2031-05-04']),
    );
    for (const t of tokens) {
      expect(Object.keys(t)).toEqual(expect.arrayContaining(LIST_FIELDS));
      expect(Object.keys(t).filter((k) => /token|hash|secret/i.test(k))).toEqual([]);
      expect(t.state).toBe('active');
      expect(t.createdBy).toMatch(/^cli/);
      expect(t.lastUsedAt).toBeNull();
    }
    expect(table.stdout).toContain('ci-prod');
    expect(createdTokens.length).toBeGreaterThanOrEqual(5);
    for (const token of createdTokens) {
      for (const output of [stdout, stderr, table.stdout, table.stderr]) {
        expect(output).not.toContain(token);
        expect(output).not.toContain(sha256Hex(token));
        expect(output).not.toContain(token.slice(4, 34)); // the random part alone either
      }
    }
  });

  it('revokes by name and by id, shows them revoked, and frees the name for a new token', async () => {
    const byName = await create(env, 'revoke-by-name');
    const byId = await create(env, 'revoke-by-id', 'development');

    const r1 = await runCli(['token', 'revoke', 'revoke-by-name'], env);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.stdout).toContain(byName.id);
    const r2 = await runCli(['token', 'revoke', byId.id, '--json'], env);
    expect(r2.code, r2.stderr).toBe(0);
    expect(JSON.parse(r2.stdout)).toMatchObject({ id: byId.id, state: 'revoked' });
    for (const r of [r1, r2]) {
      expect(r.stdout + r.stderr).not.toContain(byName.token);
      expect(r.stdout + r.stderr).not.toContain(byId.token);
    }

    const { tokens } = await list(env);
    const state = (id: string): string | undefined => tokens.find((t) => t.id === id)?.state;
    expect(state(byName.id)).toBe('revoked');
    expect(state(byId.id)).toBe('revoked');
    expect(tokens.find((t) => t.id === byName.id)).toMatchObject({
      revokedBy: expect.stringMatching(/^cli/) as string,
    });

    // A revoked token's name is free again; the old record stays, revoked.
    const again = await create(env, 'revoke-by-name');
    expect(again.id).not.toBe(byName.id);
    const after = (await list(env)).tokens.filter((t) => t.name === 'revoke-by-name');
    expect(after.map((t) => `${t.id}:${t.state}`).sort()).toEqual(
      [`${byName.id}:revoked`, `${again.id}:active`].sort(),
    );
  });

  it('creates a restricted token from repeated flags and prints its restrictions with --json', async () => {
    const created = await create(env, 'restricted', 'production', [
      '--route',
      '/',
      '--package',
      '@acme/*',
      '--package',
      'left-pad',
      '--allow-ip',
      '10.1.0.0/16',
      '--allow-ip',
      '192.0.2.7',
      '--rate',
      '600/min',
    ]);
    expect(Object.keys(created).sort()).toEqual(CREATE_FIELDS);
    expect(created.restrictions).toEqual({
      routes: ['/'],
      packages: ['@acme/*', 'left-pad'],
      networks: ['10.1.0.0/16', '192.0.2.7'],
      rate: 600,
    });
    const plain = await runCli(
      ['token', 'create', '--name', 'restricted-plain', '--type', 'development', '--package', 'demo'],
      env,
    );
    expect(plain.code, plain.stderr).toBe(0);
    createdTokens.push(plain.stdout.trim());
    expect(plain.stderr).toContain('restricted to packages demo');
  });

  it('rotates by name, printing the new token as create does (--json), and lists the old one as rotated until its overlap ends', async () => {
    const old = await create(env, 'to-rotate', 'development', ['--expires', '2031-05-04', '--package', 'demo']);
    const r = await runCli(['token', 'rotate', 'TO-ROTATE', '--overlap', '2h', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const rotated = JSON.parse(r.stdout) as CreatedToken & { replaces: string; previousEndsAt: string };
    createdTokens.push(rotated.token);
    expect(Object.keys(rotated).sort()).toEqual([...CREATE_FIELDS, 'previousEndsAt', 'replaces'].sort());
    expect(rotated.token).toMatch(TOKEN_RE.development);
    expect(rotated).toMatchObject({
      name: 'to-rotate',
      type: 'development',
      expiresAt: old.expiresAt,
      restrictions: { packages: ['demo'] },
      replaces: old.id,
    });
    expect(Date.parse(rotated.previousEndsAt) - Date.parse(rotated.createdAt)).toBe(2 * 3_600_000);

    const { tokens } = await list(env);
    expect(tokens.find((t) => t.id === old.id)).toMatchObject({
      state: 'rotated',
      replacedBy: rotated.id,
      endsAt: rotated.previousEndsAt,
    });
    expect(tokens.find((t) => t.id === rotated.id)).toMatchObject({ state: 'active', replaces: old.id });
    const table = await runCli(['token', 'list'], env);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toMatch(/^id +name +type +state +createdAt +createdBy +expiresAt +lastUsedAt +restrictions$/);
    expect(lines.find((l) => l.startsWith(old.id))).toContain(`rotated, ends at ${rotated.previousEndsAt}`);
    expect(lines.find((l) => l.startsWith(rotated.id))).toMatch(/ active .* packages demo$/);
    expect(lines.find((l) => l.startsWith(old.id))).not.toContain(rotated.token);

    // Without --json: the token alone on stdout, what happened on stderr.
    const again = await runCli(['token', 'rotate', rotated.id, '--overlap', '0'], env);
    expect(again.code, again.stderr).toBe(0);
    createdTokens.push(again.stdout.trim());
    expect(again.stdout.trim()).toMatch(TOKEN_RE.development);
    expect(again.stderr).toMatch(new RegExp(`previous one \\(${rotated.id}\\) is refused from now on`));
  });

  it.each([
    { what: 'an unknown token', args: ['no-such-token'], code: 1, says: /No such token/ },
    {
      what: 'a bad overlap',
      args: ['ci-prod', '--overlap', '1w'],
      code: 2,
      says: /overlap must be 0, <N>s, <N>m, <N>h or <N>d/,
    },
    { what: 'no token', args: [], code: 2, says: /token rotate needs exactly one <id\|name>/ },
  ])('refuses to rotate $what with exit code $code', async ({ args, code, says }) => {
    const r = await runCli(['token', 'rotate', ...args, '--json'], env);
    expect(r.code).toBe(code);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(says);
    expect(r.stderr).not.toContain(NO_STACK);
  });

  it('refuses to rotate a revoked token with exit code 1, saying why', async () => {
    const revoked = await create(env, 'revoked-not-rotated');
    expect((await runCli(['token', 'revoke', revoked.id], env)).code).toBe(0);
    const r = await runCli(['token', 'rotate', revoked.id], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /cannot be rotated: it is revoked, has ended or was rotated already: "revoked-not-rotated" \(tok_\w+\) is revoked/,
    );
  });

  it('revokes every live generation by name, and says so', async () => {
    const old = await create(env, 'two-generations');
    const rotated = await runCli(['token', 'rotate', 'two-generations', '--json'], env);
    expect(rotated.code, rotated.stderr).toBe(0);
    const current = JSON.parse(rotated.stdout) as CreatedToken;
    createdTokens.push(current.token);
    const r = await runCli(['token', 'revoke', 'Two-Generations'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `Revoked token "two-generations" (${current.id}). Also revoked its earlier generation still in its rotation overlap: ${old.id}.`,
    );
    const { tokens } = await list(env);
    expect(tokens.filter((t) => t.name === 'two-generations').map((t) => t.state)).toEqual(['revoked', 'revoked']);
  });

  it('says so with exit code 1 when the token to revoke does not exist', async () => {
    const r = await runCli(['token', 'revoke', 'no-such-token'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/No such token.*no-such-token/);
    expect(r.stderr).not.toContain(NO_STACK);
  });
});

describe('the CLI and a running gateway share the embedded store', () => {
  let env: Record<string, string>;
  let gw: GatewayProcess;
  let tree: ReturnType<typeof artifactTree>;

  beforeAll(async () => {
    tree = artifactTree();
    env = {
      TOLLGATE_DATA_DIR: newDataDir(),
      TOLLGATE_UPSTREAM: tree.root,
      // Ten minutes: only the store's change counter can make a revocation visible in time.
      TOLLGATE_CACHE_TTL_MS: '600000',
      TOLLGATE_LOG_LEVEL: 'debug',
    };
    gw = await startGatewayProcess(env);
  });

  afterAll(async () => {
    if (gw) expect((await gw.stop()).code).toBe(0);
  });

  it('accepts a token the CLI created while the gateway runs (Bearer and Basic)', async () => {
    const { token } = await create(env, 'live-create');
    const viaBearer = await download(gw.url + tree.file, { headers: { authorization: bearer(token) } });
    expect(viaBearer.status).toBe(200);
    expect(viaBearer.text).toBe(tree.content);
    const viaBasic = await download(gw.url + tree.file, { headers: { authorization: basic('project-a', token) } });
    expect(viaBasic.status).toBe(200);
    expect(viaBasic.text).toBe(tree.content);
  });

  it.each([
    { how: 'name', by: (t: CreatedToken) => t.name },
    { how: 'id', by: (t: CreatedToken) => t.id },
  ])(
    'refuses a token revoked by the CLI (by $how) within 1 second, after a cache hit, with a 600 s cache TTL',
    async ({ how, by }) => {
      const created = await create(env, `live-revoke-${how}`);
      const headers = { authorization: bearer(created.token) };
      // First request reads the store and caches the token; the second is served from the cache.
      expect((await download(gw.url + tree.file, { headers })).status).toBe(200);
      expect((await download(gw.url + tree.file, { headers })).status).toBe(200);

      const r = await runCli(['token', 'revoke', by(created)], env);
      expect(r.code, r.stderr).toBe(0);
      // From the moment the CLI has committed and exited: short retries for at most one second.
      const revokedAt = Date.now();
      let last = { status: 0 } as Awaited<ReturnType<typeof download>>;
      await expect
        .poll(async () => (last = await download(gw.url + tree.file, { headers })).status, {
          timeout: 1000,
          interval: 50,
          message: 'refused within one second of the revoke',
        })
        .toBe(401);
      console.log(`revoked by ${how}: first 401 within ${Date.now() - revokedAt} ms of the CLI's exit`);
      expect(last.status).toBe(401);
      expect(last.headers['www-authenticate']).toEqual(expect.stringContaining('Basic realm="tollgate"'));
      expect(last.text).not.toContain(created.token);
    },
  );

  it('enforces the restrictions a CLI-created token carries, and refuses the old token after a rotation with no overlap within 1 second', async () => {
    const restricted = await create(env, 'live-restricted', 'production', [
      '--package',
      'demo',
      '--allow-ip',
      '127.0.0.1',
      '--allow-ip',
      '::1',
    ]);
    const headers = { authorization: bearer(restricted.token) };
    expect((await download(gw.url + tree.file, { headers })).status).toBe(200);
    expect((await download(`${gw.url}/generic/other/1.0/other-1.0.txt`, { headers })).status).toBe(403);
    const elsewhere = await create(env, 'live-elsewhere', 'production', ['--allow-ip', '10.0.0.0/8']);
    expect((await download(gw.url + tree.file, { headers: { authorization: bearer(elsewhere.token) } })).status).toBe(
      401,
    );

    const r = await runCli(['token', 'rotate', 'live-restricted', '--overlap', '0', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const rotated = JSON.parse(r.stdout) as CreatedToken;
    createdTokens.push(rotated.token);
    const rotatedAt = Date.now();
    await expect
      .poll(async () => (await download(gw.url + tree.file, { headers })).status, {
        timeout: 1000,
        interval: 50,
        message: 'the old token refused within one second of the rotation',
      })
      .toBe(401);
    expect(Date.now() - rotatedAt).toBeLessThan(1000);
    const fresh = { authorization: bearer(rotated.token) };
    expect((await download(gw.url + tree.file, { headers: fresh })).status).toBe(200);
    expect((await download(`${gw.url}/generic/other/1.0/other-1.0.txt`, { headers: fresh })).status).toBe(403);
  });
});

describe('kill -9 durability of the embedded store', () => {
  const TOKENS = 50;
  const KILL_GATEWAY_AFTER = 25;
  const CONCURRENCY = 3;

  it('keeps every token whose create exited 0 through kill -9 of the gateway and of a writing CLI', async () => {
    const tree = artifactTree();
    const dataDir = newDataDir();
    const dbFile = path.join(dataDir, 'tollgate.db');
    const env = {
      TOLLGATE_DATA_DIR: dataDir,
      TOLLGATE_UPSTREAM: tree.root,
      TOLLGATE_LOG_LEVEL: 'debug',
      // The gateway writes too (last-used times), as often as it may, and polls the store hard.
      TOLLGATE_LAST_USED_FLUSH_MS: '100',
      TOLLGATE_CHANGE_POLL_MS: '10',
    };
    const reader = await create(env, 'kill9-reader');
    const created: CreatedToken[] = [];

    // Gateway A serves downloads non-stop (the reader token, and each new token once) until killed.
    const gwA = await startGatewayProcess(env);
    let reading = true;
    void gwA.exited.then(() => {
      reading = false;
    });
    let downloadsViaA = 0;
    const readerLoop = (async () => {
      while (reading) {
        const latest = created.at(-1);
        for (const t of latest ? [reader, latest] : [reader]) {
          try {
            const r = await download(gwA.url + tree.file, {
              headers: { authorization: bearer(t.token) },
              timeoutMs: 5000,
            });
            if (r.status === 200) downloadsViaA++;
          } catch {
            // The gateway is gone (killed): that is the point.
          }
        }
      }
    })();

    let next = 1;
    const worker = async (): Promise<void> => {
      while (next <= TOKENS) {
        const i = next++;
        created.push(await create(env, `kill9-${String(i).padStart(2, '0')}`, i % 2 ? 'production' : 'development'));
        if (created.length === KILL_GATEWAY_AFTER) gwA.signal('SIGKILL');
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const gwAExit = await gwA.exited;
    reading = false;
    await readerLoop;
    expect(gwAExit.signal).toBe('SIGKILL');
    expect(downloadsViaA).toBeGreaterThan(KILL_GATEWAY_AFTER);
    expect(created).toHaveLength(TOKENS);

    // kill -9 CLI processes in the middle of their store session: as soon as the WAL file is
    // open (between opening the database and committing), after 0-8 ms more.
    const victims: { name: string; killed: boolean }[] = [];
    for (const delayMs of [0, 0, 1, 2, 3, 5, 8]) {
      const name = `kill9-victim-${victims.length}`;
      const cli = spawnCli(['token', 'create', '--name', name, '--type', 'production', '--json'], env);
      const killed = killWhenOpen(cli.pid, `${dbFile}-wal`, delayMs, 20_000);
      const status = await cli.exited;
      if (status.code === 0) createdTokens.push((JSON.parse(cli.stdout()) as CreatedToken).token);
      victims.push({ name, killed: killed && status.signal === 'SIGKILL' });
    }
    expect(victims.some((v) => v.killed)).toBe(true);

    // The file as the kills left it passes SQLite's own check.
    expect(integrityCheck(dbFile)).toBe('ok');

    // Every create that exited 0 is listed, active, exactly once.
    const { tokens } = await list(env);
    for (const t of [reader, ...created]) {
      expect(
        tokens.filter((l) => l.id === t.id),
        t.name,
      ).toEqual([expect.objectContaining({ name: t.name, state: 'active' })]);
    }
    // A killed create either committed whole (its name is taken) or left nothing (the name is free).
    const committed: string[] = [];
    for (const v of victims) {
      const rows = tokens.filter((l) => l.name === v.name);
      expect(rows.length).toBeLessThanOrEqual(1);
      const retry = await runCli(['token', 'create', '--name', v.name, '--type', 'production', '--json'], env);
      if (rows.length === 1) {
        committed.push(v.name);
        expect(rows[0]!.state).toBe('active');
        expect(retry.code).toBe(1);
      } else {
        expect(retry.code, retry.stderr).toBe(0);
        createdTokens.push((JSON.parse(retry.stdout) as CreatedToken).token);
      }
    }
    console.log(
      `kill -9 of a writing CLI: ${victims.filter((v) => v.killed).length} of ${victims.length} killed mid-session, ` +
        `${committed.length} of those had committed (${committed.join(', ') || 'none'})`,
    );

    // A restarted gateway accepts every one of them.
    const gwB = await startGatewayProcess(env);
    try {
      for (const t of [reader, ...created]) {
        const r = await download(gwB.url + tree.file, { headers: { authorization: bearer(t.token) } });
        expect(r.status, `${t.name} after restart`).toBe(200);
      }
    } finally {
      expect((await gwB.stop()).code).toBe(0);
    }
    expect(integrityCheck(dbFile)).toBe('ok');
  }, 300_000); // ~110 CLI processes and three gateways: a minute on a quiet machine
});

/**
 * Busy-waits (blocking this process on purpose: timing matters more than anything else here)
 * until process `pid` has `file` open, waits delayMs more, and kills it with SIGKILL.
 * Returns false when the process ended or never opened the file within timeoutMs.
 */
function killWhenOpen(pid: number, file: string, delayMs: number, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      return false; // gone
    }
    const open = fds.some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === file;
      } catch {
        return false;
      }
    });
    if (open) {
      const until = performance.now() + delayMs;
      while (performance.now() < until) {
        /* spin */
      }
      try {
        process.kill(pid, 'SIGKILL');
        return true;
      } catch {
        return false;
      }
    }
  }
  return false;
}

function integrityCheck(file: string): unknown {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.pragma('integrity_check', { simple: true });
  } finally {
    db.close();
  }
}

describe('configuration errors', () => {
  /** Several bad settings at once: env vars and a config file whose only route is wrong twice. */
  async function startWithEverythingWrong(): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const dir = newDataDir();
    const configFile = path.join(dir, 'tollgate.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        routes: [{ prefix: 'no-slash', upstream: 'https://repo.example.com/', ecosystem: 'rubygems' }],
      }),
    );
    const gw = spawnGateway({
      TOLLGATE_DATA_DIR: dir,
      TOLLGATE_CONFIG: configFile,
      TOLLGATE_PORT: 'abc',
      TOLLGATE_UPSTREAM: 'ftp://x',
      TOLLGATE_LOG_LEVEL: 'loud',
      TOLLGATE_REDIS_URL: 'http://x',
    });
    const { code } = await gw.exited;
    return { code, stdout: gw.stdout(), stderr: gw.stderr() };
  }
  const lineFor = (stderr: string, re: RegExp): string | undefined => stderr.split('\n').find((l) => re.test(l));

  it('lists every problem, one line each naming the key, and exits 2 without a stack trace', async () => {
    const { code, stdout, stderr } = await startWithEverythingWrong();
    expect(code).toBe(2);
    expect(stderr).not.toContain(NO_STACK);
    expect(stdout).not.toContain('tollgate listening');
    expect(lineFor(stderr, /TOLLGATE_PORT.*port number.*"abc"/), stderr).toBeDefined();
    expect(lineFor(stderr, /TOLLGATE_LOG_LEVEL.*one of.*"loud"/), stderr).toBeDefined();
    expect(lineFor(stderr, /TOLLGATE_REDIS_URL.*redis:\/\/.*"http:\/\/x"/), stderr).toBeDefined();
    expect(lineFor(stderr, /tollgate\.json.*routes\[0\]\.prefix.*"no-slash"/), stderr).toBeDefined();
    expect(lineFor(stderr, /tollgate\.json.*routes\[0\]\.ecosystem.*"rubygems"/), stderr).toBeDefined();
  });

  it('lists a bad TOLLGATE_UPSTREAM together with the other problems', async () => {
    const { code, stderr } = await startWithEverythingWrong();
    expect(code).toBe(2);
    expect(lineFor(stderr, /TOLLGATE_UPSTREAM.*http\(s\) URL or a directory.*ftp:\/\/x/), stderr).toBeDefined();
  });

  it.each([
    {
      key: 'TOLLGATE_UPSTREAM',
      env: { TOLLGATE_UPSTREAM: 'ftp://x' },
      says: /TOLLGATE_UPSTREAM.*http\(s\) URL or a directory.*ftp:\/\/x/,
    },
    {
      key: 'TOLLGATE_ADMIN_PORT',
      env: { TOLLGATE_ADMIN_PORT: '70000' },
      says: /TOLLGATE_ADMIN_PORT.*port number.*"70000"/,
    },
    {
      key: 'TOLLGATE_CACHE_TTL_MS',
      env: { TOLLGATE_CACHE_TTL_MS: '5s' },
      says: /TOLLGATE_CACHE_TTL_MS.*milliseconds.*"5s"/,
    },
  ])('refuses a bad $key alone with exit code 2', async ({ env, says }) => {
    const gw = spawnGateway({ TOLLGATE_DATA_DIR: newDataDir(), ...env });
    expect((await gw.exited).code).toBe(2);
    expect(gw.stderr()).toMatch(says);
    expect(gw.stderr()).not.toContain(NO_STACK);
  });

  it('a route in the config file with a bad upstream is named by its position', async () => {
    const dir = newDataDir();
    const configFile = path.join(dir, 'routes.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        routes: [
          { prefix: '/ok/', upstream: dir },
          { prefix: '/bad/', upstream: 'ftp://y' },
        ],
      }),
    );
    const gw = spawnGateway({ TOLLGATE_DATA_DIR: dir, TOLLGATE_CONFIG: configFile });
    expect((await gw.exited).code).toBe(2);
    expect(gw.stderr()).toMatch(/routes\[1\]\.upstream.*http\(s\) URL or a directory.*ftp:\/\/y/);
    expect(gw.stderr()).not.toContain(NO_STACK);
  });

  it('the CLI refuses the same bad configuration with exit code 2', async () => {
    const r = await runCli(['token', 'list'], {
      TOLLGATE_DATA_DIR: newDataDir(),
      TOLLGATE_REDIS_URL: 'http://x',
      TOLLGATE_LOG_LEVEL: 'loud',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/TOLLGATE_REDIS_URL/);
    expect(r.stderr).toMatch(/TOLLGATE_LOG_LEVEL/);
    expect(r.stderr).not.toContain(NO_STACK);
  });
});

describe('npm start defaults', () => {
  it('serves the shipped example tree to a CLI-created token, with health on the admin port only', async () => {
    const dataDir = newDataDir();
    // Nothing but a data dir and free ports: default host, routes, store, log level.
    const env = { TOLLGATE_DATA_DIR: dataDir };
    const gw = await startGatewayProcess({ ...env, TOLLGATE_HOST: undefined });
    try {
      expect(gw.listening).toMatchObject({
        store: 'sqlite',
        routes: [{ prefix: '/', ecosystem: 'generic', upstream: 'dir' }],
      });
      const { token } = await create(env, 'first-try');
      const example = '/generic/hello/1.0.0/hello-1.0.0.txt';
      const shipped = readFileSync(path.join(REPO_ROOT, 'examples', 'artifacts', example), 'utf8');
      const got = await download(gw.url + example, { headers: { authorization: bearer(token) } });
      expect(got.status).toBe(200);
      expect(got.text).toBe(shipped);
      expect(got.headers['cache-control']).toMatch(/private/);

      // The token with its last character changed (to another one: it may already end in x).
      const refused = await download(gw.url + example, {
        headers: { authorization: bearer(`${token.slice(0, -1)}${token.endsWith('x') ? 'y' : 'x'}`) },
      });
      expect(refused.status).toBe(401);

      for (const p of ['/healthz', '/readyz']) {
        const health = await download(gw.adminUrl + p);
        expect(health.status, p).toBe(200);
      }
      const proxyHealth = await download(`${gw.url}/healthz`);
      expect(proxyHealth.status).toBe(401);
      expect(proxyHealth.headers['www-authenticate']).toEqual(expect.stringContaining('Basic realm="tollgate"'));
      // Even with a valid token the proxy port has no health endpoint: it serves artifacts only.
      const proxyHealthWithToken = await download(`${gw.url}/healthz`, { headers: { authorization: bearer(token) } });
      expect(proxyHealthWithToken.status).toBe(404);
    } finally {
      expect((await gw.stop()).code).toBe(0);
    }
  });
});

describe('tollgate serve', () => {
  it('runs the gateway with the runtime settings of npm start and the image (V8 flags, malloc thresholds), and stops with it', async () => {
    const { SERVE_ENV, SERVE_NODE_FLAGS } = await import('../../bin/serve-runtime.js');
    const dataDir = newDataDir();
    const cli = spawnCli(['serve'], {
      TOLLGATE_DATA_DIR: dataDir,
      TOLLGATE_HOST: '127.0.0.1',
      TOLLGATE_PORT: '0',
      TOLLGATE_ADMIN_PORT: '0',
    });
    const listening = JSON.parse(await cli.waitForLine('"tollgate listening"', 20_000)) as { pid: number };
    expect(listening.pid).not.toBe(cli.pid);
    const cmdline = readFileSync(`/proc/${listening.pid}/cmdline`, 'utf8').split('\0');
    for (const flag of SERVE_NODE_FLAGS) expect(cmdline).toContain(flag);
    expect(cmdline.at(-2)).toMatch(/dist\/main\.js$/);
    // glibc rewrites GLIBC_TUNABLES in the process's own environment block as it reads it (the
    // first tunable stays): the variable was there when the gateway started.
    const environ = readFileSync(`/proc/${listening.pid}/environ`, 'utf8').split('\0');
    const tunables = environ.find((e) => e.startsWith('GLIBC_TUNABLES='));
    expect(tunables).toBeDefined();
    expect(`GLIBC_TUNABLES=${SERVE_ENV.GLIBC_TUNABLES}`.startsWith(tunables!)).toBe(true);
    cli.signal('SIGTERM');
    expect(await cli.exited).toEqual({ code: 0, signal: null });
    expect(() => process.kill(listening.pid, 0)).toThrow();
  });

  it('listens for SIGTERM and SIGINT before it says it is listening, so a signal sent on that line stops it cleanly', async () => {
    // A supervisor (or `tollgate serve`'s parent process) may send SIGTERM as soon as it reads the
    // line; with no listener yet, the signal kills the process outright (seen in CI as a gateway
    // dead of SIGTERM instead of exiting 0). A preloaded module reports, as the gateway writes the
    // line, how many listeners the two signals have.
    const dataDir = newDataDir();
    const preload = path.join(dataDir, 'signal-listeners.mjs');
    writeFileSync(
      preload,
      `import fs from 'node:fs';
const writeSync = fs.writeSync;
fs.writeSync = function (fd, data, ...rest) {
  if (fd === 1 && String(data).includes('"tollgate listening"'))
    writeSync.call(fs, 2, 'signal listeners: ' + process.listenerCount('SIGTERM') + ' ' + process.listenerCount('SIGINT') + '\\n');
  return writeSync.call(this, fd, data, ...rest);
};
`,
    );
    const gw = await startGatewayProcess({ TOLLGATE_DATA_DIR: dataDir }, { nodeFlags: [`--import=${preload}`] });
    try {
      expect(gw.stderr()).toContain('signal listeners: 1 1');
    } finally {
      expect(await gw.stop()).toMatchObject({ code: 0, signal: null });
    }
  });
});

describe('the whole run', () => {
  it("never printed a token: not in any gateway log, not on any CLI stderr, nor any stdout but create's and rotate's", () => {
    expect(createdTokens.length).toBeGreaterThan(60);
    // `token create` and `token rotate` print the new token on stdout by design; nothing else may contain it.
    const printsToken = (what: string) =>
      what.startsWith('tollgate token create') || what.startsWith('tollgate token rotate');
    const output = allOutput((what, stream) => !(printsToken(what) && stream === 'stdout'));
    expect(output).toContain('tollgate listening');
    expect(output).toContain('"msg":"request"');
    for (const token of createdTokens) {
      expect(output.includes(token), `a token appears in the output of the run`).toBe(false);
      expect(output.includes(token.slice(4, 34)), `a token's random part appears in the output of the run`).toBe(false);
      expect(output.includes(sha256Hex(token)), `a token hash appears in the output of the run`).toBe(false);
    }
  });
});
