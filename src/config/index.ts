import { readFileSync, statSync, accessSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { availableParallelism } from 'node:os';
import proxyAddr from 'proxy-addr';
import { parseRedisUrl } from '../redis/url.js';
import {
  settingsSchema, DEFAULT_UPSTREAM_DIR, ACTIVITY_SINKS, DEFAULT_OIDC_ADMIN_CLAIM, MIN_ADMIN_TOKEN_LENGTH, REWRITE_BY_DEFAULT,
  type Ecosystem, type UpstreamAuth, type RouteFileEntry, type ActivitySinkName,
} from './schema.js';

export * from './schema.js';

export type Upstream =
  | { kind: 'http'; url: URL }
  | { kind: 'dir'; root: string };

export interface RouteConfig {
  /** Path prefix, always starting and ending with "/". Matched byte for byte against the raw path. */
  prefix: string;
  /** Which artifact layout the route serves. Default: generic. */
  ecosystem: Ecosystem;
  upstream: Upstream;
  /** Header the gateway adds to upstream requests (the route's own credential), if any. */
  upstreamAuthHeader: { name: string; value: string } | undefined;
  /** Full request-path prefixes where a read-only POST is allowed. Default: none. */
  allowPost: string[];
  /**
   * Upstream base URLs to replace with the gateway's public base in metadata bodies and
   * Location headers; undefined when rewriting is off. Default: on for npm, pypi, cargo, nuget, composer.
   */
  rewriteBases: string[] | undefined;
}

export interface Config {
  /** Proxy listener port. Default 8080. */
  port: number;
  /** Proxy listener address. Default 0.0.0.0. */
  host: string;
  /** Admin listener port (health, later the admin API and metrics). Default 9090. */
  adminPort: number;
  /** Admin listener address. Default 127.0.0.1. */
  adminHost: string;
  /** Routes, longest prefix first. Default: one route "/" to the shipped example tree. */
  routes: RouteConfig[];
  /** Redis token store; undefined means the embedded SQLite store. Default: unset. */
  redis: { url: string; prefix: string } | undefined;
  /** Absolute data directory (embedded store, generated keys). Default ./data. */
  dataDir: string;
  /** pino level. Default info. */
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Origin clients use to reach the gateway, no trailing slash. Default: unset (derived per request). */
  publicUrl: string | undefined;
  /** proxy-addr trust list: addresses/CIDRs whose X-Forwarded-For is believed. Default: none. */
  trustedProxies: string[];
  /** TLS for the proxy listener. Default: unset (plain HTTP). */
  tls: { certFile: string; keyFile: string } | undefined;
  /** Time to wait for upstream response headers, and max idle time mid-body. Default 30000 ms. */
  upstreamTimeoutMs: number;
  /** Time a client has to send its request headers. Default 20000 ms. */
  headersTimeoutMs: number;
  /** A client connection with no traffic either way for this long is closed. Default 60000 ms. */
  clientIdleTimeoutMs: number;
  /** Positive token-cache TTL (a backstop: changes are pushed). Default 300000 ms. */
  cacheTtlMs: number;
  /** Positive token-cache entries. Default 50000. */
  cacheMax: number;
  /** Negative (unknown token) cache TTL. Default 10000 ms. */
  negativeCacheTtlMs: number;
  /** Negative cache entries, kept apart so a flood cannot evict real tokens. Default 50000. */
  negativeCacheMax: number;
  /** How often the gateway checks the store's change counter (backstop for pub/sub). Default 250 ms. */
  changePollMs: number;
  /** Serve-stale: how long cached tokens keep working after the store was last reached. Default 120000 ms. */
  cacheStaleMs: number;
  /** How often last-used times are written to the store. Default 5000 ms. */
  lastUsedFlushMs: number;
  /** How long SIGTERM waits for in-flight downloads. Default 25000 ms. */
  shutdownGraceMs: number;
  /** Gateway processes sharing the ports (node:cluster); `auto` = one per CPU. Default 1. */
  workers: number;
  activity: ActivityConfig;
  /** Brute-force limit on failed authentications per client address (0 burst turns it off). */
  authFailureLimit: {
    /** Failures an address may make in a row. Default 100. */
    burst: number;
    /** Refill of that allowance. Default 60 per minute. */
    refillPerMinute: number;
    /** Addresses tracked at once (LRU). Default 100000. */
    maxAddresses: number;
    /** Window of the fleet-wide count in Redis. Default 60000 ms. */
    windowMs: number;
  };
  metrics: {
    /**
     * Bearer credential /metrics requires. Default: unset (then /metrics is open, which is
     * allowed only while the admin listener is on loopback).
     */
    token: string | undefined;
    /** Projects that always get their own metric label. Default: none. */
    projects: string[];
    /** Other projects that get a label, first seen first served; the rest are `other`. Default 50. */
    maxProjects: number;
  };
  admin: AdminConfig;
}

/** The admin API and the Settings › Tokens page (admin listener). */
export interface AdminConfig {
  /** Admin sign-in token (a secret: never log it). Default: unset, generated into <dataDir>/admin-token (0600). */
  token: string | undefined;
  /** Absolute path of TOLLGATE_ADMIN_TOKEN_FILE when the token came from a file. Default: unset. */
  tokenFile: string | undefined;
  /** Origin browsers use for the admin page; an https origin makes the session cookie Secure. Default: unset. */
  publicUrl: string | undefined;
  /** Browser session lifetime (signed cookie, no renewal). Default 28800000 ms (8 h). */
  sessionTtlMs: number;
  /** OIDC/JWT bearer sign-in for admins. Default: unset (admin token only). */
  oidc: OidcConfig | undefined;
}

export interface OidcConfig {
  /** Required `iss`. */
  issuer: string;
  /** Required `aud` (one of). */
  audience: string;
  /** JWKS the bearer's signature is checked against (https, or http on loopback). */
  jwksUrl: string;
  /** `<claim>=<value>`: the claim (name, else dot path) equals the value or is an array holding it. Default roles=tollgate-admin. */
  adminClaim: { name: string; value: string };
}

export interface ActivityConfig {
  /** Production sinks. Default: redis when TOLLGATE_REDIS_URL is set, else file. */
  sinks: ActivitySinkName[];
  /** Webhook receiver (https, or http on loopback). Default: unset. */
  webhook: { url: string; timeoutMs: number } | undefined;
  /** Record Development activity in its own stream. Default false: no Development event at all. */
  development: boolean;
  /** Redis Stream MAXLEN (approximate). Default 1000000. */
  streamMaxLen: number;
  /** Events held in memory per sink before spilling to disk. Default 10000. */
  memoryEvents: number;
  /** Disk buffer per sink before events are dropped. Default 256 MiB. */
  spoolMaxBytes: number;
  /** Events per delivered batch. Default 500. */
  batchSize: number;
  /** How long a partial batch waits. Default 200 ms. */
  flushMs: number;
  /** Recent activity without Redis: NDJSON lines read per view (or rows kept by the SQLite fallback table when there is no file sink). Default 10000. */
  recentMax: number;
  /** Longest wait between retries of a failing sink (exponential backoff, full jitter). Default 30000 ms. */
  retryMaxMs: number;
  /** JWK Set with the webhook signing key. Default: <dataDir>/signing-keys.json, generated. */
  signingKeyFile: string | undefined;
}

export type Env = Record<string, string | undefined>;

/** Settings key → env var name. */
export const ENV_NAMES: Readonly<Record<string, string>> = {
  port: 'TOLLGATE_PORT',
  host: 'TOLLGATE_HOST',
  adminPort: 'TOLLGATE_ADMIN_PORT',
  adminHost: 'TOLLGATE_ADMIN_HOST',
  upstream: 'TOLLGATE_UPSTREAM',
  redisUrl: 'TOLLGATE_REDIS_URL',
  redisPrefix: 'TOLLGATE_REDIS_PREFIX',
  dataDir: 'TOLLGATE_DATA_DIR',
  logLevel: 'TOLLGATE_LOG_LEVEL',
  publicUrl: 'TOLLGATE_PUBLIC_URL',
  trustedProxies: 'TOLLGATE_TRUSTED_PROXIES',
  tlsCert: 'TOLLGATE_TLS_CERT',
  tlsKey: 'TOLLGATE_TLS_KEY',
  upstreamTimeoutMs: 'TOLLGATE_UPSTREAM_TIMEOUT_MS',
  headersTimeoutMs: 'TOLLGATE_HEADERS_TIMEOUT_MS',
  clientIdleTimeoutMs: 'TOLLGATE_CLIENT_IDLE_TIMEOUT_MS',
  cacheTtlMs: 'TOLLGATE_CACHE_TTL_MS',
  cacheMax: 'TOLLGATE_CACHE_MAX',
  negativeCacheTtlMs: 'TOLLGATE_NEGATIVE_CACHE_TTL_MS',
  negativeCacheMax: 'TOLLGATE_NEGATIVE_CACHE_MAX',
  changePollMs: 'TOLLGATE_CHANGE_POLL_MS',
  cacheStaleMs: 'TOLLGATE_CACHE_STALE_MS',
  lastUsedFlushMs: 'TOLLGATE_LAST_USED_FLUSH_MS',
  shutdownGraceMs: 'TOLLGATE_SHUTDOWN_GRACE_MS',
  workers: 'TOLLGATE_WORKERS',
  activitySinks: 'TOLLGATE_ACTIVITY_SINKS',
  activityWebhookUrl: 'TOLLGATE_ACTIVITY_WEBHOOK_URL',
  activityWebhookTimeoutMs: 'TOLLGATE_ACTIVITY_WEBHOOK_TIMEOUT_MS',
  activityDevelopment: 'TOLLGATE_ACTIVITY_DEVELOPMENT',
  activityStreamMaxLen: 'TOLLGATE_ACTIVITY_STREAM_MAXLEN',
  activityMemoryEvents: 'TOLLGATE_ACTIVITY_MEMORY_EVENTS',
  activitySpoolMaxBytes: 'TOLLGATE_ACTIVITY_SPOOL_MAX_BYTES',
  activityBatchSize: 'TOLLGATE_ACTIVITY_BATCH_SIZE',
  activityFlushMs: 'TOLLGATE_ACTIVITY_FLUSH_MS',
  activityRecentMax: 'TOLLGATE_ACTIVITY_RECENT_MAX',
  activityRetryMaxMs: 'TOLLGATE_ACTIVITY_RETRY_MAX_MS',
  signingKeyFile: 'TOLLGATE_SIGNING_KEY_FILE',
  metricsProjects: 'TOLLGATE_METRICS_PROJECTS',
  metricsMaxProjects: 'TOLLGATE_METRICS_MAX_PROJECTS',
  metricsToken: 'TOLLGATE_METRICS_TOKEN',
  authFailureBurst: 'TOLLGATE_AUTH_FAILURE_BURST',
  authFailureRefillPerMinute: 'TOLLGATE_AUTH_FAILURE_REFILL_PER_MINUTE',
  authFailureMaxAddresses: 'TOLLGATE_AUTH_FAILURE_MAX_ADDRESSES',
  authFailureWindowMs: 'TOLLGATE_AUTH_FAILURE_WINDOW_MS',
  adminToken: 'TOLLGATE_ADMIN_TOKEN',
  adminTokenFile: 'TOLLGATE_ADMIN_TOKEN_FILE',
  publicAdminUrl: 'TOLLGATE_PUBLIC_ADMIN_URL',
  sessionTtlMs: 'TOLLGATE_SESSION_TTL_MS',
  oidcIssuer: 'TOLLGATE_OIDC_ISSUER',
  oidcAudience: 'TOLLGATE_OIDC_AUDIENCE',
  oidcJwksUrl: 'TOLLGATE_OIDC_JWKS_URL',
  oidcAdminClaim: 'TOLLGATE_OIDC_ADMIN_CLAIM',
};

export type ConfigResult = { ok: true; config: Readonly<Config> } | { ok: false; problems: string[] };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Load, validate and freeze the configuration, collecting every problem. */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): ConfigResult {
  const problems: string[] = [];
  const raw: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  let fileDir = cwd;

  const configFile = env.TOLLGATE_CONFIG;
  if (configFile) {
    const file = path.resolve(cwd, configFile);
    fileDir = path.dirname(file);
    try {
      const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
        problems.push(`TOLLGATE_CONFIG ${configFile} must hold a JSON object`);
      } else {
        for (const [key, value] of Object.entries(parsed)) {
          raw[key] = value;
          sources[key] = `${configFile}: ${key}`;
        }
      }
    } catch (err) {
      problems.push(`TOLLGATE_CONFIG ${configFile} cannot be read as JSON: ${(err as Error).message}`);
    }
  }
  for (const [key, name] of Object.entries(ENV_NAMES)) {
    const value = env[name];
    if (value !== undefined && value !== '') {
      raw[key] = value;
      sources[key] = name;
    }
  }

  const parsed = settingsSchema().safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const [key, ...rest] = issue.path.map(String);
      if (issue.code === 'unrecognized_keys') {
        problems.push(`${configFile}: unknown setting(s) ${issue.keys.join(', ')}`);
        continue;
      }
      const where = key ? (sources[key] ?? ENV_NAMES[key] ?? key) + (rest.length ? `[${rest.join('].')}` + (rest.length > 1 ? '' : ']') : '') : 'config';
      const value = key !== undefined ? pick(raw, [key, ...rest]) : undefined;
      problems.push(`${where}: ${stripName(issue.message, key)}${value !== undefined && typeof value !== 'object' ? `, got ${JSON.stringify(String(value))}` : ''}`);
    }
    // Report a bad upstream in the same run as everything else, not after the rest is fixed.
    if (typeof raw.upstream === 'string') {
      const upstream = resolveUpstream(raw.upstream, cwd);
      if (typeof upstream === 'string') problems.push(upstreamProblem('TOLLGATE_UPSTREAM', raw.upstream, upstream));
    }
    return { ok: false, problems };
  }
  if (parsed.data.upstream && parsed.data.routes) {
    problems.push(`TOLLGATE_UPSTREAM and the routes in ${configFile} are both set: use one or the other`);
  }
  const s = parsed.data;

  // Routes: the config file's list, or TOLLGATE_UPSTREAM as one route "/", or the shipped example tree.
  const entries: RouteFileEntry[] = s.upstream
    ? [{ prefix: '/', upstream: s.upstream, ecosystem: 'generic', allowPost: [], rewriteFrom: [] }]
    : s.routes ?? [{ prefix: '/', upstream: DEFAULT_UPSTREAM_DIR, ecosystem: 'generic', allowPost: [], rewriteFrom: [] }];
  const upstreamSource = s.upstream ? 'TOLLGATE_UPSTREAM' : undefined;
  const routes: RouteConfig[] = [];
  const seen = new Set<string>();
  entries.forEach((entry, i) => {
    const where = upstreamSource ?? `${configFile}: routes[${i}]`;
    const prefix = entry.prefix.endsWith('/') ? entry.prefix : `${entry.prefix}/`;
    if (seen.has(prefix)) problems.push(`${where}.prefix: duplicate route prefix "${prefix}"`);
    seen.add(prefix);
    const upstream = resolveUpstream(entry.upstream, upstreamSource ? cwd : fileDir);
    if (typeof upstream === 'string') {
      problems.push(upstreamProblem(upstreamSource ?? `${where}.upstream`, entry.upstream, upstream));
      return;
    }
    routes.push({
      prefix,
      ecosystem: entry.ecosystem,
      upstream,
      upstreamAuthHeader: authHeader(entry.upstreamAuth),
      allowPost: entry.allowPost.map((p) => prefix + p.slice(1)),
      rewriteBases: upstream.kind === 'http' && (entry.rewrite ?? REWRITE_BY_DEFAULT.includes(entry.ecosystem))
        ? [upstream.url.href, ...entry.rewriteFrom.map((u) => (u.endsWith('/') ? u : `${u}/`))]
        : undefined,
    });
  });
  if (routes.length === 0 && problems.length === 0) problems.push(`${configFile}: routes must list at least one route`);
  routes.sort((a, b) => b.prefix.length - a.prefix.length);

  let publicUrl: string | undefined;
  if (s.publicUrl) {
    const url = parseHttpUrl(s.publicUrl);
    if (!url || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
      problems.push(`${sources.publicUrl}: must be an http(s) origin such as https://artifacts.example.com, got ${JSON.stringify(s.publicUrl)}`);
    } else {
      publicUrl = url.origin;
    }
  }

  const trustedProxies = typeof s.trustedProxies === 'string'
    ? s.trustedProxies.split(',').map((x) => x.trim()).filter(Boolean)
    : s.trustedProxies ?? [];
  try {
    proxyAddr.compile(trustedProxies);
  } catch (err) {
    problems.push(`${sources.trustedProxies}: must be a comma-separated list of IP addresses or CIDR ranges (${(err as Error).message})`);
  }

  let tls: Config['tls'];
  if (s.tlsCert || s.tlsKey) {
    if (!s.tlsCert || !s.tlsKey) {
      problems.push('TOLLGATE_TLS_CERT and TOLLGATE_TLS_KEY must be set together');
    } else {
      for (const [key, file] of [['tlsCert', s.tlsCert], ['tlsKey', s.tlsKey]] as const) {
        try {
          accessSync(path.resolve(cwd, file), fsConstants.R_OK);
        } catch {
          problems.push(`${sources[key]}: cannot read file ${JSON.stringify(file)}`);
        }
      }
      tls = { certFile: path.resolve(cwd, s.tlsCert), keyFile: path.resolve(cwd, s.tlsKey) };
    }
  }

  const list = (v: string | string[] | undefined): string[] =>
    (typeof v === 'string' ? v.split(',') : v ?? []).map((x) => x.trim()).filter(Boolean);
  const sinkNames = s.activitySinks === undefined ? [s.redisUrl ? 'redis' : 'file'] : list(s.activitySinks);
  const sinks: ActivitySinkName[] = [];
  for (const name of sinkNames) {
    if (!(ACTIVITY_SINKS as readonly string[]).includes(name)) {
      problems.push(`${sources.activitySinks}: each sink must be one of ${ACTIVITY_SINKS.join(', ')}, got ${JSON.stringify(name)}`);
    } else if (!sinks.includes(name as ActivitySinkName)) sinks.push(name as ActivitySinkName);
  }
  if (sinks.includes('redis') && !s.redisUrl) problems.push(`${sources.activitySinks}: the redis sink needs TOLLGATE_REDIS_URL`);
  let webhook: ActivityConfig['webhook'];
  if (s.activityWebhookUrl) {
    const url = parseHttpUrl(s.activityWebhookUrl);
    const loopback = url && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    if (!url || (url.protocol !== 'https:' && !loopback)) {
      problems.push(`${sources.activityWebhookUrl}: must be an https URL (http only on loopback), got ${JSON.stringify(s.activityWebhookUrl.replace(/\/\/[^/@]*@/, '//***@'))}`);
    } else {
      webhook = { url: url.href, timeoutMs: s.activityWebhookTimeoutMs };
      if (!sinks.includes('webhook') && s.activitySinks === undefined) sinks.push('webhook');
    }
  }
  if (sinks.includes('webhook') && !s.activityWebhookUrl) problems.push(`${sources.activitySinks}: the webhook sink needs TOLLGATE_ACTIVITY_WEBHOOK_URL`);
  if (s.signingKeyFile) {
    try {
      accessSync(path.resolve(cwd, s.signingKeyFile), fsConstants.R_OK);
    } catch {
      problems.push(`${sources.signingKeyFile}: cannot read file ${JSON.stringify(s.signingKeyFile)}`);
    }
  }

  const admin = resolveAdmin(s, sources, cwd, problems);

  if (s.redisUrl) {
    const target = parseRedisUrl(s.redisUrl);
    if (typeof target === 'string') problems.push(`${sources.redisUrl}: ${target}`);
  }
  if (!s.metricsToken && !isLoopbackHost(s.adminHost)) {
    problems.push(`TOLLGATE_METRICS_TOKEN must be set when the admin listener is bound beyond loopback (TOLLGATE_ADMIN_HOST=${JSON.stringify(s.adminHost)}): /metrics then needs its own bearer credential`);
  }

  if (problems.length > 0) return { ok: false, problems };

  const config: Config = {
    port: s.port,
    host: s.host,
    adminPort: s.adminPort,
    adminHost: s.adminHost,
    routes,
    redis: s.redisUrl ? { url: s.redisUrl, prefix: s.redisPrefix } : undefined,
    dataDir: path.resolve(cwd, s.dataDir),
    logLevel: s.logLevel,
    publicUrl,
    trustedProxies,
    tls,
    upstreamTimeoutMs: s.upstreamTimeoutMs,
    headersTimeoutMs: s.headersTimeoutMs,
    clientIdleTimeoutMs: s.clientIdleTimeoutMs,
    cacheTtlMs: s.cacheTtlMs,
    cacheMax: s.cacheMax,
    negativeCacheTtlMs: s.negativeCacheTtlMs,
    negativeCacheMax: s.negativeCacheMax,
    changePollMs: s.changePollMs,
    cacheStaleMs: s.cacheStaleMs,
    lastUsedFlushMs: s.lastUsedFlushMs,
    shutdownGraceMs: s.shutdownGraceMs,
    workers: s.workers === 'auto' ? availableParallelism() : s.workers,
    activity: {
      sinks,
      webhook,
      development: s.activityDevelopment === 'separate',
      streamMaxLen: s.activityStreamMaxLen,
      memoryEvents: s.activityMemoryEvents,
      spoolMaxBytes: s.activitySpoolMaxBytes,
      batchSize: s.activityBatchSize,
      flushMs: s.activityFlushMs,
      recentMax: s.activityRecentMax,
      retryMaxMs: s.activityRetryMaxMs,
      signingKeyFile: s.signingKeyFile ? path.resolve(cwd, s.signingKeyFile) : undefined,
    },
    metrics: { token: s.metricsToken, projects: list(s.metricsProjects), maxProjects: s.metricsMaxProjects },
    authFailureLimit: {
      burst: s.authFailureBurst,
      refillPerMinute: s.authFailureRefillPerMinute,
      maxAddresses: s.authFailureMaxAddresses,
      windowMs: s.authFailureWindowMs,
    },
    admin,
  };
  return { ok: true, config: deepFreeze(config) };
}

/** loadConfig, throwing a ConfigError that lists every problem. */
export function loadConfigOrThrow(env: Env = process.env, cwd = process.cwd()): Readonly<Config> {
  const result = loadConfig(env, cwd);
  if (!result.ok) throw new ConfigError(result.problems);
  return result.config;
}

type Settings = ReturnType<ReturnType<typeof settingsSchema>['parse']>;

/**
 * The admin credential and sign-in settings. The admin token's value is never echoed in a
 * problem (it is checked here, not by the schema, whose messages quote the value).
 */
function resolveAdmin(s: Settings, sources: Record<string, string>, cwd: string, problems: string[]): AdminConfig {
  const where = (key: string) => sources[key] ?? ENV_NAMES[key] ?? key;
  let token: string | undefined;
  let tokenFile: string | undefined;
  const checkToken = (value: string, label: string): string | undefined => {
    if (!/^[\x21-\x7e]+$/.test(value)) {
      problems.push(`${label}: the admin token must be printable ASCII without spaces`);
    } else if (value.length < MIN_ADMIN_TOKEN_LENGTH) {
      problems.push(`${label}: the admin token must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`);
    } else {
      return value;
    }
    return undefined;
  };
  if (s.adminToken !== undefined && s.adminTokenFile !== undefined) {
    problems.push(`${where('adminToken')} and ${where('adminTokenFile')}: set one of them, not both`);
  } else if (s.adminToken !== undefined) {
    token = checkToken(s.adminToken, where('adminToken'));
  } else if (s.adminTokenFile !== undefined) {
    tokenFile = path.resolve(cwd, s.adminTokenFile);
    let text: string | undefined;
    try {
      text = readFileSync(tokenFile, 'utf8');
    } catch (err) {
      problems.push(`${where('adminTokenFile')}: cannot read file ${JSON.stringify(s.adminTokenFile)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (text !== undefined) {
      const value = text.trim();
      if (value === '') problems.push(`${where('adminTokenFile')}: file ${JSON.stringify(s.adminTokenFile)} is empty`);
      else token = checkToken(value, `${where('adminTokenFile')} (${s.adminTokenFile})`);
    }
  }

  let publicUrl: string | undefined;
  if (s.publicAdminUrl) {
    const url = parseHttpUrl(s.publicAdminUrl);
    if (!url || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) {
      problems.push(`${where('publicAdminUrl')}: must be an http(s) origin such as https://tollgate-admin.example.com, got ${JSON.stringify(s.publicAdminUrl)}`);
    } else {
      publicUrl = url.origin;
    }
  }

  let oidc: OidcConfig | undefined;
  const oidcKeys = ['oidcIssuer', 'oidcAudience', 'oidcJwksUrl', 'oidcAdminClaim'] as const;
  if (oidcKeys.some((k) => s[k] !== undefined)) {
    let ok = true;
    for (const key of ['oidcIssuer', 'oidcAudience', 'oidcJwksUrl'] as const) {
      if (!s[key]) {
        problems.push(`${where(key)} is required when OIDC sign-in is configured (${oidcKeys.filter((k) => s[k] !== undefined).map(where).join(', ')} set)`);
        ok = false;
      }
    }
    if (s.oidcJwksUrl) {
      const url = parseHttpUrl(s.oidcJwksUrl);
      const loopback = url && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
      if (!url || (url.protocol !== 'https:' && !loopback) || url.username || url.password) {
        problems.push(`${where('oidcJwksUrl')}: must be an https URL (http only on loopback), got ${JSON.stringify(s.oidcJwksUrl.replace(/\/\/[^/@]*@/, '//***@'))}`);
        ok = false;
      }
    }
    const claim = s.oidcAdminClaim ?? DEFAULT_OIDC_ADMIN_CLAIM;
    const eq = claim.indexOf('=');
    const name = eq > 0 ? claim.slice(0, eq).trim() : '';
    const value = eq > 0 ? claim.slice(eq + 1).trim() : '';
    if (!name || !value) {
      problems.push(`${where('oidcAdminClaim')}: must be <claim>=<value>, such as roles=tollgate-admin or tollgate_admin=true, got ${JSON.stringify(claim)}`);
      ok = false;
    }
    if (ok) oidc = { issuer: s.oidcIssuer!, audience: s.oidcAudience!, jwksUrl: s.oidcJwksUrl!, adminClaim: { name, value } };
  }

  return { token, tokenFile, publicUrl, sessionTtlMs: s.sessionTtlMs, oidc };
}

/** Loopback addresses only: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function upstreamProblem(where: string, value: string, why: string): string {
  const shown = value.replace(/\/\/[^/@]*@/, '//***@'); // never echo credentials
  return `${where} must be an http(s) URL or a directory, got ${JSON.stringify(shown)}${why ? ` (${why})` : ''}`;
}

function resolveUpstream(value: string, baseDir: string): Upstream | string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    const url = parseHttpUrl(value);
    if (!url) return '';
    if (url.search || url.hash) return 'no query or fragment allowed';
    if (url.username || url.password) return 'put credentials in upstreamAuth, not the URL';
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    return { kind: 'http', url };
  }
  const root = path.resolve(baseDir, value);
  try {
    if (!statSync(root).isDirectory()) return 'not a directory';
  } catch {
    return 'no such directory';
  }
  return { kind: 'dir', root };
}

function parseHttpUrl(value: string): URL | undefined {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

function authHeader(auth: UpstreamAuth | undefined): RouteConfig['upstreamAuthHeader'] {
  if (!auth) return undefined;
  switch (auth.type) {
    case 'basic':
      return { name: 'authorization', value: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` };
    case 'bearer':
      return { name: 'authorization', value: `Bearer ${auth.token}` };
    case 'header':
      return { name: auth.name.toLowerCase(), value: auth.value };
  }
}

function pick(obj: Record<string, unknown>, keys: string[]): unknown {
  let cur: unknown = obj;
  for (const k of keys) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** Messages name the env var; drop it when the value came from elsewhere (the location says it). */
function stripName(message: string, key: string | undefined): string {
  const name = key ? ENV_NAMES[key] : undefined;
  return name && message.startsWith(`${name} `) ? message.slice(name.length + 1) : message;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof URL)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
