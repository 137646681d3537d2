import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import proxyAddr from 'proxy-addr';
import type { Logger } from 'pino';
import type { Config, RouteConfig } from '../config/index.js';
import type { Authenticate, AuthOutcome, CredentialMemo } from '../auth/authenticate.js';
import type { RateLimiter } from '../auth/rate-limit.js';
import { createHttpForwarder, type Forwarder } from './forward-http.js';
import type { createDirectoryServer } from './serve-dir.js';
import type { ForwardedInfo } from './headers.js';
import { createRouteMatcher, isSafePath, removeSingleDotSegments } from './paths.js';
import { sendError } from './respond.js';
import { createProxyListener } from './listener.js';
import { createInfoLineWriter } from '../logging/info-line.js';
import type { RequestState } from './state.js';

export interface ProxyAppOptions {
  config: Pick<Config, 'routes' | 'trustedProxies' | 'tls' | 'publicUrl' | 'upstreamTimeoutMs'>;
  authenticate: Authenticate;
  /** Brute-force limit on failed authentications per client address. */
  limiter?: RateLimiter;
  logger: Logger;
  /**
   * Serves a `dir` route (./serve-dir.js). Passed in so that `send` and its MIME database are
   * loaded only by a gateway that has such a route (~3 MiB of RSS otherwise).
   */
  directoryServer?: typeof createDirectoryServer;
  /** Called once per request when the response is over (log line; later activity and metrics). */
  onRequestEnd?: (state: RequestState, incoming: IncomingMessage, outgoing: ServerResponse) => void;
}

export interface ProxyApp {
  app: Hono<{ Bindings: HttpBindings }>;
  /** The Node request listener for the proxy server (routes through `app`). */
  listener: (incoming: IncomingMessage, outgoing: ServerResponse) => void;
  /** Requests whose response is not over yet. */
  inFlight(): number;
  /** Resolves once no request is in flight. */
  idle(): Promise<void>;
  close(): void;
}

const ALLOW_READ = { allow: 'GET, HEAD' };

/**
 * The proxy port: nothing but artifacts. One request flows through these steps, in order:
 * path safety (400) → route and method (405) → token (401/503) → route exists (404) → forward.
 * Hono owns the app; the work happens on the Node request and response (`c.env`), so bodies
 * stream without conversion to web streams and a cache hit needs no await at all.
 */
export function createProxyApp(options: ProxyAppOptions): ProxyApp {
  const { config, authenticate, logger, limiter } = options;
  const matchRoute = createRouteMatcher(config.routes);
  const directoryServerFor: typeof createDirectoryServer = (route) => {
    if (!options.directoryServer) throw new Error(`route ${route.prefix} serves a directory: pass directoryServer`);
    return options.directoryServer(route);
  };
  const forwarders = new Map<RouteConfig, Forwarder>();
  for (const route of config.routes) {
    forwarders.set(route, route.upstream.kind === 'http'
      ? createHttpForwarder({
        route: route as RouteConfig & { upstream: { kind: 'http'; url: URL } },
        upstreamTimeoutMs: config.upstreamTimeoutMs,
        publicUrl: config.publicUrl,
      })
      : directoryServerFor(route as RouteConfig & { upstream: { kind: 'dir'; root: string } }));
  }

  const trust = proxyAddr.compile(config.trustedProxies);
  const noTrustedProxies = config.trustedProxies.length === 0;
  const ownProto = config.tls ? 'https' : 'http';
  const publicHost = config.publicUrl ? new URL(config.publicUrl).host : undefined;
  const idPrefix = randomBytes(4).toString('hex');
  let counter = 0;
  let inFlight = 0;
  let onIdle: (() => void) | undefined;

  function forwardedInfo(incoming: IncomingMessage): ForwardedInfo {
    const socketIp = incoming.socket.remoteAddress ?? '';
    if (noTrustedProxies || !trust(socketIp, 0)) {
      return { clientIp: socketIp, peerIp: socketIp, priorForwardedFor: undefined, proto: ownProto, host: publicHost ?? incoming.headers.host };
    }
    const xfp = incoming.headers['x-forwarded-proto'];
    const xfh = incoming.headers['x-forwarded-host'];
    return {
      clientIp: proxyAddr(incoming, trust),
      peerIp: socketIp,
      priorForwardedFor: incoming.headers['x-forwarded-for'] as string | undefined,
      proto: typeof xfp === 'string' && (xfp === 'https' || xfp === 'http') ? xfp : ownProto,
      host: publicHost ?? (typeof xfh === 'string' ? xfh : incoming.headers.host),
    };
  }

  const writeRequestLine = createInfoLineWriter(logger, 'request');

  function onEnd(state: RequestState, incoming: IncomingMessage, outgoing: ServerResponse): void {
    if (--inFlight === 0) onIdle?.();
    state.durationMs = Number(process.hrtime.bigint() - state.startNs) / 1e6;
    writeRequestLine?.(requestLineMembers(state, incoming, outgoing));
    options.onRequestEnd?.(state, incoming, outgoing);
  }

  function authorised(outcome: AuthOutcome, state: RequestState, incoming: IncomingMessage, outgoing: ServerResponse,
    forwarded: ForwardedInfo, now: number): void {
    if (!outcome.ok) {
      state.authFailure = outcome.reason;
      if (limiter && outcome.reason !== 'missing' && outcome.reason !== 'unavailable') limiter.fail(state.clientIp, now);
      sendError(outgoing, outcome.reason === 'missing' ? 'TOLLGATE_ERR_AUTH_MISSING'
        : outcome.reason === 'unavailable' ? 'TOLLGATE_ERR_AUTH_UNAVAILABLE'
          : 'TOLLGATE_ERR_AUTH_INVALID', state.requestId, outcome.reason === 'unavailable' ? { 'retry-after': '5' } : undefined);
      return;
    }
    state.principal = outcome.principal;
    if (!state.route) {
      sendError(outgoing, 'TOLLGATE_ERR_REQUEST_NO_ROUTE', state.requestId);
      return;
    }
    forwarders.get(state.route)!(incoming, outgoing, state.rest, state, forwarded);
  }

  function handleRequest(incoming: IncomingMessage, outgoing: ServerResponse): Response | Promise<Response> {
    const forwarded = forwardedInfo(incoming);
    const state: RequestState = {
      requestId: `${idPrefix}-${(++counter).toString(36)}`,
      startNs: process.hrtime.bigint(),
      clientIp: forwarded.clientIp,
      principal: undefined,
      bytes: 0,
      upstreamError: undefined,
      authFailure: undefined,
      route: undefined,
      rest: '',
      durationMs: 0,
      onClientGone: undefined,
    };
    inFlight++;
    // The one 'close' listener of the request: stops an upstream transfer the client no longer
    // waits for, then writes the log line (and metrics, activity) with everything known.
    outgoing.once('close', () => {
      if (!outgoing.writableFinished) state.onClientGone?.();
      state.onClientGone = undefined;
      onEnd(state, incoming, outgoing);
    });

    // Single-dot segments are normalised away first (apt's flat repositories ask for `/./`).
    const rawPath = removeSingleDotSegments(incoming.url ?? '/');
    // A request line without "HTTP/1.x" (a raw CR/LF in the target) parses as HTTP/0.9, and
    // what follows would be read as headers: refuse it.
    if (incoming.httpVersionMajor !== 1 || !isSafePath(rawPath)) {
      sendError(outgoing, 'TOLLGATE_ERR_REQUEST_PATH', state.requestId);
      return RESPONSE_ALREADY_SENT;
    }
    const match = matchRoute(rawPath);
    if (match) {
      state.route = match.route;
      state.rest = match.rest;
    }
    const method = incoming.method;
    if (method !== 'GET' && method !== 'HEAD'
      && !(method === 'POST' && match && match.route.allowPost.some((p) => rawPath.startsWith(p)))) {
      sendError(outgoing, 'TOLLGATE_ERR_REQUEST_METHOD', state.requestId, ALLOW_READ);
      return RESPONSE_ALREADY_SENT;
    }

    const header = authorizationHeader(incoming);
    const now = Date.now();
    if (limiter && header) {
      // An address that used up its failures is refused before its credential is looked at.
      const wait = limiter.retryAfter(state.clientIp, now);
      if (wait > 0) {
        state.authFailure = 'rate-limited';
        sendError(outgoing, 'TOLLGATE_ERR_AUTH_RATE_LIMITED', state.requestId, { 'retry-after': String(wait) });
        return RESPONSE_ALREADY_SENT;
      }
    }
    const outcome = authenticate(header, now, credentialMemo(incoming.socket));
    if (outcome instanceof Promise) {
      return outcome.then((o): Response => {
        authorised(o, state, incoming, outgoing, forwarded, now);
        return RESPONSE_ALREADY_SENT;
      });
    }
    authorised(outcome, state, incoming, outgoing, forwarded, now);
    return RESPONSE_ALREADY_SENT;
  }

  const app = new Hono<{ Bindings: HttpBindings }>();
  app.all('*', function proxyRequest(c): Response | Promise<Response> {
    return handleRequest(c.env.incoming, c.env.outgoing);
  });
  // Hono answers HEAD by running the GET route and wrapping its result in a new Response, which
  // @hono/node-server then writes at once (the "already sent" marker does not survive the
  // wrapping): the client got an empty 200 before the upstream answered, and the forwarder's own
  // writeHead then threw ERR_HTTP_HEADERS_SENT, uncaught. HEAD goes straight to the handler.
  const honoFetch = app.fetch;
  app.fetch = function proxyFetch(request, env, executionCtx) {
    const bindings = env as Partial<HttpBindings> | undefined;
    return request.method === 'HEAD' && bindings?.incoming && bindings.outgoing
      ? handleRequest(bindings.incoming, bindings.outgoing)
      : honoFetch(request, env, executionCtx);
  };

  function internalError(err: unknown, outgoing: ServerResponse): void {
    const { message, name } = err instanceof Error ? err : { message: String(err), name: undefined };
    logger.error({ err: { message, name } }, 'unhandled error on proxy port');
    if (!outgoing.headersSent) {
      outgoing.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
      outgoing.end('{"error":"Internal error"}\n');
    } else {
      outgoing.destroy();
    }
  }
  app.onError((err, c) => {
    internalError(err, c.env.outgoing);
    return RESPONSE_ALREADY_SENT;
  });

  return {
    app,
    listener: createProxyListener(app.fetch, internalError),
    inFlight: () => inFlight,
    idle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => {
      const previous = onIdle;
      onIdle = () => {
        onIdle = previous;
        previous?.();
        resolve();
      };
    })),
    close() {
      for (const forwarder of forwarders.values()) forwarder.close();
    },
  };
}

const CREDENTIAL_MEMO = Symbol('tollgate.credentialMemo');

/**
 * The connection's credential memo (see authenticate): on the socket, so it lives and dies with
 * the connection and a header is only ever compared with one sent on the same connection. It
 * holds the token as the request's own header does; nothing logs or serialises a socket.
 */
function credentialMemo(socket: Socket & { [CREDENTIAL_MEMO]?: CredentialMemo }): CredentialMemo {
  return socket[CREDENTIAL_MEMO] ??= {};
}

/** A second Authorization header is an attack or a bug, never a credential. Node keeps only the first. */
const SEVERAL_AUTHORIZATION_HEADERS = 'several-authorization-headers';

/**
 * The Authorization header value, or a value that parses as malformed when several were sent.
 * rawHeaders is only scanned when there is one at all.
 */
function authorizationHeader(incoming: IncomingMessage): string | undefined {
  const value = incoming.headers.authorization;
  if (value === undefined) return undefined;
  const raw = incoming.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 13 && name.toLowerCase() === 'authorization' && ++seen > 1) return SEVERAL_AUTHORIZATION_HEADERS;
  }
  return value;
}

/**
 * The request line's fields, as JSON members: an allow-list (never a header, a query string or a
 * credential). Strings from the client (path, project, forwarded address) go through
 * JSON.stringify; absent fields are left out.
 */
function requestLineMembers(state: RequestState, incoming: IncomingMessage, outgoing: ServerResponse): string {
  const p = state.principal;
  let line = `,"requestId":"${state.requestId}","method":${JSON.stringify(incoming.method ?? '')}`
    + `,"path":${JSON.stringify(pathOnly(incoming.url))},"status":${outgoing.statusCode},"bytes":${state.bytes}`
    + `,"durationMs":${state.durationMs},"clientIp":${JSON.stringify(state.clientIp)}`;
  if (p) line += `,"tokenId":${JSON.stringify(p.tokenId)},"tokenType":"${p.tokenType}","project":${JSON.stringify(p.project)}`;
  if (state.authFailure) line += `,"authFailure":"${state.authFailure}"`;
  if (state.upstreamError) line += `,"upstreamError":${JSON.stringify(state.upstreamError)}`;
  if (!outgoing.writableFinished) line += ',"aborted":true';
  return line;
}

function pathOnly(url: string | undefined): string {
  if (!url) return '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
