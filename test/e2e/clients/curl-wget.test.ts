import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { clientSuite, expectAllRefused } from '../../helpers/client-suite.js';
import { clientEnv, freshHome, requireClient, run } from '../../helpers/clients.js';

/**
 * curl and wget, as scripts and Gradle-style HTTP clients use the gateway: Basic with the
 * project as the user, or a Bearer header. wget sends Basic credentials only after the 401
 * challenge, like Maven.
 */

const FILE = '/files/generic/acme/1.0.0/acme-1.0.0.txt';
const CONTENT = 'acme artifact 1.0.0\n';

let curl: string;
let wget: string;
const { gw } = clientSuite({
  label: 'curl',
  route: { prefix: '/files/', ecosystem: 'generic' },
  requireClients: () => {
    curl = requireClient('curl', 'apt-get install curl');
    wget = requireClient('wget', 'apt-get install wget');
  },
  // A directory upstream: the gateway serves the file from disk.
  upstream: async (root) => {
    const file = path.join(root, FILE.slice('/files/'.length));
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, CONTENT);
    return { url: root, close: () => {} };
  },
});

function workDir(label: string): { work: string; env: NodeJS.ProcessEnv } {
  const home = freshHome(label);
  return { work: home.dir('work'), env: clientEnv(home) };
}

describe('curl through the gateway', () => {
  it.each([
    { how: 'Basic (-u project:token)', args: (): string[] => ['-u', `scripts:${gw.token}`], project: 'scripts' },
    {
      how: 'Bearer (-H Authorization)',
      args: (): string[] => ['-H', `Authorization: Bearer ${gw.token}`],
      project: 'default',
    },
  ])('downloads with $how', async ({ args, project }) => {
    const { work, env } = workDir('curl-ok');
    const mark = await gw.mark();
    const r = await run(curl, ['-q', '-fsS', ...args(), '-o', 'out.txt', `${gw.url}${FILE}`], { cwd: work, env });
    expect(r.code, r.output).toBe(0);
    expect(readFileSync(path.join(work, 'out.txt'), 'utf8')).toBe(CONTENT);
    expect(await gw.requestsSince(mark)).toEqual([
      expect.objectContaining({ path: FILE, status: 200, project, tokenId: gw.tokenId }),
    ]);
  });

  it.each([
    { credential: 'a wrong token', args: (): string[] => ['-u', `scripts:${gw.wrongToken}`] },
    { credential: 'no token', args: (): string[] => [] },
  ])('is refused with $credential: 401, a challenge and a JSON error', async ({ args }) => {
    const { work, env } = workDir('curl-refused');
    const r = await run(curl, ['-q', '-sS', '-D', '-', '-o', 'body.json', ...args(), `${gw.url}${FILE}`], {
      cwd: work,
      env,
    });
    expect(r.code, r.output).toBe(0);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 401 /);
    expect(r.stdout).toMatch(/^www-authenticate: Basic realm="tollgate"/im);
    expect(JSON.parse(readFileSync(path.join(work, 'body.json'), 'utf8'))).toHaveProperty('error');
    const failed = await run(curl, ['-q', '-fsS', ...args(), '-o', 'out.txt', `${gw.url}${FILE}`], { cwd: work, env });
    expect(failed.code).toBe(22); // --fail: HTTP error
    expect(existsSync(path.join(work, 'out.txt'))).toBe(false);
  });
});

describe('wget through the gateway', () => {
  it('downloads with --user/--password (Basic, sent after the challenge)', async () => {
    const { work, env } = workDir('wget-ok');
    const mark = await gw.mark();
    const r = await run(
      wget,
      ['-q', '--user', 'scripts', '--password', gw.token, '-O', 'out.txt', `${gw.url}${FILE}`],
      { cwd: work, env },
    );
    expect(r.code, r.output).toBe(0);
    expect(readFileSync(path.join(work, 'out.txt'), 'utf8')).toBe(CONTENT);
    const log = await gw.requestsSince(mark);
    expect(
      log.map((l) => l.status),
      JSON.stringify(log),
    ).toEqual([401, 200]);
    expect(log[0]).toMatchObject({ authFailure: 'missing' });
    expect(log[1]).toMatchObject({ project: 'scripts', tokenId: gw.tokenId });
  });

  it('downloads with a Bearer --header', async () => {
    const { work, env } = workDir('wget-bearer');
    const r = await run(
      wget,
      ['-q', '--header', `Authorization: Bearer ${gw.token}`, '-O', 'out.txt', `${gw.url}${FILE}`],
      { cwd: work, env },
    );
    expect(r.code, r.output).toBe(0);
    expect(readFileSync(path.join(work, 'out.txt'), 'utf8')).toBe(CONTENT);
  });

  it.each([
    { credential: 'a wrong token', args: (): string[] => ['--user', 'scripts', '--password', gw.wrongToken], exit: 6 },
    { credential: 'no token', args: (): string[] => [], exit: 6 },
  ])('is refused with $credential (wget exits $exit: authentication failed)', async ({ args, exit }) => {
    const { work, env } = workDir('wget-refused');
    const mark = await gw.mark();
    const r = await run(wget, ['-q', ...args(), '-O', 'out.txt', `${gw.url}${FILE}`], { cwd: work, env });
    expect(r.code, r.output).toBe(exit);
    expectAllRefused(await gw.requestsSince(mark));
  });
});
