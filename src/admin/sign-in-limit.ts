import type { Cluster, Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { createRateLimiter, type SharedFailureCounter } from '../auth/rate-limit.js';
import type { Config } from '../config/index.js';

/**
 * The admin sign-in limit: at most ADMIN_FAILURES_PER_WINDOW failed admin credentials (POST
 * /session, and Bearer admin tokens or OIDC JWTs on the API) per client address per minute.
 * Past that, every admin credential from the address, the right one included, is answered 429
 * with Retry-After (at most the rest of the minute) without being checked, so a guess learns
 * nothing.
 *
 * It is the proxy's failure limiter (auth/rate-limit.ts) with other numbers: a bucket of 10 that
 * refills 10 a minute stops a burst at once, and a count per fixed one-minute window refuses the
 * address for the rest of the window from its 10th failure. The window count is this process's
 * without Redis, and fleet-wide in Redis (`P admin-authfail:<window>:<address>`) with it, read
 * before every admin credential is checked (one GET: admin sign-ins are rare).
 */

export const ADMIN_FAILURES_PER_WINDOW = 10;
export const ADMIN_FAILURE_WINDOW_MS = 60_000;
/** Addresses tracked at once (bounded memory); the least recently failing are forgotten first. */
const MAX_ADDRESSES = 10_000;

export interface SignInLimit {
  /** 0 when the address may try a credential, else the seconds to wait (Retry-After). */
  retryAfter(address: string): Promise<number>;
  /** Counts one failed admin credential from the address. */
  fail(address: string): void;
  stop(): void;
}

/** Failures per address in the current fixed window, in this process: the window count without Redis. */
export function createLocalFailureCounter(windowMs: number, maxAddresses: number): SharedFailureCounter {
  const counts = new LRUCache<string, { window: number; count: number }>({
    maxSize: maxAddresses,
    sizeCalculation: () => 1,
  });
  return {
    windowMs,
    async total(address) {
      const entry = counts.get(address);
      return entry?.window === Math.floor(Date.now() / windowMs) ? entry.count : 0;
    },
    async add(batch) {
      const window = Math.floor(Date.now() / windowMs);
      const totals = new Map<string, number>();
      for (const [address, n] of batch) {
        const entry = counts.get(address);
        const count = (entry?.window === window ? entry.count : 0) + n;
        counts.set(address, { window, count });
        totals.set(address, count);
      }
      return totals;
    },
  };
}

export async function createSignInLimit(config: Pick<Config, 'redis'>): Promise<SignInLimit> {
  let client: Redis | Cluster | undefined;
  let shared: SharedFailureCounter;
  if (config.redis) {
    const [{ createRedisConnection }, { createRedisFailureCounter }] = await Promise.all([
      import('../redis/connect.js'),
      import('../auth/rate-limit-redis.js'),
    ]);
    // As the proxy's limiter: no offline queue, no retries; the local bucket protects meanwhile.
    client = createRedisConnection(config.redis.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 2000,
    });
    client.on('error', () => {});
    shared = createRedisFailureCounter({
      client,
      prefix: `${config.redis.prefix}admin-`,
      windowMs: ADMIN_FAILURE_WINDOW_MS,
    });
  } else {
    shared = createLocalFailureCounter(ADMIN_FAILURE_WINDOW_MS, MAX_ADDRESSES);
  }
  const limiter = createRateLimiter({
    burst: ADMIN_FAILURES_PER_WINDOW,
    refillPerSecond: ADMIN_FAILURES_PER_WINDOW / (ADMIN_FAILURE_WINDOW_MS / 1000),
    maxAddresses: MAX_ADDRESSES,
    shared,
    windowLimit: ADMIN_FAILURES_PER_WINDOW,
  });
  return {
    async retryAfter(address) {
      const local = limiter.retryAfter(address, Date.now());
      if (local > 0) return local;
      // Admin credentials are few: ask for the window's count before each check, so that failures
      // on other gateways apply here at once, not only once this gateway fails too. Unreachable
      // Redis: the local bucket decides.
      const total = await shared.total!(address).catch(() => 0);
      if (total < ADMIN_FAILURES_PER_WINDOW) return 0;
      const now = Date.now();
      return Math.max(1, Math.ceil((Math.ceil(now / ADMIN_FAILURE_WINDOW_MS) * ADMIN_FAILURE_WINDOW_MS - now) / 1000));
    },
    fail: (address) => limiter.fail(address, Date.now()),
    stop() {
      limiter.stop();
      client?.disconnect();
    },
  };
}
