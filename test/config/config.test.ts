import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, DEFAULT_UPSTREAM_DIR } from '../../src/config/index.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'tollgate-config-'));

describe('loadConfig', () => {
  it('runs on embedded defaults with nothing set', () => {
    const result = loadConfig({}, tmp());
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const { config } = result;
    expect(config.port).toBe(8080);
    expect(config.adminHost).toBe('127.0.0.1');
    expect(config.adminPort).toBe(9090);
    expect(config.redis).toBeUndefined();
    expect(config.routes).toEqual([
      expect.objectContaining({ prefix: '/', upstream: { kind: 'dir', root: DEFAULT_UPSTREAM_DIR } }),
    ]);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('lists every problem at once, one line each, naming the key and the rule', () => {
    const result = loadConfig(
      {
        TOLLGATE_PORT: 'abc',
        TOLLGATE_UPSTREAM: 'ftp://x',
        TOLLGATE_LOG_LEVEL: 'loud',
        TOLLGATE_REDIS_URL: 'http://x',
        TOLLGATE_CACHE_TTL_MS: '-1',
        TOLLGATE_TRUSTED_PROXIES: 'not-an-ip',
      },
      tmp(),
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const text = result.problems.join('\n');
    expect(text).toMatch(/TOLLGATE_PORT: .*port number.*got "abc"/);
    expect(text).toMatch(/TOLLGATE_LOG_LEVEL: .*one of .*got "loud"/);
    expect(text).toMatch(/TOLLGATE_REDIS_URL: .*redis:\/\//);
    expect(text).toMatch(/TOLLGATE_CACHE_TTL_MS: .*at least/);
    expect(result.problems.length).toBeGreaterThanOrEqual(4);
  });

  it('reports upstream and trusted-proxy problems together', () => {
    const result = loadConfig({ TOLLGATE_UPSTREAM: 'ftp://x', TOLLGATE_TRUSTED_PROXIES: 'not-an-ip' }, tmp());
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^TOLLGATE_UPSTREAM must be an http\(s\) URL or a directory, got "ftp:\/\/x"/),
        expect.stringMatching(/^TOLLGATE_TRUSTED_PROXIES: /),
      ]),
    );
  });

  it('reads routes from the config file, longest prefix first, directories relative to the file', () => {
    const dir = tmp();
    const file = path.join(dir, 'tollgate.json');
    writeFileSync(
      file,
      JSON.stringify({
        routes: [
          { prefix: '/', upstream: 'http://127.0.0.1:1/base', ecosystem: 'generic' },
          {
            prefix: '/npm',
            upstream: 'https://127.0.0.1:2/',
            ecosystem: 'npm',
            allowPost: ['/-/npm/v1/security/'],
            upstreamAuth: { type: 'bearer', token: 'upstream-secret' },
          },
          { prefix: '/files/', upstream: '.', ecosystem: 'generic' },
        ],
        port: 8181,
      }),
    );
    const result = loadConfig({ TOLLGATE_CONFIG: file, TOLLGATE_PORT: '8282' }, tmp());
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const { routes, port } = result.config;
    expect(port).toBe(8282); // env wins over the file
    expect(routes.map((r) => r.prefix)).toEqual(['/files/', '/npm/', '/']);
    expect(routes[0]!.upstream).toEqual({ kind: 'dir', root: dir });
    expect(routes[1]!.allowPost).toEqual(['/npm/-/npm/v1/security/']);
    expect(routes[1]!.upstreamAuthHeader).toEqual({ name: 'authorization', value: 'Bearer upstream-secret' });
    const root = routes[2]!.upstream;
    expect(root.kind === 'http' && root.url.pathname).toBe('/base/');
  });

  it('names the route and field of a bad config file entry', () => {
    const dir = tmp();
    const file = path.join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({
        routes: [{ prefix: 'npm', upstream: 'http://x', ecosystem: 'cobol' }],
        colour: 'blue',
      }),
    );
    const result = loadConfig({ TOLLGATE_CONFIG: file }, dir);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const text = result.problems.join('\n');
    expect(text).toMatch(/routes\[0\].*prefix/);
    expect(text).toMatch(/ecosystem must be one of/);
    expect(text).toMatch(/unknown setting.*colour/);
  });

  it('refuses an unreadable config file and a TLS key without its certificate', () => {
    const result = loadConfig({ TOLLGATE_CONFIG: '/nonexistent/tollgate.json', TOLLGATE_TLS_KEY: 'key.pem' }, tmp());
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.join('\n')).toMatch(/cannot be read as JSON/);
    expect(result.problems.join('\n')).toMatch(/TLS_CERT and TOLLGATE_TLS_KEY must be set together/);
  });

  it('refuses credentials in an upstream URL (they belong in upstreamAuth)', () => {
    const result = loadConfig({ TOLLGATE_UPSTREAM: 'http://user:secret@127.0.0.1:1/' }, tmp());
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems[0]).toMatch(/upstreamAuth/);
    expect(result.problems[0]).not.toContain('secret');
  });
});

describe('config/tollgate.example.json', () => {
  it('is a valid config file', async () => {
    const { fileURLToPath } = await import('node:url');
    const file = fileURLToPath(new URL('../../config/tollgate.example.json', import.meta.url));
    const result = loadConfig({ TOLLGATE_CONFIG: file });
    expect(result.ok ? [] : result.problems).toEqual([]);
  });
});

describe('loadConfig, more than one problem', () => {
  it('reports a bad TOLLGATE_UPSTREAM in the same run as bad settings', () => {
    const result = loadConfig({ TOLLGATE_UPSTREAM: 'ftp://x', TOLLGATE_PORT: 'abc' }, tmp());
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^TOLLGATE_PORT: /),
        expect.stringMatching(/^TOLLGATE_UPSTREAM must be an http\(s\) URL or a directory/),
      ]),
    );
  });

  it('refuses TOLLGATE_UPSTREAM together with config-file routes (ambiguous)', () => {
    const dir = tmp();
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ routes: [{ prefix: '/', upstream: '.' }] }));
    const result = loadConfig({ TOLLGATE_CONFIG: file, TOLLGATE_UPSTREAM: dir }, dir);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.join('\n')).toMatch(/both set/);
  });
});

describe("the config file's secretScanning object", () => {
  /** A config file holding `settings`, in a fresh directory with a readable keys.json. */
  function withFile(settings: unknown): { dir: string; file: string } {
    const dir = tmp();
    writeFileSync(path.join(dir, 'keys.json'), '{"public_keys": []}');
    const file = path.join(dir, 'tollgate.json');
    writeFileSync(file, JSON.stringify(settings));
    return { dir, file };
  }

  it('reads the public keys file from secretScanning.publicKeysFile', () => {
    const { dir, file } = withFile({ secretScanning: { publicKeysFile: 'keys.json' } });
    const result = loadConfig({ TOLLGATE_CONFIG: file }, dir);
    expect(result.ok ? result.config.secretScanning : result.problems).toEqual({
      keysFile: path.join(dir, 'keys.json'),
    });
  });

  it('reads the public keys URL from secretScanning.publicKeysUrl', () => {
    const { dir, file } = withFile({ secretScanning: { publicKeysUrl: 'https://keys.example.com/meta/keys' } });
    const result = loadConfig({ TOLLGATE_CONFIG: file }, dir);
    expect(result.ok ? result.config.secretScanning : result.problems).toEqual({
      keysUrl: 'https://keys.example.com/meta/keys',
    });
  });

  it('lets the environment win over the file, field by field', () => {
    const { dir, file } = withFile({ secretScanning: { publicKeysFile: 'missing.json' } });
    const result = loadConfig({ TOLLGATE_CONFIG: file, TOLLGATE_SECRET_SCANNING_KEYS_FILE: 'keys.json' }, dir);
    expect(result.ok ? result.config.secretScanning : result.problems).toEqual({
      keysFile: path.join(dir, 'keys.json'),
    });
  });

  it.each([
    {
      why: 'an unknown field',
      settings: { secretScanning: { publicKeysFile: 'keys.json', publicKeyUrl: 'https://keys.example.com/' } },
      problem:
        /tollgate\.json: secretScanning\.publicKeyUrl: unknown field \(secretScanning holds publicKeysFile or publicKeysUrl\)$/,
    },
    {
      why: 'both fields',
      settings: { secretScanning: { publicKeysFile: 'keys.json', publicKeysUrl: 'https://keys.example.com/' } },
      problem:
        /tollgate\.json: secretScanning\.publicKeysFile and .*tollgate\.json: secretScanning\.publicKeysUrl: set one of them, not both$/,
    },
    {
      why: 'an empty object',
      settings: { secretScanning: {} },
      problem: /tollgate\.json: secretScanning: must be an object with publicKeysFile or publicKeysUrl$/,
    },
    {
      why: 'a string instead of the object',
      settings: { secretScanning: 'keys.json' },
      problem: /tollgate\.json: secretScanning: must be an object with publicKeysFile or publicKeysUrl$/,
    },
    {
      why: 'a field of the wrong type',
      settings: { secretScanning: { publicKeysFile: 42 } },
      problem: /tollgate\.json: secretScanning\.publicKeysFile: .*string/,
    },
    {
      why: 'an http URL off loopback, shown as scheme://host only',
      settings: { secretScanning: { publicKeysUrl: 'http://keys.example.com/path?k=v' } },
      problem:
        /tollgate\.json: secretScanning\.publicKeysUrl: must be an https URL .*got "http:\/\/keys\.example\.com\/…"$/,
    },
    {
      why: 'the old flat key secretScanningKeysFile',
      settings: { secretScanningKeysFile: 'keys.json' },
      problem:
        /tollgate\.json: secretScanningKeysFile: not a config file key; write "secretScanning": \{"publicKeysFile": \.\.\.\} instead$/,
    },
    {
      why: 'the old flat key secretScanningKeysUrl',
      settings: { secretScanningKeysUrl: 'https://keys.example.com/' },
      problem:
        /tollgate\.json: secretScanningKeysUrl: not a config file key; write "secretScanning": \{"publicKeysUrl": \.\.\.\} instead$/,
    },
  ])('refuses $why, naming the file key', ({ settings, problem }) => {
    const { dir, file } = withFile(settings);
    const result = loadConfig({ TOLLGATE_CONFIG: file }, dir);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toEqual([expect.stringMatching(problem)]);
  });
});
