import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../src/tokens/format.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { tempDir, type TempDir } from '../helpers/route-config.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function ecKey(): { privateKey: KeyObject; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, pem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** GitHub's key set format, with `current` the one marked is_current. */
function keySet(keys: Record<string, string>, current: string): string {
  return JSON.stringify({
    public_keys: Object.entries(keys).map(([id, pem]) => ({
      key_identifier: id,
      key: pem,
      is_current: id === current,
    })),
  });
}

/**
 * Signed secret-scanning reports (GitHub's partner format) revoke live tokens at once; anything not
 * signed by a listed key, or malformed, revokes nothing.
 */
describe('POST /-/tollgate/secret-scanning', () => {
  const current = ecKey();
  const retiring = ecKey();
  const stranger = ecKey();
  let files: TempDir;
  let gw: TestGateway;

  beforeAll(async () => {
    files = tempDir('tollgate-scanning-');
    const keysFile = files.write(
      'keys.json',
      keySet({ 'key-current': current.pem, 'key-retiring': retiring.pem }, 'key-current'),
    );
    files.write('tree/pkg.txt', 'artifact');
    // The shape in the config file (the URL suite below uses the env var).
    const configFile = files.write('tollgate.json', JSON.stringify({ secretScanning: { publicKeysFile: keysFile } }));
    gw = await startTestGateway({
      TOLLGATE_CONFIG: configFile,
      TOLLGATE_UPSTREAM: path.join(files.path, 'tree'),
      TOLLGATE_ACTIVITY_FLUSH_MS: '10',
    });
  });
  afterAll(async () => {
    await gw?.close();
    files?.remove();
  });

  async function report(body: string, keyId: string, key: KeyObject, extra: Record<string, string> = {}) {
    const signature = sign('sha256', Buffer.from(body), key).toString('base64');
    const res = await fetch(`${gw.url}/-/tollgate/secret-scanning`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'github-public-key-identifier': keyId,
        'github-public-key-signature': signature,
        ...extra,
      },
      body,
    });
    const text = await res.text();
    return { status: res.status, text, json: text ? (JSON.parse(text) as unknown) : undefined, headers: res.headers };
  }

  const download = async (token: string) =>
    (await fetch(`${gw.url}/pkg.txt`, { headers: { authorization: bearer(token) } })).status;
  const findings = (token: string, url = 'https://github.com/acme/app/blob/abc123/.env') =>
    JSON.stringify([{ token, type: 'tollgate_production_token', url, source: 'content' }]);

  it('revokes a live token reported in a signed report: true_positive with its SHA-256, then 401 everywhere, audited, alerted', async () => {
    const { token, record } = await gw.createToken({ name: 'leaky-ci', type: 'production' });
    expect(await download(token)).toBe(200);
    const res = await report(findings(token), 'key-current', current.privateKey);
    expect(res.status).toBe(200);
    expect(res.json).toEqual([
      { token_hash: sha256(token), token_type: 'tollgate_production_token', label: 'true_positive' },
    ]);
    expect(res.text).not.toContain(token);
    await expect.poll(() => download(token)).toBe(401);
    const revoked = await gw.store.get(record.id);
    expect(revoked).toMatchObject({
      revokedBy: 'secret-scanning:github',
      leak: { source: 'github', url: 'https://github.com/acme/app/blob/abc123/.env', location: 'content' },
    });
    const metrics = await (await fetch(`${gw.adminUrl}/metrics?name=tollgate_tokens_leaked_total`)).text();
    expect(metrics).toMatch(/tollgate_tokens_leaked_total\{reporter="github",token_type="production"\} 1/);
    await expect.poll(() => leakedEvents(gw).map((e) => e.tokenId)).toContain(record.id);
    const event = leakedEvents(gw).find((e) => e.tokenId === record.id)!;
    expect(event).toMatchObject({
      kind: 'leaked',
      tokenName: 'leaky-ci',
      leak: { source: 'github', location: 'content' },
    });
    expect(gw.logs()).not.toContain(token);
  });

  it('accepts a report signed with a listed key that is not the current one', async () => {
    const { token } = await gw.createToken({ type: 'development' });
    const res = await report(findings(token), 'key-retiring', retiring.privateKey);
    expect(res.json).toEqual([expect.objectContaining({ label: 'true_positive' })]);
    expect(await download(token)).toBe(401);
  });

  it('answers false_positive for what is not a live token: unknown, malformed, bad checksum, already revoked, and a replayed report', async () => {
    const { token } = await gw.createToken();
    const unknown = generateToken('production');
    const badChecksum = `${unknown.slice(0, -1)}${unknown.endsWith('A') ? 'B' : 'A'}`;
    const body = JSON.stringify([{ token: unknown }, { token: 'tgp_short' }, { token: badChecksum }, { token }]);
    const first = await report(body, 'key-current', current.privateKey);
    expect((first.json as { label: string }[]).map((v) => v.label)).toEqual([
      'false_positive',
      'false_positive',
      'false_positive',
      'true_positive',
    ]);
    const replayed = await report(body, 'key-current', current.privateKey);
    expect(replayed.status).toBe(200);
    expect((replayed.json as { label: string }[]).every((v) => v.label === 'false_positive')).toBe(true);
  });

  it.each([
    [
      'a forged signature (another key, a listed id)',
      () => ({ id: 'key-current', key: stranger.privateKey }),
      401,
      'TOLLGATE_ERR_SCANNING_SIGNATURE',
    ],
    ['an unknown key id', () => ({ id: 'key-unknown', key: current.privateKey }), 401, 'TOLLGATE_ERR_SCANNING_KEY'],
  ])('revokes nothing for %s', async (_what, signer, status, code) => {
    const { token } = await gw.createToken();
    const { id, key } = signer();
    const res = await report(findings(token), id, key);
    expect(res.status).toBe(status);
    expect(res.json).toMatchObject({ code });
    expect(await download(token)).toBe(200);
  });

  it('revokes nothing for a missing signature, a signature over other bytes, malformed JSON, or an oversized body', async () => {
    const { token } = await gw.createToken();
    const noSignature = await fetch(`${gw.url}/-/tollgate/secret-scanning`, {
      method: 'POST',
      headers: { 'github-public-key-identifier': 'key-current' },
      body: findings(token),
    });
    expect(noSignature.status).toBe(401);
    const otherBytes = sign('sha256', Buffer.from('[]'), current.privateKey).toString('base64');
    const mismatched = await fetch(`${gw.url}/-/tollgate/secret-scanning`, {
      method: 'POST',
      headers: { 'github-public-key-identifier': 'key-current', 'github-public-key-signature': otherBytes },
      body: findings(token),
    });
    expect(mismatched.status).toBe(401);
    for (const body of ['{"token":1}', 'not json', '[{"type":"x"}]', '{}']) {
      const res = await report(body, 'key-current', current.privateKey);
      expect(res.status, body).toBe(400);
      expect(res.json).toMatchObject({ code: 'TOLLGATE_ERR_SCANNING_BODY' });
    }
    const huge = JSON.stringify([{ token, url: 'x'.repeat(70 * 1024) }]);
    expect((await report(huge, 'key-current', current.privateKey)).status).toBe(413);
    expect(await download(token)).toBe(200);
  });

  it('limits reports per address: 429 with Retry-After past 60 a minute', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 70; i++)
      statuses.push(
        (await report('[]', 'key-current', current.privateKey, { 'x-forwarded-for': '198.51.100.1' })).status,
      );
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    const limited = await report('[]', 'key-current', current.privateKey);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });
});

describe('secret-scanning keys from a URL', () => {
  const current = ecKey();
  const later = ecKey();
  let keys: Record<string, string>;
  let fetches = 0;
  let server: Server;
  let gw: TestGateway;
  let files: TempDir;

  beforeAll(async () => {
    keys = { k1: current.pem };
    server = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(keySet(keys, 'k1'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    files = tempDir('tollgate-scanning-url-');
    files.write('tree/pkg.txt', 'artifact');
    gw = await startTestGateway({
      TOLLGATE_UPSTREAM: path.join(files.path, 'tree'),
      // The env var (the suite above uses the config file's secretScanning object).
      TOLLGATE_SECRET_SCANNING_KEYS_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/meta/public_keys/secret_scanning`,
    });
  });
  afterAll(async () => {
    await gw?.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    files?.remove();
  });

  async function post(id: string, key: KeyObject): Promise<number> {
    const body = '[]';
    const res = await fetch(`${gw.url}/-/tollgate/secret-scanning`, {
      method: 'POST',
      headers: {
        'github-public-key-identifier': id,
        'github-public-key-signature': sign('sha256', Buffer.from(body), key).toString('base64'),
      },
      body,
    });
    return res.status;
  }

  it('fetches the key set once, again for an unknown key id at most every 5 seconds, and takes a key published later', async () => {
    expect(await post('k1', current.privateKey)).toBe(200);
    expect(await post('k1', current.privateKey)).toBe(200);
    expect(fetches).toBe(1); // cached
    keys = { k1: current.pem, k2: later.pem };
    // An unknown id within 5 s of the last fetch: refused without fetching (made-up ids cost nothing).
    for (let i = 0; i < 5; i++) expect(await post('k2', later.privateKey)).toBe(401);
    expect(fetches).toBe(1);
    // Past the 5 s, the unknown id makes one fetch, which finds the key published meanwhile.
    await expect.poll(() => post('k2', later.privateKey), { timeout: 15_000, interval: 500 }).toBe(200);
    expect(fetches).toBe(2);
  });
});

describe('without secret-scanning keys configured', () => {
  it('answers 404 and forwards nothing', async () => {
    const gw = await startTestGateway({});
    try {
      const res = await fetch(`${gw.url}/-/tollgate/secret-scanning`, { method: 'POST', body: '[]' });
      expect(res.status).toBe(404);
    } finally {
      await gw.close();
    }
  });
});

function leakedEvents(gw: TestGateway): { kind: string; tokenId: string; tokenName: string; leak: unknown }[] {
  const dir = path.join(gw.dataDir, 'activity');
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith('production-'));
  } catch {
    return [];
  }
  return names
    .flatMap((n) =>
      readFileSync(path.join(dir, n), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { kind: string; tokenId: string; tokenName: string; leak: unknown }),
    )
    .filter((e) => e.kind === 'leaked');
}
