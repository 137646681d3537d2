import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createExchangeRateLimiter,
  createTokenExchange,
  ID_TOKEN_TYPE,
  TOKEN_EXCHANGE_GRANT,
  type CiVerified,
  type CiVerifier,
} from '../../src/ci/index.js';
import { generateToken, generateTokenId, hashToken } from '../../src/tokens/format.js';
import { createSqliteTokenStore } from '../../src/tokens/sqlite-store.js';
import type { TokenStore } from '../../src/tokens/store.js';

/**
 * The exchange service (ci/exchange.ts) on a real SQLite store, with a verifier that accepts
 * every ID token as one job: how issued tokens are named when the job's name is taken.
 */

let dir: string;
let store: TokenStore;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tollgate-exchange-service-'));
  store = createSqliteTokenStore({ dataDir: dir });
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
const verifier: CiVerifier = {
  async verify(): Promise<CiVerified> {
    return {
      ok: true,
      provider: 'github',
      type: 'development',
      project: 'acme/app',
      restrictions: null,
      tokenTtlMs: 60_000,
      identity: { provider: 'github', subject: 'repo:acme/app:ref:refs/heads/x', repository: 'acme/app', runId: '7' },
      replayKey: `jti:${++n}`,
      replayUntil: Date.now() + 60_000,
    };
  },
};
const body = new URLSearchParams({
  grant_type: TOKEN_EXCHANGE_GRANT,
  subject_token: 'a.b.c',
  subject_token_type: ID_TOKEN_TYPE,
}).toString();

describe('the names of issued tokens', () => {
  it("are the job's name, then numbered, then marked with the token id once 20 are taken", async () => {
    const exchange = createTokenExchange({
      store,
      verifier,
      rate: createExchangeRateLimiter({ perAddressPerMinute: 1000, perSubjectPerMinute: 1000 }),
    });
    const names: string[] = [];
    for (let i = 0; i < 21; i++) {
      const { answer, outcome } = await exchange({
        contentType: 'application/x-www-form-urlencoded',
        body,
        clientIp: '10.0.0.1',
      });
      expect(answer.status).toBe(200);
      expect(outcome).toMatchObject({ outcome: 'issued', provider: 'github', type: 'development' });
      names.push(outcome.record!.name);
    }
    expect(names.slice(0, 3)).toEqual(['ci:github:acme/app#7', 'ci:github:acme/app#7 (2)', 'ci:github:acme/app#7 (3)']);
    expect(names[19]).toBe('ci:github:acme/app#7 (20)');
    expect(names[20]).toMatch(/^ci:github:acme\/app#7 \(tok_[\w-]+\)$/);
    expect(new Set(names).size).toBe(21);
  });

  it('free the name of an expired token for the next job', async () => {
    const otherDir = mkdtempSync(path.join(tmpdir(), 'tollgate-exchange-service-'));
    const other = createSqliteTokenStore({ dataDir: otherDir });
    try {
      await other.insert({
        id: generateTokenId(),
        name: 'ci:github:acme/app#7',
        type: 'development',
        hash: hashToken(generateToken('development')),
        createdAt: 0,
        createdBy: 'x',
        expiresAt: 1,
      });
      const exchange = createTokenExchange({
        store: other,
        verifier,
        rate: createExchangeRateLimiter({ perAddressPerMinute: 10, perSubjectPerMinute: 10 }),
      });
      const { outcome } = await exchange({
        contentType: 'application/x-www-form-urlencoded',
        body,
        clientIp: '10.0.0.2',
      });
      expect(outcome.record?.name).toBe('ci:github:acme/app#7');
    } finally {
      await other.close();
      rmSync(otherDir, { recursive: true, force: true });
    }
  });
});
