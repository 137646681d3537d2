import { LRUCache } from 'lru-cache';

/**
 * Brute-force protection: failed authentications per client address, as a token bucket.
 *
 * Each address may fail `burst` times in a row, refilled at `refillPerSecond`. A build host
 * with a stale token in one config file (a few dozen failures a minute) never empties it; a
 * guessing burst does. While an address's bucket is empty, every request from it that carries
 * a credential is answered 429 without checking the credential (so a guess learns nothing).
 * Requests without any credential (the challenge Maven and pip need) never count.
 *
 * Memory is bounded: buckets live in an LRU of `maxAddresses`. The hot path for an address
 * that never failed is one Map lookup. With Redis, failures are also shared across gateways:
 * counts are batched locally and flushed with one pipelined INCRBY per address per interval,
 * and an address over the fleet-wide limit is blocked on every gateway for the window.
 */
export interface RateLimiterOptions {
  burst: number;
  refillPerSecond: number;
  maxAddresses: number;
  /** Fleet-wide sharing; undefined for a single gateway. */
  shared?: SharedFailureCounter;
  /** How often local failure counts are flushed to the shared counter. */
  flushMs?: number;
  /**
   * With a shared counter: the failures per address per window (fleet-wide) at which the address
   * is refused until the window ends. Default: any count past what one gateway's bucket allows in
   * a window (burst + refill over the window).
   */
  windowLimit?: number;
}

/** Adds failures for addresses and returns the fleet-wide totals in the current window. */
export interface SharedFailureCounter {
  /** Window length: totals reset at its end. */
  readonly windowMs: number;
  add(counts: Map<string, number>): Promise<Map<string, number>>;
  /** The address's total in the current window, without adding (a caller that asks before each check). */
  total?(address: string): Promise<number>;
}

export interface RateLimiter {
  /** 0 when the address may proceed, else the seconds to wait (Retry-After). */
  retryAfter(address: string, now: number): number;
  /** Counts one failed authentication for the address. */
  fail(address: string, now: number): void;
  stop(): void;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
  /** Blocked by the fleet-wide count until then (epoch ms). */
  sharedBlockUntil: number;
}

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { burst, refillPerSecond, shared } = options;
  // maxSize with every bucket of size 1: bounded like `max`, without arrays for every address
  // allocated up front (megabytes of heap for the default 100,000).
  const buckets = new LRUCache<string, Bucket>({ maxSize: options.maxAddresses, sizeCalculation: () => 1 });
  const pending = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let flushing = false;

  function refill(b: Bucket, now: number): void {
    const elapsed = (now - b.updatedAt) / 1000;
    if (elapsed > 0) {
      b.tokens = Math.min(burst, b.tokens + elapsed * refillPerSecond);
      b.updatedAt = now;
    }
  }

  async function flush(): Promise<void> {
    if (!shared || flushing || pending.size === 0) return;
    flushing = true;
    const batch = new Map(pending);
    pending.clear();
    const requeue = (addresses: Iterable<string>): void => {
      for (const address of addresses) {
        if (pending.size >= options.maxAddresses && !pending.has(address)) break; // bounded during long outages
        pending.set(address, (pending.get(address) ?? 0) + (batch.get(address) ?? 0));
      }
    };
    try {
      const totals = await shared.add(batch);
      // Counts whose command failed (connection not ready yet, a node moving) go out next time.
      requeue([...batch.keys()].filter((address) => !totals.has(address)));
      const now = Date.now();
      const windowEnd = Math.ceil(now / shared.windowMs) * shared.windowMs;
      // The fleet-wide allowance per window: what one gateway's bucket allows in that time.
      const allowed = burst + (refillPerSecond * shared.windowMs) / 1000;
      const { windowLimit } = options;
      for (const [address, total] of totals) {
        if (windowLimit === undefined ? total <= allowed : total < windowLimit) continue;
        const b = buckets.get(address) ?? { tokens: 0, updatedAt: now, sharedBlockUntil: 0 };
        b.sharedBlockUntil = windowEnd;
        buckets.set(address, b);
      }
    } catch {
      // Redis unreachable: the local bucket still protects this gateway; the counts wait.
      requeue(batch.keys());
    } finally {
      flushing = false;
    }
  }

  if (shared) {
    timer = setInterval(() => void flush(), options.flushMs ?? 250);
    timer.unref();
  }

  return {
    retryAfter(address, now) {
      const b = buckets.get(address);
      if (b === undefined) return 0;
      if (b.sharedBlockUntil > now) return Math.ceil((b.sharedBlockUntil - now) / 1000);
      refill(b, now);
      if (b.tokens >= 1) return 0;
      return Math.max(1, Math.ceil((1 - b.tokens) / refillPerSecond));
    },
    fail(address, now) {
      let b = buckets.get(address);
      if (b === undefined) {
        b = { tokens: burst, updatedAt: now, sharedBlockUntil: 0 };
        buckets.set(address, b);
      } else {
        refill(b, now);
      }
      b.tokens = Math.max(0, b.tokens - 1);
      if (shared) pending.set(address, (pending.get(address) ?? 0) + 1);
    },
    stop() {
      clearInterval(timer);
    },
  };
}
