import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream';
import type { RouteConfig } from '../config/index.js';
import { clientResponseHeaders, upstreamRequestHeaders, type ForwardedInfo } from './headers.js';
import { sendError } from './respond.js';
import type { RequestState } from './state.js';

export interface HttpForwarderOptions {
  route: RouteConfig & { upstream: { kind: 'http'; url: URL } };
  /** Time to wait for response headers, and the longest silence mid-body. */
  upstreamTimeoutMs: number;
}

export interface Forwarder {
  (incoming: IncomingMessage, outgoing: ServerResponse, rest: string, state: RequestState, forwarded: ForwardedInfo): void;
  close(): void;
}

class UpstreamTimeout extends Error {
  constructor() {
    super('upstream timed out');
    this.name = 'UpstreamTimeout';
  }
}

/**
 * Forwards to an http(s) upstream with node:http and a keep-alive agent, piping bodies both
 * ways without buffering (backpressure from a slow client reaches the upstream socket).
 * The upstream gets the path and query byte for byte after the route's base path.
 */
export function createHttpForwarder(options: HttpForwarderOptions): Forwarder {
  const { route, upstreamTimeoutMs } = options;
  const { url } = route.upstream;
  const isHttps = url.protocol === 'https:';
  const transport = isHttps ? https : http;
  const agent = new transport.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256, scheduling: 'lifo' });
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port ? Number(url.port) : isHttps ? 443 : 80;
  const basePath = url.pathname; // always ends with "/"
  const upstreamHost = url.host;

  function forwardHttp(incoming: IncomingMessage, outgoing: ServerResponse, rest: string, state: RequestState, forwarded: ForwardedInfo): void {
    const upstreamReq = transport.request({
      agent,
      hostname,
      port,
      method: incoming.method,
      path: basePath + rest,
      headers: upstreamRequestHeaders(incoming.headers, upstreamHost, forwarded, state.requestId, route.upstreamAuthHeader),
    });
    upstreamReq.setTimeout(upstreamTimeoutMs, () => upstreamReq.destroy(new UpstreamTimeout()));

    let responded = false;
    const onClientClose = (): void => {
      // The client went away before the response was complete: stop the upstream transfer.
      if (!outgoing.writableFinished) upstreamReq.destroy();
    };
    outgoing.once('close', onClientClose);

    upstreamReq.on('error', (err) => {
      if (responded) return; // mid-body errors are handled by the pipeline below
      responded = true;
      state.upstreamError = err instanceof UpstreamTimeout ? 'timeout' : ((err as NodeJS.ErrnoException).code ?? 'error');
      if (outgoing.destroyed) return;
      sendError(outgoing, err instanceof UpstreamTimeout ? 'TOLLGATE_ERR_UPSTREAM_TIMEOUT' : 'TOLLGATE_ERR_UPSTREAM_UNREACHABLE', state.requestId);
    });

    upstreamReq.once('response', (upstreamRes) => {
      responded = true;
      outgoing.off('close', onClientClose); // from here on the pipeline tears both sides down
      if (outgoing.headersSent || outgoing.destroyed) {
        upstreamRes.destroy();
        return;
      }
      const status = upstreamRes.statusCode ?? 502;
      outgoing.writeHead(status, clientResponseHeaders(upstreamRes.headers, state.requestId));
      upstreamRes.on('data', (chunk: Buffer) => {
        state.bytes += chunk.length;
      });
      pipeline(upstreamRes, outgoing, (err) => {
        if (err) {
          // Reset, stall or short body mid-transfer: the client sees a cut connection, never
          // a truncated body passed off as complete.
          state.upstreamError ??= upstreamReq.destroyed && !outgoing.destroyed ? 'reset' : 'client-closed';
          upstreamReq.destroy();
          outgoing.destroy();
        }
      });
    });

    const method = incoming.method;
    if (method === 'GET' || method === 'HEAD') upstreamReq.end();
    else pipeline(incoming, upstreamReq, () => {});
  }

  return Object.assign(forwardHttp, { close: () => agent.destroy() });
}
