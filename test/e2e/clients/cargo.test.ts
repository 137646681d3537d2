import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bearer } from '../../helpers/authorization.js';
import { clientSuite, expectAllRefused, expectOnlyForwarded } from '../../helpers/client-suite.js';
import { clientEnv, freshHome, requireClient, run, runOk, rustupHome, urlsIn } from '../../helpers/clients.js';

/**
 * cargo builds a crate that depends on `acmelib` from a sparse registry behind the gateway.
 * The registry is built here: a .crate made with `cargo package` from a tiny crate, its index
 * line, and a config.json with `"auth-required": true` whose `dl` names the upstream, which the
 * gateway must rewrite to itself. cargo asks for config.json without a credential first and
 * needs the 401 to send its token (`Bearer <token>`, verbatim in Authorization).
 */

const CRATE = 'acmelib';
const VERSION = '0.1.0';

let cargo: string;
const { gw, upstream } = clientSuite({
  label: 'cargo',
  route: { prefix: '/cargo/', ecosystem: 'cargo' },
  requireClients: requireCargo,
  build: async (root, { upstreamUrl }) => buildRegistry(root, upstreamUrl, await packageCrate()),
});

/** cargo 1.74 or later: sparse registries with "auth-required" and credential providers. */
async function requireCargo(): Promise<void> {
  cargo = requireClient('cargo', 'rustup (the stable toolchain) or apt-get install cargo', [
    'cargo',
    path.join(os.homedir(), '.cargo', 'bin', 'cargo'),
  ]);
  const probe = cargoEnv('cargo-version');
  const version = /^cargo (\d+)\.(\d+)/.exec(
    (await runOk(cargo, ['--version'], { cwd: probe.home.path, env: probe.env })).stdout,
  );
  if (!version || Number(version[1]) < 1 || (Number(version[1]) === 1 && Number(version[2]) < 74)) {
    throw new Error(
      `cargo 1.74 or later not found (${cargo} is ${version?.[0] ?? 'unknown'}): install it with rustup (the stable toolchain)`,
    );
  }
}

function cargoEnv(label: string): { home: ReturnType<typeof freshHome>; cargoHome: string; env: NodeJS.ProcessEnv } {
  const home = freshHome(label);
  const cargoHome = home.dir('.cargo');
  return {
    home,
    cargoHome,
    env: clientEnv(home, {
      CARGO_HOME: cargoHome,
      RUSTUP_HOME: rustupHome(),
      CARGO_TERM_COLOR: 'never',
      CARGO_TERM_PROGRESS_WHEN: 'never',
    }),
  };
}

/** Packages the tiny crate with cargo itself, offline (it has no dependencies). */
async function packageCrate(): Promise<Buffer> {
  const { home, env } = cargoEnv('cargo-package');
  const dir = home.dir(CRATE);
  writeFileSync(
    path.join(dir, 'Cargo.toml'),
    [
      '[package]',
      `name = "${CRATE}"`,
      `version = "${VERSION}"`,
      'edition = "2021"',
      'description = "Tollgate client test crate"',
      'license = "MIT"',
      '',
    ].join('\n'),
  );
  mkdirSync(path.join(dir, 'src'));
  writeFileSync(path.join(dir, 'src', 'lib.rs'), 'pub fn greet() -> &\'static str { "hello from acmelib" }\n');
  await runOk(cargo, ['package', '--offline', '--allow-dirty', '--no-verify'], { cwd: dir, env });
  return readFileSync(path.join(dir, 'target', 'package', `${CRATE}-${VERSION}.crate`));
}

/** The sparse registry tree: config.json, the index file and the .crate, under `root`. */
function buildRegistry(root: string, upstreamUrl: string, crate: Buffer): void {
  writeFileSync(
    path.join(root, 'config.json'),
    JSON.stringify({
      dl: `${upstreamUrl}crates/{crate}/{crate}-{version}.crate`,
      'auth-required': true,
    }),
  );
  // Index path for names of 4+ characters: first two / next two / name.
  const indexFile = path.join(root, CRATE.slice(0, 2), CRATE.slice(2, 4), CRATE);
  mkdirSync(path.dirname(indexFile), { recursive: true });
  writeFileSync(
    indexFile,
    `${JSON.stringify({
      name: CRATE,
      vers: VERSION,
      deps: [],
      features: {},
      yanked: false,
      cksum: createHash('sha256').update(crate).digest('hex'),
    })}\n`,
  );
  const crateFile = path.join(root, 'crates', CRATE, `${CRATE}-${VERSION}.crate`);
  mkdirSync(path.dirname(crateFile), { recursive: true });
  writeFileSync(crateFile, crate);
}

/** A fresh CARGO_HOME naming the registry, the token in credentials.toml, and a binary crate using acmelib. */
function consumer(label: string, token: string | undefined) {
  const { home, cargoHome, env } = cargoEnv(label);
  writeFileSync(
    path.join(cargoHome, 'config.toml'),
    ['[registries.tollgate]', `index = "sparse+${gw.url}/cargo/"`, 'credential-provider = ["cargo:token"]', ''].join(
      '\n',
    ),
  );
  if (token !== undefined) {
    writeFileSync(path.join(cargoHome, 'credentials.toml'), `[registries.tollgate]\ntoken = "Bearer ${token}"\n`);
  }
  const proj = home.dir('app');
  writeFileSync(
    path.join(proj, 'Cargo.toml'),
    [
      '[package]',
      'name = "app"',
      'version = "0.1.0"',
      'edition = "2021"',
      '',
      '[dependencies]',
      `${CRATE} = { version = "${VERSION}", registry = "tollgate" }`,
      '',
    ].join('\n'),
  );
  mkdirSync(path.join(proj, 'src'));
  writeFileSync(path.join(proj, 'src', 'main.rs'), `fn main() { println!("{}", ${CRATE}::greet()); }\n`);
  return { proj, env };
}

describe('cargo through the gateway', () => {
  it('builds against acmelib from the sparse registry with a Bearer token; dl and Cargo.lock point at the gateway', async () => {
    const { proj, env } = consumer('cargo-ok', gw.token);
    const mark = await gw.mark();
    const r = await run(cargo, ['build'], { cwd: proj, env, timeoutMs: 240_000 });
    expect(r.code, r.output).toBe(0);
    const exe = await run(path.join(proj, 'target', 'debug', 'app'), [], { cwd: proj, env });
    expect(exe.stdout.trim()).toBe('hello from acmelib');

    const lock = readFileSync(path.join(proj, 'Cargo.lock'), 'utf8');
    expect(lock).toContain(`source = "sparse+${gw.url}/cargo/"`);
    for (const u of urlsIn(lock)) expect(u, lock).toMatch(new RegExp(`^${gw.url}/cargo/`));

    const log = await gw.requestsSince(mark);
    const lines = log.map((l) => `${l.method} ${l.path} ${l.status}`);
    // config.json first without a credential (the challenge), then with the token.
    expect(lines[0]).toBe('GET /cargo/config.json 401');
    expect(log[0]!.authFailure).toBe('missing');
    expect(lines).toEqual(
      expect.arrayContaining([
        'GET /cargo/config.json 200',
        `GET /cargo/${CRATE.slice(0, 2)}/${CRATE.slice(2, 4)}/${CRATE} 200`,
        // The rewritten `dl`: the crate came through the gateway, with the token.
        `GET /cargo/crates/${CRATE}/${CRATE}-${VERSION}.crate 200`,
      ]),
    );
    for (const l of log.slice(1)) expect(l, JSON.stringify(l)).toMatchObject({ status: 200, tokenId: gw.tokenId });
  });

  it('serves config.json with `dl` rewritten to the gateway', async () => {
    const res = await fetch(`${gw.url}/cargo/config.json`, { headers: { authorization: bearer(gw.token) } });
    const config = (await res.json()) as { dl: string; 'auth-required': boolean };
    expect(config).toEqual({ dl: `${gw.url}/cargo/crates/{crate}/{crate}-{version}.crate`, 'auth-required': true });
  });

  it.each([
    { credential: 'a wrong token', token: (): string => gw.wrongToken },
    { credential: 'no token', token: (): undefined => undefined },
  ])('refuses cargo with $credential: the build fails, the gateway answers 401', async ({ token }) => {
    const { proj, env } = consumer('cargo-refused', token());
    const mark = await gw.mark();
    const r = await run(cargo, ['build'], { cwd: proj, env, timeoutMs: 120_000 });
    expect(r.code, r.output).not.toBe(0);
    expect(r.stderr).toMatch(/401|token|auth/i);
    expect(existsSync(path.join(proj, 'target', 'debug', 'app'))).toBe(false);
    expectAllRefused(await gw.requestsSince(mark));
  });

  it('the upstream saw only requests the gateway forwarded', () => expectOnlyForwarded(gw, upstream));
});
