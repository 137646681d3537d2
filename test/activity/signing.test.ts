import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.js';
import {
  ACTIVITY_JWS_TYP,
  generateSigningKey,
  loadSigningKeys,
  rotateSigningKeys,
  SIGNING_KEY_FILE_NAME,
  type PrivateJWK,
} from '../../src/activity/signing.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const encode = (s: string) => new TextEncoder().encode(s);

let root = '';
beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'tollgate-signing-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});
let dirs = 0;
const freshDir = () => path.join(root, `d${++dirs}`);
/** The key file as stored: a JWK Set of private keys. */
const readKeyFile = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as { keys: PrivateJWK[] };

async function expectConfigError(promise: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  expect((err as GatewayError).code).toBe('TOLLGATE_ERR_CONFIG_INVALID');
  expect((err as GatewayError).message).toMatch(message);
}

describe('loadSigningKeys', () => {
  it('generates <dataDir>/signing-keys.json with mode 0600 on first start, and reuses it after', async () => {
    const dataDir = freshDir();
    const first = await loadSigningKeys({ dataDir });
    const file = path.join(dataDir, SIGNING_KEY_FILE_NAME);
    expect(first.file).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = readKeyFile(file);
    expect(stored.keys).toHaveLength(1);
    expect(stored.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: first.signer.kid });
    expect(typeof stored.keys[0]?.d).toBe('string');

    const again = await loadSigningKeys({ dataDir });
    expect(again.signer.kid).toBe(first.signer.kid);
    expect(readFileSync(file, 'utf8')).toBe(JSON.stringify(stored, null, 2) + '\n');
  });

  it('publishes only public parts in the JWKS', async () => {
    const keys = await loadSigningKeys({ dataDir: freshDir() });
    const jwks = keys.jwks();
    expect(jwks.keys).toHaveLength(1);
    expect(Object.keys(jwks.keys[0]!).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    expect(JSON.stringify(jwks)).not.toContain('"d"');
    // A caller mutating its copy does not change what is published.
    (jwks.keys[0] as unknown as Record<string, unknown>).d = 'x';
    expect(keys.jwks().keys[0]).not.toHaveProperty('d');
  });

  it('signs a JWS (ES256, kid, typ) that verifies against the JWKS', async () => {
    const keys = await loadSigningKeys({ dataDir: freshDir() });
    const jws = await keys.signer.sign(encode('{"hello":1}'));
    expect(decodeProtectedHeader(jws)).toEqual({ alg: 'ES256', kid: keys.signer.kid, typ: ACTIVITY_JWS_TYP });
    const { payload } = await compactVerify(jws, createLocalJWKSet(keys.jwks()));
    expect(new TextDecoder().decode(payload)).toBe('{"hello":1}');
  });

  it('fails verification of a tampered payload or signature', async () => {
    const keys = await loadSigningKeys({ dataDir: freshDir() });
    const jwks = createLocalJWKSet(keys.jwks());
    const [header, , signature] = (await keys.signer.sign(encode('{"bytes":10}'))).split('.') as [
      string,
      string,
      string,
    ];
    const forgedPayload = `${header}.${Buffer.from('{"bytes":0}').toString('base64url')}.${signature}`;
    await expect(compactVerify(forgedPayload, jwks)).rejects.toThrow();
    const other = await loadSigningKeys({ dataDir: freshDir() });
    const foreign = await other.signer.sign(encode('{"bytes":10}'));
    await expect(compactVerify(foreign, jwks)).rejects.toThrow();
  });

  it('reads TOLLGATE_SIGNING_KEY_FILE as given and never writes it or the data dir', async () => {
    const dir = freshDir();
    mkdirSync(dir);
    const keyFile = path.join(dir, 'secret.json');
    const key = await generateSigningKey();
    writeFileSync(keyFile, JSON.stringify({ keys: [key] }), { mode: 0o640 });
    const dataDir = freshDir();
    const keys = await loadSigningKeys({ keyFile, dataDir });
    expect(keys.signer.kid).toBe(key.kid);
    expect(keys.file).toBe(keyFile);
    expect(existsSync(dataDir)).toBe(false);
    expect(statSync(keyFile).mode & 0o777).toBe(0o640);
  });

  it('refuses a missing key file instead of generating one', async () => {
    const keyFile = path.join(freshDir(), 'absent.json');
    await expectConfigError(loadSigningKeys({ keyFile, dataDir: freshDir() }), /cannot read \(ENOENT\)/);
    expect(existsSync(keyFile)).toBe(false);
  });

  it.each([
    ['not JSON', '{"keys":', /not valid JSON/],
    ['no keys', '{"keys":[]}', /at least one key/],
    ['not a set', '[]', /JWK Set/],
    ['a public key only', 'PUBLIC', /private keys/],
    ['another curve', 'P384', /EC P-256/],
    ['another alg', 'RS256', /alg must be ES256/],
    ['no kid', 'NOKID', /kid must be/],
    ['a duplicate kid', 'DUP', /appears twice/],
    ['halves that do not belong together', 'MISMATCH', /not a usable ES256 key pair/],
  ])('refuses a key file with %s', async (_, content, message) => {
    const a = await generateSigningKey();
    const b = await generateSigningKey();
    const variants: Record<string, unknown> = {
      PUBLIC: { keys: [{ ...a, d: undefined }] },
      P384: { keys: [{ ...a, crv: 'P-384' }] },
      RS256: { keys: [{ ...a, alg: 'RS256' }] },
      NOKID: { keys: [{ ...a, kid: undefined }] },
      DUP: { keys: [a, { ...b, kid: a.kid }] },
      MISMATCH: { keys: [{ ...a, d: b.d }] },
    };
    const dir = freshDir();
    mkdirSync(dir);
    const keyFile = path.join(dir, 'keys.json');
    writeFileSync(keyFile, content in variants ? JSON.stringify(variants[content]) : content);
    await expectConfigError(loadSigningKeys({ keyFile, dataDir: dir }), message);
  });

  it('refuses a corrupt generated file rather than replacing the key', async () => {
    const dataDir = freshDir();
    mkdirSync(dataDir);
    const file = path.join(dataDir, SIGNING_KEY_FILE_NAME);
    writeFileSync(file, '');
    await expectConfigError(loadSigningKeys({ dataDir }), /not valid JSON/);
    expect(readFileSync(file, 'utf8')).toBe('');
  });

  it('ends with ONE key when several loads race on an empty data dir (one process)', async () => {
    const dataDir = freshDir();
    const loaded = await Promise.all(Array.from({ length: 8 }, () => loadSigningKeys({ dataDir })));
    const kids = new Set(loaded.map((k) => k.signer.kid));
    expect(kids.size).toBe(1);
    const stored = readKeyFile(path.join(dataDir, SIGNING_KEY_FILE_NAME));
    expect(stored.keys.map((k: { kid: string }) => k.kid)).toEqual([...kids]);
    expect(readdirSync(dataDir)).toEqual([SIGNING_KEY_FILE_NAME]); // no temp file left behind
  });

  it('ends with ONE key when several processes start together on an empty data dir', async () => {
    const build = freshDir();
    mkdirSync(build);
    writeFileSync(path.join(build, 'package.json'), '{"type":"module"}');
    symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(build, 'node_modules'));
    for (const file of ['src/errors.ts', 'src/private-file.ts', 'src/activity/signing.ts']) {
      const { outputText } = ts.transpileModule(readFileSync(path.join(REPO_ROOT, file), 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
        fileName: file,
      });
      mkdirSync(path.dirname(path.join(build, file)), { recursive: true });
      writeFileSync(path.join(build, file.replace(/\.ts$/, '.js')), outputText);
    }
    const script = path.join(build, 'load.mjs');
    writeFileSync(
      script,
      `
import { once } from 'node:events';
import { loadSigningKeys } from './src/activity/signing.js';
process.stdout.write('ready\\n');
await once(process.stdin, 'data');
const keys = await loadSigningKeys({ dataDir: process.argv[2] });
process.stdout.write('kid=' + keys.signer.kid + '\\n');
process.stdin.destroy();
`,
    );
    const dataDir = freshDir();
    const children = Array.from({ length: 4 }, () => {
      const proc = spawn(process.execPath, [script, dataDir], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      let onReady: () => void = () => {};
      const ready = new Promise<void>((resolve) => {
        onReady = resolve;
      });
      proc.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('ready\n')) onReady();
      });
      proc.stderr.on('data', (c: Buffer) => {
        err += c.toString();
      });
      const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        proc.on('exit', (code) => {
          onReady();
          resolve({ code, out, err });
        });
      });
      return { proc, ready, done };
    });
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.proc.stdin.write('go\n');
    const results = await Promise.all(children.map((c) => c.done));
    const kids = results.map((r) => {
      expect(r.code, r.err).toBe(0);
      return /kid=(\S+)/.exec(r.out)?.[1];
    });
    expect(new Set(kids).size).toBe(1);
    const stored = readKeyFile(path.join(dataDir, SIGNING_KEY_FILE_NAME));
    expect(stored.keys.map((k: { kid: string }) => k.kid)).toEqual([kids[0]]);
    expect(statSync(path.join(dataDir, SIGNING_KEY_FILE_NAME)).mode & 0o777).toBe(0o600);
  });
});

describe('rotateSigningKeys', () => {
  it('puts a new signing key first and keeps the old kid published and verifiable', async () => {
    const dataDir = freshDir();
    const before = await loadSigningKeys({ dataDir });
    const oldJws = await before.signer.sign(encode('{"old":true}'));

    const rotation = await rotateSigningKeys(before.file);
    expect(rotation.retired).toEqual([before.signer.kid]);
    expect(rotation.kid).not.toBe(before.signer.kid);
    expect(statSync(before.file).mode & 0o777).toBe(0o600);

    const after = await loadSigningKeys({ dataDir });
    expect(after.signer.kid).toBe(rotation.kid);
    expect(after.jwks().keys.map((k) => k.kid)).toEqual([rotation.kid, before.signer.kid]);
    const jwks = createLocalJWKSet(after.jwks());
    // Signed before the rotation (or by an instance not restarted yet): still verifies.
    expect((await compactVerify(oldJws, jwks)).protectedHeader.kid).toBe(before.signer.kid);
    const newJws = await after.signer.sign(encode('{"new":true}'));
    expect((await compactVerify(newJws, jwks)).protectedHeader.kid).toBe(rotation.kid);

    const second = await rotateSigningKeys(before.file);
    expect(second.retired).toEqual([rotation.kid, before.signer.kid]);
    expect(readdirSync(dataDir)).toEqual([SIGNING_KEY_FILE_NAME]);
  });

  it('creates the key file when absent', async () => {
    const file = path.join(freshDir(), 'keys', 'signing-keys.json');
    const rotation = await rotateSigningKeys(file);
    expect(rotation.retired).toEqual([]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const keys = await loadSigningKeys({ keyFile: file, dataDir: freshDir() });
    expect(keys.signer.kid).toBe(rotation.kid);
  });

  it('refuses to rotate a corrupt file', async () => {
    const dir = freshDir();
    mkdirSync(dir);
    const file = path.join(dir, 'k.json');
    writeFileSync(file, 'garbage');
    await expectConfigError(rotateSigningKeys(file), /not valid JSON/);
    expect(readFileSync(file, 'utf8')).toBe('garbage');
  });
});
