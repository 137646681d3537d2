import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { githubClaims, startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.js';
import { cleanEnv } from '../helpers/process.js';
import { closesAfterAll } from '../helpers/teardown.js';
import { REPO_ROOT, transpileSources } from '../helpers/transpile.js';
import { ciConfig, githubPolicy } from './ci-config.js';
import { startExchangeGateway, type ExchangeGateway } from './exchange-gateway.js';

/**
 * `tollgate token exchange` as a CI job runs it: the `tollgate` command (src/cli/index.ts,
 * transpiled) in its own process, in an empty directory, with only the job's variables. It must
 * load no config loader, store, SQLite or Redis module (a CI job has no data dir and no Redis).
 */

const closing = closesAfterAll();
let dir: string;
let issuer: OidcIssuer;
let gateway: ExchangeGateway;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-ci-cli-'));
  const sources = (readdirSync(path.join(REPO_ROOT, 'src'), { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.endsWith('.test.ts'))
    .map((f) => path.join('src', f));
  transpileSources(dir, sources);
  issuer = closing(await startOidcIssuer());
  await issuer.addKey();
  issuer.actionsClaims = githubClaims();
  gateway = closing(await startExchangeGateway(ciConfig([githubPolicy(issuer.url)]).ciProviders));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runTollgate(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(dir, 'src/cli/index.js'), ...args], {
      cwd: dir,
      env: cleanEnv(env),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('tollgate token exchange, the command', () => {
  it('exchanges in a GitHub Actions job and loads no config loader, store, SQLite or Redis module', async () => {
    const loaded = path.join(dir, 'loaded.txt');
    const hooks = path.join(dir, 'hooks.mjs');
    writeFileSync(
      hooks,
      `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.EXCHANGE_LOADED, result.url + '\\n');
  return result;
}
`,
    );
    const register = path.join(dir, 'register.mjs');
    writeFileSync(
      register,
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
    );

    const r = await runTollgate(
      ['token', 'exchange', '--gateway', gateway.url, '--audience', 'https://artifacts.example.com'],
      {
        GITHUB_ACTIONS: 'true',
        ACTIONS_ID_TOKEN_REQUEST_URL: issuer.actionsRequestUrl,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: issuer.actionsRequestToken,
        NODE_OPTIONS: `--import=${pathToFileURL(register).href}`,
        EXCHANGE_LOADED: loaded,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const token = gateway.issued.at(-1)!;
    expect(r.stdout).toBe(`${token}\n`);
    expect(r.stderr.split('\n')[0]).toBe(`::add-mask::${token}`);
    expect(r.stdout + r.stderr).not.toContain(gateway.forms.at(-1)!.get('subject_token')!);

    const urls = readFileSync(loaded, 'utf8').split('\n').filter(Boolean);
    expect(urls.some((u) => u.endsWith('/src/cli/exchange.js'))).toBe(true); // the hook saw the command's modules
    const forbidden = [
      '/node_modules/better-sqlite3/',
      '/node_modules/ioredis/',
      '/node_modules/zod/',
      '/src/config/index.js',
      '/src/config/settings.js',
      '/src/tokens/index.js',
      '/src/tokens/sqlite-store.js',
      '/src/tokens/redis-store.js',
      '/src/sqlite/',
      '/src/redis/',
      '/src/gateway.js',
      '/src/main.js',
      '/src/ci/verify.js',
      '/node_modules/jose/',
    ];
    expect(urls.filter((u) => forbidden.some((f) => u.includes(f)))).toEqual([]);
    expect(existsSync(path.join(dir, 'data'))).toBe(false);
  });

  it('lists itself in tollgate help', async () => {
    const r = await runTollgate(['help'], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('tollgate token exchange --gateway URL');
  });

  it('exits 2 outside a CI job, saying what it needs', async () => {
    const r = await runTollgate(['token', 'exchange', '--gateway', gateway.url], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^tollgate: no ID token: in GitHub Actions give the job `permissions: id-token: write`/);
  });
});
