import { expect, vi } from 'vitest';
import { bearer } from './authorization.js';
import type { TestGateway } from './gateway.js';

/** One GET through a gateway's proxy port; the status (the body is drained). */
export async function proxyStatus(
  gw: TestGateway,
  authorization: string,
  path = '/fleet/artifact.txt',
  headers: Record<string, string> = {},
): Promise<number> {
  const res = await fetch(`${gw.url}${path}`, { headers: { authorization, ...headers } });
  await res.arrayBuffer();
  return res.status;
}

/**
 * Waits until a download with this token on `gw` is a 200 served from the cache (no store read
 * during it). The first download reads the store; the token's own change notification (its
 * insert) can arrive after that read and drop the entry again, hence the retry.
 */
export async function untilCacheHit(gw: TestGateway, token: string, withinMs = 3000): Promise<void> {
  await vi.waitFor(
    async () => {
      const { storeReads, hits } = gw.gateway.cache.stats;
      const status = await proxyStatus(gw, bearer(token));
      const after = gw.gateway.cache.stats;
      expect(
        { status, storeRead: after.storeReads !== storeReads, hit: after.hits > hits },
        `a cache hit for the token on ${gw.url}`,
      ).toEqual({ status: 200, storeRead: false, hit: true });
    },
    { timeout: withinMs },
  );
}

/** Polls until every gateway answers `expected` for the token; the elapsed ms per gateway, or throws after withinMs. */
export async function untilAllAnswer(
  gws: TestGateway[],
  token: string,
  expected: number,
  withinMs: number,
): Promise<number[]> {
  const start = Date.now();
  return Promise.all(
    gws.map(async (gw) => {
      await vi.waitFor(
        async () => expect(await proxyStatus(gw, bearer(token)), `${gw.url} answers ${expected}`).toBe(expected),
        { timeout: withinMs, interval: 20 },
      );
      return Date.now() - start;
    }),
  );
}
