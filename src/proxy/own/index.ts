import type { IncomingMessage, ServerResponse } from 'node:http';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { getRequestListener } from '@hono/node-server';
import type { Logger } from 'pino';
import { ErrorCodes, isGatewayError, type ErrorCode } from '../../errors.js';

/**
 * Tollgate's own endpoints on the proxy port, under `/-/tollgate/`: the few things clients other
 * than package managers must reach where they reach the gateway (a CI job, a secret scanner). They
 * are answered before the method check, the failure limit and authentication, on the
 * dot-normalised path; nothing under the prefix is ever forwarded, and an unknown path is a 404.
 * A route whose prefix is at or under it is a configuration error.
 *
 * Each endpoint is an ordinary request and response (a small form or JSON body in, JSON out), so
 * this part of the port is a Hono app, served through @hono/node-server as designed.
 */
export const OWN_PREFIX = '/-/tollgate/';
/** Bodies of the own endpoints are small: a form with an ID token, a batch of reported secrets. */
export const OWN_BODY_LIMIT_BYTES = 64 * 1024;

/** One endpoint: mounted below OWN_PREFIX by the wiring. */
export type OwnEndpoint = (app: Hono) => void;

export interface OwnEndpointsOptions {
  endpoints: readonly OwnEndpoint[];
  logger: Logger;
}

/** The JSON error body of an own endpoint (the proxy port's shape, without a request id). */
export function ownError(code: ErrorCode, status?: number): Response {
  const spec = ErrorCodes[code];
  return Response.json(
    { error: spec.message, code },
    { status: status ?? spec.status, headers: { 'cache-control': 'no-store' } },
  );
}

const clientIps = new WeakMap<IncomingMessage, string>();

/** The proxy port records the client's address (trusted proxies honoured) before an own endpoint runs. */
export function setOwnClientIp(incoming: IncomingMessage, clientIp: string): void {
  clientIps.set(incoming, clientIp);
}

/** The client's address, as the proxy port believes it. */
export function ownClientIp(incoming: IncomingMessage): string {
  return clientIps.get(incoming) ?? incoming.socket.remoteAddress ?? '';
}

/** True for a path under the namespace (the dot-normalised raw path, query included). */
export function isOwnPath(rawPath: string): boolean {
  return (
    rawPath.startsWith(OWN_PREFIX) ||
    rawPath === OWN_PREFIX.slice(0, -1) ||
    rawPath.startsWith(`${OWN_PREFIX.slice(0, -1)}?`)
  );
}

export function createOwnEndpoints(
  options: OwnEndpointsOptions,
): (incoming: IncomingMessage, outgoing: ServerResponse) => Promise<void> {
  const app = new Hono().basePath(OWN_PREFIX.slice(0, -1));
  app.use('*', bodyLimit({ maxSize: OWN_BODY_LIMIT_BYTES, onError: () => ownError('TOLLGATE_ERR_REQUEST_BODY') }));
  app.use('*', async (c, next) => {
    await next();
    c.header('cache-control', 'no-store');
    c.header('x-content-type-options', 'nosniff');
  });
  for (const mount of options.endpoints) mount(app);
  app.notFound(() => ownError('TOLLGATE_ERR_REQUEST_NO_ROUTE'));
  app.onError((err) => {
    if (isGatewayError(err) && err.status < 500) return ownError(err.code);
    options.logger.error({ err: { name: err.name, message: err.message } }, 'error in a /-/tollgate/ endpoint');
    return ownError(isGatewayError(err) ? err.code : 'TOLLGATE_ERR_INTERNAL');
  });
  return getRequestListener(app.fetch);
}
