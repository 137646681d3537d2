import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SESSION_TTL_MS, loadConfig } from '../../src/config/index.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'tollgate-admin-config-'));

describe('admin settings', () => {
  it('default to a generated admin token, 8 h sessions and no OIDC', () => {
    const result = loadConfig({}, tmp());
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.admin).toEqual({
      token: undefined,
      tokenFile: undefined,
      publicUrl: undefined,
      sessionTtlMs: DEFAULT_SESSION_TTL_MS,
      oidc: undefined,
    });
    expect(DEFAULT_SESSION_TTL_MS).toBe(8 * 3600 * 1000);
  });

  it('read the admin token from TOLLGATE_ADMIN_TOKEN_FILE, trimmed', () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'admin.txt'), 'from-a-file-0123456789\n');
    const result = loadConfig({ TOLLGATE_ADMIN_TOKEN_FILE: 'admin.txt' }, dir);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.admin.token).toBe('from-a-file-0123456789');
    expect(result.config.admin.tokenFile).toBe(path.join(dir, 'admin.txt'));
  });

  it('parse OIDC settings and the admin claim as <claim>=<value>', () => {
    const result = loadConfig(
      {
        TOLLGATE_OIDC_ISSUER: 'https://idp.example.com',
        TOLLGATE_OIDC_AUDIENCE: 'tollgate',
        TOLLGATE_OIDC_JWKS_URL: 'https://idp.example.com/jwks',
        TOLLGATE_OIDC_ADMIN_CLAIM: 'groups=platform=admins',
        TOLLGATE_PUBLIC_ADMIN_URL: 'https://tollgate-admin.example.com/',
      },
      tmp(),
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.admin.oidc).toEqual({
      issuer: 'https://idp.example.com',
      audience: 'tollgate',
      jwksUrl: 'https://idp.example.com/jwks',
      adminClaim: { name: 'groups', value: 'platform=admins' },
    });
    expect(result.config.admin.publicUrl).toBe('https://tollgate-admin.example.com');
  });

  it('default the admin claim to roles=tollgate-admin', () => {
    const result = loadConfig(
      {
        TOLLGATE_OIDC_ISSUER: 'https://idp.example.com',
        TOLLGATE_OIDC_AUDIENCE: 'tollgate',
        TOLLGATE_OIDC_JWKS_URL: 'http://127.0.0.1:1/jwks',
      },
      tmp(),
    );
    expect(result.ok && result.config.admin.oidc?.adminClaim).toEqual({ name: 'roles', value: 'tollgate-admin' });
  });

  it('list every problem at once, never echoing the admin token', () => {
    const weak = 'short-secret';
    const result = loadConfig(
      {
        TOLLGATE_ADMIN_TOKEN: weak,
        TOLLGATE_OIDC_ISSUER: 'https://idp.example.com',
        TOLLGATE_OIDC_JWKS_URL: 'http://idp.example.com/jwks',
        TOLLGATE_OIDC_ADMIN_CLAIM: 'roles',
        TOLLGATE_PUBLIC_ADMIN_URL: 'https://admin.example.com/tollgate',
        TOLLGATE_SESSION_TTL_MS: '10',
      },
      tmp(),
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const text = result.problems.join('\n');
    expect(text).not.toContain(weak);
    expect(text).toMatch(/TOLLGATE_SESSION_TTL_MS: .*at least 1000 ms/);
    // Schema problems come first; fix the TTL and the rest are listed together.
    const again = loadConfig(
      {
        TOLLGATE_ADMIN_TOKEN: weak,
        TOLLGATE_OIDC_ISSUER: 'https://idp.example.com',
        TOLLGATE_OIDC_JWKS_URL: 'http://idp.example.com/jwks',
        TOLLGATE_OIDC_ADMIN_CLAIM: 'roles',
        TOLLGATE_PUBLIC_ADMIN_URL: 'https://admin.example.com/tollgate',
      },
      tmp(),
    );
    expect(again.ok).toBe(false);
    if (again.ok) return;
    expect(again.problems.join('\n')).not.toContain(weak);
    expect(again.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^TOLLGATE_ADMIN_TOKEN: the admin token must be at least 16 characters$/),
        expect.stringMatching(/^TOLLGATE_OIDC_AUDIENCE is required when OIDC sign-in is configured/),
        expect.stringMatching(/^TOLLGATE_OIDC_JWKS_URL: must be an https URL \(http only on loopback\)/),
        expect.stringMatching(/^TOLLGATE_OIDC_ADMIN_CLAIM: must be <claim>=<value>/),
        expect.stringMatching(/^TOLLGATE_PUBLIC_ADMIN_URL: must be an http\(s\) origin/),
      ]),
    );
    expect(again.problems.length).toBe(5);
  });

  it('refuse both TOLLGATE_ADMIN_TOKEN and TOLLGATE_ADMIN_TOKEN_FILE, an unreadable file and an empty one', () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'empty.txt'), '\n');
    const both = loadConfig({ TOLLGATE_ADMIN_TOKEN: 'x'.repeat(20), TOLLGATE_ADMIN_TOKEN_FILE: 'a.txt' }, dir);
    expect(!both.ok && both.problems).toEqual([expect.stringMatching(/set one of them, not both/)]);
    const missing = loadConfig({ TOLLGATE_ADMIN_TOKEN_FILE: 'nope.txt' }, dir);
    expect(!missing.ok && missing.problems).toEqual([
      expect.stringMatching(/^TOLLGATE_ADMIN_TOKEN_FILE: cannot read file "nope.txt" \(ENOENT\)/),
    ]);
    const empty = loadConfig({ TOLLGATE_ADMIN_TOKEN_FILE: 'empty.txt' }, dir);
    expect(!empty.ok && empty.problems).toEqual([expect.stringMatching(/is empty/)]);
    const spaced = loadConfig({ TOLLGATE_ADMIN_TOKEN: 'has a space in it, quite long' }, dir);
    expect(!spaced.ok && spaced.problems).toEqual([expect.stringMatching(/printable ASCII without spaces/)]);
  });
});
