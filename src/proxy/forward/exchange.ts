import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { RouteConfig } from '../../config/index.js';
import type { ErrorCode } from '../../errors.js';
import { clientResponseHeaders, type ForwardedInfo } from '../headers.js';
import { sendError } from '../respond.js';
import { isRewritableType } from '../rewrite.js';
import type { RequestState } from '../state.js';
import type { UpstreamDeadlines, Watched } from './deadlines.js';
import { HOLD_AFTER_MS, type SlotUser, type UpstreamSlots } from './slots.js';
import { badStatus, clientGone, isClientGone, upstreamErrorKind } from './errors.js';
import { resolveLocation } from './location.js';
import { createBodyRewrite } from './rewrite-body.js';
import { BodyTimeoutError, HeadersTimeoutError } from './undici.js';

/** Redirects to another origin (object storage) the gateway follows itself, up to this many. */
export const MAX_REDIRECTS_FOLLOWED = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** What a followed redirect passes on from the client's request: no credentials, no cookies. */
const FOLLOWED_REQUEST_HEADERS = [
  'accept',
  'accept-encoding',
  'range',
  'if-range',
  'if-none-match',
  'if-modified-since',
  'user-agent',
];

export type HttpRoute = RouteConfig & { upstream: { kind: 'http'; url: URL } };

/** What every exchange of one forwarder shares. */
export interface ForwarderContext {
  readonly route: HttpRoute;
  readonly deadlines: UpstreamDeadlines;
  /** The route's upstream slots: every exchange takes one (slots.ts). */
  readonly slots: UpstreamSlots;
  /** The upstream's origin (`http://registry.internal:4873`) and its base URL (with the route's base path). */
  readonly upstreamOrigin: string;
  readonly upstreamHref: string;
  readonly publicUrl: string | undefined;
  readonly logger: Logger;
  /** Dispatcher for redirects to other origins (its connector applies the route's redirect policy), made on first use. */
  followDispatcher(): Dispatcher;
}

/** The client's answer to an upstream failure before any response was relayed. */
const FAILURE_CODES: Readonly<Record<string, ErrorCode>> = {
  timeout: 'TOLLGATE_ERR_UPSTREAM_TIMEOUT',
  'bad-status': 'TOLLGATE_ERR_UPSTREAM_BAD_STATUS',
  'redirect-refused': 'TOLLGATE_ERR_UPSTREAM_REDIRECT_REFUSED',
};
const RETRY_SHARE = { 'retry-after': '10' };

/** Where an exchange stands with the route's slots. */
const enum Slot {
  None,
  Waiting,
  Active,
  Held,
}

/**
 * One request to an upstream and its response relayed to the client, as an undici dispatch
 * handler: body chunks go straight to the client's response with backpressure (a slow client
 * pauses the upstream socket), and both sides are torn down on failure. An upstream that
 * resets, stalls past its timeout or ends short of its length cuts the client's connection
 * (never a truncated body passed off as complete); a client that goes away aborts the upstream
 * request (state.onClientGone, called by the request's own 'close' listener).
 */
export class Exchange implements Dispatcher.DispatchHandler, Watched, SlotUser {
  /** Links in UpstreamDeadlines' list while the request is in flight or waits for a slot. */
  prevWatched: Watched | null = null;
  nextWatched: Watched | null = null;
  /** Links in the slots' queue while it waits for one. */
  prevWaiting: SlotUser | null = null;
  nextWaiting: SlotUser | null = null;
  readonly slotKey: string;
  #slot = Slot.None;
  /** When it started to wait for a slot, or was last paused for a slow client (UpstreamDeadlines.now). */
  #waitingSince = 0;
  #pausedAt = 0;
  #controller: Dispatcher.DispatchController | undefined;
  /** Where body chunks go: the client's response, or the first stage of a body rewrite. */
  #sink: Writable | undefined;
  /** The response is a redirect being followed: its body is drained and dropped. */
  #superseded = false;
  #clientGone = false;
  #resume: (() => void) | undefined;
  /** Where the request went, kept for the one retry after a connection closed under it. */
  #dispatcher: Dispatcher | undefined;
  #request: Dispatcher.DispatchOptions | undefined;
  #retried = false;
  /** When the upstream last made progress (UpstreamDeadlines.now), and whether its final headers are in. */
  #progressAt = 0;
  #headersIn = false;
  /** Paused for a slow client: the upstream is not silent, it is held back. */
  #paused = false;

  constructor(
    private readonly ctx: ForwarderContext,
    private readonly incoming: IncomingMessage,
    private readonly outgoing: ServerResponse,
    private readonly state: RequestState,
    private readonly forwarded: ForwardedInfo,
    /**
     * Set when this exchange follows a redirect to another origin: the URL asked for (relative
     * Location headers resolve against it) and how many more redirects may be followed.
     * Undefined for the request to the route's own upstream.
     */
    private readonly followed: { target: URL; hopsLeft: number } | undefined,
  ) {
    this.slotKey = state.principal?.tokenId ?? '';
    state.onClientGone = () => {
      this.#clientGone = true;
      if (this.#slot === Slot.Waiting) {
        state.upstreamError ??= 'client-closed';
        this.#finish();
      }
      this.#controller?.abort(clientGone());
    };
  }

  /**
   * Sends the request through `dispatcher` (the route's pool, or the agent for followed
   * redirects) once it has one of the route's slots: at once, or when one frees. A token that
   * holds its share of slow downloads gets 429.
   */
  send(dispatcher: Dispatcher, request: Dispatcher.DispatchOptions): void {
    this.#dispatcher = dispatcher;
    this.#request = request;
    const { slots, deadlines } = this.ctx;
    if (slots.overShare(this.slotKey)) {
      this.refuseShare();
      return;
    }
    if (slots.acquire(this)) {
      this.#slot = Slot.Active;
      dispatcher.dispatch(request, this);
      return;
    }
    this.#slot = Slot.Waiting;
    this.#waitingSince = deadlines.now;
    deadlines.watch(this);
  }

  startWithSlot(): void {
    this.#slot = Slot.Active;
    this.#progressAt = this.ctx.deadlines.now;
    this.#dispatcher!.dispatch(this.#request!, this);
  }

  refuseShare(): void {
    this.ctx.deadlines.unwatch(this);
    this.#slot = Slot.None;
    this.state.onClientGone = undefined;
    this.state.upstreamError = 'busy';
    if (!this.outgoing.destroyed)
      sendError(this.outgoing, 'TOLLGATE_ERR_UPSTREAM_SHARE', this.state.requestId, RETRY_SHARE);
  }

  /** The exchange is over (or never started): its slot goes back, once. */
  #finish(): void {
    const { slots, deadlines } = this.ctx;
    switch (this.#slot) {
      case Slot.Waiting:
        slots.cancel(this);
        deadlines.unwatch(this);
        break;
      case Slot.Active:
        slots.release();
        break;
      case Slot.Held:
        slots.unhold(this.slotKey, false);
        break;
      case Slot.None:
        break;
    }
    this.#slot = Slot.None;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    this.ctx.deadlines.watch(this);
    this.#progressAt = this.ctx.deadlines.now;
    // The client left while the request waited for a pooled connection.
    if (this.#clientGone) controller.abort(clientGone());
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    upstreamHeaders: Record<string, string | string[] | undefined>,
  ): void {
    this.#progressAt = this.ctx.deadlines.now;
    // undici's raw header buffers are views of the socket read that carried them (up to 64 KiB,
    // often with the first body bytes): held by the controller, they pinned that read for the
    // whole download. `upstreamHeaders` has them as strings already.
    controller.rawHeaders = null;
    if (status >= 100 && status < 200) return; // informational (103 Early Hints): the final answer follows
    this.#headersIn = true;
    const { outgoing, state } = this;
    if (outgoing.headersSent || outgoing.destroyed) {
      controller.abort(clientGone());
      return;
    }
    if (status > 599 || status < 100) {
      // Not an HTTP status ("HTTP/1.1 099"): writeHead would throw. A broken upstream.
      controller.abort(badStatus(status));
      return;
    }
    const headers = clientResponseHeaders(upstreamHeaders, state.requestId);
    const location = upstreamHeaders.location;
    if (typeof location === 'string' && location !== '' && REDIRECT_STATUSES.has(status)) {
      if (this.followed) {
        this.#follow(location, this.followed.target.href, this.followed.hopsLeft - 1); // a followed redirect's own redirect
        return;
      }
      const { route, upstreamHref, upstreamOrigin } = this.ctx;
      const requestUrl = upstreamOrigin + this.#request!.path;
      const where = resolveLocation(location, requestUrl, route.rewriteBases ?? [upstreamHref], this.#publicBase());
      if (where.kind !== 'gateway') {
        // Another origin (object storage), or nothing usable: never hand the client a way around the gateway.
        this.#follow(location, requestUrl, MAX_REDIRECTS_FOLLOWED);
        return;
      }
      headers.location = where.location;
    }
    const { rewriteBases } = this.ctx.route;
    if (
      !this.followed &&
      rewriteBases &&
      this.incoming.method !== 'HEAD' &&
      isRewritableType(headers['content-type'] as string | undefined)
    ) {
      this.#sink = createBodyRewrite(upstreamHeaders, headers, {
        incoming: this.incoming,
        outgoing,
        state,
        rewriteBases,
        publicBase: this.#publicBase(),
        abortUpstream: () => this.#controller?.abort(clientGone()),
      });
    } else {
      this.#sink = outgoing;
    }
    outgoing.writeHead(status, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#progressAt = this.ctx.deadlines.now;
    const sink = this.#sink;
    if (sink === undefined) return; // the body of a redirect being followed
    if (sink === this.outgoing) this.state.bytes += chunk.length;
    if (!sink.write(chunk)) {
      controller.pause();
      this.#paused = true;
      this.#pausedAt = this.ctx.deadlines.now;
      if (this.#resume === undefined) {
        // One listener for the whole response: once() per pause made a wrapper per chunk under backpressure.
        this.#resume = () => {
          if (!this.#paused) return;
          this.#paused = false;
          this.#progressAt = this.ctx.deadlines.now;
          if (this.#slot === Slot.Held) {
            this.ctx.slots.unhold(this.slotKey, true);
            this.#slot = Slot.Active;
          }
          controller.resume();
        };
        sink.on('drain', this.#resume);
      }
    }
  }

  /**
   * Every tick of UpstreamDeadlines: a request that waited for a slot past the upstream timeout
   * gets 504; a download paused for its client longer than HOLD_AFTER_MS is held (its slot goes
   * to the next request, it counts against its token); an upstream silent since `silentBefore`
   * is aborted.
   */
  onTick(now: number, silentBefore: number): void {
    if (this.#slot === Slot.Waiting) {
      if (this.#waitingSince >= silentBefore) return;
      this.#finish();
      this.state.onClientGone = undefined;
      this.state.upstreamError = 'slot-timeout';
      if (!this.outgoing.destroyed) sendError(this.outgoing, 'TOLLGATE_ERR_UPSTREAM_TIMEOUT', this.state.requestId);
      return;
    }
    if (this.#paused) {
      if (this.#slot === Slot.Active && this.#pausedAt <= now - HOLD_AFTER_MS) {
        this.ctx.slots.hold(this.slotKey);
        this.#slot = Slot.Held;
      }
      return;
    }
    if (this.#progressAt >= silentBefore) return;
    this.#controller?.abort(this.#headersIn ? new BodyTimeoutError() : new HeadersTimeoutError());
  }

  onResponseEnd(): void {
    this.ctx.deadlines.unwatch(this);
    this.#finish();
    if (this.#superseded) return;
    // Drop the link from the request's state to this exchange once the response is over.
    this.state.onClientGone = undefined;
    this.#sink?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.ctx.deadlines.unwatch(this);
    if (this.#superseded) {
      this.#finish();
      return;
    }
    const { outgoing, state } = this;
    if (this.#clientGone || isClientGone(err)) {
      this.#finish();
      state.onClientGone = undefined;
      state.upstreamError ??= 'client-closed';
      this.#sink?.destroy();
      return;
    }
    const kind = upstreamErrorKind(err);
    if (
      kind === 'reset' &&
      !this.#retried &&
      this.#sink === undefined &&
      !outgoing.headersSent &&
      this.#request?.body === undefined &&
      !outgoing.destroyed
    ) {
      // The connection closed before any answer: most often a pooled one the upstream closed
      // as the request went out (its idle timeout, a restart). A GET or HEAD goes once more, on
      // another connection, rather than failing the download with a 502.
      this.#retried = true;
      this.#controller = undefined;
      this.#dispatcher!.dispatch(this.#request!, this);
      return;
    }
    this.#finish();
    state.onClientGone = undefined;
    if (this.#sink === undefined && !outgoing.headersSent) {
      state.upstreamError = kind;
      if (kind === 'redirect-refused') {
        this.ctx.logger.warn(
          {
            requestId: state.requestId,
            route: this.ctx.route.prefix,
            host: this.followed?.target.host,
            reason: (err as { detail?: string }).detail,
          },
          'redirect refused',
        );
      }
      if (!outgoing.destroyed)
        sendError(outgoing, FAILURE_CODES[kind] ?? 'TOLLGATE_ERR_UPSTREAM_UNREACHABLE', state.requestId);
      return;
    }
    // Mid-body: the client must see a cut, not an end.
    state.upstreamError ??= kind;
    if (this.#sink !== outgoing) this.#sink?.destroy();
    outgoing.destroy();
  }

  /**
   * Follows a redirect to another origin for the client (GET/HEAD only), without the client's or
   * the route's credentials: presigned object-storage URLs carry their own authorisation. Where
   * it may go is the route's redirect policy, applied by the follow dispatcher's connector on the
   * address it connects to.
   */
  #follow(location: string, base: string, hopsLeft: number): void {
    this.#superseded = true; // this response's body drains in the background
    const { incoming, outgoing, state } = this;
    let target: URL | undefined;
    try {
      target = new URL(location, base);
    } catch {
      target = undefined;
    }
    if (
      hopsLeft <= 0 ||
      target === undefined ||
      (target.protocol !== 'http:' && target.protocol !== 'https:') ||
      target.username ||
      target.password
    ) {
      state.onClientGone = undefined;
      state.upstreamError = 'redirect';
      this.ctx.logger.warn(
        {
          requestId: state.requestId,
          route: this.ctx.route.prefix,
          reason: hopsLeft <= 0 ? 'too many redirects' : 'the Location is not an http(s) URL',
        },
        'redirect refused',
      );
      sendError(outgoing, 'TOLLGATE_ERR_UPSTREAM_REDIRECT_REFUSED', state.requestId);
      return;
    }
    const headers: OutgoingHttpHeaders = {};
    for (const name of FOLLOWED_REQUEST_HEADERS) {
      if (incoming.headers[name] !== undefined) headers[name] = incoming.headers[name];
    }
    const next = new Exchange(this.ctx, incoming, outgoing, state, this.forwarded, { target, hopsLeft });
    next.send(this.ctx.followDispatcher(), {
      origin: target.origin,
      path: target.pathname + target.search,
      method: incoming.method === 'HEAD' ? 'HEAD' : 'GET',
      headers: headers as Record<string, string>,
    });
  }

  /** Where this route lives on the gateway, as the client sees it: `https://gw.example/npm/`. */
  #publicBase(): string {
    const { forwarded } = this;
    // forwarded.host is the checked, serialised Host (the server refused an invalid one).
    const origin = this.ctx.publicUrl ?? `${forwarded.proto}://${forwarded.host ?? 'localhost'}`;
    return origin + this.ctx.route.prefix;
  }
}
