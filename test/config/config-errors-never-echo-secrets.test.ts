import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV_NAMES, loadConfig, SETTINGS, type Env, type Setting } from '../../src/config/index.js';

/**
 * A configuration error never echoes a secret: every setting declared secret (and every secret
 * field of a route) is given bad values carrying a recognisable secret string, in the env and in
 * the config file, alone and next to an unrelated bad setting (the other reporting path), and no
 * problem line may contain that string. A URL may be shown as scheme://host[:port] only.
 */

const SECRET = 'Sekr3t-Val-9xQ';

/** Bad values for each secret setting, by settings key (routes: by field). */
const BAD: Record<string, unknown[]> = {
  metricsToken: [`my metrics ${SECRET} value`, SECRET, `${SECRET}\u0007bell-and-long-enough`],
  adminToken: [`short ${SECRET}`, SECRET, `${SECRET}\ttab-and-long-enough`],
  redisUrl: [
    `http://:${SECRET}@x/`,
    `redis://:${SECRET}@[bad/0`,
    `redis-sentinel://:${SECRET}@h1/name`,
    `redis-cluster://u:${SECRET}@/`,
    `http://x/${SECRET}?password=${SECRET}`,
    `redis-sentinel://h1:1/`,
    SECRET,
  ],
  activityWebhookUrl: [
    `http://hooks.example.com/services/${SECRET}?token=${SECRET}`,
    `https://u:${SECRET}@hooks.example.com/`,
    `ftp://hooks.example.com/${SECRET}`,
    `not a url ${SECRET}`,
    `http://hooks.example.com/a@${SECRET}:x`,
  ],
  oidcJwksUrl: [
    `http://idp.example.com/${SECRET}/jwks?k=${SECRET}`,
    `https://u:${SECRET}@idp.example.com/jwks`,
    `jwks ${SECRET}`,
  ],
  secretScanningKeysUrl: [
    `http://keys.example.com/${SECRET}?k=${SECRET}`,
    `https://u:${SECRET}@keys.example.com/keys`,
    `keys ${SECRET}`,
  ],
  upstream: [
    `ftp://u:${SECRET}@x/${SECRET}`,
    `http://u:${SECRET}@127.0.0.1:1/`,
    `http://127.0.0.1:1/?token=${SECRET}`,
    `http://127.0.0.1:1/#${SECRET}`,
    `http://[${SECRET}/`,
  ],
  publicUrl: [
    `https://u:${SECRET}@artifacts.example.com/`,
    `https://artifacts.example.com/${SECRET}`,
    `https://a.example.com/?t=${SECRET}`,
  ],
  publicAdminUrl: [
    `https://u:${SECRET}@admin.example.com/`,
    `https://admin.example.com/${SECRET}`,
    `https://a.example.com/?t=${SECRET}`,
  ],
  'routes[].upstream': [
    `ftp://u:${SECRET}@x/${SECRET}`,
    `http://u:${SECRET}@127.0.0.1:1/`,
    `http://127.0.0.1:1/x?t=${SECRET}`,
    42,
  ],
  'routes[].upstreamAuth': [
    `Bearer ${SECRET}`,
    { type: 'bearer', token: SECRET, extra: 1 },
    { type: 'basic', password: SECRET },
    { type: 'header', name: '', value: SECRET },
    { type: 'bearer', token: [SECRET] },
  ],
  'routes[].rewriteFrom': [[`ftp://u:${SECRET}@x/${SECRET}`], [`${SECRET}`], `https://u:${SECRET}@x/`],
};

const secretKeys = (): string[] =>
  Object.entries(SETTINGS as Record<string, Setting>).flatMap(([key, setting]) => [
    ...(setting.secret ? [key] : []),
    ...Object.entries(setting.items ?? {})
      .filter(([, field]) => field.secret)
      .map(([field]) => `${key}[].${field}`),
  ]);

/** Settings a bad value needs beside it to be checked at all (OIDC is off unless its settings are given). */
const NEEDS: Record<string, Record<string, string>> = {
  oidcJwksUrl: { oidcIssuer: 'https://idp.example.com', oidcAudience: 'tollgate' },
};

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'tollgate-config-secrets-'));

/** `named`: a problem line must name where the bad value was given, else the value was never checked. */
function expectNoSecret(env: Env, cwd: string, named?: string): void {
  const result = loadConfig(env, cwd);
  expect(result.ok, 'the value must be refused, else this case tests nothing').toBe(false);
  if (result.ok) return;
  for (const line of result.problems) expect(line).not.toContain(SECRET);
  if (named !== undefined) expect(result.problems).toContainEqual(expect.stringContaining(named));
}

function envName(key: string): string {
  return ENV_NAMES[key]!;
}

/** The setting's file key: its key, or its dotted `file` path (`secretScanning.publicKeysUrl`). */
function fileKey(key: string): string {
  return (SETTINGS as Record<string, Setting>)[key]!.file ?? key;
}

/** A value as the config file holds it: at the setting's file key, in its object for a dotted one. */
function inFile(key: string, value: unknown): Record<string, unknown> {
  const [name, field] = fileKey(key).split('.') as [string, string | undefined];
  return { [name]: field === undefined ? value : { [field]: value } };
}

const cases = Object.entries(BAD).flatMap(([key, values]) => values.map((value, i) => ({ key, value, n: i + 1 })));
const withBadPort = [{ alone: true }, { alone: false }];

describe('configuration errors never echo a secret', () => {
  it('has bad values for every setting declared secret', () => {
    expect(Object.keys(BAD).sort()).toEqual(secretKeys().sort());
  });

  describe.each(withBadPort)('alone: $alone', ({ alone }) => {
    const other = alone ? {} : { TOLLGATE_PORT: 'abc' };

    it.each(cases.filter((c) => !c.key.startsWith('routes') && typeof c.value === 'string'))(
      'env $key, bad value $n',
      ({ key, value }) => {
        const needs = Object.fromEntries(Object.entries(NEEDS[key] ?? {}).map(([k, v]) => [envName(k), v]));
        expectNoSecret(
          { ...needs, ...other, [envName(key)]: value as string },
          tmp(),
          alone ? envName(key) : undefined,
        );
      },
    );

    it.each(cases)('config file $key, bad value $n', ({ key, value }) => {
      const dir = tmp();
      const routeField = /^routes\[\]\.(.+)$/.exec(key)?.[1];
      const settings = routeField
        ? { routes: [{ prefix: '/', upstream: dir, [routeField]: value }] }
        : { ...NEEDS[key], ...inFile(key, value) };
      const file = path.join(dir, 'tollgate.json');
      writeFileSync(file, JSON.stringify(settings));
      expectNoSecret(
        { ...other, TOLLGATE_CONFIG: file },
        dir,
        alone ? (routeField ? 'routes[0]' : `${file}: ${fileKey(key)}`) : undefined,
      );
    });
  });

  it.each([`short ${SECRET}`, SECRET, `${SECRET} with a space, long enough`])(
    'the content of TOLLGATE_ADMIN_TOKEN_FILE (%#)',
    (content) => {
      const dir = tmp();
      writeFileSync(path.join(dir, 'admin-token'), `${content}\n`);
      expectNoSecret({ TOLLGATE_ADMIN_TOKEN_FILE: 'admin-token' }, dir);
    },
  );

  it('a config file that is not valid JSON, around a secret', () => {
    const dir = tmp();
    const file = path.join(dir, 'tollgate.json');
    writeFileSync(file, `{"adminToken": "${SECRET}-long-enough" "metricsToken": "${SECRET}-long-enough"}`);
    expectNoSecret({ TOLLGATE_CONFIG: file }, dir);
  });

  it.each([
    { secretScanningKeysUrl: `https://u:${SECRET}@keys.example.com/` },
    { secretScanning: `https://keys.example.com/${SECRET}` },
    { secretScanning: { publicKeysUrl: `https://keys.example.com/${SECRET}`, extra: 1 } },
    { secretScanning: { publicKeysFile: 'keys.json', publicKeysUrl: `https://u:${SECRET}@keys.example.com/` } },
  ])('the secretScanning object misshapen around a secret URL (%#)', (settings) => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'keys.json'), '{"public_keys": []}');
    const file = path.join(dir, 'tollgate.json');
    writeFileSync(file, JSON.stringify(settings));
    expectNoSecret({ TOLLGATE_CONFIG: file }, dir, `${file}: secretScanning`);
  });

  it('a route entry that is a string, not an object', () => {
    const dir = tmp();
    const file = path.join(dir, 'tollgate.json');
    writeFileSync(file, JSON.stringify({ routes: [`http://u:${SECRET}@127.0.0.1:1/`] }));
    expectNoSecret({ TOLLGATE_CONFIG: file }, dir);
  });
});
