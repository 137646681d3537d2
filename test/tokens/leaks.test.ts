import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../src/tokens/format.js';
import { revokeLeakedTokens } from '../../src/tokens/leaks.js';
import { createToken, rotateToken } from '../../src/tokens/service.js';
import { tokenState, type TokenStore } from '../../src/tokens/store.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const ARTIFACT = '/generic/hello/1.0.0/hello-1.0.0.txt';
const REPORTER = { source: 'gitleaks', by: 'admin' };

describe('revokeLeakedTokens', () => {
  let gw: TestGateway;
  let store: TokenStore;
  let reads = 0;
  let n = 0;

  beforeAll(async () => {
    gw = await startTestGateway({ TOLLGATE_CACHE_TTL_MS: '600000' });
    // The gateway's store, counting the reads revokeLeakedTokens makes.
    store = {
      ...gw.store,
      findByHash: (hash: string) => {
        reads++;
        return gw.store.findByHash(hash);
      },
    };
  });
  afterAll(() => gw?.close());

  const create = async (over: { expires?: string; type?: 'production' | 'development' } = {}) =>
    createToken(gw.store, {
      name: `leak-${++n}`,
      type: over.type ?? 'production',
      expires: over.expires,
      createdBy: 'test',
    });
  const status = async (token: string) => {
    const res = await fetch(`${gw.url}${ARTIFACT}`, { headers: { authorization: bearer(token) } });
    await res.arrayBuffer();
    return res.status;
  };

  it('revokes a live token reported leaked, records who found it and where, and the gateway refuses it within a second', async () => {
    const { token, record } = await create();
    await gw.gateway.cache.sync();
    expect(await status(token)).toBe(200);
    const { verdicts, revoked } = await revokeLeakedTokens(
      store,
      [
        {
          token,
          type: 'tollgate_production_token',
          url: 'https://git.example/acme/app/blob/abc/.env',
          location: 'content',
        },
      ],
      REPORTER,
    );
    expect(verdicts).toEqual([
      { token_hash: sha256(token), token_type: 'tollgate_production_token', label: 'true_positive' },
    ]);
    expect(revoked.map((r) => r.id)).toEqual([record.id]);
    expect(await gw.store.findByHash(record.hash)).toMatchObject({
      revokedBy: 'admin',
      leak: { source: 'gitleaks', url: 'https://git.example/acme/app/blob/abc/.env', location: 'content' },
    });
    await expect.poll(() => status(token), { timeout: 1000, interval: 20 }).toBe(401);
  });

  it('answers false_positive, without a store read, for values that are not tokens or fail the checksum', async () => {
    const { token } = await create();
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    const mistyped = token.slice(0, -1) + last;
    const before = reads;
    const { verdicts, revoked } = await revokeLeakedTokens(
      store,
      [{ token: 'hello' }, { token: mistyped }, { token: ` ${token}` }],
      REPORTER,
    );
    expect(verdicts).toEqual([
      { token_hash: sha256('hello'), token_type: 'tollgate_token', label: 'false_positive' },
      { token_hash: sha256(mistyped), token_type: 'tollgate_token', label: 'false_positive' },
      { token_hash: sha256(` ${token}`), token_type: 'tollgate_token', label: 'false_positive' },
    ]);
    expect(revoked).toEqual([]);
    expect(reads).toBe(before);
    expect(await status(token)).toBe(200);
  });

  it('answers false_positive for an unknown, a revoked and an expired token, and revokes nothing', async () => {
    const unknown = generateToken('development');
    const { token: revokedToken, record } = await create();
    await gw.store.revoke(record.id, 'someone');
    const { token: expired, record: expiredRecord } = await create({
      expires: new Date(Date.now() + 30).toISOString(),
    });
    await expect.poll(() => Date.now() > expiredRecord.expiresAt!).toBe(true);
    const { verdicts, revoked } = await revokeLeakedTokens(
      store,
      [{ token: unknown }, { token: revokedToken }, { token: expired }],
      REPORTER,
    );
    expect(verdicts.map((v) => v.label)).toEqual(['false_positive', 'false_positive', 'false_positive']);
    expect(revoked).toEqual([]);
    expect(await gw.store.findByHash(record.hash)).toMatchObject({ revokedBy: 'someone', leak: null });
    expect(await gw.store.findByHash(expiredRecord.hash)).toMatchObject({ revokedAt: null });
  });

  it('revokes a rotated-out token still in its overlap, and leaves its replacement alone', async () => {
    const { token: old } = await create();
    const rotated = await rotateToken(gw.store, `leak-${n}`, { overlap: '1h', by: 'test' });
    const { verdicts } = await revokeLeakedTokens(store, [{ token: old }], REPORTER);
    expect(verdicts[0]!.label).toBe('true_positive');
    expect(tokenState((await gw.store.findByHash(rotated.previous.hash))!)).toBe('revoked');
    expect(tokenState((await gw.store.findByHash(rotated.record.hash))!)).toBe('active');
  });

  it('gives a value reported twice in one call the same verdict, and revokes it once', async () => {
    const { token } = await create({ type: 'development' });
    const { verdicts, revoked } = await revokeLeakedTokens(store, [{ token }, { token, type: 'again' }], REPORTER);
    expect(verdicts.map((v) => [v.label, v.token_type])).toEqual([
      ['true_positive', 'tollgate_token'],
      ['true_positive', 'again'],
    ]);
    expect(revoked).toHaveLength(1);
    // Reported again later: it is revoked already.
    expect((await revokeLeakedTokens(store, [{ token }], REPORTER)).verdicts[0]!.label).toBe('false_positive');
  });

  it("records the report's text without control characters, bounded", async () => {
    const { token, record } = await create();
    await revokeLeakedTokens(
      store,
      [{ token, url: `https://x.example/\u0000${'a'.repeat(3000)}`, location: 'commit\n' }],
      { source: 'trufflehog\r\n', by: 'admin' },
    );
    const { leak } = (await gw.store.findByHash(record.hash))!;
    expect(leak!.source).toBe('trufflehog');
    expect(leak!.location).toBe('commit');
    expect(leak!.url!.length).toBe(2048);
    expect(leak!.url).not.toContain('\u0000');
  });
});
