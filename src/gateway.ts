import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import type { Registry } from 'prom-client';
import type { Config } from './config/index.js';
import type { Logger } from './logging/logger.js';
import { errorFields } from './logging/error-fields.js';
import type { TokenStore } from './tokens/store.js';
import { createTokenCache, type TokenCache } from './tokens/cache.js';
import { activeProductionTokens } from './tokens/service.js';
import { createLeakReporting } from './tokens/leaks.js';
import { createAuthenticator, type Authenticate } from './auth/authenticate.js';
import { createRequestLimits } from './auth/request-limits.js';
import { createMetrics, type Metrics } from './metrics/registry.js';
import type { MetricsSource } from './metrics/select.js';
import { createActivityPipeline, createLeakAlert, type ActivityPipeline } from './activity/index.js';
import { createCiExchange } from './ci/index.js';
import { createProxyHandler } from './proxy/server.js';
import { createProxyServer } from './proxy/http-server.js';
import type { ParkingServer } from './proxy/parking.js';
import { createOwnEndpoints, type OwnEndpoint } from './proxy/own/index.js';
import { createScannerKeys } from './proxy/own/scanner-keys.js';
import { secretScanningEndpoint } from './proxy/own/secret-scanning.js';
import { tokenExchangeEndpoint } from './proxy/own/token-exchange.js';
import { createAdminApp } from './admin/app.js';
import { createAdminAuth } from './admin/auth.js';
import { createRequestEnd } from './gateway/request-end.js';

export interface Gateway {
  proxyServer: ParkingServer;
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
 * Wires one gateway process: token cache over the store, the proxy handler on the proxy port, the
 * admin app on the admin port, metrics and the activity pipeline fed when a request ends. Reads
 * no environment; main.ts and the tests hand it a Config.
 */
export async function startGateway(config: Readonly<Config>, deps: GatewayDeps): Promise<Gateway> {
  const { logger, store } = deps;
  const metrics = createMetrics();
  // Not started yet: the admin sessions follow its change feed too.
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
  // First to start: it may generate the admin token file, and fails before anything else has started.
  const adminAuth = await createAdminAuth(config, { logger, store, changes: cache.feed });
  await cache.start();
  metrics.sources.cacheStats = () => cache.stats;
  metrics.sources.productionTokens = () => activeProductionTokens(store);

  const activity = await createActivityPipeline(config, { metrics, logger });
  let rateWarnedAt = 0;
  const limits = await createRequestLimits(config, (err) => {
    // Once a minute at most: while Redis is down every rate-limited request would say it.
    if (Date.now() - rateWarnedAt < 60_000) return;
    rateWarnedAt = Date.now();
    logger.warn({ err: errorFields(err) }, 'token rate limits: Redis unreachable, counting in this process meanwhile');
  });
  // A reported leak: the token revoked (tokens/), then the alert: counted, logged, a `leaked` event (activity/).
  const reportLeaks = createLeakReporting(store, createLeakAlert(activity.recorder, metrics, logger));
  const ownEndpoints: OwnEndpoint[] = [];
  if (config.secretScanning)
    ownEndpoints.push(secretScanningEndpoint({ keys: createScannerKeys(config.secretScanning), reportLeaks }));
  // Without trust policies the exchange path is the namespace's 404, as any unknown own path.
  const ci = config.ciProviders.length > 0 ? createCiExchange(config, { store, metrics, logger }) : undefined;
  if (ci) ownEndpoints.push(tokenExchangeEndpoint(ci));
  const proxy = createProxyHandler({
    config,
    directoryServer: config.routes.some((r) => r.upstream.kind === 'dir')
      ? (await import('./proxy/serve-dir.js')).createDirectoryServer
      : undefined,
    authenticate: deps.authenticate ?? createAuthenticator(cache),
    limiter: limits.failures,
    tokenRate: limits.tokenRate,
    logger,
    ownEndpoints: createOwnEndpoints({ endpoints: ownEndpoints, logger }),
    ownListeners: () =>
      [proxyServer, adminServer].map((server) => {
        const { address, port } = server.address() as AddressInfo;
        return { address, port };
      }),
    onRequestEnd: createRequestEnd(metrics, activity),
  });
  let accepting = true;
  const admin = createAdminApp({
    store,
    isAccepting: () => accepting,
    jwks: activity.jwks,
    registry: deps.metricsSource ? deps.metricsSource(metrics.registry) : metrics.registry,
    metricsToken: config.metrics.token,
    adminHost: config.adminHost,
    auth: adminAuth,
    activity: activity.query,
    logger,
    routes: config.routes.map((r) => r.prefix),
    reportLeaks,
  });

  const proxyServer = createProxyServer(config, proxy.listener);
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
        await Promise.race([
          proxy.idle(),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, graceMs);
          }),
        ]);
        clearTimeout(timer);
      }
      proxyServer.closeAllConnections();
      await closed;
      proxy.close();
      await ci?.purge.stop();
      await activity.stop();
      limits.stop();
      adminAuth.close();
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

function listen(server: Server | ParkingServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
