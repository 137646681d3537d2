import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken, generateTokenId, hashToken } from '../../src/tokens/format.js';
import { createSqliteTokenStore } from '../../src/tokens/sqlite-store.js';
import type { CiIdentity } from '../../src/tokens/store.js';
import { createTokenWithCli, runCli, tempDir } from '../helpers/process.js';

/**
 * `tollgate token list` with tokens issued to CI jobs (issue 22): by default the tokens admins
 * made, with the live CI-issued ones counted per provider on stderr; --ci [--provider NAME] lists
 * those, each with its job's identity where the creator would be; --all lists both.
 */

const HOUR_MS = 3_600_000;

interface ListedToken {
  id: string;
  name: string;
  state: string;
  createdBy: string;
  ci: CiIdentity | null;
}

describe('tollgate token list and CI-issued tokens', () => {
  let dataDir: string;
  let env: Record<string, string>;
  let adminMade: string;

  const list = async (...args: string[]) => {
    const r = await runCli(['token', 'list', ...args], env);
    expect(r.code, r.stderr).toBe(0);
    return r;
  };
  const listJson = async (...args: string[]) => JSON.parse((await list(...args, '--json')).stdout) as ListedToken[];

  beforeAll(async () => {
    dataDir = tempDir();
    env = { TOLLGATE_DATA_DIR: dataDir };
    adminMade = (await createTokenWithCli(env, 'release-signing', 'production')).id;
    // As the exchange issues them: through the store's insert, with a CI identity.
    const store = createSqliteTokenStore({ dataDir });
    const issue = (ci: CiIdentity, expiresAt = Date.now() + HOUR_MS) =>
      store.insert({
        id: generateTokenId(),
        name: `ci:${ci.provider}:${ci.repository}#${ci.runId}`,
        type: 'production',
        hash: hashToken(generateToken('production')),
        createdAt: Date.now(),
        createdBy: `ci:${ci.provider}`,
        expiresAt,
        ci,
      });
    try {
      for (const run of ['4241', '4242']) {
        await issue({
          provider: 'github',
          subject: 'repo:acme/payments:ref:refs/heads/main',
          repository: 'acme/payments',
          ref: 'refs/heads/main',
          runId: run,
        });
      }
      await issue({
        provider: 'gitlab',
        subject: 'project_path:acme/web',
        repository: 'acme/web',
        ref: 'refs/heads/feature',
        runId: '77',
      });
      await issue(
        { provider: 'gitlab', subject: 'project_path:acme/old', repository: 'acme/old', runId: '1' },
        Date.now() - 1,
      );
    } finally {
      await store.close();
    }
  });
  afterAll(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('lists the tokens admins made by default, and counts the live CI-issued ones per provider on stderr', async () => {
    const json = await listJson();
    expect(json.map((t) => t.id)).toEqual([adminMade]);
    const table = await list();
    expect(table.stdout).not.toContain('ci:github');
    expect(table.stdout.split('\n')[1]).toMatch(/^tok_\w+ +release-signing +production +active/);
    // The expired gitlab token is not counted.
    expect(table.stderr).toBe(
      'Live tokens issued to CI jobs (not listed): github 2, gitlab 1; see them with --ci [--provider NAME].\n',
    );
  });

  it('lists CI-issued tokens with --ci, each with its job where the creator would be', async () => {
    const json = await listJson('--ci');
    expect(json.map((t) => t.name).sort()).toEqual([
      'ci:github:acme/payments#4241',
      'ci:github:acme/payments#4242',
      'ci:gitlab:acme/old#1',
      'ci:gitlab:acme/web#77',
    ]);
    expect(json.find((t) => t.name === 'ci:gitlab:acme/old#1')).toMatchObject({ state: 'expired' });
    expect(json.find((t) => t.name === 'ci:gitlab:acme/web#77')!.ci).toMatchObject({
      provider: 'gitlab',
      repository: 'acme/web',
      ref: 'refs/heads/feature',
    });
    const table = await list('--ci');
    const line = table.stdout.split('\n').find((l) => l.includes('ci:github:acme/payments#4242'))!;
    expect(line).toMatch(/ active .* ci github acme\/payments refs\/heads\/main run 4242 /);
    expect(table.stdout).not.toContain('release-signing');
    expect(table.stderr).toBe('');
  });

  it("lists one provider's with --provider, and everything with --all", async () => {
    expect((await listJson('--provider', 'github')).map((t) => t.ci?.runId).sort()).toEqual(['4241', '4242']);
    expect((await listJson('--ci', '--provider', 'gitlab')).map((t) => t.ci?.repository).sort()).toEqual([
      'acme/old',
      'acme/web',
    ]);
    expect(await listJson('--provider', 'circleci')).toEqual([]);
    const all = await listJson('--all');
    expect(all).toHaveLength(5);
    expect(all.filter((t) => t.ci === null).map((t) => t.id)).toEqual([adminMade]);
  });

  it.each([
    { what: '--ci with --all', args: ['--ci', '--all'], says: /--ci or --all, not both/ },
    {
      what: 'a provider that is no provider name',
      args: ['--provider', 'Git Hub'],
      says: /provider must be a CI provider name/,
    },
    { what: 'an unknown option', args: ['--repository', 'acme/web'], says: /repository/ },
  ])('refuses $what with exit code 2 and a clear message', async ({ args, says }) => {
    const r = await runCli(['token', 'list', ...args], env);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(says);
    expect(r.stderr).not.toContain('    at ');
  });
});
