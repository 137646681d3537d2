import type { ActivitySinkName, Ecosystem } from './schema.js';
import type { TokenRestrictions } from '../tokens/restrictions.js';
import type { CI_IDENTITY_FIELDS, CI_PROVIDER_KINDS } from './ci.js';

// The configuration every module reads: one typed object, loaded, checked and frozen once.

export type Upstream = { kind: 'http'; url: URL } | { kind: 'dir'; root: string };

export interface RouteConfig {
  /** Path prefix, always starting and ending with "/". Matched byte for byte against the raw path. */
  prefix: string;
  /** Which artifact layout the route serves. Default: generic. */
  ecosystem: Ecosystem;
  /** Where requests go: an http(s) base URL whose path ends in "/", or a directory. Required. */
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
  /**
   * Where a redirect to another origin may be followed: besides public addresses, these hosts
   * (by name) and CIDRs; false follows none. Default: public addresses only.
   */
  followRedirects: FollowRedirects;
}

/** A route's redirect policy: false (never follow), or what is allowed besides public addresses. */
export type FollowRedirects = false | { hosts: readonly string[]; cidrs: readonly string[] };

/** Where the public keys that sign secret-scanning reports come from. */
export type SecretScanningConfig =
  { keysFile: string; keysUrl?: undefined } | { keysUrl: string; keysFile?: undefined };

/** Every field gives its default and unit. */
export interface Config {
  /** Proxy listener port. Default 8080. */
  port: number;
  /** Proxy listener address. Default 0.0.0.0. */
  host: string;
  /** Admin listener port (health, metrics, JWKS, admin API and page). Default 9090. */
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
  /** Upstream requests in flight per route and worker; past it they wait (up to upstreamTimeoutMs). Default 512. */
  upstreamConnections: number;
  /** Per token, route and worker: downloads held by a slow client (paused > 1 s) before 429. Default 128. */
  upstreamHeldPerToken: number;
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
  /** Production activity: sinks, buffering, delivery. */
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
  /** /metrics: its credential and project labels. */
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
  /** Admin API and page sign-in. */
  admin: AdminConfig;
  /** Signed secret-scanning reports (POST /-/tollgate/secret-scanning). Default: unset (the endpoint is a 404). */
  secretScanning: SecretScanningConfig | undefined;
  /** CI trust policies: whose OIDC ID tokens may be exchanged for short-lived tokens, in order. Default: none. */
  ciProviders: CiProviderConfig[];
  /** Limits of every exchange of a CI job's ID token. */
  ciExchange: CiExchangeConfig;
}

/** How a provider's claims map to a token's CI identity (docs/ci.md lists each mapping). */
export type CiProviderKind = (typeof CI_PROVIDER_KINDS)[number];
export type CiIdentityField = (typeof CI_IDENTITY_FIELDS)[number];

/** One trust policy (`ciProviders[]`): which ID tokens it accepts and what it issues for them. */
export interface CiProviderConfig {
  /** Unique, [a-z0-9-]+. Required. */
  name: string;
  /** Claim mapping for the CI identity. Default: from the issuer (GitHub, GitLab.com, CircleCI, Buildkite), else generic. */
  kind: CiProviderKind;
  /** The exact `iss` (https, or http on loopback). Required. */
  issuer: string;
  /** The issuer's JWK Set. Default: unset, the `jwks_uri` of the issuer's OpenID discovery document. */
  jwksUrl: string | undefined;
  /** The `aud` ID tokens must carry. Required. */
  audience: string;
  /** Claim → glob (`*` any run), all must match. Required, non-empty. */
  allow: Readonly<Record<string, string>>;
  /** Claim → glob, all matching makes the token Production. Default: none (always Development). */
  production: Readonly<Record<string, string>>;
  /** The claim naming the project of the token's downloads. Default: unset (no project). */
  project: string | undefined;
  /** Lifetime of issued tokens, at most 24 h. Default 3600000 ms. */
  tokenTtlMs: number;
  /** Restrictions of issued tokens, as `token create`'s. Default: none. */
  restrictions: TokenRestrictions | null;
  /** Identity field → claim, over the kind's mapping. Default: none. */
  claims: Readonly<Partial<Record<CiIdentityField, string>>>;
}

export interface CiExchangeConfig {
  /** Longest ID-token lifetime accepted (`exp - iat`); a token without `exp` is refused. Default 3600000 ms. */
  maxIdTokenLifetimeMs: number;
  /** Clock skew allowed on `exp`, `nbf` and `iat`. Default 60000 ms, at most 300000. */
  clockSkewMs: number;
  /** Exchanges one client address may make a minute. Default 60. */
  perAddressPerMinute: number;
  /** Exchanges one CI subject (policy and `sub`) may make a minute. Default 30. */
  perSubjectPerMinute: number;
  /** An expired CI-issued token is deleted from the store this long after it expired. Default 3600000 ms. */
  purgeGraceMs: number;
  /** How often the gateway purges expired CI-issued tokens. Default 60000 ms. */
  purgeIntervalMs: number;
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

export type ConfigResult = { ok: true; config: Readonly<Config> } | { ok: false; problems: string[] };
