import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { clientSuite, expectAllRefused, expectOnlyForwarded } from '../../helpers/client-suite.js';
import { clientEnv, freshHome, requireClient, requirePython, run, runOk } from '../../helpers/clients.js';

/**
 * The go command fetches a private module through the gateway as a GOPROXY, with the token in
 * ~/.netrc (the README's set-up). The module proxy is built here: list, .info, .mod and a module
 * zip for corp.example.com/acme/greet v1.0.0. Go sends .netrc credentials only over https (and
 * refuses an http:// GOPROXY with credentials in it), so the gateway serves TLS here
 * (TOLLGATE_TLS_CERT, a self-signed certificate the go command trusts through SSL_CERT_FILE).
 */

const MODULE = 'corp.example.com/acme/greet';
const VERSION = 'v1.0.0';

let go: string;
const { gw, upstream } = clientSuite({
  label: 'go',
  route: { prefix: '/go/', ecosystem: 'go' },
  requireClients: () => {
    go = requireClient('go', 'apt-get install golang-go');
  },
  tls: true,
  build: (root) => buildModuleProxy(root),
});

/** The module proxy tree (GOPROXY protocol) under `root`; the zip made with Python's zipfile. */
async function buildModuleProxy(root: string): Promise<void> {
  const dir = path.join(root, MODULE, '@v');
  mkdirSync(dir, { recursive: true });
  const goMod = `module ${MODULE}\n\ngo 1.19\n`;
  writeFileSync(path.join(dir, 'list'), `${VERSION}\n`);
  writeFileSync(path.join(dir, `${VERSION}.info`), JSON.stringify({ Version: VERSION, Time: '2026-01-01T00:00:00Z' }));
  writeFileSync(path.join(dir, `${VERSION}.mod`), goMod);
  const source = 'package greet\n\nfunc Hello() string { return "hello from greet" }\n';
  const script = [
    'import sys, zipfile',
    'out, prefix, go_mod, source = sys.argv[1:5]',
    "with zipfile.ZipFile(out, 'w') as z:",
    "    z.writestr(prefix + '/go.mod', go_mod)",
    "    z.writestr(prefix + '/greet.go', source)",
  ].join('\n');
  await runOk(
    requirePython(),
    ['-c', script, path.join(dir, `${VERSION}.zip`), `${MODULE}@${VERSION}`, goMod, source],
    { cwd: root, env: { PATH: process.env.PATH, HOME: root } },
  );
}

/** A fresh HOME with the token (if any) in ~/.netrc, and the go command's environment. */
function goEnv(label: string, password: string | undefined): { env: NodeJS.ProcessEnv; work: string } {
  const home = freshHome(label);
  if (password !== undefined) home.write('.netrc', `machine 127.0.0.1\nlogin platform-team\npassword ${password}\n`);
  return {
    env: clientEnv(home, {
      GOPROXY: `${gw.url}/go/`,
      GONOSUMDB: 'corp.example.com', // a private module: the public checksum database does not know it
      GOFLAGS: '-mod=mod',
      GOPATH: path.join(home.path, 'go'),
      GOCACHE: path.join(home.path, '.cache', 'go-build'),
      GOTOOLCHAIN: 'local',
      SSL_CERT_FILE: gw.caFile,
    }),
    work: home.dir('app'),
  };
}

describe('go through the gateway', () => {
  it('downloads the module with the token in ~/.netrc: .info, .mod and .zip from the gateway, checksummed', async () => {
    const { env, work } = goEnv('go-download', gw.token);
    const mark = await gw.mark();
    const r = await run(go, ['mod', 'download', '-json', `${MODULE}@${VERSION}`], { cwd: work, env });
    expect(r.code, r.output).toBe(0);
    const downloaded = JSON.parse(r.stdout) as { Path: string; Version: string; Sum?: string; Error?: string };
    expect(downloaded).toMatchObject({ Path: MODULE, Version: VERSION });
    expect(downloaded.Error).toBeUndefined();
    expect(downloaded.Sum).toMatch(/^h1:/);
    const log = await gw.requestsSince(mark);
    expect(log.map((l) => `${l.method} ${l.path} ${l.status}`)).toEqual(
      expect.arrayContaining([
        `GET /go/${MODULE}/@v/${VERSION}.info 200`,
        `GET /go/${MODULE}/@v/${VERSION}.mod 200`,
        `GET /go/${MODULE}/@v/${VERSION}.zip 200`,
      ]),
    );
    for (const l of log)
      expect(l, JSON.stringify(l)).toMatchObject({ status: 200, project: 'platform-team', tokenId: gw.tokenId });
  });

  it('builds and runs a program that requires the module', async () => {
    const { env, work } = goEnv('go-run', gw.token);
    writeFileSync(path.join(work, 'go.mod'), `module example.com/app\n\ngo 1.19\n\nrequire ${MODULE} ${VERSION}\n`);
    writeFileSync(
      path.join(work, 'main.go'),
      `package main\n\nimport (\n\t"fmt"\n\n\t"${MODULE}"\n)\n\nfunc main() { fmt.Println(greet.Hello()) }\n`,
    );
    const r = await run(go, ['run', '.'], { cwd: work, env });
    expect(r.code, r.output).toBe(0);
    expect(r.stdout.trim()).toBe('hello from greet');
  });

  it.each([
    { credential: 'a wrong token', password: (): string => gw.wrongToken },
    { credential: 'no ~/.netrc', password: (): undefined => undefined },
  ])('refuses the go command with $credential: it fails on a 401, nothing is downloaded', async ({ password }) => {
    const { env, work } = goEnv('go-refused', password());
    const mark = await gw.mark();
    const r = await run(go, ['mod', 'download', '-json', `${MODULE}@${VERSION}`], { cwd: work, env });
    expect(r.code, r.output).not.toBe(0);
    expect(r.output).toMatch(/401 Unauthorized/);
    expect(existsSync(path.join(env.GOPATH!, 'pkg', 'mod', 'cache', 'download', MODULE, '@v', `${VERSION}.zip`))).toBe(
      false,
    );
    expectAllRefused(await gw.requestsSince(mark));
  });

  it('the upstream saw only requests the gateway forwarded, and no token', () =>
    expectOnlyForwarded(gw, upstream, { noAuthorization: true }));
});
