import type { IncomingMessage } from 'node:http';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { HTTPException } from 'hono/http-exception';
import { createError, isGatewayError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { ECOSYSTEMS } from '../config/index.js';
import type { ActivityEvent } from '../activity/event.js';
import { CI_CAPS } from '../activity/event-caps.js';
import { MAX_RECENT_LIMIT, type ActivityQuery } from '../activity/recent.js';
import type { ReportLeaks } from '../tokens/leaks.js';
import type { TokenStore } from '../tokens/store.js';
import type { AdminAuth, AdminEnv, AdminPrincipal, Session } from './auth.js';
import { sendAdminError } from './errors.js';
import { readJsonObject } from './json-body.js';
import { LEAK_BODY_MAX_BYTES, parseLimit, registerTokenRoutes } from './token-api.js';

/**
 * The admin JSON API, mounted at /api/v1 on the admin listener. Every route but POST /session
 * needs an admin (see auth.ts); responses are `Cache-Control: no-store`; errors are
 * `{"error": "<message>", "code": "TOLLGATE_ERR_..."}`.
 *
 *   GET    /session              who is signed in, and the session's CSRF token
 *   POST   /session              sign in: {"token": "<admin token>"} (or an Authorization: Bearer
 *                                admin token / OIDC JWT) → session cookie
 *   DELETE /session              sign out
 *   GET    /tokens, POST /tokens, POST /tokens/:id/rotate, POST /tokens/:id/revoke,
 *   POST   /tokens/revoke-leaked, GET /audit: the tokens (token-api.ts)
 *   GET    /activity             recent Production activity: ?project=&ecosystem=&token=<name>&tokenId=&kind=&limit=
 *                                &repository=<a CI job's repository, exactly>
 *
 * Failed admin credentials (POST /session, Authorization: Bearer on any route) count against the
 * client's address: past 10 in a minute, 429 with Retry-After before any credential is checked.
 *
 * CSRF: a request authenticated by the session cookie that is not GET/HEAD must carry
 * `X-CSRF-Token: <the session's token>` (from GET/POST /session) and an Origin header naming this
 * admin origin. Requests with an Authorization header carry no ambient credential and skip it.
 */

export interface AdminApiOptions {
  store: TokenStore;
  activity: ActivityQuery;
  auth: AdminAuth;
  logger: Logger;
  /** Clock (epoch ms). Default Date.now. */
  now?: () => number;
  /** The gateway's route prefixes (a token's route restriction names some). Default: none. */
  routes?: readonly string[];
  /** What revoke-leaked calls (tokens/leaks.ts ReportLeaks). Default: revokeLeakedTokens, without an alert. */
  reportLeaks?: ReportLeaks | undefined;
}

type Env = AdminEnv;

const SAFE_METHODS = new Set(['GET', 'HEAD']);
/** An event's CI repository is cut to its cap (event-caps.ts): a longer one matches nothing. */
const MAX_REPOSITORY_LENGTH = CI_CAPS.repository;
const PRINTABLE = /^[^\p{Cc}]+$/u;
const MAX_BODY_BYTES = 16 * 1024;

export function createAdminApi(options: AdminApiOptions): Hono<Env> {
  const { store, activity, auth, logger } = options;
  const now = options.now ?? Date.now;
  const api = new Hono<Env>();
  /** The client's address (a trusted proxy's X-Forwarded-For believed); undefined without a socket (app.request in tests). */
  const clientIp = (c: Context): string | undefined =>
    auth.clientAddress((c.env as { incoming?: IncomingMessage } | undefined)?.incoming);
  const cookieOptions = {
    httpOnly: true,
    sameSite: 'Strict',
    path: '/',
    secure: auth.secureCookies,
  } as const;

  /** Refuses cross-site requests: Sec-Fetch-Site, then Origin against this admin origin. */
  function checkOrigin(c: Context, required: boolean): void {
    const site = c.req.header('sec-fetch-site');
    if (site !== undefined && site !== 'same-origin')
      throw createError('TOLLGATE_ERR_ADMIN_ORIGIN', `Sec-Fetch-Site is ${site}`);
    const origin = c.req.header('origin');
    if (origin === undefined) {
      if (required) throw createError('TOLLGATE_ERR_ADMIN_ORIGIN', 'the Origin header is missing');
      return;
    }
    if (auth.publicOrigin !== undefined) {
      if (origin !== auth.publicOrigin) {
        throw createError(
          'TOLLGATE_ERR_ADMIN_ORIGIN',
          `Origin must be ${auth.publicOrigin} (TOLLGATE_PUBLIC_ADMIN_URL)`,
        );
      }
      return;
    }
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    // Without TOLLGATE_PUBLIC_ADMIN_URL the scheme is unknown behind a TLS proxy: compare hosts.
    if (host === undefined || host !== new URL(c.req.url).host) {
      throw createError(
        'TOLLGATE_ERR_ADMIN_ORIGIN',
        'Origin does not match this admin page (set TOLLGATE_PUBLIC_ADMIN_URL behind a proxy)',
      );
    }
  }

  /** 429 with Retry-After while the address is over the sign-in limit, else undefined. */
  async function refuseLimited(c: Context, address: string | undefined): Promise<Response | undefined> {
    const wait = await auth.signInRetryAfter(address);
    if (wait <= 0) return undefined;
    c.header('retry-after', String(wait));
    return sendAdminError(c, 'TOLLGATE_ERR_ADMIN_RATE_LIMITED');
  }

  /** Runs a credential check; a wrong credential counts against the address (a 503 does not). */
  async function checkCredential<T>(address: string | undefined, check: () => Promise<T> | T): Promise<T> {
    try {
      return await check();
    } catch (err) {
      if (isGatewayError(err, 'TOLLGATE_ERR_ADMIN_CREDENTIAL') || isGatewayError(err, 'TOLLGATE_ERR_ADMIN_FORBIDDEN')) {
        auth.signInFailed(address);
      }
      throw err;
    }
  }

  const requireAdmin: MiddlewareHandler<Env> = async function requireAdmin(c, next) {
    const authorization = c.req.header('authorization');
    if (authorization !== undefined) {
      const address = clientIp(c);
      const limited = await refuseLimited(c, address);
      if (limited) return limited;
      c.set(
        'admin',
        await checkCredential(address, () => {
          const match = /^Bearer +([^\s]+) *$/i.exec(authorization);
          if (!match)
            throw createError('TOLLGATE_ERR_ADMIN_CREDENTIAL', 'use Authorization: Bearer <admin token or OIDC JWT>');
          return auth.verifyBearer(match[1]!);
        }),
      );
      return next();
    }
    const cookie = getCookie(c, auth.cookieName);
    if (!cookie) throw createError('TOLLGATE_ERR_ADMIN_UNAUTHENTICATED');
    const session = await auth.verifySession(cookie);
    if (!session) {
      deleteCookie(c, auth.cookieName, cookieOptions);
      throw createError(
        'TOLLGATE_ERR_ADMIN_UNAUTHENTICATED',
        'the session has expired, was signed out or was ended by an admin token change, sign in again',
      );
    }
    if (!SAFE_METHODS.has(c.req.method)) {
      checkOrigin(c, true);
      if (!auth.checkCsrf(session, c.req.header('x-csrf-token'))) throw createError('TOLLGATE_ERR_ADMIN_CSRF');
    }
    c.set('admin', { identity: session.identity, via: session.via, session });
    return next();
  };

  const sessionBody = (session: Session) => ({
    identity: session.identity,
    via: session.via,
    csrfToken: session.csrf,
    expiresAt: new Date(session.expiresAt).toISOString(),
  });

  api.use('*', async function noStore(c, next) {
    await next();
    c.header('cache-control', 'no-store');
  });
  const limitBody = (maxSize: number) =>
    bodyLimit({
      maxSize,
      onError: (c) => c.json({ error: `Request body over ${maxSize} bytes`, code: 'TOLLGATE_ERR_ADMIN_BODY' }, 413),
    });
  const smallBody: MiddlewareHandler<Env> = limitBody(MAX_BODY_BYTES);
  const leakBody: MiddlewareHandler<Env> = limitBody(LEAK_BODY_MAX_BYTES);
  api.use('/tokens/revoke-leaked', leakBody);
  api.use('*', async function limitBodies(c, next) {
    if (c.req.path.endsWith('/tokens/revoke-leaked')) return next();
    return smallBody(c as Context<Env, string>, next);
  });

  api.get('/session', requireAdmin, (c) => {
    const admin = c.get('admin');
    if (admin.session) return c.json(sessionBody(admin.session));
    return c.json({ identity: admin.identity, via: admin.via, csrfToken: null, expiresAt: null });
  });

  api.post('/session', async (c) => {
    checkOrigin(c, false);
    const address = clientIp(c);
    // Before the credential is looked at: past the limit, even the right one is refused.
    const limited = await refuseLimited(c, address);
    if (limited) return limited;
    let principal: AdminPrincipal | undefined;
    const authorization = c.req.header('authorization');
    const match = authorization === undefined ? undefined : /^Bearer +([^\s]+) *$/i.exec(authorization);
    try {
      principal = await checkCredential(address, async (): Promise<AdminPrincipal> => {
        if (match) return auth.verifyBearer(match[1]!);
        const body = await readJsonObject(c);
        if (typeof body.token !== 'string' || body.token === '')
          throw createError('TOLLGATE_ERR_ADMIN_CREDENTIAL', 'send {"token": "<admin token>"}');
        if (!auth.isAdminToken(body.token.trim())) throw createError('TOLLGATE_ERR_ADMIN_CREDENTIAL');
        return { identity: 'admin', via: 'token' };
      });
    } catch (err) {
      if (isGatewayError(err, 'TOLLGATE_ERR_ADMIN_')) {
        logger.warn(
          { event: 'admin.sign_in_failed', reason: err.code, detail: err.detail, clientIp: address },
          'admin sign-in refused',
        );
      }
      throw err;
    }
    const { cookie, session } = await auth.issueSession(principal);
    setCookie(c, auth.cookieName, cookie, { ...cookieOptions, maxAge: Math.floor(auth.sessionTtlMs / 1000) });
    logger.info(
      { event: 'admin.sign_in', identity: session.identity, via: session.via, clientIp: address },
      'admin signed in',
    );
    return c.json(sessionBody(session));
  });

  api.delete('/session', requireAdmin, async (c) => {
    const admin = c.get('admin');
    deleteCookie(c, auth.cookieName, cookieOptions);
    if (admin.session) {
      // Recorded in the token store before the answer: every worker and instance refuses it from now on.
      await auth.endSession(admin.session);
      logger.info({ event: 'admin.sign_out', identity: admin.identity }, 'admin signed out');
    }
    return c.body(null, 204);
  });

  registerTokenRoutes(api, requireAdmin, {
    store,
    logger,
    now,
    routes: options.routes ?? [],
    reportLeaks: options.reportLeaks,
    clientIp,
  });

  api.get('/activity', requireAdmin, async (c) => {
    const q = c.req.query();
    const kind = q.kind || undefined;
    if (kind !== undefined && kind !== 'download' && kind !== 'metadata') {
      throw createError('TOLLGATE_ERR_ADMIN_QUERY', 'kind must be download or metadata');
    }
    const repository = q.repository || undefined;
    if (repository !== undefined && (repository.length > MAX_REPOSITORY_LENGTH || !PRINTABLE.test(repository))) {
      throw createError(
        'TOLLGATE_ERR_ADMIN_QUERY',
        `repository must be at most ${MAX_REPOSITORY_LENGTH} characters, without control characters`,
      );
    }
    const limit = parseLimit(q.limit, 100, MAX_RECENT_LIMIT);
    const events = await activity.recent({
      repository,
      project: q.project,
      ecosystem: q.ecosystem,
      tokenName: q.token,
      tokenId: q.tokenId,
      // Kind and type filters apply after the query: read the most it gives (one admin page
      // view, at most 1000 events), then cut to the limit.
      limit: MAX_RECENT_LIMIT,
    });
    const shown = events.filter((e) => e.tokenType === 'production' && (!kind || e.kind === kind)).slice(0, limit);
    return c.json({ events: shown.map(activityView), ecosystems: ECOSYSTEMS });
  });

  api.notFound((c) => sendAdminError(c, 'TOLLGATE_ERR_ADMIN_NOT_FOUND'));

  api.onError((err, c) => {
    if (isGatewayError(err)) {
      if (err.status >= 500) {
        // The detail of a server-side failure (a store's, the OIDC issuer's) goes to the log only.
        logger.error({ err: { name: err.name, message: err.message, code: err.code } }, 'admin API: service error');
        return sendAdminError(c, err.code);
      }
      return sendAdminError(c, err.code, err.message);
    }
    if (err instanceof HTTPException)
      return c.json({ error: err.message || 'Bad request', code: 'TOLLGATE_ERR_ADMIN_BODY' }, err.status);
    logger.error({ err: { name: err.name, message: err.message } }, 'admin API: unexpected error');
    return sendAdminError(c, 'TOLLGATE_ERR_ADMIN_INTERNAL');
  });

  return api;
}

/** What the page shows of an event (not the client's address or user agent). */
function activityView(e: ActivityEvent) {
  return {
    id: e.id,
    time: e.time,
    project: e.project,
    ecosystem: e.ecosystem,
    kind: e.kind,
    package: e.package,
    version: e.version,
    file: e.file,
    tokenId: e.tokenId,
    tokenName: e.tokenName,
    sealed: e.sealed,
    status: e.status,
    bytes: e.bytes,
    aborted: e.aborted === true,
    ci: e.ci ?? null,
  };
}
