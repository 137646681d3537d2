import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { clientSuite, expectAllRefused, expectOnlyForwarded } from '../../helpers/client-suite.js';
import { clientEnv, freshHome, requirePython, run, runOk, urlsIn } from '../../helpers/clients.js';

/**
 * pip downloads and installs a package and its dependency through the gateway from a PEP 503
 * "simple" index built here: two tiny pure-Python wheels, acme-app requiring acme-lib, with the
 * index pages linking to the wheels by absolute upstream URL (as a real index does), so the
 * gateway has to rewrite them to stay in the path.
 */

const MAKE_WHEEL = new URL('./fixtures/make_wheel.py', import.meta.url).pathname;

let python: string;
const { gw, upstream } = clientSuite({
  label: 'pip',
  route: { prefix: '/pypi/', ecosystem: 'pypi' },
  requireClients: () => {
    python = requirePython();
  },
  build: (root, { upstreamUrl }) => buildIndex(root, upstreamUrl),
});

/** Builds the wheels and the PEP 503 pages under `root`, linking files at `upstreamUrl`. */
async function buildIndex(root: string, upstreamUrl: string): Promise<void> {
  const packages = path.join(root, 'packages');
  mkdirSync(packages, { recursive: true });
  const env = { PATH: process.env.PATH, HOME: root };
  const wheels: Record<string, string> = {};
  for (const [name, requires] of [
    ['acme-lib', []],
    ['acme-app', ['acme-lib>=1.0']],
  ] as const) {
    const r = await runOk(python, [MAKE_WHEEL, packages, name, '1.0.0', ...requires], { cwd: root, env });
    wheels[name] = r.stdout.trim();
  }
  const page = (title: string, links: string[]): string =>
    `<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.0"><title>${title}</title></head><body>\n${links.join('<br>\n')}\n</body></html>\n`;
  const simple = path.join(root, 'simple');
  mkdirSync(simple, { recursive: true });
  writeFileSync(
    path.join(simple, 'index.html'),
    page(
      'Simple index',
      Object.keys(wheels).map((n) => `<a href="/simple/${n}/">${n}</a>`),
    ),
  );
  for (const [name, file] of Object.entries(wheels)) {
    const sha256 = createHash('sha256')
      .update(readFileSync(path.join(packages, file)))
      .digest('hex');
    mkdirSync(path.join(simple, name), { recursive: true });
    writeFileSync(
      path.join(simple, name, 'index.html'),
      page(`Links for ${name}`, [`<a href="${upstreamUrl}packages/${file}#sha256=${sha256}">${file}</a>`]),
    );
  }
}

function pipEnv(label: string): { env: NodeJS.ProcessEnv; work: string } {
  const home = freshHome(label);
  return {
    env: clientEnv(home, {
      PIP_NO_INPUT: '1',
      PIP_DISABLE_PIP_VERSION_CHECK: '1',
      PIP_KEYRING_PROVIDER: 'disabled',
      PIP_CONFIG_FILE: '/dev/null',
      PYTHONNOUSERSITE: '1',
      PIP_ROOT_USER_ACTION: 'ignore',
    }),
    work: home.dir('work'),
  };
}

const indexUrl = (credentials: string | undefined): string =>
  `http://${credentials ? `${credentials}@` : ''}${gw.hostPort}/pypi/simple/`;

describe('pip through the gateway', () => {
  it('downloads acme-app and its dependency with PROJECT:TOKEN in --index-url, files fetched from the gateway', async () => {
    const { env, work } = pipEnv('pip-download');
    const dest = path.join(work, 'dl');
    const mark = await gw.mark();
    const r = await run(
      python,
      [
        '-m',
        'pip',
        'download',
        '--no-cache-dir',
        '--index-url',
        indexUrl(`ml-team:${gw.token}`),
        '--dest',
        dest,
        'acme-app',
      ],
      { cwd: work, env },
    );
    expect(r.code, r.output).toBe(0);
    expect(readdirSync(dest).sort()).toEqual(['acme_app-1.0.0-py3-none-any.whl', 'acme_lib-1.0.0-py3-none-any.whl']);
    // pip names each file it fetches: all on the gateway's /pypi/ route, none on the upstream.
    const fetched = urlsIn(r.output).filter((u) => u.endsWith('.whl'));
    expect(fetched.length, r.output).toBe(2);
    for (const u of fetched) expect(u).toMatch(new RegExp(`^http://(\\*\\*\\*\\*@)?${gw.hostPort}/pypi/packages/`));
    const log = await gw.requestsSince(mark);
    expect(log.map((l) => `${l.method} ${l.path} ${l.status}`)).toEqual(
      expect.arrayContaining([
        'GET /pypi/simple/acme-app/ 200',
        'GET /pypi/simple/acme-lib/ 200',
        'GET /pypi/packages/acme_app-1.0.0-py3-none-any.whl 200',
        'GET /pypi/packages/acme_lib-1.0.0-py3-none-any.whl 200',
      ]),
    );
    for (const l of log)
      expect(l, JSON.stringify(l)).toMatchObject({ status: 200, project: 'ml-team', tokenId: gw.tokenId });
  });

  it('installs acme-app with its dependency into --target, and the code imports', async () => {
    const { env, work } = pipEnv('pip-install');
    const target = path.join(work, 'site');
    const r = await run(
      python,
      [
        '-m',
        'pip',
        'install',
        '--no-cache-dir',
        '--index-url',
        indexUrl(`ml-team:${gw.token}`),
        '--target',
        target,
        'acme-app',
      ],
      { cwd: work, env },
    );
    expect(r.code, r.output).toBe(0);
    const imported = await run(python, ['-c', 'import acme_app; print(acme_app.VALUE)'], {
      cwd: work,
      env: { ...env, PYTHONPATH: target },
    });
    expect(imported.stdout.trim(), imported.output).toBe('acme_app+acme_lib');
  });

  it.each([
    { credential: 'a wrong token', userinfo: (): string => `ml-team:${gw.wrongToken}` },
    { credential: 'no token', userinfo: (): undefined => undefined },
  ])('refuses pip with $credential: pip fails, the gateway answers 401', async ({ userinfo }) => {
    const { env, work } = pipEnv('pip-refused');
    const dest = path.join(work, 'dl');
    const mark = await gw.mark();
    const r = await run(
      python,
      ['-m', 'pip', 'download', '--no-cache-dir', '--index-url', indexUrl(userinfo()), '--dest', dest, 'acme-app'],
      { cwd: work, env },
    );
    expect(r.code, r.output).not.toBe(0);
    expect(existsSync(dest) ? readdirSync(dest) : []).toEqual([]);
    // pip says only "No matching distribution found"; the gateway's log says why.
    expectAllRefused(await gw.requestsSince(mark));
    expect(r.output).toMatch(/No matching distribution found for acme-app/);
  });

  it('the upstream saw only requests the gateway forwarded', () => expectOnlyForwarded(gw, upstream));
});
