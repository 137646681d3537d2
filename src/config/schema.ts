import { z } from 'zod';
import { fileURLToPath } from 'node:url';

export const ECOSYSTEMS = [
  'npm', 'pypi', 'maven', 'go', 'nuget', 'composer', 'deb', 'rpm', 'apk', 'cargo', 'generic',
] as const;
export type Ecosystem = (typeof ECOSYSTEMS)[number];

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = '0.0.0.0';
export const DEFAULT_ADMIN_HOST = '127.0.0.1';
export const DEFAULT_ADMIN_PORT = 9090;
export const DEFAULT_DATA_DIR = './data';
export const DEFAULT_REDIS_PREFIX = '{tollgate}:';
export const DEFAULT_LOG_LEVEL = 'info';
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000;
export const DEFAULT_CACHE_TTL_MS = 300_000;
export const DEFAULT_CACHE_MAX = 50_000;
export const DEFAULT_NEGATIVE_CACHE_TTL_MS = 10_000;
export const DEFAULT_NEGATIVE_CACHE_MAX = 50_000;
export const DEFAULT_CHANGE_POLL_MS = 250;
export const DEFAULT_CACHE_STALE_MS = 120_000;
export const DEFAULT_LAST_USED_FLUSH_MS = 5_000;
export const DEFAULT_SHUTDOWN_GRACE_MS = 25_000;
export const DEFAULT_HEADERS_TIMEOUT_MS = 20_000;
export const DEFAULT_CLIENT_IDLE_TIMEOUT_MS = 60_000;
export const ACTIVITY_SINKS = ['file', 'redis', 'webhook'] as const;
export type ActivitySinkName = (typeof ACTIVITY_SINKS)[number];
export const DEFAULT_ACTIVITY_WEBHOOK_TIMEOUT_MS = 10_000;
export const DEFAULT_ACTIVITY_STREAM_MAXLEN = 1_000_000;
export const DEFAULT_ACTIVITY_MEMORY_EVENTS = 10_000;
export const DEFAULT_ACTIVITY_SPOOL_MAX_BYTES = 256 * 1024 * 1024;
export const DEFAULT_ACTIVITY_BATCH_SIZE = 500;
export const DEFAULT_ACTIVITY_FLUSH_MS = 200;
export const DEFAULT_ACTIVITY_RECENT_MAX = 10_000;
export const DEFAULT_ACTIVITY_RETRY_MAX_MS = 30_000;
export const DEFAULT_METRICS_MAX_PROJECTS = 50;
export const DEFAULT_AUTH_FAILURE_BURST = 100;
export const DEFAULT_AUTH_FAILURE_REFILL_PER_MINUTE = 60;
export const DEFAULT_AUTH_FAILURE_MAX_ADDRESSES = 100_000;
export const DEFAULT_AUTH_FAILURE_WINDOW_MS = 60_000;
/** Admin browser sessions are short-lived: 8 hours. */
export const DEFAULT_SESSION_TTL_MS = 8 * 3_600_000;
/** What an OIDC bearer must carry to be an admin: `<claim>=<value>`. */
export const DEFAULT_OIDC_ADMIN_CLAIM = 'roles=tollgate-admin';
/** Admin tokens set by an operator must be at least this long (generated ones are 43 characters). */
export const MIN_ADMIN_TOKEN_LENGTH = 16;
/** The artifact tree shipped with the repo: what `npm start` serves when nothing is configured. */
export const DEFAULT_UPSTREAM_DIR = fileURLToPath(new URL('../../examples/artifacts', import.meta.url));

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const port = (name: string) =>
  z.coerce.number({ error: `${name} must be a port number (0-65535)` })
    .int(`${name} must be a port number (0-65535)`)
    .min(0, `${name} must be a port number (0-65535)`)
    .max(65535, `${name} must be a port number (0-65535)`);

const durationMs = (name: string, min = 1) =>
  z.coerce.number({ error: `${name} must be a whole number of milliseconds` })
    .int(`${name} must be a whole number of milliseconds`)
    .min(min, `${name} must be at least ${min} ms`);

const count = (name: string, min = 1) =>
  z.coerce.number({ error: `${name} must be a whole number` })
    .int(`${name} must be a whole number`)
    .min(min, `${name} must be at least ${min}`);

const upstreamAuthSchema = z.union([
  z.object({ type: z.literal('basic'), username: z.string(), password: z.string() }).strict(),
  z.object({ type: z.literal('bearer'), token: z.string().min(1) }).strict(),
  z.object({ type: z.literal('header'), name: z.string().min(1), value: z.string() }).strict(),
], { error: 'upstreamAuth must be {type:"basic",username,password}, {type:"bearer",token} or {type:"header",name,value}' });

export type UpstreamAuth = z.infer<typeof upstreamAuthSchema>;

export const routeFileSchema = z.object({
  prefix: z.string({ error: 'prefix must be a path starting with "/"' })
    .regex(/^\/[\x21-\x7e]*$/, 'prefix must be a path starting with "/" with no spaces or control characters'),
  upstream: z.string({ error: 'upstream must be an http(s) URL or a directory' }).min(1),
  ecosystem: z.enum(ECOSYSTEMS, { error: `ecosystem must be one of ${ECOSYSTEMS.join(', ')}` }).default('generic'),
  upstreamAuth: upstreamAuthSchema.optional(),
  /** Path prefixes (relative to the route prefix) where a read-only POST is allowed. */
  allowPost: z.array(z.string().regex(/^\//, 'allowPost entries must start with "/"')).default([]),
  /** Rewrite upstream URLs in metadata bodies and redirects. Default: on for npm, pypi, cargo, nuget, composer. */
  rewrite: z.boolean({ error: 'rewrite must be true or false' }).optional(),
  /** Other base URLs the upstream uses for itself in bodies (besides `upstream`). */
  rewriteFrom: z.array(z.string().regex(/^https?:\/\//, 'rewriteFrom entries must be http(s) URLs')).default([]),
}).strict();

/** Ecosystems whose metadata carries absolute upstream URLs, so rewriting is on by default. */
export const REWRITE_BY_DEFAULT: readonly Ecosystem[] = ['npm', 'pypi', 'cargo', 'nuget', 'composer'];

export type RouteFileEntry = z.infer<typeof routeFileSchema>;

/**
 * The raw settings before resolution. Each key can come from an env var
 * (`TOLLGATE_<SNAKE_CASE>`) or the JSON config file (camelCase); env wins.
 */
export function settingsSchema() {
  return z.object({
    port: port('TOLLGATE_PORT').default(DEFAULT_PORT),
    host: z.string().min(1).default(DEFAULT_HOST),
    adminPort: port('TOLLGATE_ADMIN_PORT').default(DEFAULT_ADMIN_PORT),
    adminHost: z.string().min(1).default(DEFAULT_ADMIN_HOST),
    upstream: z.string().min(1).optional(),
    routes: z.array(routeFileSchema).optional(),
    redisUrl: z.string().regex(/^(rediss?|redis-sentinel|redis-cluster):\/\//, 'TOLLGATE_REDIS_URL must be a redis://, rediss://, redis-sentinel:// or redis-cluster:// URL').optional(),
    redisPrefix: z.string().min(1).default(DEFAULT_REDIS_PREFIX),
    dataDir: z.string().min(1).default(DEFAULT_DATA_DIR),
    logLevel: z.enum(LOG_LEVELS, { error: `TOLLGATE_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}` }).default(DEFAULT_LOG_LEVEL),
    publicUrl: z.string().optional(),
    trustedProxies: z.union([z.string(), z.array(z.string())]).optional(),
    tlsCert: z.string().optional(),
    tlsKey: z.string().optional(),
    upstreamTimeoutMs: durationMs('TOLLGATE_UPSTREAM_TIMEOUT_MS').default(DEFAULT_UPSTREAM_TIMEOUT_MS),
    headersTimeoutMs: durationMs('TOLLGATE_HEADERS_TIMEOUT_MS').default(DEFAULT_HEADERS_TIMEOUT_MS),
    clientIdleTimeoutMs: durationMs('TOLLGATE_CLIENT_IDLE_TIMEOUT_MS').default(DEFAULT_CLIENT_IDLE_TIMEOUT_MS),
    cacheTtlMs: durationMs('TOLLGATE_CACHE_TTL_MS').default(DEFAULT_CACHE_TTL_MS),
    cacheMax: count('TOLLGATE_CACHE_MAX').default(DEFAULT_CACHE_MAX),
    negativeCacheTtlMs: durationMs('TOLLGATE_NEGATIVE_CACHE_TTL_MS').default(DEFAULT_NEGATIVE_CACHE_TTL_MS),
    negativeCacheMax: count('TOLLGATE_NEGATIVE_CACHE_MAX').default(DEFAULT_NEGATIVE_CACHE_MAX),
    changePollMs: durationMs('TOLLGATE_CHANGE_POLL_MS', 10).default(DEFAULT_CHANGE_POLL_MS),
    cacheStaleMs: durationMs('TOLLGATE_CACHE_STALE_MS', 0).default(DEFAULT_CACHE_STALE_MS),
    lastUsedFlushMs: durationMs('TOLLGATE_LAST_USED_FLUSH_MS', 100).default(DEFAULT_LAST_USED_FLUSH_MS),
    shutdownGraceMs: durationMs('TOLLGATE_SHUTDOWN_GRACE_MS', 0).default(DEFAULT_SHUTDOWN_GRACE_MS),
    workers: z.union([z.literal('auto'), count('TOLLGATE_WORKERS')], { error: 'TOLLGATE_WORKERS must be a whole number of at least 1, or auto' }).default(1),
    activitySinks: z.union([z.string(), z.array(z.string())]).optional(),
    activityWebhookUrl: z.string().optional(),
    activityWebhookTimeoutMs: durationMs('TOLLGATE_ACTIVITY_WEBHOOK_TIMEOUT_MS').default(DEFAULT_ACTIVITY_WEBHOOK_TIMEOUT_MS),
    activityDevelopment: z.enum(['off', 'separate'], { error: 'TOLLGATE_ACTIVITY_DEVELOPMENT must be off or separate' }).default('off'),
    activityStreamMaxLen: count('TOLLGATE_ACTIVITY_STREAM_MAXLEN', 100).default(DEFAULT_ACTIVITY_STREAM_MAXLEN),
    activityMemoryEvents: count('TOLLGATE_ACTIVITY_MEMORY_EVENTS').default(DEFAULT_ACTIVITY_MEMORY_EVENTS),
    activitySpoolMaxBytes: count('TOLLGATE_ACTIVITY_SPOOL_MAX_BYTES', 0).default(DEFAULT_ACTIVITY_SPOOL_MAX_BYTES),
    activityBatchSize: count('TOLLGATE_ACTIVITY_BATCH_SIZE').default(DEFAULT_ACTIVITY_BATCH_SIZE),
    activityFlushMs: durationMs('TOLLGATE_ACTIVITY_FLUSH_MS', 0).default(DEFAULT_ACTIVITY_FLUSH_MS),
    activityRecentMax: count('TOLLGATE_ACTIVITY_RECENT_MAX', 10).default(DEFAULT_ACTIVITY_RECENT_MAX),
    activityRetryMaxMs: durationMs('TOLLGATE_ACTIVITY_RETRY_MAX_MS', 10).default(DEFAULT_ACTIVITY_RETRY_MAX_MS),
    signingKeyFile: z.string().optional(),
    metricsProjects: z.union([z.string(), z.array(z.string())]).optional(),
    metricsToken: z.string().regex(/^[\x21-\x7e]{16,}$/, 'TOLLGATE_METRICS_TOKEN must be at least 16 printable characters without spaces').optional(),
    metricsMaxProjects: count('TOLLGATE_METRICS_MAX_PROJECTS', 0).default(DEFAULT_METRICS_MAX_PROJECTS),
    authFailureBurst: count('TOLLGATE_AUTH_FAILURE_BURST', 0).default(DEFAULT_AUTH_FAILURE_BURST),
    authFailureRefillPerMinute: count('TOLLGATE_AUTH_FAILURE_REFILL_PER_MINUTE', 1).default(DEFAULT_AUTH_FAILURE_REFILL_PER_MINUTE),
    authFailureMaxAddresses: count('TOLLGATE_AUTH_FAILURE_MAX_ADDRESSES', 100).default(DEFAULT_AUTH_FAILURE_MAX_ADDRESSES),
    authFailureWindowMs: durationMs('TOLLGATE_AUTH_FAILURE_WINDOW_MS', 1000).default(DEFAULT_AUTH_FAILURE_WINDOW_MS),
    adminToken: z.string().optional(),
    adminTokenFile: z.string().optional(),
    publicAdminUrl: z.string().optional(),
    sessionTtlMs: durationMs('TOLLGATE_SESSION_TTL_MS', 1000).max(86_400_000, 'TOLLGATE_SESSION_TTL_MS must be at most 86400000 ms (24 h)')
      .default(DEFAULT_SESSION_TTL_MS),
    oidcIssuer: z.string().optional(),
    oidcAudience: z.string().optional(),
    oidcJwksUrl: z.string().optional(),
    oidcAdminClaim: z.string().optional(),
  }).strict();
}
