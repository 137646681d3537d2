import { Hono } from 'hono';
import type { TokenStore } from '../tokens/store.js';

export interface AdminAppOptions {
  store: TokenStore;
  /** False while shutting down, so load balancers stop sending traffic. */
  isAccepting: () => boolean;
}

/**
 * The admin listener (never the proxy port): health now; the admin API, the Settings › Tokens
 * page, /metrics and the JWKS join it later.
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
