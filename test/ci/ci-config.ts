import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config, type Env } from '../../src/config/index.js';

/** Routes every CI config test file has: restrictions name them. */
const ROUTES = [
  { prefix: '/npm/', upstream: 'http://127.0.0.1:1/', ecosystem: 'npm' },
  { prefix: '/pypi/', upstream: 'http://127.0.0.1:2/', ecosystem: 'pypi' },
];

/** loadConfig on a config file holding these trust policies (and two routes), with the env given. */
export function loadCiConfig(
  ciProviders: unknown,
  env: Env = {},
  extra: Record<string, unknown> = {},
): ReturnType<typeof loadConfig> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-ci-config-'));
  const file = path.join(dir, 'tollgate.json');
  writeFileSync(file, JSON.stringify({ routes: ROUTES, ciProviders, ...extra }));
  return loadConfig({ TOLLGATE_CONFIG: file, ...env }, dir);
}

/** The checked config, or a thrown error listing the problems. */
export function ciConfig(ciProviders: unknown, env: Env = {}): Readonly<Config> {
  const result = loadCiConfig(ciProviders, env);
  if (!result.ok) throw new Error(`config refused:\n${result.problems.join('\n')}`);
  return result.config;
}

/** The problems of a config that must be refused. */
export function ciProblems(ciProviders: unknown, env: Env = {}, extra: Record<string, unknown> = {}): string[] {
  const result = loadCiConfig(ciProviders, env, extra);
  if (result.ok) throw new Error('the config was accepted');
  return result.problems;
}

/** A GitHub-style policy for an issuer on loopback. */
export function githubPolicy(issuer: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'github',
    kind: 'github',
    issuer,
    audience: 'https://artifacts.example.com',
    allow: { repository_owner_id: '4200' },
    production: { ref: 'refs/heads/main' },
    project: 'repository',
    tokenTtl: '1h',
    ...overrides,
  };
}
