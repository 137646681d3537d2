import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHook } from 'node:async_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTokenCache, type CachedToken, type TokenCache } from '../../src/tokens/cache.js';
import { generateToken, generateTokenId, hashToken } from '../../src/tokens/format.js';
import { createSqliteTokenStore } from '../../src/tokens/sqlite-store.js';
import type { TokenStore } from '../../src/tokens/store.js';

const MAX = 50;
const NEGATIVE_MAX = 20;

let dir: string;
let store: TokenStore;
let cache: TokenCache;
let hashes: string[];

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'tollgate-cache-'));
  store = createSqliteTokenStore({ dataDir: dir });
  hashes = [];
  for (let i = 0; i < MAX + 10; i++) {
    const hash = hashToken(generateToken('production'));
    await store.insert({
      id: generateTokenId(),
      name: `ci-${i}`,
      type: 'production',
      hash,
      createdAt: Date.now(),
      createdBy: 'test',
      expiresAt: null,
    });
    hashes.push(hash);
  }
  cache = createTokenCache({
    store,
    ttlMs: 600_000,
    max: MAX,
    negativeTtlMs: 600_000,
    negativeMax: NEGATIVE_MAX,
    pollMs: 600_000,
    lastUsedFlushMs: 600_000,
    staleMaxMs: 600_000,
  });
  await cache.start();
});

afterEach(async () => {
  await cache.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Store reads caused by looking these hashes up once each, in order. */
async function readsFor(list: readonly string[]): Promise<number> {
  const before = cache.stats.storeReads;
  for (const hash of list) await cache.lookup(hash);
  return cache.stats.storeReads - before;
}

describe('token cache bounds', () => {
  it('holds exactly `max` tokens: the least recently used one goes first', async () => {
    expect(await readsFor(hashes.slice(0, MAX))).toBe(MAX); // fills the cache
    expect(await readsFor(hashes.slice(0, MAX))).toBe(0); // all there
    await cache.lookup(hashes[0]!); // now the most recently used
    expect(await readsFor([hashes[MAX]!])).toBe(1); // one more: evicts hashes[1], the least recent
    expect(await readsFor([hashes[0]!, ...hashes.slice(2, MAX + 1)])).toBe(0);
    expect(await readsFor([hashes[1]!])).toBe(1);
  });

  it('a flood of unknown tokens stays in its own bounded cache and evicts no real token', async () => {
    expect(await readsFor(hashes.slice(0, MAX))).toBe(MAX);
    const unknown = Array.from({ length: NEGATIVE_MAX * 10 }, () => hashToken(generateToken('production')));
    expect(await readsFor(unknown)).toBe(unknown.length); // each unknown token read once
    expect(await readsFor(hashes.slice(0, MAX))).toBe(0); // every real token still cached
    // The negative cache keeps the most recent NEGATIVE_MAX unknown tokens, and no more.
    expect(await readsFor(unknown.slice(-NEGATIVE_MAX))).toBe(0);
    expect(await readsFor([unknown.at(-NEGATIVE_MAX - 1)!])).toBe(1);
  });

  it('keeps one store read per token in flight while hundreds of other reads come and go', async () => {
    // The single-flight map is replaced by a copy every few hundred completed reads (see
    // cache.ts); a read still in flight must survive that, or a second caller would read again.
    const held = hashes[0]!;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const findByHash = store.findByHash.bind(store);
    store.findByHash = async (hash) => {
      if (hash === held) await gate;
      return findByHash(hash);
    };
    const first = cache.lookup(held);
    const others = Array.from({ length: 600 }, () => hashToken(generateToken('production')));
    expect(await readsFor(others)).toBe(others.length);
    const before = cache.stats.storeReads;
    const second = cache.lookup(held);
    expect(second).toBe(first);
    release();
    expect(((await first) as CachedToken | undefined)?.hash).toBe(held);
    expect(((await second) as CachedToken | undefined)?.hash).toBe(held);
    expect(cache.stats.storeReads).toBe(before);
  });
});

describe('token cache lookups on the request path', () => {
  it('start no timer: hits and negative hits, thousands of them, leave the timer list alone', async () => {
    const unknown = hashToken(generateToken('production'));
    await cache.lookup(hashes[0]!);
    await cache.lookup(unknown);
    // Timers started while a lookup runs (lookups are synchronous: the test runner's own timers
    // start between them, never during one).
    const started: string[] = [];
    let looking = false;
    const hook = createHook({
      init(_id, type) {
        if (looking && type === 'Timeout') started.push(type);
      },
    }).enable();
    try {
      for (let i = 0; i < 2000; i++) {
        looking = true;
        const hit = cache.lookup(hashes[0]!);
        const negative = cache.lookup(unknown);
        looking = false;
        expect(hit).not.toBeInstanceOf(Promise);
        expect(negative).toBeUndefined();
        // Milliseconds pass between requests (lru-cache's default kept a clock reading for 1 ms).
        if (i % 100 === 0) {
          const until = performance.now() + 1.5;
          while (performance.now() < until) {
            /* spin */
          }
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
    } finally {
      hook.disable();
    }
    expect(started).toEqual([]);
  });
});
