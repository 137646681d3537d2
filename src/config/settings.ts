import { z } from 'zod';
import { parseRedisUrl } from '../redis/url.js';
import {
  routeFileSchema,
  schemaShape,
  ROUTE_FIELDS,
  ACTIVITY_SINKS,
  LOG_LEVELS,
  DEFAULT_PORT,
  DEFAULT_HOST,
  DEFAULT_ADMIN_PORT,
  DEFAULT_ADMIN_HOST,
  DEFAULT_REDIS_PREFIX,
  DEFAULT_DATA_DIR,
  DEFAULT_LOG_LEVEL,
  DEFAULT_UPSTREAM_TIMEOUT_MS,
  DEFAULT_UPSTREAM_CONNECTIONS,
  DEFAULT_UPSTREAM_HELD_PER_TOKEN,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_CLIENT_IDLE_TIMEOUT_MS,
  DEFAULT_CACHE_TTL_MS,
  DEFAULT_CACHE_MAX,
  DEFAULT_NEGATIVE_CACHE_TTL_MS,
  DEFAULT_NEGATIVE_CACHE_MAX,
  DEFAULT_CHANGE_POLL_MS,
  DEFAULT_CACHE_STALE_MS,
  DEFAULT_LAST_USED_FLUSH_MS,
  DEFAULT_SHUTDOWN_GRACE_MS,
  DEFAULT_ACTIVITY_WEBHOOK_TIMEOUT_MS,
  DEFAULT_ACTIVITY_STREAM_MAXLEN,
  DEFAULT_ACTIVITY_MEMORY_EVENTS,
  DEFAULT_ACTIVITY_SPOOL_MAX_BYTES,
  DEFAULT_ACTIVITY_BATCH_SIZE,
  DEFAULT_ACTIVITY_FLUSH_MS,
  DEFAULT_ACTIVITY_RECENT_MAX,
  DEFAULT_ACTIVITY_RETRY_MAX_MS,
  DEFAULT_METRICS_MAX_PROJECTS,
  DEFAULT_AUTH_FAILURE_BURST,
  DEFAULT_AUTH_FAILURE_REFILL_PER_MINUTE,
  DEFAULT_AUTH_FAILURE_MAX_ADDRESSES,
  DEFAULT_AUTH_FAILURE_WINDOW_MS,
  DEFAULT_SESSION_TTL_MS,
  DEFAULT_OIDC_ADMIN_CLAIM,
  type Field,
} from './schema.js';
import {
  CI_PROVIDER_FIELDS,
  ciProviderSchema,
  DEFAULT_CI_CLOCK_SKEW_MS,
  DEFAULT_CI_EXCHANGES_PER_ADDRESS_PER_MINUTE,
  DEFAULT_CI_EXCHANGES_PER_SUBJECT_PER_MINUTE,
  DEFAULT_CI_MAX_ID_TOKEN_LIFETIME_MS,
  DEFAULT_CI_PURGE_GRACE_MS,
  DEFAULT_CI_PURGE_INTERVAL_MS,
} from './ci.js';

// Value types. Messages say the rule only: the reporter puts the key (env var or `file: key`) before it.

const port = () => {
  const rule = 'must be a port number (0-65535)';
  return z.coerce.number({ error: rule }).int(rule).min(0, rule).max(65535, rule);
};

const durationMs = (min = 1) =>
  z.coerce
    .number({ error: 'must be a whole number of milliseconds' })
    .int('must be a whole number of milliseconds')
    .min(min, `must be at least ${min} ms`);

const count = (min = 1) =>
  z.coerce
    .number({ error: 'must be a whole number' })
    .int('must be a whole number')
    .min(min, `must be at least ${min}`);

/** A comma-separated env value or a JSON array, trimmed, empty entries dropped. */
const commaList = () =>
  z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (typeof v === 'string' ? v.split(',') : v).map((x) => x.trim()).filter(Boolean));

/** Sections of the reference, in order. */
export const GROUPS = {
  listeners: 'Listeners and upstreams',
  tokens: 'Tokens, cache and brute-force limit',
  activity: 'Production activity and metrics',
  admin: 'Admin API and page',
  ci: 'CI token exchange',
} as const;

/**
 * A setting, declared once: its env var, type and default (the schema), reference line and
 * secrecy. The config file names it by its key (camelCase), or by `file` where that is given; the
 * environment wins over the file.
 */
export interface Setting extends Field {
  /** Every setting but `routes` and `ciProviders` (lists only the file can hold) has an env var. */
  env?: `TOLLGATE_${string}`;
  group: keyof typeof GROUPS;
  /**
   * The config file's key, where it is not the settings key: a field of an object, `object.field`
   * (`secretScanning.publicKeysFile` is written `{"secretScanning": {"publicKeysFile": ...}}`).
   */
  file?: `${string}.${string}`;
  /** The fields of each entry, for a list of objects. */
  items?: Record<string, Field>;
}

const redisUrl = z.string().superRefine((value, ctx) => {
  const target = parseRedisUrl(value);
  if (typeof target === 'string') ctx.addIssue({ code: 'custom', message: target });
});

/** Every setting. Adding one here gives it its env var, file key, default, checks and reference row. */
// A table, one setting a line: Prettier would spread each over five.
// prettier-ignore
export const SETTINGS = {
  port: { env: 'TOLLGATE_PORT', group: 'listeners', schema: port().default(DEFAULT_PORT), doc: 'Proxy listener port' },
  host: { env: 'TOLLGATE_HOST', group: 'listeners', schema: z.string().min(1).default(DEFAULT_HOST), doc: 'Proxy listener address' },
  adminPort: { env: 'TOLLGATE_ADMIN_PORT', group: 'listeners', schema: port().default(DEFAULT_ADMIN_PORT), doc: 'Admin listener port (health, metrics, JWKS, admin API, Settings › Tokens page)' },
  adminHost: { env: 'TOLLGATE_ADMIN_HOST', group: 'listeners', schema: z.string().min(1).default(DEFAULT_ADMIN_HOST), doc: 'Admin listener address; beyond loopback, `TOLLGATE_METRICS_TOKEN` is required' },
  upstream: { env: 'TOLLGATE_UPSTREAM', group: 'listeners', schema: z.string().min(1).optional(), secret: 'url', shown: 'the shipped `examples/artifacts`', doc: 'One route `/` to this http(s) URL or local directory (not together with config-file routes)' },
  routes: { group: 'listeners', schema: z.array(routeFileSchema).optional(), items: ROUTE_FIELDS, shown: 'one route `/`', doc: 'The routes (instead of `TOLLGATE_UPSTREAM`), see [Routes](#routes)' },
  publicUrl: { env: 'TOLLGATE_PUBLIC_URL', group: 'listeners', schema: z.string().optional(), secret: 'url', doc: 'Origin clients use (`https://artifacts.example.com`): rewritten URLs and X-Forwarded-Host use it' },
  trustedProxies: { env: 'TOLLGATE_TRUSTED_PROXIES', group: 'listeners', schema: commaList().optional(), shown: 'none', doc: 'Comma-separated addresses/CIDRs whose X-Forwarded-For is believed (logs, rate limit, events)' },
  tlsCert: { env: 'TOLLGATE_TLS_CERT', group: 'listeners', schema: z.string().optional(), doc: 'PEM certificate file: the proxy port speaks HTTPS (with `TOLLGATE_TLS_KEY`)' },
  tlsKey: { env: 'TOLLGATE_TLS_KEY', group: 'listeners', schema: z.string().optional(), doc: 'PEM private key file (with `TOLLGATE_TLS_CERT`)' },
  upstreamTimeoutMs: { env: 'TOLLGATE_UPSTREAM_TIMEOUT_MS', group: 'listeners', schema: durationMs().default(DEFAULT_UPSTREAM_TIMEOUT_MS), doc: 'Wait for an upstream connection and its response headers, and longest silence mid-body (then 504 or a cut; a download held back by a slow client is not silent). One timer checks every request in flight each tenth of this (at most each second), so a timeout fires up to three such steps late. A pooled keep-alive connection idle this long is closed, or 2 s before the upstream\'s own `Keep-Alive: timeout` if that is shorter' },
  upstreamConnections: { env: 'TOLLGATE_UPSTREAM_CONNECTIONS', group: 'listeners', schema: count().default(DEFAULT_UPSTREAM_CONNECTIONS), doc: 'Upstream requests one route may have in flight per worker process (a download held back by a slow client no longer counts, see the next setting). Past it, requests wait for a slot, at most TOLLGATE_UPSTREAM_TIMEOUT_MS (then 504)' },
  upstreamHeldPerToken: { env: 'TOLLGATE_UPSTREAM_HELD_PER_TOKEN', group: 'listeners', schema: count().default(DEFAULT_UPSTREAM_HELD_PER_TOKEN), doc: 'Downloads one token may keep, per route and worker process, whose client has not read for more than a second (each holds an upstream connection). Past it, that token\'s new requests get 429 with Retry-After, so one credential cannot take a route\'s upstream connections from everyone else. Downloads a client reads at full speed never count: a CI fleet sharing one token is not limited by it' },
  headersTimeoutMs: { env: 'TOLLGATE_HEADERS_TIMEOUT_MS', group: 'listeners', schema: durationMs().default(DEFAULT_HEADERS_TIMEOUT_MS), doc: 'Time a client has to send its request headers (slowloris)' },
  clientIdleTimeoutMs: { env: 'TOLLGATE_CLIENT_IDLE_TIMEOUT_MS', group: 'listeners', schema: durationMs().default(DEFAULT_CLIENT_IDLE_TIMEOUT_MS), doc: 'A client connection with no traffic either way for this long while a request is open (or before its first) is closed. Between requests a kept-alive connection is closed after 30 s idle (announced as `Keep-Alive: timeout=30`). Each open connection holds a file descriptor and, parked while idle, ~3.5 KiB (Node 20 and 24 alike; docs/operations.md, "Many idle connections")' },
  shutdownGraceMs: { env: 'TOLLGATE_SHUTDOWN_GRACE_MS', group: 'listeners', schema: durationMs(0).default(DEFAULT_SHUTDOWN_GRACE_MS), doc: 'How long SIGTERM waits for in-flight downloads' },
  workers: {
    env: 'TOLLGATE_WORKERS', group: 'listeners', doc: 'Gateway processes sharing the ports (`auto`: one per CPU)',
    schema: z.union([z.literal('auto'), count()], { error: 'must be a whole number of at least 1, or auto' }).default(1),
  },
  logLevel: {
    env: 'TOLLGATE_LOG_LEVEL', group: 'listeners', doc: LOG_LEVELS.map((l) => `\`${l}\``).join(', '),
    schema: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default(DEFAULT_LOG_LEVEL),
  },
  dataDir: { env: 'TOLLGATE_DATA_DIR', group: 'listeners', schema: z.string().min(1).default(DEFAULT_DATA_DIR), doc: 'Embedded token store (`tollgate.db`), activity files and disk buffers, generated keys' },

  redisUrl: { env: 'TOLLGATE_REDIS_URL', group: 'tokens', schema: redisUrl.optional(), secret: 'url', doc: '`redis://`, `rediss://`, `redis-sentinel://` or `redis-cluster://`: tokens (and the activity stream, rate limits) in Redis' },
  redisPrefix: { env: 'TOLLGATE_REDIS_PREFIX', group: 'tokens', schema: z.string().min(1).default(DEFAULT_REDIS_PREFIX), doc: 'Prefix of every Redis key (keep a `{hash tag}` for Redis Cluster)' },
  cacheTtlMs: { env: 'TOLLGATE_CACHE_TTL_MS', group: 'tokens', schema: durationMs().default(DEFAULT_CACHE_TTL_MS), doc: 'Token cache TTL (a backstop: changes are pushed)' },
  cacheMax: { env: 'TOLLGATE_CACHE_MAX', group: 'tokens', schema: count().default(DEFAULT_CACHE_MAX), doc: 'Token cache entries' },
  negativeCacheTtlMs: { env: 'TOLLGATE_NEGATIVE_CACHE_TTL_MS', group: 'tokens', schema: durationMs().default(DEFAULT_NEGATIVE_CACHE_TTL_MS), doc: 'How long an unknown token stays known-unknown' },
  negativeCacheMax: { env: 'TOLLGATE_NEGATIVE_CACHE_MAX', group: 'tokens', schema: count().default(DEFAULT_NEGATIVE_CACHE_MAX), doc: 'Unknown-token cache entries (apart, so a flood cannot evict real tokens)' },
  cacheStaleMs: { env: 'TOLLGATE_CACHE_STALE_MS', group: 'tokens', schema: durationMs(0).default(DEFAULT_CACHE_STALE_MS), doc: 'Serve-stale: cached tokens keep working this long after the store was last reached; then 503' },
  changePollMs: { env: 'TOLLGATE_CHANGE_POLL_MS', group: 'tokens', schema: durationMs(10).default(DEFAULT_CHANGE_POLL_MS), doc: 'How often the store\'s change counter is checked (besides Redis pub/sub)' },
  secretScanningKeysFile: { env: 'TOLLGATE_SECRET_SCANNING_KEYS_FILE', file: 'secretScanning.publicKeysFile', group: 'tokens', schema: z.string().optional(), doc: 'Public keys, in GitHub\'s format (`{"public_keys": [{"key_identifier", "key", "is_current"}]}`), that sign secret-scanning reports: turns on `POST /-/tollgate/secret-scanning` on the proxy port ([docs/tokens.md](tokens.md#leaked-tokens))' },
  secretScanningKeysUrl: { env: 'TOLLGATE_SECRET_SCANNING_KEYS_URL', file: 'secretScanning.publicKeysUrl', group: 'tokens', schema: z.string().optional(), secret: 'url', doc: 'The same keys fetched from this URL instead (https, or http on loopback; not together with the file), again at most every 5 s when a report names a key not yet known; GitHub publishes its at `https://api.github.com/meta/public_keys/secret_scanning` (never a default)' },
  lastUsedFlushMs: { env: 'TOLLGATE_LAST_USED_FLUSH_MS', group: 'tokens', schema: durationMs(100).default(DEFAULT_LAST_USED_FLUSH_MS), doc: 'How often last-used times are written to the store (batched, never per request)' },
  authFailureBurst: { env: 'TOLLGATE_AUTH_FAILURE_BURST', group: 'tokens', schema: count(0).default(DEFAULT_AUTH_FAILURE_BURST), doc: 'Failed authentications one client address may make in a row (`0` turns the limit off)' },
  authFailureRefillPerMinute: { env: 'TOLLGATE_AUTH_FAILURE_REFILL_PER_MINUTE', group: 'tokens', schema: count(1).default(DEFAULT_AUTH_FAILURE_REFILL_PER_MINUTE), doc: 'How fast that allowance refills' },
  authFailureMaxAddresses: { env: 'TOLLGATE_AUTH_FAILURE_MAX_ADDRESSES', group: 'tokens', schema: count(100).default(DEFAULT_AUTH_FAILURE_MAX_ADDRESSES), doc: 'Addresses tracked at once (bounded memory)' },
  authFailureWindowMs: { env: 'TOLLGATE_AUTH_FAILURE_WINDOW_MS', group: 'tokens', schema: durationMs(1000).default(DEFAULT_AUTH_FAILURE_WINDOW_MS), doc: 'Window of the fleet-wide failure count in Redis' },

  activitySinks: { env: 'TOLLGATE_ACTIVITY_SINKS', group: 'activity', schema: commaList().optional(), shown: '`redis` with Redis, else `file`', doc: `Comma list of ${ACTIVITY_SINKS.map((s) => `\`${s}\``).join(', ')}` },
  activityWebhookUrl: { env: 'TOLLGATE_ACTIVITY_WEBHOOK_URL', group: 'activity', schema: z.string().optional(), secret: 'url', doc: 'HTTPS receiver of signed batches (http only on loopback); adds the `webhook` sink' },
  activityWebhookTimeoutMs: { env: 'TOLLGATE_ACTIVITY_WEBHOOK_TIMEOUT_MS', group: 'activity', schema: durationMs().default(DEFAULT_ACTIVITY_WEBHOOK_TIMEOUT_MS), doc: 'One webhook delivery attempt' },
  signingKeyFile: { env: 'TOLLGATE_SIGNING_KEY_FILE', group: 'activity', schema: z.string().optional(), shown: '`<data dir>/signing-keys.json`, generated 0600', doc: 'JWK Set: the first key signs, the others stay published' },
  activityDevelopment: {
    env: 'TOLLGATE_ACTIVITY_DEVELOPMENT', group: 'activity', doc: '`separate`: record Development activity in its own stream/file (never the webhook)',
    schema: z.enum(['off', 'separate'], { error: 'must be off or separate' }).default('off'),
  },
  activityStreamMaxLen: { env: 'TOLLGATE_ACTIVITY_STREAM_MAXLEN', group: 'activity', schema: count(100).default(DEFAULT_ACTIVITY_STREAM_MAXLEN), doc: 'Redis Stream `MAXLEN ~`' },
  activityMemoryEvents: { env: 'TOLLGATE_ACTIVITY_MEMORY_EVENTS', group: 'activity', schema: count().default(DEFAULT_ACTIVITY_MEMORY_EVENTS), doc: 'Events per sink held in memory before spilling to disk' },
  activitySpoolMaxBytes: { env: 'TOLLGATE_ACTIVITY_SPOOL_MAX_BYTES', group: 'activity', schema: count(0).default(DEFAULT_ACTIVITY_SPOOL_MAX_BYTES), doc: 'Disk buffer per sink; past it events are dropped and counted' },
  activityBatchSize: { env: 'TOLLGATE_ACTIVITY_BATCH_SIZE', group: 'activity', schema: count().default(DEFAULT_ACTIVITY_BATCH_SIZE), doc: 'Events per delivered batch' },
  activityFlushMs: { env: 'TOLLGATE_ACTIVITY_FLUSH_MS', group: 'activity', schema: durationMs(0).default(DEFAULT_ACTIVITY_FLUSH_MS), doc: 'How long a partial batch waits' },
  activityRetryMaxMs: { env: 'TOLLGATE_ACTIVITY_RETRY_MAX_MS', group: 'activity', schema: durationMs(10).default(DEFAULT_ACTIVITY_RETRY_MAX_MS), doc: 'Longest wait between retries of a failing sink' },
  activityRecentMax: { env: 'TOLLGATE_ACTIVITY_RECENT_MAX', group: 'activity', schema: count(10).default(DEFAULT_ACTIVITY_RECENT_MAX), doc: 'Recent activity without the Redis Stream: lines of the newest Production NDJSON files one view reads at most (its I/O bound), or, with no `file` sink, rows kept in the SQLite table' },
  metricsToken: {
    env: 'TOLLGATE_METRICS_TOKEN', group: 'activity', secret: 'value', doc: 'Bearer credential `/metrics` requires; mandatory when `TOLLGATE_ADMIN_HOST` is not loopback',
    schema: z.string().regex(/^[\x21-\x7e]{16,}$/, 'must be at least 16 printable characters without spaces').optional(),
  },
  metricsProjects: { env: 'TOLLGATE_METRICS_PROJECTS', group: 'activity', schema: commaList().optional(), shown: 'none', doc: 'Projects that always get their own metric label' },
  metricsMaxProjects: { env: 'TOLLGATE_METRICS_MAX_PROJECTS', group: 'activity', schema: count(0).default(DEFAULT_METRICS_MAX_PROJECTS), doc: 'Other projects labelled, first seen first; the rest count as `other`' },

  // The admin token is checked in admin.ts, by rules that never need its value in a message.
  adminToken: { env: 'TOLLGATE_ADMIN_TOKEN', group: 'admin', schema: z.string().optional(), secret: 'value', shown: 'generated into `<data dir>/admin-token` (0600)', doc: 'Admin credential (16+ printable characters)' },
  adminTokenFile: { env: 'TOLLGATE_ADMIN_TOKEN_FILE', group: 'admin', schema: z.string().optional(), doc: 'File holding it; when neither is set one is generated into `<data dir>/admin-token` (0600) and the log names the file' },
  publicAdminUrl: { env: 'TOLLGATE_PUBLIC_ADMIN_URL', group: 'admin', schema: z.string().optional(), secret: 'url', doc: 'Origin browsers use for the page: the CSRF Origin check; `https` makes the cookie Secure' },
  sessionTtlMs: {
    env: 'TOLLGATE_SESSION_TTL_MS', group: 'admin', doc: 'Browser session lifetime (never renewed)',
    schema: durationMs(1000).max(86_400_000, 'must be at most 86400000 ms (24 h)').default(DEFAULT_SESSION_TTL_MS),
  },
  oidcIssuer: { env: 'TOLLGATE_OIDC_ISSUER', group: 'admin', schema: z.string().optional(), doc: 'Accept OIDC/JWT bearers from this issuer (`iss`; with the audience and JWKS URL)' },
  oidcAudience: { env: 'TOLLGATE_OIDC_AUDIENCE', group: 'admin', schema: z.string().optional(), doc: 'The `aud` those bearers must carry' },
  oidcJwksUrl: { env: 'TOLLGATE_OIDC_JWKS_URL', group: 'admin', schema: z.string().optional(), secret: 'url', doc: 'JWKS their signature is checked against (https, or http on loopback)' },
  oidcAdminClaim: { env: 'TOLLGATE_OIDC_ADMIN_CLAIM', group: 'admin', schema: z.string().optional(), shown: `\`${DEFAULT_OIDC_ADMIN_CLAIM}\``, doc: '`<claim>=<value>` an admin\'s JWT must carry (a dot path or a top-level name; arrays match a member)' },

  ciProviders: { group: 'ci', schema: z.array(ciProviderSchema).optional(), items: CI_PROVIDER_FIELDS, shown: 'none', doc: 'Trust policies for CI jobs\' OIDC ID tokens, see [CI trust policies](#ci-trust-policies) and [docs/ci.md](ci.md)' },
  ciMaxIdTokenLifetimeMs: { env: 'TOLLGATE_CI_MAX_ID_TOKEN_LIFETIME_MS', group: 'ci', schema: durationMs(1000).max(86_400_000, 'must be at most 86400000 ms (24 h)').default(DEFAULT_CI_MAX_ID_TOKEN_LIFETIME_MS), doc: 'Longest ID-token lifetime (`exp - iat`) accepted; an ID token without `exp` (a legacy Kubernetes service-account token) is refused' },
  ciClockSkewMs: { env: 'TOLLGATE_CI_CLOCK_SKEW_MS', group: 'ci', schema: durationMs(0).default(DEFAULT_CI_CLOCK_SKEW_MS), doc: 'Clock skew allowed on an ID token\'s `exp`, `nbf` and `iat` (at most 300000)' },
  ciExchangesPerAddressPerMinute: { env: 'TOLLGATE_CI_EXCHANGES_PER_ADDRESS_PER_MINUTE', group: 'ci', schema: count().default(DEFAULT_CI_EXCHANGES_PER_ADDRESS_PER_MINUTE), doc: 'Token exchanges one client address may make in any 60 seconds (then 429)' },
  ciExchangesPerSubjectPerMinute: { env: 'TOLLGATE_CI_EXCHANGES_PER_SUBJECT_PER_MINUTE', group: 'ci', schema: count().default(DEFAULT_CI_EXCHANGES_PER_SUBJECT_PER_MINUTE), doc: 'Token exchanges one CI identity (policy and `sub`) may make in any 60 seconds (then 429)' },
  ciPurgeGraceMs: { env: 'TOLLGATE_CI_PURGE_GRACE_MS', group: 'ci', schema: durationMs(0).max(30 * 86_400_000, 'must be at most 2592000000 ms (30 days)').default(DEFAULT_CI_PURGE_GRACE_MS), doc: 'How long a token issued to a CI job stays in the store after it expired (shown as expired), before the purge deletes it' },
  ciPurgeIntervalMs: { env: 'TOLLGATE_CI_PURGE_INTERVAL_MS', group: 'ci', schema: durationMs(100).default(DEFAULT_CI_PURGE_INTERVAL_MS), doc: 'How often a gateway with `ciProviders` purges expired CI tokens (several instances may: each token is deleted once)' },
} satisfies Record<string, Setting>;

export type SettingKey = keyof typeof SETTINGS;

type Shape = { [K in SettingKey]: (typeof SETTINGS)[K]['schema'] };

/** The raw settings, before the checks that need more than one of them. */
export function settingsSchema() {
  return z.object(schemaShape<Shape>(SETTINGS)).strict();
}

export type Settings = z.infer<ReturnType<typeof settingsSchema>>;

/** Settings key → config file key: the settings key itself, or its dotted `file` path. */
export const FILE_KEYS: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(Object.entries(SETTINGS as Record<string, Setting>).map(([key, s]) => [key, s.file ?? key])),
);

/** Settings key → env var name. */
export const ENV_NAMES: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(
    Object.entries(SETTINGS as Record<string, Setting>).flatMap(([key, s]) => (s.env ? [[key, s.env]] : [])),
  ),
);
