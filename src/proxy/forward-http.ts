import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { pipeline, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { RouteConfig } from '../config/index.js';
import { clientResponseHeaders, upstreamRequestHeaders, type ForwardedInfo } from './headers.js';
import { sendError } from './respond.js';
import { createRewriteStream, isRewritableType, replacementsFor, rewriteLocation } from './rewrite.js';
import type { RequestState } from './state.js';

export interface HttpForwarderOptions {
  route: RouteConfig & { upstream: { kind: 'http'; url: URL } };
  /** Time to wait for response headers, and the longest silence mid-body. */
  upstreamTimeoutMs: number;
  /** TOLLGATE_PUBLIC_URL: the origin clients use; else derived per request from Host. */
  publicUrl: string | undefined;
}

/** Redirects to another origin (object storage) the gateway follows itself, up to this many. */
export const MAX_REDIRECTS_FOLLOWED = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export interface Forwarder {
  (incoming: IncomingMessage, outgoing: ServerResponse, rest: string, state: RequestState, forwarded: ForwardedInfo): void;
  close(): void;
}

/**
 * Streams a response body to the client with backpressure and tears both sides down on
 * failure: an upstream that resets, stalls past its timeout or ends short of its length cuts the
 * client's connection (never a truncated body passed off as complete); a client that goes away
 * aborts the upstream request (through state.onClientGone, called by the request's own 'close'
 * listener). One 'data' listener counts the bytes and writes them; Readable.pipe would add and
 * later remove eight listeners per response, and stream.pipeline an AbortController as well
 * (together ~8 µs of a 1 KiB request in the bench's profile).
 */
function relayBody(body: Readable, upstream: IncomingMessage, outgoing: ServerResponse, state: RequestState, abortUpstream: () => void): void {
  let failed = false;
  const fail = (why: string): void => {
    if (failed) return;
    failed = true;
    state.onClientGone = undefined;
    state.upstreamError ??= why;
    abortUpstream();
    outgoing.destroy();
  };
  const resume = (): void => {
    body.resume();
  };
  body.on('data', (chunk: Buffer) => {
    state.bytes += chunk.length;
    if (!outgoing.write(chunk)) {
      body.pause();
      outgoing.once('drain', resume);
    }
  });
  body.once('end', () => {
    // Drop the link from the request's state to this exchange: a kept-alive upstream socket keeps
    // its last response, and through it this state, until its next request; with the link, the
    // whole request graph survived into the old generation (VmHWM 131 -> 178 MiB in the bench).
    state.onClientGone = undefined;
    outgoing.end();
  });
  body.on('error', () => fail('reset'));
  upstream.once('close', () => {
    if (!upstream.complete) fail('reset');
  });
  state.onClientGone = () => {
    if (failed) return;
    failed = true;
    state.upstreamError ??= 'client-closed';
    abortUpstream();
  };
}

/**
 * Headers as the flat [name, value, ...] list http.request takes as is: given an object, it
 * calls setHeader per header (a second validation, a lower-cased copy of each name, a Map).
 */
function headerList(headers: http.OutgoingHttpHeaders): string[] {
  const list: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) list.push(name, v);
    else list.push(name, String(value));
  }
  return list;
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
  const { route, upstreamTimeoutMs, publicUrl } = options;
  const rewriteBases = route.rewriteBases;
  const { url } = route.upstream;
  const isHttps = url.protocol === 'https:';
  const transport = isHttps ? https : http;
  // The agent's timeout is the sockets' idle timeout, set once per socket: the longest wait for
  // response headers and the longest silence mid-body (a request's own setTimeout would arm and
  // disarm a timer and four listeners per request). An idle pooled socket past it is closed.
  const agent = new transport.Agent({
    keepAlive: true, maxSockets: 512, maxFreeSockets: 256, scheduling: 'lifo', timeout: upstreamTimeoutMs,
  });
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
      headers: headerList(upstreamRequestHeaders(incoming.headers, upstreamHost, forwarded, state.requestId, route.upstreamAuthHeader,
        // An upstream whose URLs are rewritten must describe itself by its own origin.
        rewriteBases === undefined)),
    });
    upstreamReq.on('timeout', () => upstreamReq.destroy(new UpstreamTimeout()));
    let responded = false;
    // The client went away before the response was complete: stop the upstream transfer.
    state.onClientGone = () => upstreamReq.destroy();

    upstreamReq.on('error', (err) => {
      if (responded) return; // mid-body errors are handled by relayBody
      responded = true;
      state.upstreamError = err instanceof UpstreamTimeout ? 'timeout' : ((err as NodeJS.ErrnoException).code ?? 'error');
      if (outgoing.destroyed) return;
      sendError(outgoing, err instanceof UpstreamTimeout ? 'TOLLGATE_ERR_UPSTREAM_TIMEOUT' : 'TOLLGATE_ERR_UPSTREAM_UNREACHABLE', state.requestId);
    });

    upstreamReq.once('upgrade', (_res, socket) => {
      // 101 Switching Protocols to a download: nothing to relay. Without this listener Node
      // drops the connection silently and the client would hang until its idle timeout.
      responded = true;
      socket.destroy();
      state.onClientGone = undefined;
      state.upstreamError = 'bad-status';
      sendError(outgoing, 'TOLLGATE_ERR_UPSTREAM_UNREACHABLE', state.requestId);
    });

    upstreamReq.once('response', (upstreamRes) => {
      responded = true;
      state.onClientGone = undefined; // from here on relayBody tears both sides down
      if (outgoing.headersSent || outgoing.destroyed) {
        upstreamRes.destroy();
        return;
      }
      const status = upstreamRes.statusCode ?? 0;
      if (status < 200 || status > 599) {
        // Not a final HTTP status ("HTTP/1.1 099"): writeHead would throw. A broken upstream.
        upstreamRes.destroy();
        state.upstreamError = 'bad-status';
        sendError(outgoing, 'TOLLGATE_ERR_UPSTREAM_UNREACHABLE', state.requestId);
        return;
      }
      const headers = clientResponseHeaders(upstreamRes.headers, state.requestId);
      let body: Readable = upstreamRes;
      const location = upstreamRes.headers.location;
      if (location && REDIRECT_STATUSES.has(status)) {
        const bases = rewriteBases ?? [url.href];
        const rewritten = rewriteLocation(location, bases, publicBase(incoming, forwarded));
        if (rewritten === undefined) {
          // Another origin (object storage): never hand the client a way around the gateway.
          upstreamRes.resume();
          followRedirect(new URL(location), incoming, outgoing, state, MAX_REDIRECTS_FOLLOWED);
          return;
        }
        headers.location = rewritten;
      }
      if (rewriteBases && incoming.method !== 'HEAD' && isRewritableType(upstreamRes.headers['content-type'])) {
        body = rewriteBody(upstreamRes, headers, incoming, publicBase(incoming, forwarded));
      }
      outgoing.writeHead(status, headers);
      relayBody(body, upstreamRes, outgoing, state, () => upstreamReq.destroy());
    });

    const method = incoming.method;
    if (method === 'GET' || method === 'HEAD') upstreamReq.end();
    else pipeline(incoming, upstreamReq, () => {});
  }

  /** Where this route lives on the gateway, as the client sees it: `https://gw.example/npm/`. */
  function publicBase(incoming: IncomingMessage, forwarded: ForwardedInfo): string {
    const origin = publicUrl ?? `${forwarded.proto}://${forwarded.host ?? incoming.headers.host ?? 'localhost'}`;
    return origin + route.prefix;
  }

  /**
   * Metadata body with upstream URLs replaced: decompressed if needed, rewritten as it streams,
   * re-compressed with gzip when the client accepts it. Sent chunked (the length changes) with a
   * weak ETag (the bytes differ from the upstream's, the meaning does not).
   */
  function rewriteBody(upstreamRes: IncomingMessage, headers: http.OutgoingHttpHeaders, incoming: IncomingMessage, base: string): Readable {
    const stages: NodeJS.ReadWriteStream[] = [];
    const encoding = String(upstreamRes.headers['content-encoding'] ?? '').toLowerCase();
    if (encoding === 'gzip' || encoding === 'x-gzip') stages.push(zlib.createGunzip());
    else if (encoding === 'deflate') stages.push(zlib.createInflate());
    else if (encoding === 'br') stages.push(zlib.createBrotliDecompress());
    else if (encoding !== '' && encoding !== 'identity') return upstreamRes; // unknown coding: pass as is
    stages.push(createRewriteStream(replacementsFor(rewriteBases!, base)));
    delete headers['content-length'];
    delete headers['content-encoding'];
    const acceptsGzip = /\bgzip\b/i.test(String(incoming.headers['accept-encoding'] ?? ''));
    if (acceptsGzip) {
      stages.push(zlib.createGzip({ level: 6 }));
      headers['content-encoding'] = 'gzip';
    }
    const etag = headers.etag;
    if (typeof etag === 'string' && !etag.startsWith('W/')) headers.etag = `W/${etag}`;
    headers.vary = headers.vary ? `${String(headers.vary)}, Accept-Encoding` : 'Accept-Encoding';
    let stream: Readable = upstreamRes;
    for (const stage of stages) {
      stream.on('error', (err) => (stage as unknown as Readable).destroy(err));
      stream = stream.pipe(stage) as unknown as Readable;
    }
    return stream;
  }

  /**
   * Follows a redirect to another origin for the client (GET/HEAD only), without the client's or
   * the route's credentials: presigned object-storage URLs carry their own authorisation.
   */
  function followRedirect(target: URL, incoming: IncomingMessage, outgoing: ServerResponse, state: RequestState, hopsLeft: number): void {
    const method = incoming.method === 'HEAD' ? 'HEAD' : 'GET';
    if (hopsLeft <= 0 || (target.protocol !== 'http:' && target.protocol !== 'https:')) {
      state.upstreamError = 'redirect';
      sendError(outgoing, 'TOLLGATE_ERR_UPSTREAM_UNREACHABLE', state.requestId);
      return;
    }
    const headers: http.OutgoingHttpHeaders = {};
    for (const name of ['accept', 'accept-encoding', 'range', 'if-range', 'if-none-match', 'if-modified-since', 'user-agent']) {
      if (incoming.headers[name] !== undefined) headers[name] = incoming.headers[name];
    }
    const req = (target.protocol === 'https:' ? https : http).request(target, { method, headers });
    req.setTimeout(upstreamTimeoutMs, () => req.destroy(new UpstreamTimeout()));
    state.onClientGone = () => req.destroy();
    req.once('error', (err) => {
      state.upstreamError = err instanceof UpstreamTimeout ? 'timeout' : ((err as NodeJS.ErrnoException).code ?? 'error');
      if (!outgoing.headersSent && !outgoing.destroyed) {
        sendError(outgoing, err instanceof UpstreamTimeout ? 'TOLLGATE_ERR_UPSTREAM_TIMEOUT' : 'TOLLGATE_ERR_UPSTREAM_UNREACHABLE', state.requestId);
      } else outgoing.destroy();
    });
    req.once('upgrade', (_res, socket) => {
      socket.destroy();
      state.onClientGone = undefined;
      state.upstreamError = 'bad-status';
      sendError(outgoing, 'TOLLGATE_ERR_UPSTREAM_UNREACHABLE', state.requestId);
    });
    req.once('response', (res) => {
      state.onClientGone = undefined;
      const status = res.statusCode ?? 0;
      if (status < 200 || status > 599) {
        res.destroy();
        state.upstreamError = 'bad-status';
        sendError(outgoing, 'TOLLGATE_ERR_UPSTREAM_UNREACHABLE', state.requestId);
        return;
      }
      if (REDIRECT_STATUSES.has(status) && res.headers.location) {
        res.resume();
        followRedirect(new URL(res.headers.location, target), incoming, outgoing, state, hopsLeft - 1);
        return;
      }
      const headers = clientResponseHeaders(res.headers, state.requestId);
      delete headers['set-cookie'];
      outgoing.writeHead(status, headers);
      relayBody(res, res, outgoing, state, () => req.destroy());
    });
    req.end();
  }

  return Object.assign(forwardHttp, { close: () => agent.destroy() });
}
