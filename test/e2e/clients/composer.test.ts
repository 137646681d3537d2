import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { clientSuite, expectOnlyForwarded } from '../../helpers/client-suite.js';
import { clientEnv, freshHome, requireClient, requirePython, run, runOk } from '../../helpers/clients.js';

/**
 * Composer installs a private package through the gateway with the README's set-up: a
 * `composer` repository in composer.json (packagist.org turned off: there is no other network)
 * and the token in auth.json, next to composer.json or in COMPOSER_HOME, `http-basic` keyed by
 * the gateway's `host:port` (Composer looks credentials up by the URL's host with its port; a key
 * with the bare host is never sent). The repository is built here: a packages.json naming
 * acme/greet 1.0.0, whose dist zip (made with Python's zipfile) is on the gateway's own route,
 * and the zip. Composer refuses plain http (`secure-http`), so the gateway serves TLS here
 * (TOLLGATE_TLS_CERT, a self-signed certificate Composer trusts through SSL_CERT_FILE), as the
 * README tells users to; `secure-http: false` is not used. Composer sends the credential
 * without waiting for a 401, and without a terminal it gives up on the first 401.
 */

const PACKAGE = 'acme/greet';
const VERSION = '1.0.0';
const ZIP_PATH = `${PACKAGE}/${VERSION}/greet-${VERSION}.zip`;

let composer: string;
let php: string;
const { gw, upstream } = clientSuite({
  label: 'composer',
  route: { prefix: '/composer/', ecosystem: 'composer' },
  requireClients: () => {
    composer = requireClient('composer', 'apt-get install composer php-cli php-zip unzip');
    php = requireClient('php', 'apt-get install composer php-cli php-zip unzip');
  },
  tls: true,
  build: (root, { gatewayUrl }) => buildRepository(root, gatewayUrl),
});

/** The package zip (made with Python's zipfile) and a packages.json whose dist URL is on the gateway. */
async function buildRepository(root: string, gatewayUrl: string): Promise<void> {
  const zipFile = path.join(root, ZIP_PATH);
  mkdirSync(path.dirname(zipFile), { recursive: true });
  const manifest = JSON.stringify(
    {
      name: PACKAGE,
      version: VERSION,
      type: 'library',
      autoload: { 'psr-4': { 'Acme\\Greet\\': 'src/' } },
    },
    null,
    2,
  );
  const source = [
    '<?php',
    '',
    'namespace Acme\\Greet;',
    '',
    'final class Greeter',
    '{',
    '    public static function hello(): string',
    '    {',
    "        return 'hello from acme/greet';",
    '    }',
    '}',
    '',
  ].join('\n');
  const script = [
    'import sys, zipfile',
    'out, manifest, source = sys.argv[1:4]',
    "with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:",
    "    z.writestr('greet/composer.json', manifest)",
    "    z.writestr('greet/src/Greeter.php', source)",
  ].join('\n');
  await runOk(requirePython(), ['-c', script, zipFile, manifest, source], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: root },
  });
  const shasum = createHash('sha1').update(readFileSync(zipFile)).digest('hex');
  writeFileSync(
    path.join(root, 'packages.json'),
    JSON.stringify({
      packages: {
        [PACKAGE]: {
          [VERSION]: {
            name: PACKAGE,
            version: VERSION,
            type: 'library',
            autoload: { 'psr-4': { 'Acme\\Greet\\': 'src/' } },
            dist: { type: 'zip', url: `${gatewayUrl}/composer/${ZIP_PATH}`, shasum },
          },
        },
      },
    }),
  );
}

interface AuthOptions {
  /** The `http-basic` key; default the gateway's host:port. */
  hostKey?: string;
  /** auth.json next to composer.json (default) or in COMPOSER_HOME. */
  authIn?: 'project' | 'home';
}

/**
 * A fresh HOME (COMPOSER_HOME inside it) and a project requiring acme/greet from the gateway,
 * with the token (if any) in an auth.json.
 */
function project(
  label: string,
  password: string | undefined,
  options: AuthOptions = {},
): { env: NodeJS.ProcessEnv; work: string } {
  const { hostKey = gw.hostPort, authIn = 'project' } = options;
  const home = freshHome(label);
  const work = home.dir('app');
  const composerHome = home.dir('.composer');
  writeFileSync(
    path.join(work, 'composer.json'),
    JSON.stringify(
      {
        name: 'example/app',
        repositories: [{ type: 'composer', url: `${gw.url}/composer/` }, { 'packagist.org': false }],
        require: { [PACKAGE]: VERSION },
      },
      null,
      2,
    ),
  );
  if (password !== undefined) {
    const auth = { 'http-basic': { [hostKey]: { username: 'my-project', password } } };
    writeFileSync(path.join(authIn === 'home' ? composerHome : work, 'auth.json'), JSON.stringify(auth, null, 2));
  }
  return {
    env: clientEnv(home, {
      COMPOSER_HOME: composerHome,
      COMPOSER_NO_INTERACTION: '1',
      COMPOSER_ALLOW_SUPERUSER: '1',
      SSL_CERT_FILE: gw.caFile,
      COLUMNS: '200', // Composer wraps its error box at the terminal's width
    }),
    work,
  };
}

const install = (work: string, env: NodeJS.ProcessEnv) =>
  run(composer, ['install', '--no-plugins', '--no-scripts', '--no-progress', '--no-ansi'], { cwd: work, env });

describe('composer through the gateway', () => {
  it('installs acme/greet with the token in auth.json: packages.json and the zip from the gateway, and the class loads', async () => {
    const { env, work } = project('composer-install', gw.token);
    const mark = await gw.mark();
    const r = await install(work, env);
    expect(r.code, r.output).toBe(0);
    expect(existsSync(path.join(work, 'vendor', PACKAGE, 'src', 'Greeter.php')), r.output).toBe(true);
    const log = await gw.requestsSince(mark);
    expect(log.map((l) => `${l.method} ${l.path} ${l.status}`)).toEqual(
      expect.arrayContaining(['GET /composer/packages.json 200', `GET /composer/${ZIP_PATH} 200`]),
    );
    for (const l of log)
      expect(l, JSON.stringify(l)).toMatchObject({ status: 200, project: 'my-project', tokenId: gw.tokenId });
    const loaded = await run(
      php,
      ['-r', "require 'vendor/autoload.php'; echo \\Acme\\Greet\\Greeter::hello(), PHP_EOL;"],
      { cwd: work, env },
    );
    expect(loaded.stdout.trim(), loaded.output).toBe('hello from acme/greet');
  });

  it('installs with auth.json in COMPOSER_HOME instead', async () => {
    const { env, work } = project('composer-home-auth', gw.token, { authIn: 'home' });
    expect(existsSync(path.join(work, 'auth.json'))).toBe(false);
    const mark = await gw.mark();
    const r = await install(work, env);
    expect(r.code, r.output).toBe(0);
    expect(existsSync(path.join(work, 'vendor', PACKAGE, 'src', 'Greeter.php')), r.output).toBe(true);
    const log = await gw.requestsSince(mark);
    expect(log.length).toBeGreaterThan(0);
    for (const l of log)
      expect(l, JSON.stringify(l)).toMatchObject({ status: 200, project: 'my-project', tokenId: gw.tokenId });
  });

  it.each([
    { credential: 'a wrong token', password: (): string => gw.wrongToken, hostKey: undefined, reason: 'invalid' },
    { credential: 'no auth.json', password: (): undefined => undefined, hostKey: undefined, reason: 'missing' },
    // Composer looks credentials up by host:port, so a token keyed by the bare host is never sent.
    {
      credential: 'the token keyed by the host without its port',
      password: (): string => gw.token,
      hostKey: '127.0.0.1',
      reason: 'missing',
    },
  ])(
    'refuses composer with $credential: it fails on a 401, nothing is installed',
    async ({ password, hostKey, reason }) => {
      const { env, work } = project('composer-refused', password(), { hostKey });
      const mark = await gw.mark();
      const r = await install(work, env);
      expect(r.code, r.output).not.toBe(0);
      expect(r.output).toMatch(/URL required authentication \(HTTP 401\)/);
      expect(existsSync(path.join(work, 'vendor', PACKAGE))).toBe(false);
      const log = await gw.requestsSince(mark);
      expect(log.map((l) => `${l.method} ${l.path} ${l.status}`)).toEqual(['GET /composer/packages.json 401']);
      expect(log[0], JSON.stringify(log[0])).toMatchObject({ authFailure: reason });
    },
  );

  it('the upstream saw only requests the gateway forwarded, and no token', () =>
    expectOnlyForwarded(gw, upstream, { noAuthorization: true }));
});
