import { Hono } from 'hono';
import type { Registry } from 'prom-client';
import type { TokenStore } from '../tokens/store.js';

export interface AdminAppOptions {
  store: TokenStore;
  /** False while shutting down, so load balancers stop sending traffic. */
  isAccepting: () => boolean;
  /** Prometheus registry served on /metrics. */
  registry?: Registry;
  /** Public keys that verify signed activity batches (current and retired). */
  jwks?: () => { keys: object[] };
}

/**
 * The admin listener (never the proxy port): health, /metrics and the JWKS; the admin API and
 * the Settings › Tokens page join it later.
 */
export function createAdminApp(options: AdminAppOptions): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    if (!options.isAccepting()) return c.json({ status: 'shutting-down' }, 503);
    try {
      await withTimeout(options.store.ping(), 2000);
      return c.json({ status: 'ready', store: options.store.kind });
    } catch {
      return c.json({ status: 'unavailable', store: options.store.kind }, 503);
    }
  });
  const { registry, jwks } = options;
  if (registry) {
    app.get('/metrics', async (c) => c.body(await registry.metrics(), 200, { 'content-type': registry.contentType }));
  }
  if (jwks) {
    const serve = (c: { json: (body: unknown, status: 200, headers: Record<string, string>) => Response }) =>
      c.json(jwks(), 200, { 'cache-control': 'public, max-age=300' });
    app.get('/.well-known/jwks.json', (c) => serve(c));
    app.get('/jwks.json', (c) => serve(c));
  }
  app.notFound((c) => c.json({ error: 'Not found' }, 404));
  return app;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
