import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import type { Agent as UndiciAgent } from 'undici';
import { createError } from '../../errors.js';
import type { DestinationPolicy } from './destinations.js';
import { Agent, buildConnector } from './undici.js';

type Connector = ReturnType<typeof buildConnector>;
type ConnectOptions = Parameters<Connector>[0];
type ConnectCallback = Parameters<Connector>[1];
type Lookup = (
  hostname: string,
  callback: (err: NodeJS.ErrnoException | null, addresses: { address: string; family: number }[]) => void,
) => void;

export interface FollowAgentOptions {
  policy: DestinationPolicy;
  connectTimeoutMs: number;
  /** undici timeouts and keep-alive, as the route's pool has them. */
  timeouts: Record<string, number>;
  /** Resolves a host name to every address (tests stand in their own). Default: the system resolver. */
  lookup?: Lookup;
}

/** Refused by the route's redirect policy: the reason is for the log line, never for the client. */
export function redirectRefused(reason: string): Error {
  return createError('TOLLGATE_ERR_UPSTREAM_REDIRECT_REFUSED', reason);
}

const systemLookup: Lookup = (hostname, callback) => dnsLookup(hostname, { all: true, verbatim: true }, callback);

/**
 * The dispatcher for redirects the gateway follows (object storage). Its connector decides on the
 * address the connection is actually made to: it resolves the host itself, keeps the first address
 * the route's policy allows, and connects to that address (TLS still verifies the certificate for
 * the host name, and SNI carries it). A host that resolves to an allowed address at check time and
 * to an internal one at connect time (DNS rebinding) cannot slip between the two: there is one
 * resolution, and it is the one used.
 */
export function createFollowAgent(options: FollowAgentOptions): UndiciAgent {
  const { policy } = options;
  const lookup = options.lookup ?? systemLookup;
  const connectTo = buildConnector({ timeout: options.connectTimeoutMs });

  function guardedConnect(opts: ConnectOptions, callback: ConnectCallback): void {
    const hostname = stripBrackets(opts.hostname);
    const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
    const byName = policy.byName(hostname, port);
    if (byName === 'refused') {
      callback(redirectRefused('the route does not follow redirects (followRedirects: false)'), null);
      return;
    }
    const named = byName === 'allowed';
    if (isIP(hostname) !== 0) {
      const verdict = policy.address(hostname, port, named);
      if (verdict.ok) connectTo(opts, callback);
      else callback(redirectRefused(verdict.reason), null);
      return;
    }
    lookup(hostname, (err, addresses) => {
      if (err) {
        callback(err, null);
        return;
      }
      let refusal = 'the host has no address';
      for (const { address } of addresses) {
        const verdict = policy.address(address, port, named);
        if (verdict.ok) {
          // The connection goes to this very address; the name stays for TLS (SNI, certificate).
          connectTo(
            {
              ...opts,
              hostname: address,
              servername: opts.servername ?? (opts.protocol === 'https:' ? hostname : undefined),
            },
            callback,
          );
          return;
        }
        refusal = verdict.reason;
      }
      callback(redirectRefused(refusal), null);
    });
  }

  // No connection limit of undici's own: the route's slots bound what runs (as for its pool).
  return new Agent({ connections: null, ...options.timeouts, connect: guardedConnect });
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
