import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { clientSuite, expectAllRefused, expectOnlyForwarded } from '../../helpers/client-suite.js';
import { clientEnv, freshHome, scratchDir, requireClient, run, runOk } from '../../helpers/clients.js';

/**
 * apt-get update and apt-get download through the gateway from a flat Debian repository built
 * here (dpkg-deb, dpkg-scanpackages, a hand-written Release), with the token in an auth.conf.
 * apt runs with a private configuration, state and cache (APT_CONFIG and Dir::*): the system's
 * apt state is never read or written.
 */

const PACKAGE = 'acme-hello';
const VERSION = '1.0.0';

let aptGet: string;
const { gw, upstream } = clientSuite({
  label: 'apt',
  route: { prefix: '/apt/', ecosystem: 'deb' },
  requireClients: () => {
    aptGet = requireClient('apt-get', 'a Debian or Ubuntu machine (apt)');
  },
  build: (root) => buildRepository(root),
});

/** Builds acme-hello_1.0.0_all.deb, Packages(.gz) and Release under `root`. */
async function buildRepository(root: string): Promise<void> {
  const dpkgDeb = requireClient('dpkg-deb', 'apt-get install dpkg');
  const scan = requireClient('dpkg-scanpackages', 'apt-get install dpkg-dev');
  const src = scratchDir('deb-src');
  const env = { PATH: process.env.PATH, HOME: src };
  mkdirSync(path.join(src, 'pkg', 'DEBIAN'), { recursive: true });
  mkdirSync(path.join(src, 'pkg', 'usr', 'share', 'doc', PACKAGE), { recursive: true });
  writeFileSync(
    path.join(src, 'pkg', 'DEBIAN', 'control'),
    [
      `Package: ${PACKAGE}`,
      `Version: ${VERSION}`,
      'Architecture: all',
      'Maintainer: Tollgate tests <tests@example.invalid>',
      'Section: misc',
      'Priority: optional',
      'Description: Tollgate apt client test package',
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(src, 'pkg', 'usr', 'share', 'doc', PACKAGE, 'README'), 'hello from acme\n');
  await runOk(
    dpkgDeb,
    [
      '--root-owner-group',
      '-Zgzip',
      '--build',
      path.join(src, 'pkg'),
      path.join(root, `${PACKAGE}_${VERSION}_all.deb`),
    ],
    { cwd: src, env },
  );
  const packages = await runOk(scan, ['--multiversion', '.', '/dev/null'], { cwd: root, env });
  writeFileSync(path.join(root, 'Packages'), packages.stdout);
  const sha256 = (file: string): string =>
    createHash('sha256')
      .update(readFileSync(path.join(root, file)))
      .digest('hex');
  writeFileSync(
    path.join(root, 'Release'),
    [
      'Origin: Tollgate test',
      'Label: Tollgate test',
      `Date: ${new Date().toUTCString()}`,
      'Architectures: all amd64 arm64',
      'SHA256:',
      ` ${sha256('Packages')} ${statSync(path.join(root, 'Packages')).size} Packages`,
      '',
    ].join('\n'),
  );
}

/** A private apt: its own apt.conf (APT_CONFIG), sources.list, auth.conf, state and cache, all in a fresh HOME. */
function privateApt(label: string, credentials: { login: string; password: string } | undefined) {
  const home = freshHome(label);
  const root = home.dir('apt');
  for (const d of [
    'etc/apt.conf.d',
    'etc/sources.list.d',
    'etc/preferences.d',
    'etc/auth.conf.d',
    'state/lists/partial',
    'cache/archives/partial',
    'log',
  ]) {
    mkdirSync(path.join(root, d), { recursive: true });
  }
  writeFileSync(path.join(root, 'state', 'status'), '');
  writeFileSync(path.join(root, 'etc', 'sources.list'), `deb [trusted=yes] ${gw.url}/apt/ ./\n`);
  // auth.conf: apt applies a machine line without a scheme to https only; http must be named.
  writeFileSync(
    path.join(root, 'etc', 'auth.conf'),
    credentials ? `machine ${gw.url}/apt/\nlogin ${credentials.login}\npassword ${credentials.password}\n` : '',
  );
  const conf = path.join(root, 'apt.conf');
  writeFileSync(
    conf,
    [
      `Dir::Etc "${path.join(root, 'etc')}/";`,
      'Dir::Etc::main "/dev/null";',
      'Dir::Etc::parts "apt.conf.d";',
      'Dir::Etc::sourcelist "sources.list";',
      'Dir::Etc::sourceparts "sources.list.d";',
      'Dir::Etc::preferences "preferences";',
      'Dir::Etc::preferencesparts "preferences.d";',
      'Dir::Etc::netrc "auth.conf";',
      'Dir::Etc::netrcparts "auth.conf.d";',
      `Dir::State "${path.join(root, 'state')}/";`,
      'Dir::State::status "status";',
      `Dir::Cache "${path.join(root, 'cache')}/";`,
      `Dir::Log "${path.join(root, 'log')}/";`,
      'Debug::NoLocking "true";',
      'APT::Sandbox::User "root";',
      'Acquire::Languages "none";',
      'Acquire::Retries "0";',
      '',
    ].join('\n'),
  );
  const work = home.dir('work');
  return { work, root, env: clientEnv(home, { APT_CONFIG: conf, DEBIAN_FRONTEND: 'noninteractive' }) };
}

describe('apt through the gateway', () => {
  it('apt-get update and apt-get download with auth.conf login/password (Basic)', async () => {
    const { work, root, env } = privateApt('apt-ok', { login: 'deb-team', password: gw.token });
    const mark = await gw.mark();
    const update = await run(aptGet, ['update'], { cwd: work, env });
    expect(update.code, update.output).toBe(0);
    expect(update.output).not.toMatch(/^(E|W): /m);
    expect(readdirSync(path.join(root, 'state', 'lists')).some((f) => f.endsWith('_Packages'))).toBe(true);

    const download = await run(aptGet, ['download', PACKAGE], { cwd: work, env });
    expect(download.code, download.output).toBe(0);
    expect(download.stdout).toContain(`${gw.url}/apt ./ ${PACKAGE} ${VERSION}`);
    const deb = path.join(work, `${PACKAGE}_${VERSION}_all.deb`);
    expect(existsSync(deb)).toBe(true);
    const info = await run(requireClient('dpkg-deb', 'apt-get install dpkg'), ['--field', deb, 'Package', 'Version'], {
      cwd: work,
      env,
    });
    expect(info.stdout).toBe(`Package: ${PACKAGE}\nVersion: ${VERSION}\n`);

    const log = await gw.requestsSince(mark);
    // A flat repository: apt asks for `<base>/./<file>`, logged as asked, forwarded normalised.
    const ok = log.filter((l) => l.status === 200).map((l) => `${l.method} ${l.path}`);
    expect(ok).toEqual(
      expect.arrayContaining(['GET /apt/./Release', 'GET /apt/./Packages', `GET /apt/./${PACKAGE}_${VERSION}_all.deb`]),
    );
    expect(upstream.seen.map((r) => r.url)).toEqual(
      expect.arrayContaining(['/Release', '/Packages', `/${PACKAGE}_${VERSION}_all.deb`]),
    );
    for (const l of log) {
      // InRelease and Release.gpg do not exist (an unsigned, trusted=yes repository): 404 from upstream.
      expect(l.status === 200 || l.status === 404, JSON.stringify(l)).toBe(true);
      expect(l).toMatchObject({ tokenId: gw.tokenId, project: 'deb-team' });
    }
  });

  it.each([
    {
      credential: 'a wrong token',
      creds: (): { login: string; password: string } => ({ login: 'deb-team', password: gw.wrongToken }),
    },
    { credential: 'no token', creds: (): undefined => undefined },
  ])('refuses apt with $credential: update fails with 401, nothing to download', async ({ creds }) => {
    const { work, env } = privateApt('apt-refused', creds());
    const mark = await gw.mark();
    const update = await run(aptGet, ['update'], { cwd: work, env });
    expect(update.code, update.output).not.toBe(0);
    expect(update.output).toMatch(/401\s+Unauthorized/);
    const download = await run(aptGet, ['download', PACKAGE], { cwd: work, env });
    expect(download.code, download.output).not.toBe(0);
    expect(existsSync(path.join(work, `${PACKAGE}_${VERSION}_all.deb`))).toBe(false);
    expectAllRefused(await gw.requestsSince(mark));
  });

  it('the upstream saw only requests the gateway forwarded', () => expectOnlyForwarded(gw, upstream));
});
