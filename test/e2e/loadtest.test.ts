import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadtestReport } from '../../src/loadtest/report.js';
import { generateToken } from '../../src/tokens/format.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { cliArgs } from '../helpers/cli-args.js';
import { buildRoot, freePort, runCli, spawnCli, tempDir } from '../helpers/process.js';

/**
 * `tollgate loadtest` as an operator runs it: the built command (bin/tollgate.js) in its own
 * process, with no TOLLGATE_* setting and no data dir, against a gateway on loopback. Its exit
 * codes and messages for bad input, what it loads, and SIGINT during a --revocation run.
 */

const ADMIN_TOKEN = 'loadtest-e2e-admin-token-0123456789';
const NO_STACK = '    at ';

let gw: TestGateway;
let dir: string;
let tokenFile: string;
let tokens: string[];
let adminTokenFile: string;

const write = (name: string, text: string): string => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};

beforeAll(async () => {
  dir = tempDir('tollgate-loadtest-e2e-');
  gw = await startTestGateway({
    TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN,
    TOLLGATE_AUTH_FAILURE_BURST: '0',
    TOLLGATE_LOG_LEVEL: 'warn',
  });
  tokens = [(await gw.createToken({ name: 'e2e-load-1' })).token, (await gw.createToken({ name: 'e2e-load-2' })).token];
  tokenFile = write('tokens.txt', `${tokens.join('\n')}\n`);
  adminTokenFile = write('admin-token', ADMIN_TOKEN);
});
afterAll(() => gw?.close());

describe('tollgate loadtest, the command', () => {
  it('loads no config, store, SQLite or Redis module, and needs no data dir', async () => {
    // A module hook in the child records every module it resolves.
    const loaded = path.join(dir, 'loaded.txt');
    const hooks = write(
      'hooks.mjs',
      `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.LOADTEST_LOADED, result.url + '\\n');
  return result;
}
`,
    );
    const register = write(
      'register.mjs',
      `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(hooks).href)});
`,
    );
    const r = await runCli(
      ['loadtest', '--target', gw.url, '--token-file', tokenFile, '--duration', '1', '--connections', '2', '--json'],
      { NODE_OPTIONS: `--import=${pathToFileURL(register).href}`, LOADTEST_LOADED: loaded },
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as LoadtestReport; // stdout is the JSON report alone
    expect(report.statusCounts['200']).toBeGreaterThan(0);
    expect(r.stderr).not.toContain('\r'); // no progress line when stderr is not a TTY

    const urls = readFileSync(loaded, 'utf8').split('\n').filter(Boolean);
    // The hook saw the command's own modules and autocannon: it works.
    expect(urls.some((u) => u.endsWith('/dist/loadtest/run.js'))).toBe(true);
    expect(urls.some((u) => u.includes('/node_modules/autocannon/'))).toBe(true);
    const forbidden = [
      '/node_modules/better-sqlite3/',
      '/node_modules/ioredis/',
      '/dist/config/',
      '/dist/tokens/index.js',
      '/dist/tokens/sqlite-store.js',
      '/dist/tokens/redis-store.js',
      '/dist/sqlite/',
      '/dist/redis/',
      '/dist/gateway.js',
      '/dist/main.js',
    ];
    expect(urls.filter((u) => forbidden.some((f) => u.includes(f)))).toEqual([]);
    expect(existsSync(path.join(buildRoot(), 'data'))).toBe(false);
    for (const token of tokens) expect(r.stdout + r.stderr).not.toContain(token);
  });

  it('lists itself in tollgate help, and its options with --help', async () => {
    const help = await runCli(['help'], {});
    expect(help.stdout).toContain('tollgate loadtest --target URL --token-file FILE');
    const own = await runCli(['loadtest', '--help'], {});
    expect(own.code).toBe(0);
    expect(own.stdout).toContain('--invalid-share X');
    expect(own.stdout).toContain('docs/loadtest.md');
  });

  describe('exits 2 with a message, never a stack trace, on bad input', () => {
    const malformed = `${generateToken('production').slice(0, 30)}-not-a-token`;
    let unreachable: string;
    beforeAll(async () => {
      unreachable = `http://127.0.0.1:${await freePort()}`;
    });

    it.each([
      [
        'an unreachable target',
        () => ['--target', unreachable, '--token-file', tokenFile],
        /--target: cannot reach http:\/\/127\.0\.0\.1:\d+\/generic\/hello\/1\.0\.0\/hello-1\.0\.0\.txt: ECONNREFUSED/,
      ],
      [
        'an empty token file',
        () => ['--target', gw.url, '--token-file', write('empty.txt', '\n\n')],
        /the token file .*empty\.txt holds no tokens/,
      ],
      [
        'a missing token file',
        () => ['--target', gw.url, '--token-file', path.join(dir, 'missing.txt')],
        /cannot read the token file .*missing\.txt: ENOENT/,
      ],
      [
        'a malformed line',
        () => ['--target', gw.url, '--token-file', write('bad.txt', `${tokens[0]}\n${malformed}\n`)],
        /bad\.txt, line 2: not a Tollgate token/,
      ],
      [
        'an admin URL that refuses the admin token',
        () =>
          cliArgs({
            target: gw.url,
            revocation: true,
            'admin-url': gw.adminUrl,
            'admin-token-file': write('wrong-admin', 'not-the-admin-token-at-all'),
          }),
        /the admin API at http:\/\/127\.0\.0\.1:\d+ refused the admin token \(401 TOLLGATE_ERR_ADMIN_CREDENTIAL/,
      ],
      [
        'an admin URL where nothing listens',
        () => ['--target', gw.url, '--revocation', '--admin-url', unreachable, '--admin-token-file', adminTokenFile],
        /--admin-url: cannot reach http:\/\/127\.0\.0\.1:\d+\/api\/v1\/tokens: ECONNREFUSED/,
      ],
      [
        'no connections',
        () => ['--target', gw.url, '--token-file', tokenFile, '--connections', '0'],
        /--connections must be a whole number from 1 to 10000/,
      ],
      [
        'a rate that is not a number',
        () => ['--target', gw.url, '--token-file', tokenFile, '--rate', '1e3'],
        /--rate must be a whole number/,
      ],
      [
        'a share over 1',
        () => ['--target', gw.url, '--token-file', tokenFile, '--invalid-share', '1.2'],
        /--invalid-share must be a number from 0 to 1/,
      ],
      [
        'shares adding up to more than 1',
        () => ['--target', gw.url, '--token-file', tokenFile, '--invalid-share', '0.5', '--cold-share', '0.6'],
        /add up to more than 1/,
      ],
      ['no target', () => ['--token-file', tokenFile], /loadtest needs --target URL/],
    ])('%s', async (_what, args, message) => {
      const r = await runCli(['loadtest', ...args()], {});
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain(NO_STACK);
      expect(r.stdout).toBe('');
      for (const secret of [...tokens, malformed, ADMIN_TOKEN, 'not-the-admin-token-at-all'])
        expect(r.stderr).not.toContain(secret);
    });
  });

  it('revokes the token it created when SIGINT stops a --revocation run', async () => {
    const before = new Set((await gw.store.list()).map((t) => t.id));
    const hits = gw.gateway.cache.stats.hits;
    const child = spawnCli(
      [
        'loadtest',
        ...cliArgs({
          target: gw.url,
          revocation: true,
          'admin-url': gw.adminUrl,
          'admin-token-file': adminTokenFile,
          duration: 60,
          connections: 2,
        }),
      ],
      {},
    );
    const line = await child.waitForLine(/created Production token loadtest-/);
    // The load runs (the token served from the cache), long before the halfway revoke at 30 s.
    await expect.poll(() => gw.gateway.cache.stats.hits > hits + 10, { timeout: 15_000 }).toBe(true);
    child.signal('SIGINT');
    const exit = await child.exited;
    expect(exit.code, child.output()).toBe(130);
    expect(child.stdout()).toMatch(/\(interrupted\)/);
    expect(child.stdout()).toMatch(/^revocation +not measured/m);
    const created = (await gw.store.list()).filter((t) => !before.has(t.id));
    expect(created).toHaveLength(1);
    expect(line).toContain(created[0]!.id);
    expect(created[0]!.revokedAt).not.toBeNull();
    expect(child.output()).not.toContain(ADMIN_TOKEN);
    expect(child.output()).not.toMatch(/tg[pd]_[0-9A-Za-z]{36}/);
  });
});
