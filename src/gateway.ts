import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import type { Config } from './config/index.js';
import type { Logger } from './logging/logger.js';
import { tokenState, type TokenRecord, type TokenStore } from './tokens/store.js';
import { createTokenCache, type TokenCache } from './tokens/cache.js';
import { createAuthenticator, type Authenticate } from './auth/authenticate.js';
import { createProxyApp } from './proxy/app.js';
import { createAdminApp } from './admin/app.js';
import { createAdminAuth } from './admin/auth.js';
import { createMetrics, statusClass, type Metrics } from './metrics/registry.js';
import type { MetricsSource } from './metrics/select.js';
import { createActivityPipeline, type ActivityPipeline } from './activity/index.js';
import type { RequestState } from './proxy/state.js';
import { createRateLimiter, type RateLimiter } from './auth/rate-limit.js';
import type { Cluster, Redis } from 'ioredis';
import type { Registry } from 'prom-client';

export interface Gateway {
  proxyServer: Server;
  adminServer: Server;
  cache: TokenCache;
  metrics: Metrics;
  activity: ActivityPipeline;
  /** Actual ports (useful when configured as 0). */
  proxyPort: number;
  adminPort: number;
  /** Stop accepting, let in-flight downloads finish (bounded by graceMs), then close everything. */
  shutdown(graceMs?: number): Promise<void>;
}

export interface GatewayDeps {
  logger: Logger;
  store: TokenStore;
  /**
   * Replaces the token check. Only benchmarks use it (to measure "the same gateway with auth
   * turned off"); it is deliberately not reachable from configuration.
   */
  authenticate?: Authenticate;
  /** In a cluster worker: /metrics serves every worker's registries (see cluster.ts). */
  metricsSource?: (registry: Registry) => MetricsSource;
}

/**
 * Wires one gateway process: token cache over the store, the proxy app on the proxy port, the
 * admin app on the admin port. Reads no environment; main.ts and the tests hand it a Config.
 */
export async function startGateway(config: Readonly<Config>, deps: GatewayDeps): Promise<Gateway> {
  const { logger, store } = deps;
  // First: it may generate the admin token file, and fails before anything else has started.
  const adminAuth = await createAdminAuth(config, { logger });
  const metrics = createMetrics();
  const cache = createTokenCache({
    store,
    ttlMs: config.cacheTtlMs,
    max: config.cacheMax,
    negativeTtlMs: config.negativeCacheTtlMs,
    negativeMax: config.negativeCacheMax,
    pollMs: config.changePollMs,
    staleMaxMs: config.cacheStaleMs,
    lastUsedFlushMs: config.lastUsedFlushMs,
    onError: (err, what) => logger.warn({ err: errorFields(err), what }, 'token store problem'),
    onStoreRead: (seconds, ok) => metrics.storeDuration.labels(ok ? 'ok' : 'error').observe(seconds),
  });
  await cache.start();
  collectFrom(metrics, cache, store);

  const activity = await createActivityPipeline(config, { metrics, logger });
  const limits = await createFailureLimiter(config);
  const proxy = createProxyApp({
    config,
    directoryServer: config.routes.some((r) => r.upstream.kind === 'dir')
      ? (await import('./proxy/serve-dir.js')).createDirectoryServer
      : undefined,
    authenticate: deps.authenticate ?? createAuthenticator(cache),
    limiter: limits?.limiter,
    logger,
    onRequestEnd: createRequestObserver(metrics, activity),
  });
  let accepting = true;
  const admin = createAdminApp({
    store, isAccepting: () => accepting, jwks: activity.jwks,
    registry: deps.metricsSource ? deps.metricsSource(metrics.registry) : metrics.registry,
    metricsToken: config.metrics.token,
    auth: adminAuth, activity: activity.query, logger,
  });

  // Slow clients are bounded: headers must arrive within headersTimeoutMs (checked every
  // second, not Node's default 30 s), and a connection with no traffic either way for
  // clientIdleTimeoutMs (a reader that stopped reading) is closed.
  const serverOptions = {
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.headersTimeoutMs + 60_000,
    keepAliveTimeout: 30_000,
    connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
  };
  const proxyServer: Server = config.tls
    ? createHttpsServer({ ...serverOptions, cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) }, proxy.listener)
    : createHttpServer(serverOptions, proxy.listener);
  proxyServer.headersTimeout = config.headersTimeoutMs;
  proxyServer.requestTimeout = serverOptions.requestTimeout;
  proxyServer.keepAliveTimeout = serverOptions.keepAliveTimeout;
  proxyServer.timeout = config.clientIdleTimeoutMs;

  proxyServer.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // Requests HTTP itself cannot parse (bad headers, smuggling attempts): 400 and close.
    if (socket.writable && !socket.destroyed) {
      socket.end(err.code === 'HPE_HEADER_OVERFLOW'
        ? 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'
        : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    } else {
      socket.destroy();
    }
  });

  const adminServer = createAdaptorServer({ fetch: admin.fetch }) as Server;

  await listen(proxyServer, config.port, config.host);
  await listen(adminServer, config.adminPort, config.adminHost);
  const proxyPort = (proxyServer.address() as AddressInfo).port;
  const adminPort = (adminServer.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  async function shutdown(graceMs = config.shutdownGraceMs): Promise<void> {
    closing ??= (async () => {
      accepting = false;
      const closed = new Promise<void>((resolve) => proxyServer.close(() => resolve()));
      proxyServer.closeIdleConnections();
      if (proxy.inFlight() > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([proxy.idle(), new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        })]);
        clearTimeout(timer);
      }
      proxyServer.closeAllConnections();
      await closed;
      proxy.close();
      await activity.stop();
      limits?.stop();
      await cache.stop();
      await new Promise<void>((resolve) => {
        adminServer.close(() => resolve());
        adminServer.closeAllConnections();
      });
    })();
    return closing;
  }

  return { proxyServer, adminServer, cache, metrics, activity, proxyPort, adminPort, shutdown };
}

/** The brute-force limiter, shared through Redis when the gateway has one. */
async function createFailureLimiter(config: Readonly<Config>): Promise<{ limiter: RateLimiter; stop(): void } | undefined> {
  const { burst, refillPerMinute, maxAddresses, windowMs } = config.authFailureLimit;
  if (burst === 0) return undefined;
  let client: Redis | Cluster | undefined;
  let shared;
  if (config.redis) {
    const [{ createRedisConnection }, { createRedisFailureCounter }] = await Promise.all([import('./redis/connect.js'), import('./auth/rate-limit-redis.js')]);
    client = createRedisConnection(config.redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 2000 });
    client.on('error', () => {}); // reconnects by itself; the local buckets protect meanwhile
    shared = createRedisFailureCounter({ client, prefix: config.redis.prefix, windowMs });
  }
  const limiter = createRateLimiter({
    burst,
    refillPerSecond: refillPerMinute / 60,
    maxAddresses,
    shared,
  });
  return {
    limiter,
    stop() {
      limiter.stop();
      client?.disconnect();
    },
  };
}

const UPSTREAM_ERROR_KINDS: Record<string, string> = {
  timeout: 'timeout', ECONNREFUSED: 'refused', ECONNRESET: 'reset', reset: 'reset', EPIPE: 'reset',
  ENOTFOUND: 'dns', EAI_AGAIN: 'dns', ETIMEDOUT: 'timeout', EHOSTUNREACH: 'unreachable', ENETUNREACH: 'unreachable',
};

/**
 * Runs when a proxied response is over: operations metrics for every request, and the activity
 * recorder (which keeps only Production, unless a Development stream is configured).
 */
function createRequestObserver(metrics: Metrics, activity: ActivityPipeline) {
  // Each labels() call builds its slot key: resolve the children once per (token type, status
  // class), a set of at most 3 x 5, looked up without building a key per request.
  type Children = { requests: { inc(): void }; duration: { observe(v: number): void } };
  const children = new Map<string, Map<string, Children>>();
  const childrenFor = (tokenType: string, cls: string): Children => {
    let byClass = children.get(tokenType);
    if (!byClass) children.set(tokenType, byClass = new Map());
    let c = byClass.get(cls);
    if (!c) {
      c = { requests: metrics.requests.labels(tokenType, cls), duration: metrics.requestDuration.labels(tokenType, cls) };
      byClass.set(cls, c);
    }
    return c;
  };
  return function observeRequest(state: RequestState, incoming: IncomingMessage, outgoing: ServerResponse): void {
    const status = outgoing.statusCode;
    const cls = statusClass(status);
    const principal = state.principal;
    const tokenType = principal?.tokenType ?? 'none';
    const child = childrenFor(tokenType, cls);
    child.requests.inc();
    child.duration.observe(state.durationMs / 1000);
    if (state.authFailure === 'missing') metrics.authChallenges.inc();
    else if (state.authFailure) metrics.authFailures.labels(state.authFailure === 'rate-limited' ? 'rate_limited' : state.authFailure).inc();
    if (state.upstreamError && state.upstreamError !== 'client-closed') {
      metrics.upstreamErrors.labels(UPSTREAM_ERROR_KINDS[state.upstreamError] ?? 'other').inc();
    }
    if (principal && state.route) {
      activity.recorder.record({
        requestId: state.requestId,
        principal,
        ecosystem: state.route.ecosystem,
        path: state.rest,
        method: incoming.method ?? 'GET',
        status,
        bytes: state.bytes,
        durationMs: state.durationMs,
        clientIp: state.clientIp,
        userAgent: incoming.headers['user-agent'],
        endedAt: Date.now(),
      });
    }
  };
}

/** Scrape-time metrics: cache counters and Production token expiry / last use, read when scraped. */
function collectFrom(metrics: Metrics, cache: TokenCache, store: TokenStore): void {
  const lookups = metrics.cacheLookups;
  (lookups as unknown as { collect: () => void }).collect = function collectCache() {
    lookups.reset();
    lookups.labels('hit').inc(cache.stats.hits);
    lookups.labels('negative_hit').inc(cache.stats.negativeHits);
    lookups.labels('miss').inc(cache.stats.misses);
  };
  const { tokenExpiry, tokenLastUsed } = metrics;
  // prom-client collects every metric of a scrape in parallel: each gauge gets its own collect,
  // and both share one store read per scrape (a gauge filled by the other's collect would show
  // the previous scrape's values).
  let reading: Promise<TokenRecord[] | undefined> | undefined;
  const readTokens = () => (reading ??= store.list().then(
    (records) => records,
    () => undefined, // store down: keep the last values rather than fail the scrape
  ).finally(() => {
    reading = undefined;
  }));
  const active = (records: TokenRecord[], now: number) =>
    records.filter((r) => r.type === 'production' && tokenState(r, now) !== 'revoked');
  (tokenExpiry as unknown as { collect: () => Promise<void> }).collect = async function collectTokenExpiry() {
    const records = await readTokens();
    if (!records) return;
    tokenExpiry.reset();
    const now = Date.now();
    for (const r of active(records, now)) {
      if (r.expiresAt !== null && r.expiresAt > now) tokenExpiry.labels(r.name, r.id).set(r.expiresAt / 1000);
    }
  };
  (tokenLastUsed as unknown as { collect: () => Promise<void> }).collect = async function collectTokenLastUsed() {
    const records = await readTokens();
    if (!records) return;
    tokenLastUsed.reset();
    for (const r of active(records, Date.now())) {
      if (r.lastUsedAt !== null) tokenLastUsed.labels(r.name, r.id).set(r.lastUsedAt / 1000);
    }
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export function errorFields(err: unknown): { name?: string; message: string; code?: string } {
  if (err instanceof Error) return { name: err.name, message: err.message, code: (err as NodeJS.ErrnoException).code };
  return { message: String(err) };
}
