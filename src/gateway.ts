import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import type { Config } from './config/index.js';
import type { Logger } from './logging/logger.js';
import type { TokenStore } from './tokens/store.js';
import { createTokenCache, type TokenCache } from './tokens/cache.js';
import { createAuthenticator, type Authenticate } from './auth/authenticate.js';
import { createProxyApp } from './proxy/app.js';
import { createAdminApp } from './admin/app.js';

export interface Gateway {
  proxyServer: Server;
  adminServer: Server;
  cache: TokenCache;
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
}

/**
 * Wires one gateway process: token cache over the store, the proxy app on the proxy port, the
 * admin app on the admin port. Reads no environment; main.ts and the tests hand it a Config.
 */
export async function startGateway(config: Readonly<Config>, deps: GatewayDeps): Promise<Gateway> {
  const { logger, store } = deps;
  const cache = createTokenCache({
    store,
    ttlMs: config.cacheTtlMs,
    max: config.cacheMax,
    negativeTtlMs: config.negativeCacheTtlMs,
    negativeMax: config.negativeCacheMax,
    pollMs: config.changePollMs,
    lastUsedFlushMs: config.lastUsedFlushMs,
    onError: (err, what) => logger.warn({ err: errorFields(err), what }, 'token store problem'),
  });
  await cache.start();

  const proxy = createProxyApp({ config, authenticate: deps.authenticate ?? createAuthenticator(cache), logger });
  let accepting = true;
  const admin = createAdminApp({ store, isAccepting: () => accepting });

  const proxyServer = (config.tls
    ? createAdaptorServer({
      fetch: proxy.app.fetch,
      createServer: createHttpsServer,
      serverOptions: { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) },
    })
    : createAdaptorServer({ fetch: proxy.app.fetch })) as Server;
  proxyServer.headersTimeout = config.headersTimeoutMs;
  proxyServer.requestTimeout = config.headersTimeoutMs + 60_000;
  proxyServer.keepAliveTimeout = 30_000;

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
      await cache.stop();
      await new Promise<void>((resolve) => {
        adminServer.close(() => resolve());
        adminServer.closeAllConnections();
      });
    })();
    return closing;
  }

  return { proxyServer, adminServer, cache, proxyPort, adminPort, shutdown };
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
