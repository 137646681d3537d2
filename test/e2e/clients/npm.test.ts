import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { clientSuite, expectAllRefused } from '../../helpers/client-suite.js';
import {
  clientEnv,
  freshHome,
  scratchDir,
  requestsAroundGateway,
  requireClient,
  requireDevClient,
  run,
  runOk,
  startRecordingProxy,
  urlsIn,
  type Home,
} from '../../helpers/clients.js';
import { githubClaims, startOidcIssuer, DEFAULT_AUDIENCE, type OidcIssuer } from '../../helpers/oidc-issuer.js';
import { freePort, REPO_ROOT, runCli } from '../../helpers/process.js';

/**
 * npm, pnpm and yarn classic install a scoped package and the scoped package it depends on
 * through the gateway, from a real registry program (verdaccio, offline: no uplinks) that the
 * packages were published to directly, with verdaccio's own account. The gateway only reads.
 */

const AUDIT_PREFIX = '/npm/-/npm/v1/security/';

interface Registry {
  url: string;
  port: number;
  child: ChildProcess;
  output: () => string;
}

let registry: Registry | undefined;
/** A CI provider's issuer on loopback, trusted by the gateway (its ciProviders), for the exchanged-token test. */
let issuer: OidcIssuer | undefined;
/** Tokens and ID tokens the exchange test saw: none may appear in the gateway's output. */
const exchangedTokens: string[] = [];
let npm: string;
let pnpm: string;
let yarn: string;
const { gw, upstream } = clientSuite({
  label: 'npm',
  route: { prefix: '/npm/', ecosystem: 'npm', allowPost: ['/-/npm/v1/security/'] },
  requireClients: () => {
    npm = requireClient('npm', 'apt-get install npm (or Node.js 20 with npm)');
    pnpm = requireDevClient('pnpm');
    yarn = requireDevClient('yarn');
  },
  upstream: async () => {
    issuer = await startOidcIssuer();
    await issuer.addKey();
    registry = await startVerdaccio();
    await publishPackages(registry);
    // The gateway reaches verdaccio through a recorder, so the test sees every upstream request.
    return startRecordingProxy(registry.port);
  },
  // Jobs of the acme organisation get tokens restricted to @acme/* on /npm/.
  config: () => ({
    ciProviders: [
      {
        name: 'github',
        kind: 'github',
        issuer: issuer!.url,
        audience: DEFAULT_AUDIENCE,
        allow: { repository_owner_id: '4200' },
        production: { ref: 'refs/heads/main' },
        project: 'repository',
        tokenTtl: '1h',
        restrictions: { routes: ['/npm/'], packages: ['@acme/*'] },
      },
    ],
  }),
  teardown: async () => {
    registry?.child.kill('SIGTERM');
    await issuer?.close();
  },
});

/** Verdaccio on a free loopback port with its own storage and htpasswd, no uplinks (no internet). */
async function startVerdaccio(): Promise<Registry> {
  const dir = scratchDir('verdaccio');
  const port = await freePort();
  writeFileSync(
    path.join(dir, 'config.yaml'),
    [
      'storage: ./storage',
      'auth:',
      '  htpasswd:',
      '    file: ./htpasswd',
      '    max_users: 10',
      'uplinks: {}',
      'packages:',
      "  '@*/*':",
      '    access: $all',
      '    publish: $authenticated',
      "  '**':",
      '    access: $all',
      '    publish: $authenticated',
      'log: { type: stdout, format: json, level: warn }',
      '',
    ].join('\n'),
  );
  const bin = path.join(REPO_ROOT, 'node_modules', 'verdaccio', 'bin', 'verdaccio');
  if (!existsSync(bin)) throw new Error('verdaccio not found: install it with npm ci (it is a devDependency)');
  const child = spawn(process.execPath, [bin, '-c', path.join(dir, 'config.yaml'), '-l', `127.0.0.1:${port}`], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  process.once('exit', () => child.kill('SIGKILL')); // never outlives the test file
  const chunks: string[] = [];
  const output = (): string => chunks.join('');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`verdaccio did not start within 30 s:\n${output()}`)), 30_000);
    const onData = (c: Buffer): void => {
      chunks.push(c.toString('utf8'));
      if (output().includes('http address')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`verdaccio exited ${code}:\n${output()}`));
    });
  });
  return { url: `http://127.0.0.1:${port}/`, port, child, output };
}

/**
 * Publishes @acme/lib and @acme/app (which depends on it) straight to verdaccio, as its own user,
 * and an unscoped package outside @acme for the restricted-token test.
 */
async function publishPackages(registry: Registry): Promise<void> {
  const res = await fetch(`${registry.url}-/user/org.couchdb.user:publisher`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'publisher', password: 'publisher-password' }),
  });
  const body = (await res.json()) as { token?: string };
  if (!res.ok || !body.token) throw new Error(`verdaccio adduser: ${res.status} ${JSON.stringify(body)}`);
  const home = freshHome('npm-publisher');
  home.write('.npmrc', `//127.0.0.1:${registry.port}/:_authToken=${body.token}\nupdate-notifier=false\n`);
  home.write(
    'lib/package.json',
    JSON.stringify({ name: '@acme/lib', version: '1.0.0', main: 'index.js', license: 'MIT' }),
  );
  home.write('lib/index.js', "module.exports = 'acme-lib';\n");
  home.write(
    'app/package.json',
    JSON.stringify({
      name: '@acme/app',
      version: '1.0.0',
      main: 'index.js',
      license: 'MIT',
      dependencies: { '@acme/lib': '^1.0.0' },
    }),
  );
  home.write('app/index.js', "module.exports = require('@acme/lib') + '+app';\n");
  home.write(
    'foreign/package.json',
    JSON.stringify({ name: 'foreign-lib', version: '1.0.0', main: 'index.js', license: 'MIT' }),
  );
  home.write('foreign/index.js', "module.exports = 'foreign';\n");
  for (const pkg of ['lib', 'app', 'foreign']) {
    await runOk(npm, ['publish', `./${pkg}`, '--registry', registry.url], { cwd: home.path, env: clientEnv(home) });
  }
}

/** A fresh HOME with an empty project in `proj/` and the given user-level .npmrc lines. */
function consumer(label: string, npmrc: string[]): { home: Home; proj: string; env: NodeJS.ProcessEnv } {
  const home = freshHome(label);
  home.write('.npmrc', [`registry=${gw.url}/npm/`, 'update-notifier=false', 'fund=false', ...npmrc, ''].join('\n'));
  home.write('.yarnrc', 'disable-self-update-check true\n');
  const proj = home.dir('proj');
  writeFileSync(path.join(proj, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  return { home, proj, env: clientEnv(home) };
}

const bearerLines = (): string[] => [`//${gw.hostPort}/npm/:_authToken=${gw.token}`];
const basicLines = (project: string): string[] => [
  `//${gw.hostPort}/npm/:username=${project}`,
  `//${gw.hostPort}/npm/:_password=${Buffer.from(gw.token).toString('base64')}`,
];

/** The installed app really runs: both packages are on disk and wired together. */
async function expectInstalled(proj: string): Promise<void> {
  const r = await run(process.execPath, ['-e', "process.stdout.write(require('@acme/app'))"], {
    cwd: proj,
    env: { PATH: process.env.PATH },
  });
  expect(r.stdout, r.output).toBe('acme-lib+app');
}

/** Every URL in a lockfile is on the gateway's /npm/ route, and both tarballs are there. */
function expectLockfileOnGateway(lockfile: string): void {
  const urls = urlsIn(lockfile);
  expect(urls.length, lockfile).toBeGreaterThanOrEqual(2);
  for (const u of urls) expect(u, lockfile).toMatch(new RegExp(`^${gw.url}/npm/`));
  expect(lockfile).toContain(`${gw.url}/npm/@acme/lib/-/lib-1.0.0.tgz`);
  expect(lockfile).toContain(`${gw.url}/npm/@acme/app/-/app-1.0.0.tgz`);
  expect(lockfile).not.toContain(`:${registry!.port}`);
}

describe('npm through the gateway', () => {
  it('installs @acme/app and its dependency with a Bearer _authToken; package-lock.json resolves at the gateway', async () => {
    const { proj, env } = consumer('npm-bearer', bearerLines());
    const mark = await gw.mark();
    const r = await run(npm, ['install', '@acme/app'], { cwd: proj, env });
    expect(r.code, r.output).toBe(0);
    await expectInstalled(proj);
    expectLockfileOnGateway(readFileSync(path.join(proj, 'package-lock.json'), 'utf8'));
    const log = await gw.requestsSince(mark);
    expect(
      log.filter((l) => l.status === 401),
      JSON.stringify(log),
    ).toEqual([]);
    expect(log.map((l) => `${l.method} ${l.path} ${l.status}`)).toEqual(
      expect.arrayContaining([
        'GET /npm/@acme%2fapp 200',
        'GET /npm/@acme%2flib 200',
        'GET /npm/@acme/app/-/app-1.0.0.tgz 200',
        'GET /npm/@acme/lib/-/lib-1.0.0.tgz 200',
      ]),
    );
    expect(new Set(log.map((l) => l.tokenId))).toEqual(new Set([gw.tokenId]));
  });

  it("lets npm's audit POST under /-/npm/v1/security/ through to the registry (the route allows it)", async () => {
    const { proj, env } = consumer('npm-audit', bearerLines());
    await runOk(npm, ['install', '--no-audit', '@acme/app'], { cwd: proj, env });
    const mark = await gw.mark();
    // Verdaccio here has no audit middleware (it would ask the public registry): it answers
    // 404 and npm reports that. What matters is that the gateway forwarded the POST.
    const r = await run(npm, ['audit'], { cwd: proj, env });
    const posts = (await gw.requestsSince(mark)).filter((l) => l.method === 'POST');
    expect(posts.length, r.output).toBeGreaterThan(0);
    for (const p of posts) {
      expect(p.path.startsWith(AUDIT_PREFIX), p.path).toBe(true);
      expect(p.status).not.toBe(405);
      expect(p.status).not.toBe(401);
      expect(p.tokenId).toBe(gw.tokenId);
    }
    expect(r.output).not.toMatch(/\b405\b|Method not allowed/i); // not the port ("127.0.0.1:40551")
    expect(upstream.seen.some((s) => s.method === 'POST' && s.url.startsWith('/-/npm/v1/security/'))).toBe(true);
  });

  it('installs with username + _password (Basic, the project as the user)', async () => {
    const { proj, env } = consumer('npm-basic', basicLines('web-frontend'));
    const mark = await gw.mark();
    const r = await run(npm, ['install', '--no-audit', '@acme/app'], { cwd: proj, env });
    expect(r.code, r.output).toBe(0);
    await expectInstalled(proj);
    expectLockfileOnGateway(readFileSync(path.join(proj, 'package-lock.json'), 'utf8'));
    const log = await gw.requestsSince(mark);
    expect(log.length).toBeGreaterThanOrEqual(4);
    for (const l of log)
      expect(l, JSON.stringify(l)).toMatchObject({ status: 200, project: 'web-frontend', tokenId: gw.tokenId });
  });
});

describe('pnpm through the gateway', () => {
  it('installs @acme/app with a Bearer _authToken; pnpm-lock.yaml tarballs are on the gateway', async () => {
    const { proj, env } = consumer('pnpm-bearer', [...bearerLines(), 'lockfile-include-tarball-url=true']);
    const mark = await gw.mark();
    const r = await run(pnpm, ['add', '@acme/app'], { cwd: proj, env });
    expect(r.code, r.output).toBe(0);
    await expectInstalled(proj);
    expectLockfileOnGateway(readFileSync(path.join(proj, 'pnpm-lock.yaml'), 'utf8'));
    const log = await gw.requestsSince(mark);
    expect(log.filter((l) => l.status === 401)).toEqual([]);
    expect(log.some((l) => l.path === '/npm/@acme/lib/-/lib-1.0.0.tgz' && l.status === 200)).toBe(true);
  });

  it('installs with username + _password (Basic)', async () => {
    const { proj, env } = consumer('pnpm-basic', [...basicLines('pnpm-project'), 'lockfile-include-tarball-url=true']);
    const mark = await gw.mark();
    const r = await run(pnpm, ['add', '@acme/app'], { cwd: proj, env });
    expect(r.code, r.output).toBe(0);
    await expectInstalled(proj);
    for (const l of await gw.requestsSince(mark)) expect(l).toMatchObject({ status: 200, project: 'pnpm-project' });
  });
});

describe('yarn classic through the gateway', () => {
  it('installs @acme/app with _authToken and always-auth=true; yarn.lock resolves at the gateway', async () => {
    const { proj, env } = consumer('yarn-bearer', [...bearerLines(), 'always-auth=true']);
    const mark = await gw.mark();
    const r = await run(yarn, ['add', '@acme/app', '--non-interactive', '--no-progress'], { cwd: proj, env });
    expect(r.code, r.output).toBe(0);
    await expectInstalled(proj);
    expectLockfileOnGateway(readFileSync(path.join(proj, 'yarn.lock'), 'utf8'));
    const log = await gw.requestsSince(mark);
    expect(
      log.filter((l) => l.status === 401),
      JSON.stringify(log),
    ).toEqual([]);
    expect(log.some((l) => l.path === '/npm/@acme/app/-/app-1.0.0.tgz' && l.status === 200)).toBe(true);
  });
});

describe('a token restricted to @acme/* packages (tollgate token create --package)', () => {
  it('installs @acme/app and its @acme dependency, and is refused a package outside @acme (403) before anything is fetched', async () => {
    const restricted = await gw.createToken('npm-acme-only', 'production', [
      '--route',
      '/npm/',
      '--package',
      '@acme/*',
    ]);
    const { proj, env } = consumer('npm-restricted', [`//${gw.hostPort}/npm/:_authToken=${restricted.token}`]);
    let mark = await gw.mark();
    const ok = await run(npm, ['install', '--no-audit', '@acme/app'], { cwd: proj, env });
    expect(ok.code, ok.output).toBe(0);
    await expectInstalled(proj);
    expect((await gw.requestsSince(mark)).every((l) => l.status === 200 && l.tokenId === restricted.id)).toBe(true);
    mark = await gw.mark();
    const refused = await run(npm, ['install', '--no-audit', 'foreign-lib'], { cwd: proj, env });
    expect(refused.code, refused.output).not.toBe(0);
    expect(refused.output).toMatch(/E403|403 Forbidden|not allowed to fetch this package/);
    expect(existsSync(path.join(proj, 'node_modules', 'foreign-lib'))).toBe(false);
    const log = await gw.requestsSince(mark);
    expect(log.length).toBeGreaterThan(0);
    for (const l of log) expect(l, JSON.stringify(l)).toMatchObject({ status: 403, refusedBy: 'package' });
    expect(upstream.seen.some((s) => s.url.includes('foreign-lib'))).toBe(false);
  });
});

describe('a token a CI job exchanged its OIDC identity for (tollgate token exchange)', () => {
  it("installs @acme/app with the token the CLI printed in a simulated GitHub Actions job, and the policy's restriction holds", async () => {
    issuer!.actionsClaims = githubClaims();
    const exchanged = await runCli(['token', 'exchange', '--gateway', gw.url, '--audience', DEFAULT_AUDIENCE], {
      GITHUB_ACTIONS: 'true',
      ACTIONS_ID_TOKEN_REQUEST_URL: issuer!.actionsRequestUrl,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: issuer!.actionsRequestToken,
    });
    expect(exchanged.code, exchanged.stderr).toBe(0);
    const token = exchanged.stdout.trim();
    expect(token).toMatch(/^tgp_/);
    exchangedTokens.push(token);
    const { proj, env } = consumer('npm-exchanged', [`//${gw.hostPort}/npm/:_authToken=${token}`]);
    let mark = await gw.mark();
    const ok = await run(npm, ['install', '--no-audit', '@acme/app'], { cwd: proj, env });
    expect(ok.code, ok.output).toBe(0);
    await expectInstalled(proj);
    const installed = await gw.requestsSince(mark);
    expect(installed.length).toBeGreaterThan(0);
    const issuedId = installed[0]!.tokenId;
    expect(issuedId).toMatch(/^tok_/);
    expect(issuedId).not.toBe(gw.tokenId);
    expect(installed.every((l) => l.status === 200 && l.tokenId === issuedId)).toBe(true);
    mark = await gw.mark();
    const refused = await run(npm, ['install', '--no-audit', 'foreign-lib'], { cwd: proj, env });
    expect(refused.code, refused.output).not.toBe(0);
    for (const l of await gw.requestsSince(mark))
      expect(l, JSON.stringify(l)).toMatchObject({ status: 403, refusedBy: 'package' });
    expect(await gw.metrics()).toMatch(
      /tollgate_ci_exchanges_total\{provider="github",outcome="issued",type="production"\} 1/,
    );
  });
});

describe('refusals', () => {
  const installs: Record<string, (proj: string, env: NodeJS.ProcessEnv) => ReturnType<typeof run>> = {
    npm: (proj, env) => run(npm, ['install', '--no-audit', '@acme/app'], { cwd: proj, env }),
    pnpm: (proj, env) => run(pnpm, ['add', '@acme/app'], { cwd: proj, env }),
    yarn: (proj, env) => run(yarn, ['add', '@acme/app', '--non-interactive', '--no-progress'], { cwd: proj, env }),
  };
  const cases = ['npm', 'pnpm', 'yarn'].flatMap((client) => [
    { client, credential: 'a wrong token' as const },
    { client, credential: 'no token' as const },
  ]);

  it.each(cases)('$client with $credential fails, and the gateway answers 401', async ({ client, credential }) => {
    const lines =
      credential === 'no token' ? [] : [`//${gw.hostPort}/npm/:_authToken=${gw.wrongToken}`, 'always-auth=true'];
    const { proj, env } = consumer(`${client}-refused`, lines);
    const mark = await gw.mark();
    const r = await installs[client]!(proj, env);
    expect(r.code, r.output).not.toBe(0);
    expect(existsSync(path.join(proj, 'node_modules', '@acme', 'app'))).toBe(false);
    expectAllRefused(await gw.requestsSince(mark));
    expect(r.output).toMatch(/401|Unauthorized|authenticat|Invalid or expired token/i);
  });
});

describe('nothing around the gateway', () => {
  it('the registry saw only requests the gateway forwarded (the publish went to verdaccio directly)', () => {
    expect(upstream.seen.length).toBeGreaterThan(0);
    expect(requestsAroundGateway(upstream.seen)).toEqual([]);
  });

  it('no token appears in anything the gateway printed', () => {
    expect(gw.gateway.output()).not.toContain(gw.token);
    expect(gw.gateway.output()).not.toContain(gw.wrongToken);
    for (const token of exchangedTokens) expect(gw.gateway.output()).not.toContain(token);
  });
});
