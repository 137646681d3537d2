import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config, RouteConfig } from '../config/index.js';
import { ErrorCodes } from '../errors.js';
import type { Authenticate, AuthOutcome } from '../auth/authenticate.js';
import type { RateLimiter } from '../auth/rate-limit.js';
import { createLocalTokenRateLimiter, type TokenRateLimiter } from '../auth/token-rate.js';
import { createInfoLineWriter } from '../logging/info-line.js';
import { authorizationHeader, credentialMemo, refuseAuthentication } from './authorize.js';
import { createHttpForwarder, type Forwarder } from './forward/http.js';
import type { HttpRoute } from './forward/exchange.js';
import { createForwardedResolver } from './forwarded.js';
import { isOwnPath, setOwnClientIp } from './own/index.js';
import type { ForwardedInfo } from './headers.js';
import { createRouteMatcher, isSafePath, removeSingleDotSegments, type RouteMatch } from './paths.js';
import { requestLineMembers } from './request-line.js';
import { RESTRICTION_CODES, restrictionRefusal } from './restrict.js';
import { sendError } from './respond.js';
import type { createDirectoryServer } from './serve-dir.js';
import type { RequestState } from './state.js';

export interface ProxyHandlerOptions {
  config: Pick<
    Config,
    | 'routes'
    | 'trustedProxies'
    | 'tls'
    | 'publicUrl'
    | 'upstreamTimeoutMs'
    | 'upstreamConnections'
    | 'upstreamHeldPerToken'
  >;
  authenticate: Authenticate;
  /** Brute-force limit on failed authentications per client address. */
  limiter?: RateLimiter;
  /** Request rates of tokens restricted to one. Default: counted in this process. */
  tokenRate?: TokenRateLimiter;
  logger: Logger;
  /**
   * Serves a `dir` route (./serve-dir.js). Passed in so that `send` and its MIME database are
   * loaded only by a gateway that has such a route.
   */
  directoryServer?: typeof createDirectoryServer;
  /** Tollgate's own endpoints under `/-/tollgate/` (./own/index.ts); without it that namespace is a 404. */
  ownEndpoints?: (incoming: IncomingMessage, outgoing: ServerResponse) => Promise<void>;
  /** The gateway's own listeners, which a followed redirect may never reach (read when first needed). */
  ownListeners?: () => readonly { address: string; port: number }[];
  /** Called once per request when the response is over, after its log line (metrics, activity). */
  onRequestEnd?: (state: RequestState, incoming: IncomingMessage, outgoing: ServerResponse) => void;
}

export interface ProxyHandler {
  /** The Node request listener of the proxy server. */
  listener: (incoming: IncomingMessage, outgoing: ServerResponse) => void;
  /** Requests whose response is not over yet. */
  inFlight(): number;
  /** Resolves once no request is in flight. */
  idle(): Promise<void>;
  close(): void;
}

const ALLOW_READ = { allow: 'GET, HEAD' };
const INTERNAL_ERROR_BODY = `{"error":${JSON.stringify(ErrorCodes.TOLLGATE_ERR_INTERNAL.message)}}\n`;

/**
 * The proxy port: nothing but artifacts. A plain node:http request listener; each request goes
 * through these steps, in order, and the first that refuses answers it:
 *
 *   path safety, Host (400) → Tollgate's own endpoints (`/-/tollgate/`, answered here)
 *   → route and method (405) → token (401/503; 429 for a token that
 *   would need a store read from an address past its failure limit)
 *   → route exists (404) → forward to the route's upstream or directory
 *
 * Every step works on the Node request and response: bodies stream without conversion, and a
 * token cache hit goes from the first byte to the upstream dispatch with no await. (Why not Hono
 * here, as on the admin port: README.md, "Architecture".)
 */
export function createProxyHandler(options: ProxyHandlerOptions): ProxyHandler {
  const { config, authenticate, logger, limiter } = options;
  const tokenRate = options.tokenRate ?? createLocalTokenRateLimiter();
  const matchRoute = createRouteMatcher(config.routes);
  const forwardedInfo = createForwardedResolver(config);
  const forwarders = new Map<RouteConfig, Forwarder>();
  for (const route of config.routes) forwarders.set(route, createForwarder(route, options));

  const writeRequestLine = createInfoLineWriter(logger, 'request');
  const idPrefix = randomBytes(4).toString('hex');
  let counter = 0;
  let inFlight = 0;
  let onIdle: (() => void) | undefined;

  /** The request's state, counted in flight until its response is over. */
  function begin(incoming: IncomingMessage, outgoing: ServerResponse, clientIp: string): RequestState {
    const state: RequestState = {
      requestId: `${idPrefix}-${(++counter).toString(36)}`,
      startNs: process.hrtime.bigint(),
      clientIp,
      principal: undefined,
      bytes: 0,
      upstreamError: undefined,
      authFailure: undefined,
      route: undefined,
      rest: '',
      durationMs: 0,
      onClientGone: undefined,
      refusedBy: undefined,
    };
    inFlight++;
    // The one 'close' listener of the request: stops an upstream transfer the client no longer
    // waits for, then writes the log line (and metrics, activity) with everything known.
    outgoing.once('close', () => {
      if (!outgoing.writableFinished) state.onClientGone?.();
      state.onClientGone = undefined;
      end(state, incoming, outgoing);
    });
    return state;
  }

  function end(state: RequestState, incoming: IncomingMessage, outgoing: ServerResponse): void {
    if (--inFlight === 0) onIdle?.();
    state.durationMs = Number(process.hrtime.bigint() - state.startNs) / 1e6;
    writeRequestLine?.(requestLineMembers(state, incoming, outgoing));
    options.onRequestEnd?.(state, incoming, outgoing);
  }

  /** Only GET and HEAD, and POST below a route's `allowPost` prefixes (npm audit). */
  function methodAllowed(method: string | undefined, match: RouteMatch | undefined, rawPath: string): boolean {
    if (method === 'GET' || method === 'HEAD') return true;
    return method === 'POST' && match !== undefined && match.route.allowPost.some((p) => rawPath.startsWith(p));
  }

  /** The token decided: the request goes to its route (or 404), within the token's restrictions. */
  function admit(
    outcome: AuthOutcome,
    state: RequestState,
    incoming: IncomingMessage,
    outgoing: ServerResponse,
    forwarded: ForwardedInfo,
    now: number,
    retryAfterS: number,
  ): Promise<void> | undefined {
    if (!outcome.ok) {
      refuseAuthentication(outcome.reason, state, outgoing, limiter, now, retryAfterS);
      return undefined;
    }
    const { principal } = outcome;
    const route = state.route;
    if (!route) {
      state.principal = principal;
      sendError(outgoing, 'TOLLGATE_ERR_REQUEST_NO_ROUTE', state.requestId);
      return undefined;
    }
    const r = principal.restrictions;
    if (r === undefined) {
      state.principal = principal;
      forwarders.get(route)!(incoming, outgoing, state.rest, state, forwarded);
      return undefined;
    }
    const refusal = restrictionRefusal(r, route, state.rest, state.clientIp);
    if (refusal === 'network') {
      // Answered as an unknown token, and counted as a failed authentication.
      refuseAuthentication('invalid', state, outgoing, limiter, now, 0);
      state.authFailure = 'network';
      return undefined;
    }
    state.principal = principal;
    if (refusal !== undefined) {
      state.refusedBy = refusal;
      sendError(outgoing, RESTRICTION_CODES[refusal], state.requestId);
      return undefined;
    }
    if (r.ratePerMinute === undefined) {
      forwarders.get(route)!(incoming, outgoing, state.rest, state, forwarded);
      return undefined;
    }
    const forwardWithin = (waitS: number): void => {
      if (waitS > 0) {
        state.refusedBy = 'rate';
        sendError(outgoing, RESTRICTION_CODES.rate, state.requestId, { 'retry-after': String(waitS) });
      } else if (!outgoing.destroyed) {
        forwarders.get(route)!(incoming, outgoing, state.rest, state, forwarded);
      }
    };
    const wait = tokenRate.take(principal.tokenId, r.ratePerMinute, now);
    if (wait instanceof Promise) return wait.then(forwardWithin);
    forwardWithin(wait);
    return undefined;
  }

  function handle(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> | undefined {
    const forwarded = forwardedInfo(incoming);
    const state = begin(incoming, outgoing, forwarded.clientIp);

    // Single-dot segments are normalised away first (apt's flat repositories ask for `/./`).
    const rawPath = removeSingleDotSegments(incoming.url ?? '/');
    // A request line without "HTTP/1.x" (a raw CR/LF in the target) parses as HTTP/0.9, and
    // what follows would be read as headers: refuse it.
    if (incoming.httpVersionMajor !== 1 || !isSafePath(rawPath)) {
      sendError(outgoing, 'TOLLGATE_ERR_REQUEST_PATH', state.requestId);
      return undefined;
    }
    if (forwarded.host === null) {
      sendError(outgoing, 'TOLLGATE_ERR_REQUEST_HOST', state.requestId);
      return undefined;
    }
    // Tollgate's own endpoints: before the method check, the failure limit and authentication,
    // never forwarded.
    if (isOwnPath(rawPath)) {
      if (!options.ownEndpoints) {
        sendError(outgoing, 'TOLLGATE_ERR_REQUEST_NO_ROUTE', state.requestId);
        return undefined;
      }
      incoming.url = rawPath;
      setOwnClientIp(incoming, forwarded.clientIp);
      return options.ownEndpoints(incoming, outgoing);
    }
    const match = matchRoute(rawPath);
    if (match) {
      state.route = match.route;
      state.rest = match.rest;
    }
    if (!methodAllowed(incoming.method, match, rawPath)) {
      sendError(outgoing, 'TOLLGATE_ERR_REQUEST_METHOD', state.requestId, ALLOW_READ);
      return undefined;
    }

    const header = authorizationHeader(incoming);
    const now = Date.now();
    // An address that used up its failed authentications gets no store reads: a token the cache
    // does not know is refused with 429 before the store is asked; a cached one still passes.
    const retryAfterS = limiter && header ? limiter.retryAfter(state.clientIp, now) : 0;
    const outcome = authenticate(header, now, credentialMemo(incoming.socket), retryAfterS === 0);
    if (outcome instanceof Promise) {
      return outcome.then((o) => admit(o, state, incoming, outgoing, forwarded, now, retryAfterS));
    }
    return admit(outcome, state, incoming, outgoing, forwarded, now, retryAfterS);
  }

  function internalError(err: unknown, outgoing: ServerResponse): void {
    const { message, name } = err instanceof Error ? err : { message: String(err), name: undefined };
    logger.error({ err: { message, name } }, 'unhandled error on proxy port');
    if (!outgoing.headersSent) {
      outgoing.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
      outgoing.end(INTERNAL_ERROR_BODY);
    } else {
      outgoing.destroy();
    }
  }

  return {
    listener: function proxyRequest(incoming, outgoing) {
      try {
        handle(incoming, outgoing)?.catch((err: unknown) => internalError(err, outgoing));
      } catch (err) {
        internalError(err, outgoing);
      }
    },
    inFlight: () => inFlight,
    idle: () =>
      inFlight === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const previous = onIdle;
            onIdle = () => {
              onIdle = previous;
              previous?.();
              resolve();
            };
          }),
    close() {
      for (const forwarder of forwarders.values()) forwarder.close();
    },
  };
}

function createForwarder(route: RouteConfig, options: ProxyHandlerOptions): Forwarder {
  if (route.upstream.kind === 'http') {
    return createHttpForwarder({
      route: route as HttpRoute,
      upstreamTimeoutMs: options.config.upstreamTimeoutMs,
      upstreamConnections: options.config.upstreamConnections,
      upstreamHeldPerToken: options.config.upstreamHeldPerToken,
      publicUrl: options.config.publicUrl,
      logger: options.logger,
      ownListeners: options.ownListeners,
    });
  }
  if (!options.directoryServer) throw new Error(`route ${route.prefix} serves a directory: pass directoryServer`);
  return options.directoryServer(route as RouteConfig & { upstream: { kind: 'dir'; root: string } });
}
