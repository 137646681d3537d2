import { LRUCache } from 'lru-cache';
import { createChangeFeed, type ChangeBatch, type ChangeFeed } from './change-feed.js';
import type { TokenType } from './format.js';
import {
  changeSubject,
  tokenEndsAt,
  type CiIdentity,
  type LastUsed,
  type TokenRecord,
  type TokenStore,
} from './store.js';
import { compileRestrictions, type CompiledRestrictions } from './restrictions.js';

/** What the gateway needs to authorise a request: no secrets, no mutable state. */
export interface CachedToken {
  id: string;
  name: string;
  type: TokenType;
  hash: string;
  /** When it stops working: its expiry or the end of its rotation overlap (tokenEndsAt). */
  expiresAt: number | null;
  /** Revoked tokens stay cached (they are real and few) so failures can say why. */
  revoked: boolean;
  /** Its restrictions, compiled once for the request path; undefined: none (the common case, free). */
  restrictions: CompiledRestrictions | undefined;
  /** A CI job's identity, for its activity events; undefined for tokens made by an admin. */
  ci: CiIdentity | undefined;
}

export interface TokenCacheOptions {
  store: TokenStore;
  ttlMs: number;
  max: number;
  negativeTtlMs: number;
  negativeMax: number;
  /** How often the store's revision is checked (backstop for pushed notifications). */
  pollMs: number;
  /**
   * The process's change feed over the same store; by default the cache makes its own (and
   * starts and stops it). Given, its owner starts and stops it.
   */
  feed?: ChangeFeed;
  lastUsedFlushMs: number;
  /**
   * How long cached answers stay usable after the store was last reached (serve-stale). Past
   * it, every lookup is "unavailable" (503): a revocation the gateway cannot see is never
   * honoured later than this.
   */
  staleMaxMs: number;
  onError?: (err: unknown, what: string) => void;
  /** Observes every store read on a miss (seconds, whether it succeeded). */
  onStoreRead?: (seconds: number, ok: boolean) => void;
}

/** What lookup returns, without reading the store, for a hash it does not know either way. */
export const NOT_CACHED = Symbol('not cached');

export interface TokenCache {
  /**
   * The token with this hash (revoked ones included), or undefined for an unknown one. A hit returns
   * synchronously (no await, no I/O); a miss returns a promise, shared by concurrent callers, or,
   * with `readStore` false, NOT_CACHED. Expiry is the caller's check: a cached token may expire
   * while cached.
   */
  lookup(
    hash: string,
    now?: number,
    readStore?: boolean,
  ): CachedToken | undefined | typeof NOT_CACHED | Promise<CachedToken | undefined>;
  /** Remember that this token was used now; written to the store in batches. */
  touch(token: CachedToken, now: number): void;
  /** Catch up with the store now (also runs on notifications and every pollMs). */
  sync(): Promise<void>;
  readonly stats: { hits: number; misses: number; negativeHits: number; storeReads: number; invalidations: number };
  /** The change feed the cache follows: others that cache what the store holds can follow it too. */
  readonly feed: ChangeFeed;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const MISSING = Symbol('missing');
const oneEntry = (): number => 1;
/** Store reads completed before the single-flight map is replaced by a young copy (see below). */
const RENEW_INFLIGHT_AFTER = 256;

/**
 * Token cache in front of the store (Kong's mlcache shape): a bounded positive LRU, a separate
 * bounded negative LRU (so a flood of made-up tokens cannot evict real ones), single-flight
 * store reads, and invalidation driven by the store's change log (change-feed.ts: pushed and
 * polled; a reader that fell behind the log drops everything, so no revocation is lost to a
 * reconnect). The TTL is a backstop only.
 */
export function createTokenCache(options: TokenCacheOptions): TokenCache {
  const { store } = options;
  // Expired entries are kept (noDeleteOnStaleGet) so they can be served while the store is down.
  // Bounded by maxSize with every entry of size 1 rather than by max: the same bound, but with
  // `max` lru-cache allocates its arrays for every entry up front (megabytes of heap, with the
  // defaults, for a gateway that knows a few dozen tokens).
  // ttlResolution 0: read the clock on each TTL check. With the default (1 ms) lru-cache keeps the
  // time it read for a millisecond by starting a timer that clears it: under load, a setTimeout
  // and its firing nearly every millisecond, far dearer than a clock read (bench/README.md,
  // "The auth cost, side by side").
  const positive = new LRUCache<string, CachedToken>({
    maxSize: options.max,
    sizeCalculation: oneEntry,
    ttl: options.ttlMs,
    ttlResolution: 0,
    ttlAutopurge: false,
    noDeleteOnStaleGet: true,
  });
  const negative = new LRUCache<string, typeof MISSING>({
    maxSize: options.negativeMax,
    sizeCalculation: oneEntry,
    ttl: options.negativeTtlMs,
    ttlResolution: 0,
  });
  // Both maps below churn (set and delete under load), so each is replaced by a new Map when it
  // empties, `inflight` also every RENEW_INFLIGHT_AFTER reads in case misses never stop. A
  // long-lived Map's table lives in V8's old generation; each rehash the churn causes allocates
  // the next table there too, and a discarded table keeps its entries (for `inflight`: the
  // waiting requests' promises and all they hold) alive until the next major GC, so every
  // young-generation GC promotes them. A new Map starts young (bench/README.md, "Memory": what
  // this saves in the redis-miss scenario).
  let inflight = new Map<string, Promise<CachedToken | undefined>>();
  let inflightDeletes = 0;
  const stats = { hits: 0, misses: 0, negativeHits: 0, storeReads: 0, invalidations: 0 };
  let pendingLastUsed = new Map<string, LastUsed>();

  const report = options.onError ?? (() => {});
  const ownsFeed = options.feed === undefined;
  const feed = options.feed ?? createChangeFeed({ store, pollMs: options.pollMs, onError: report });
  /** Past the serve-stale window since the store last answered a sync. */
  const outOfSync = (now: number): boolean => now - feed.lastSyncOk > options.staleMaxMs;
  /** Bumped on every invalidation; a store read that straddles one is not cached. */
  let epoch = 0;
  let flushTimer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;

  function toCached(record: TokenRecord): CachedToken {
    const { id, name, type, hash } = record;
    const expiresAt = tokenEndsAt(record);
    const restrictions = compileRestrictions(record.restrictions);
    return {
      id,
      name,
      type,
      hash,
      expiresAt,
      revoked: record.revokedAt !== null,
      restrictions,
      ci: record.ci ?? undefined,
    };
  }

  async function readThrough(hash: string): Promise<CachedToken | undefined> {
    const startEpoch = epoch;
    stats.storeReads++;
    const started = performance.now();
    let ok = false;
    try {
      const record = await store.findByHash(hash);
      ok = true;
      const token = record ? toCached(record) : undefined;
      if (epoch === startEpoch) {
        if (token) positive.set(hash, token);
        else negative.set(hash, MISSING);
      }
      return token;
    } catch (err) {
      // Store unreachable: an entry past its TTL is still good within the stale window.
      const stale = positive.get(hash, { allowStale: true });
      if (stale !== undefined && !outOfSync(Date.now())) return stale;
      throw err;
    } finally {
      inflight.delete(hash);
      if (inflight.size === 0 || ++inflightDeletes === RENEW_INFLIGHT_AFTER) {
        inflight = new Map(inflight);
        inflightDeletes = 0;
      }
      options.onStoreRead?.((performance.now() - started) / 1000, ok);
    }
  }

  function lookup(
    hash: string,
    now = Date.now(),
    readStore = true,
  ): CachedToken | undefined | typeof NOT_CACHED | Promise<CachedToken | undefined> {
    const hit = positive.get(hash);
    if (hit !== undefined) {
      stats.hits++;
      return outOfSync(now) ? unavailable() : hit;
    }
    if (negative.get(hash) !== undefined) {
      stats.negativeHits++;
      return outOfSync(now) ? unavailable() : undefined;
    }
    if (!readStore) return NOT_CACHED;
    stats.misses++;
    let pending = inflight.get(hash);
    if (!pending) {
      pending = readThrough(hash);
      inflight.set(hash, pending);
    }
    return pending;
  }

  function unavailable(): Promise<never> {
    return Promise.reject(new Error('token store out of reach for longer than the stale window'));
  }

  function invalidate(hash: string): void {
    positive.delete(hash);
    negative.delete(hash);
    stats.invalidations++;
  }

  function applyChanges(batch: ChangeBatch): void {
    epoch++;
    if (batch === 'reset') {
      positive.clear();
      negative.clear();
      stats.invalidations++;
      return;
    }
    for (const change of batch) {
      const subject = changeSubject(change);
      if (subject.kind === 'token') invalidate(subject.hash);
    }
  }

  async function flushLastUsed(): Promise<void> {
    if (pendingLastUsed.size === 0) return;
    const batch = [...pendingLastUsed.values()];
    pendingLastUsed = new Map();
    try {
      await store.recordLastUsed(batch);
    } catch (err) {
      report(err, 'last-used flush');
    }
  }

  return {
    lookup,
    stats,
    feed,
    sync: () => feed.sync(),
    touch(token, now) {
      const entry = pendingLastUsed.get(token.id);
      if (entry) entry.at = now;
      else pendingLastUsed.set(token.id, { id: token.id, hash: token.hash, at: now });
    },
    async start() {
      unsubscribe = feed.subscribe(applyChanges);
      if (ownsFeed) await feed.start();
      flushTimer = setInterval(() => void flushLastUsed(), options.lastUsedFlushMs);
      flushTimer.unref();
    },
    async stop() {
      clearInterval(flushTimer);
      unsubscribe?.();
      if (ownsFeed) feed.stop();
      await flushLastUsed();
    },
  };
}
