import type { IncomingMessage, ServerResponse } from 'node:http';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { Agent as UndiciAgent } from 'undici';
import { upstreamRequestHeaders, type ForwardedInfo } from '../headers.js';
import type { RequestState } from '../state.js';
import { UpstreamDeadlines } from './deadlines.js';
import { Exchange, type ForwarderContext, type HttpRoute } from './exchange.js';
import { createDestinationPolicy } from './destinations.js';
import { createFollowAgent } from './follow.js';
import { UpstreamSlots } from './slots.js';
import { Pool } from './undici.js';

export interface HttpForwarderOptions {
  route: HttpRoute;
  /** Time to wait for a connection and for response headers, and the longest silence mid-body. */
  upstreamTimeoutMs: number;
  /** The route's upstream slots per worker, and the slow downloads one token may hold (slots.ts). */
  upstreamConnections: number;
  upstreamHeldPerToken: number;
  /** TOLLGATE_PUBLIC_URL: the origin clients use; else derived per request from Host. */
  publicUrl: string | undefined;
  logger: Logger;
  /** The gateway's own listeners, which a followed redirect may never reach (read when the first redirect is followed). */
  ownListeners?: () => readonly { address: string; port: number }[];
}

/** Serves one route: an http(s) upstream (this module) or a directory (../serve-dir.ts). */
export interface Forwarder {
  (
    incoming: IncomingMessage,
    outgoing: ServerResponse,
    rest: string,
    state: RequestState,
    forwarded: ForwardedInfo,
  ): void;
  close(): void;
}

/**
 * Forwards to an http(s) upstream through an undici Pool: keep-alive connections, bodies
 * streamed both ways without buffering (backpressure from a slow client reaches the upstream
 * socket). The upstream gets the path and query byte for byte after the route's base path.
 *
 * undici's dispatch API rather than node:http's request(): per request it makes one handler
 * object instead of a ClientRequest, an IncomingMessage stream and their listeners, which costs
 * a bare proxy markedly less CPU per request (bench/README.md).
 */
export function createHttpForwarder(options: HttpForwarderOptions): Forwarder {
  const { route, upstreamTimeoutMs, publicUrl, logger } = options;
  const { url } = route.upstream;
  const timeouts = {
    connectTimeout: upstreamTimeoutMs,
    // Kept by UpstreamDeadlines instead, with one timer for all requests.
    headersTimeout: 0,
    bodyTimeout: 0,
    // A pooled connection idle this long is closed, or sooner when the upstream's Keep-Alive
    // header says it closes idle connections earlier (less 2 s, so the gateway closes first).
    keepAliveTimeout: upstreamTimeoutMs,
    keepAliveMaxTimeout: upstreamTimeoutMs,
  };
  // No connection limit of undici's own: the slots bound what runs (a held download keeps its
  // connection but not its slot), and a request waits for a slot in their queue, timed.
  const pool = new Pool(url.origin, { connections: null, ...timeouts });
  const slots = new UpstreamSlots(options.upstreamConnections, options.upstreamHeldPerToken);
  let followAgent: UndiciAgent | undefined;
  const deadlines = new UpstreamDeadlines(upstreamTimeoutMs);
  const ctx: ForwarderContext = {
    route,
    deadlines,
    slots,
    upstreamOrigin: url.origin,
    upstreamHref: url.href,
    publicUrl,
    logger,
    followDispatcher: () =>
      (followAgent ??= createFollowAgent({
        policy: createDestinationPolicy({
          followRedirects: route.followRedirects,
          // The upstream itself, outside the route's base path, is where the operator sends the gateway anyway.
          trustedOrigins: [`${url.hostname.toLowerCase()}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`],
          ownListeners: options.ownListeners?.() ?? [],
          localAddresses: Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)),
        }),
        connectTimeoutMs: upstreamTimeoutMs,
        timeouts,
      })),
  };
  const basePath = url.pathname; // always ends with "/"
  const upstreamHost = url.host;
  // An upstream whose URLs are rewritten must describe itself by its own origin.
  const forwardHost = route.rewriteBases === undefined;

  function forwardHttp(
    incoming: IncomingMessage,
    outgoing: ServerResponse,
    rest: string,
    state: RequestState,
    forwarded: ForwardedInfo,
  ): void {
    const method = incoming.method ?? 'GET';
    const headers = upstreamRequestHeaders(
      incoming.headers,
      upstreamHost,
      forwarded,
      state.requestId,
      route.upstreamAuthHeader,
      forwardHost,
    );
    new Exchange(ctx, incoming, outgoing, state, forwarded, undefined).send(pool, {
      method,
      path: basePath + rest,
      headers: headers as Record<string, string | string[]>,
      body: method === 'GET' || method === 'HEAD' ? undefined : incoming,
    });
  }

  return Object.assign(forwardHttp, {
    close: () => {
      deadlines.close();
      pool.destroy().catch(() => {});
      followAgent?.destroy().catch(() => {});
    },
  });
}
