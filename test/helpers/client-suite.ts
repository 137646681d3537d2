import { afterAll, beforeAll, expect } from 'vitest';
import {
  requestsAroundGateway,
  scratchDir,
  startClientGateway,
  startTreeServer,
  type ClientGateway,
  type LoggedRequest,
  type TreeServer,
} from './clients.js';
import type { RouteEntry } from './route-config.js';

/**
 * The skeleton every real-client suite (test/e2e/clients/*.test.ts) shares: find the client
 * programs, start the upstream, start the built gateway with one route to it (a fresh data dir,
 * a Production token), let the suite fill the upstream's tree, and tear it all down after the
 * file. A suite says only what is specific to its client:
 *
 *   const { gw, upstream } = clientSuite({
 *     label: 'pip',
 *     route: { prefix: '/pypi/', ecosystem: 'pypi' },
 *     requireClients: () => { python = requirePython(); },
 *     build: (root, { upstreamUrl }) => buildIndex(root, upstreamUrl),
 *   });
 *
 * `gw` and `upstream` are filled in by the suite's beforeAll: use them inside tests and hooks.
 */

/** What the gateway's route points at: a server (its base URL) or a directory. */
export interface Upstream {
  url: string;
  close(): Promise<void> | void;
}

export interface ClientSuiteOptions<U extends Upstream> {
  /** Names the scratch directories, the token and the gateway's config. */
  label: string;
  /** The route under test; its upstream is the one `upstream` starts. */
  route: Omit<RouteEntry, 'upstream'>;
  /**
   * Runs first: finds the client programs (requireClient and friends), so a missing one fails
   * every test of the suite with the command that installs it. Never a skip.
   */
  requireClients(): void | Promise<void>;
  /** Starts the upstream on `root` (a fresh scratch directory); default a static tree server on it. */
  upstream?: (root: string) => Promise<U>;
  /** Fills `root` once the upstream and the gateway listen (a tree may name either's URL). */
  build?: (root: string, urls: { upstreamUrl: string; gatewayUrl: string }) => void | Promise<void>;
  /** Config file fields beside the route (ciProviders...), read once the upstream has started. */
  config?: () => Record<string, unknown>;
  /** The gateway serves TLS with a self-signed certificate (`gw.caFile`). */
  tls?: boolean;
  /** Runs after the gateway and the upstream have stopped. */
  teardown?: () => void | Promise<void>;
}

export function clientSuite<U extends Upstream = TreeServer>(
  options: ClientSuiteOptions<U>,
): { gw: ClientGateway; upstream: U } {
  const gw = {} as ClientGateway;
  const upstream = {} as U;
  const startUpstream =
    options.upstream ?? ((root: string) => startTreeServer({ roots: [root] }) as unknown as Promise<U>);
  let running: { gw?: ClientGateway; upstream?: U } = {};

  beforeAll(async () => {
    await options.requireClients();
    const root = scratchDir(`${options.label}-upstream`);
    running.upstream = Object.assign(upstream, await startUpstream(root));
    running.gw = Object.assign(
      gw,
      await startClientGateway(options.label, [{ ...options.route, upstream: upstream.url }], {
        tls: options.tls,
        config: options.config?.(),
      }),
    );
    await options.build?.(root, { upstreamUrl: upstream.url, gatewayUrl: gw.url });
  });

  afterAll(async () => {
    await running.gw?.stop();
    await running.upstream?.close();
    running = {};
    await options.teardown?.();
  });

  return { gw, upstream };
}

/** A client refused: the gateway logged its requests, and every one of them was a 401. */
export function expectAllRefused(log: readonly LoggedRequest[]): void {
  expect(log.length, 'requests logged by the gateway').toBeGreaterThan(0);
  for (const l of log) expect(l.status, JSON.stringify(l)).toBe(401);
}

/**
 * The upstream saw requests, each forwarded by the gateway (none around it), with no credential
 * when `noAuthorization` (the gateway strips the client's); the gateway printed no token.
 */
export function expectOnlyForwarded(
  gw: ClientGateway,
  upstream: TreeServer,
  options: { noAuthorization?: boolean } = {},
): void {
  expect(upstream.seen.length).toBeGreaterThan(0);
  expect(requestsAroundGateway(upstream.seen)).toEqual([]);
  if (options.noAuthorization) for (const r of upstream.seen) expect(r.headers.authorization, r.url).toBeUndefined();
  expect(gw.gateway.output()).not.toContain(gw.token);
}
