import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Hono, type Context } from 'hono';
import type { ActivityQuery } from '../activity/recent.js';
import type { Logger } from '../logging/logger.js';
import { MAX_METRIC_NAMES, METRIC_NAME, selectMetrics, type MetricsSource } from '../metrics/select.js';
import type { ReportLeaks } from '../tokens/leaks.js';
import type { TokenStore } from '../tokens/store.js';
import { createAdminApi } from './api.js';
import type { AdminAuth } from './auth.js';
import { sendAdminError } from './errors.js';
import { createAdminHostCheck } from './host.js';
import { loadPageAssets, PAGE_FILES, type PageFile } from './page.js';

export interface AdminAppOptions {
  store: TokenStore;
  /** False while shutting down, so load balancers stop sending traffic. */
  isAccepting: () => boolean;
  /** What /metrics serves: this process's registry, or the whole cluster's. */
  registry?: MetricsSource;
  /** TOLLGATE_METRICS_TOKEN: when set, /metrics needs `Authorization: Bearer <it>`. */
  metricsToken?: string | undefined;
  /** Public keys that verify signed activity batches (current and retired). */
  jwks?: () => { keys: object[] };
  /** Admin sign-in (admin token, OIDC bearer, session cookie): see auth.ts. */
  auth: AdminAuth;
  /** Recent Production activity for the Activity tab. */
  activity: ActivityQuery;
  logger: Logger;
  /** Clock (epoch ms) for the API. Default Date.now. */
  now?: () => number;
  /** TOLLGATE_ADMIN_HOST: the Host names the listener answers (host.ts) include it when it is a name. */
  adminHost?: string;
  /** The configured route prefixes: what a token's route restriction may name (the page offers them). */
  routes?: readonly string[];
  /**
   * What POST /api/v1/tokens/revoke-leaked calls with the reported values (token-api.ts): the
   * gateway wires createLeakReporting (tokens/leaks.ts) with activity's leak alert. Default:
   * revokeLeakedTokens alone.
   */
  reportLeaks?: ReportLeaks;
}

/** Applied to every admin response: the page runs only its own script and style, never framed. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/**
 * The admin listener (never the proxy port): health, /metrics, the JWKS, the admin API under
 * /api/v1 and the Settings › Tokens page at /settings. Every path answers only its own Host
 * names (host.ts), else 421.
 */
export function createAdminApp(options: AdminAppOptions): Hono {
  const app = new Hono();
  app.use('*', async function securityHeaders(c, next) {
    await next();
    c.header('content-security-policy', CONTENT_SECURITY_POLICY);
    c.header('x-content-type-options', 'nosniff');
    c.header('x-frame-options', 'DENY');
    c.header('referrer-policy', 'no-referrer');
    c.header('cross-origin-opener-policy', 'same-origin');
  });
  const isAdminHost = createAdminHostCheck({ adminHost: options.adminHost, publicOrigin: options.auth.publicOrigin });
  app.use('*', async function misdirected(c, next) {
    // The Host header as sent, and the request target's host (they differ for an absolute-form
    // target); without a socket (app.request) only the URL's.
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    const local = incoming?.socket?.localAddress;
    const urlHost = new URL(c.req.url).host;
    const hostHeader = incoming ? incoming.headers.host : urlHost;
    if (!isAdminHost(hostHeader, local) || (urlHost !== hostHeader && !isAdminHost(urlHost, local))) {
      return sendAdminError(c, 'TOLLGATE_ERR_ADMIN_HOST');
    }
    return next();
  });

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
    const expected = options.metricsToken ? Buffer.from(`Bearer ${options.metricsToken}`) : undefined;
    app.get('/metrics', async (c) => {
      if (expected) {
        const given = Buffer.from(c.req.header('authorization') ?? '');
        if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
          return c.json({ error: 'metrics need the metrics bearer token' }, 401, {
            'www-authenticate': 'Bearer realm="tollgate-metrics"',
          });
        }
      }
      // `?name=<family>` (repeatable): only those families, e.g. for a probe that reads a few
      // counters without collecting the per-token gauges.
      const names = c.req.queries('name');
      if (names === undefined) return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType });
      const bad = names.find((n) => !METRIC_NAME.test(n));
      if (bad !== undefined || names.length > MAX_METRIC_NAMES) {
        return c.json(
          {
            error:
              bad !== undefined
                ? `not a metric name: ${JSON.stringify(bad.slice(0, 100))}`
                : `at most ${MAX_METRIC_NAMES} names`,
          },
          400,
        );
      }
      return c.body(await selectMetrics(registry, names), 200, { 'content-type': registry.contentType });
    });
  }
  if (jwks) {
    const serve = (c: { json: (body: unknown, status: 200, headers: Record<string, string>) => Response }) =>
      c.json(jwks(), 200, { 'cache-control': 'public, max-age=300' });
    app.get('/.well-known/jwks.json', (c) => serve(c));
    app.get('/jwks.json', (c) => serve(c));
  }

  app.route(
    '/api/v1',
    createAdminApi({
      store: options.store,
      activity: options.activity,
      auth: options.auth,
      logger: options.logger,
      now: options.now,
      routes: options.routes,
      reportLeaks: options.reportLeaks,
    }),
  );

  const assets = loadPageAssets();
  if (!assets.ok) {
    options.logger.warn(
      { searched: assets.searched },
      'admin page files not found: the API works, /settings does not (copy src/admin/page into dist/admin/page)',
    );
  }
  const servePage = (c: Context, name: PageFile): Response => {
    if (!assets.ok)
      return c.json({ error: 'The admin page files are missing from this build (see the gateway log)' }, 500);
    const asset = assets.files[name];
    const headers = { 'content-type': asset.contentType, etag: asset.etag, 'cache-control': 'no-cache' };
    if (c.req.header('if-none-match') === asset.etag) return c.body(null, 304, headers);
    return c.body(asset.body, 200, headers);
  };
  app.get('/', (c) => c.redirect('/settings', 302));
  app.get('/settings', (c) => servePage(c, 'index.html'));
  for (const name of Object.keys(PAGE_FILES) as PageFile[]) {
    if (name !== 'index.html') app.get(`/assets/${name}`, (c) => servePage(c, name));
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
