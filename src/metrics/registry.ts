import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HotCounter, HotHistogram } from './hot.js';
import { flushTallies } from './tally.js';

/**
 * Every metric Tollgate exports, declared in one place with fixed label names.
 *
 * Two families:
 * - Security metrics (`tollgate_production_*`, token expiry and last use): Production traffic only.
 *   Development requests never move them.
 * - Operations metrics: all traffic, never a per-token label.
 *
 * Label values are bounded: never a token, a path or a package name. `project` comes from the
 * client, so it goes through a LabelLimiter (configured names plus the first N seen; the rest
 * count as `other`). Token names are chosen by admins and bounded by the number of tokens.
 */

export const DURATION_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** A Production token as the expiry and last-use gauges show it. */
export interface ProductionTokenSample {
  id: string;
  name: string;
  expiresAt: number | null;
  lastUsedAt: number | null;
}

/**
 * Where the metrics read at scrape time come from (prom-client's `collect`), set by the wiring
 * once the parts exist. A source left unset leaves its metric empty.
 */
export interface MetricSources {
  /** Token cache counters since start. */
  cacheStats?: () => { hits: number; negativeHits: number; misses: number };
  /** Active (not revoked) Production tokens; undefined or a rejection keeps the last values (store down). */
  productionTokens?: () => Promise<readonly ProductionTokenSample[] | undefined>;
  /** Activity events waiting per sink runner. */
  activityQueueDepth?: () => Iterable<{ sink: string; memory: number; disk: number }>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'tollgate_process_' });
  const sources: MetricSources = {};

  // prom-client collects every metric of a scrape in parallel: the two token gauges share one
  // store read per scrape (a gauge filled by the other's collect would show the previous
  // scrape's values).
  let reading: Promise<readonly ProductionTokenSample[] | undefined> | undefined;
  const productionTokens = () =>
    (reading ??= (sources.productionTokens?.() ?? Promise.resolve(undefined))
      .catch(() => undefined)
      .finally(() => {
        reading = undefined;
      }));

  const m = {
    registry,
    sources,

    // ── Security: Production only ──────────────────────────────────────────────────────────
    productionDownloads: new Counter({
      name: 'tollgate_production_downloads_total',
      help: 'Successful artifact downloads with a Production token, sent in full (see tollgate_production_downloads_aborted_total).',
      labelNames: ['ecosystem', 'project', 'token_name', 'sealed'] as const,
      registers: [registry],
      collect() {
        flushTallies(this);
      },
    }),
    productionDownloadsAborted: new Counter({
      name: 'tollgate_production_downloads_aborted_total',
      help: 'Artifact downloads with a Production token that the client abandoned before the end of the body (not counted as downloads).',
      labelNames: ['ecosystem', 'project', 'token_name', 'sealed'] as const,
      registers: [registry],
      collect() {
        flushTallies(this);
      },
    }),
    productionDownloadBytes: new Counter({
      name: 'tollgate_production_download_bytes_total',
      help: 'Artifact bytes sent for Production downloads, abandoned ones included.',
      labelNames: ['ecosystem', 'project', 'token_name'] as const,
      registers: [registry],
      collect() {
        flushTallies(this);
      },
    }),
    productionMetadataRequests: new Counter({
      name: 'tollgate_production_metadata_requests_total',
      help: 'Metadata requests (indexes, packuments, checksums) with a Production token.',
      labelNames: ['ecosystem', 'project', 'token_name'] as const,
      registers: [registry],
      collect() {
        flushTallies(this);
      },
    }),
    tokenExpiry: new Gauge({
      name: 'tollgate_production_token_expiry_timestamp_seconds',
      help: 'When each active Production token expires (absent for tokens that never expire).',
      labelNames: ['token_name', 'token_id'] as const,
      aggregator: 'max', // every worker reads the same store: never sum timestamps
      registers: [registry],
      async collect() {
        const tokens = await productionTokens();
        if (!tokens) return;
        this.reset();
        const now = Date.now();
        for (const t of tokens) {
          if (t.expiresAt !== null && t.expiresAt > now) this.labels(t.name, t.id).set(t.expiresAt / 1000);
        }
      },
    }),
    tokenLastUsed: new Gauge({
      name: 'tollgate_production_token_last_used_timestamp_seconds',
      help: 'When each Production token was last used.',
      labelNames: ['token_name', 'token_id'] as const,
      aggregator: 'max',
      registers: [registry],
      async collect() {
        const tokens = await productionTokens();
        if (!tokens) return;
        this.reset();
        for (const t of tokens) {
          if (t.lastUsedAt !== null) this.labels(t.name, t.id).set(t.lastUsedAt / 1000);
        }
      },
    }),

    tokensLeaked: new Counter({
      name: 'tollgate_tokens_leaked_total',
      help: 'Live tokens reported leaked and revoked, by reporter (github: signed secret-scanning reports; admin: the revoke-leaked API) and token type. Each also writes a leaked alert to the Production sinks.',
      labelNames: ['reporter', 'token_type'] as const,
      registers: [registry],
    }),

    ciExchanges: new Counter({
      name: 'tollgate_ci_exchanges_total',
      help: 'Token exchanges (POST /-/tollgate/token-exchange), by trust policy (none before one accepted the ID token), outcome (issued, invalid_request, refused, replayed, rate_limited, unavailable, error) and issued type (none when nothing was issued).',
      labelNames: ['provider', 'outcome', 'type'] as const,
      registers: [registry],
    }),
    ciTokensPurged: new Counter({
      name: 'tollgate_ci_tokens_purged_total',
      help: "Expired tokens issued to CI jobs deleted from the store by this instance's purge.",
      registers: [registry],
    }),

    // ── Operations: all traffic, no per-token labels ───────────────────────────────────────
    // Moved on every request: plain-number slots, totals handed to prom-client when scraped.
    requestDuration: new HotHistogram({
      name: 'tollgate_http_request_duration_seconds',
      help: 'Proxy request duration, from arrival to the end of the response.',
      labelNames: ['token_type', 'status_class'] as const,
      buckets: DURATION_BUCKETS_S,
      registers: [registry],
    }),
    requests: new HotCounter({
      name: 'tollgate_http_requests_total',
      help: 'Proxy requests by status class and token type (none when unauthenticated).',
      labelNames: ['token_type', 'status_class'] as const,
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'tollgate_auth_failures_total',
      help: 'Failed authentications by reason. A request with no credential at all is a challenge, not a failure.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    restrictionRefusals: new Counter({
      name: 'tollgate_token_restriction_refusals_total',
      help: 'Requests of valid tokens refused by their restrictions, by restriction (route, package, network, rate). Network refusals are failed authentications too.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    authChallenges: new Counter({
      name: 'tollgate_auth_challenges_total',
      help: 'Requests without any credential, answered with a 401 challenge (Maven, pip and cargo do this by design).',
      registers: [registry],
    }),
    cacheLookups: new Counter({
      name: 'tollgate_token_cache_lookups_total',
      help: 'Token cache lookups by result (hit, negative_hit, miss).',
      labelNames: ['result'] as const,
      registers: [registry],
      collect() {
        const stats = sources.cacheStats?.();
        if (!stats) return;
        this.reset();
        this.labels('hit').inc(stats.hits);
        this.labels('negative_hit').inc(stats.negativeHits);
        this.labels('miss').inc(stats.misses);
      },
    }),
    storeDuration: new Histogram({
      name: 'tollgate_token_store_duration_seconds',
      help: 'Token store reads on a cache miss.',
      labelNames: ['outcome'] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5],
      registers: [registry],
    }),
    upstreamErrors: new Counter({
      name: 'tollgate_upstream_errors_total',
      help: 'Upstream failures by kind (timeout, refused, reset, ...).',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    activityQueueDepth: new Gauge({
      name: 'tollgate_activity_queue_depth',
      help: 'Activity events waiting for a sink, in memory and on disk.',
      labelNames: ['sink', 'where'] as const,
      registers: [registry],
      collect() {
        const depths = sources.activityQueueDepth?.();
        if (!depths) return;
        for (const d of depths) {
          this.labels(d.sink, 'memory').set(d.memory);
          this.labels(d.sink, 'disk').set(d.disk);
        }
      },
    }),
    activityEvents: new Counter({
      name: 'tollgate_activity_events_total',
      help: 'Activity events by sink and outcome (delivered, retried, dropped).',
      labelNames: ['sink', 'outcome'] as const,
      registers: [registry],
    }),
    activityRecentSkipped: new Counter({
      name: 'tollgate_activity_recent_skipped_total',
      help: 'Stored lines the recent-activity view skipped for being longer than an event can be (4 KiB).',
      registers: [registry],
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Bounds a client-chosen label value: configured values always get their own label, the first
 * `max` others seen too, everything after that counts as `other`.
 */
export function createLabelLimiter(allowed: readonly string[], max: number): (value: string) => string {
  const known = new Set(allowed);
  let extra = 0;
  return function limitLabel(value) {
    if (known.has(value)) return value;
    if (extra < max) {
      known.add(value);
      extra++;
      return value;
    }
    return 'other';
  };
}

export function statusClass(status: number): string {
  if (status >= 500) return '5xx';
  if (status >= 400) return '4xx';
  if (status >= 300) return '3xx';
  if (status >= 200) return '2xx';
  return '1xx';
}
