import { bearer, type TestGateway } from './gateway.js';
import { waitFor } from './redis-topologies.js';

/** One GET through a gateway's proxy port; the status (the body is drained). */
export async function proxyStatus(gw: TestGateway, authorization: string, path = '/fleet/artifact.txt',
  headers: Record<string, string> = {}): Promise<number> {
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
  await waitFor(`a cache hit for the token on ${gw.url}`, withinMs, async () => {
    const { storeReads, hits } = gw.gateway.cache.stats;
    const status = await proxyStatus(gw, bearer(token));
    return status === 200 && gw.gateway.cache.stats.storeReads === storeReads && gw.gateway.cache.stats.hits > hits;
  });
}

/** Polls until every gateway answers `expected` for the token; the elapsed ms per gateway, or throws after withinMs. */
export async function untilAllAnswer(gws: TestGateway[], token: string, expected: number, withinMs: number): Promise<number[]> {
  const start = Date.now();
  return Promise.all(gws.map(async (gw) => {
    for (;;) {
      const got = await proxyStatus(gw, bearer(token));
      const elapsed = Date.now() - start;
      if (got === expected) return elapsed;
      if (elapsed > withinMs) throw new Error(`${gw.url} still answers ${got} (not ${expected}) after ${elapsed} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }));
}
