import { BlockList, isIPv4 } from 'node:net';
import type { FollowRedirects } from '../../config/index.js';
import { classifyAddress, embeddedIPv4, normaliseAddress, parseCidr } from '../../net/addresses.js';

/**
 * Where a followed redirect may go. The gateway follows a redirect to another origin itself
 * (object storage), so the destination is chosen by the upstream: without a policy, an upstream
 * (or whoever controls one of its redirects) could make the gateway fetch its own admin port, a
 * cloud metadata service or any internal host, and hand the body to the client.
 *
 * By default only public unicast addresses are allowed (net/addresses.ts says what is public). A
 * route may allow more, by host name or by CIDR; the gateway's own listeners are refused whatever
 * a route allows.
 */

export interface DestinationPolicyOptions {
  followRedirects: FollowRedirects;
  /** Origins always allowed by name (`host:port`, lower case): the route's own upstream. */
  trustedOrigins?: readonly string[];
  /** The gateway's own listeners (address as bound, port): refused whatever the route allows. */
  ownListeners?: readonly { address: string; port: number }[];
  /** Addresses of this host's interfaces (os.networkInterfaces()): a listener on 0.0.0.0 answers on each. */
  localAddresses?: readonly string[];
}

export type Verdict = { ok: true } | { ok: false; reason: string };

export interface DestinationPolicy {
  /**
   * First check, on the host name of the URL: refused outright (following is off), allowed by
   * name (the route lists the host; its addresses are then checked only against the gateway's
   * own listeners), or to be decided on each address it resolves to.
   */
  byName(hostname: string, port: number): 'refused' | 'allowed' | 'check-address';
  /** The decision on the address the connection would be made to. `namedAllowed`: byName said allowed. */
  address(address: string, port: number, namedAllowed: boolean): Verdict;
}

const ALLOWED: Verdict = { ok: true };

export function createDestinationPolicy(options: DestinationPolicyOptions): DestinationPolicy {
  const follow = options.followRedirects;
  const hosts = new Set(follow === false ? [] : follow.hosts.map((h) => h.toLowerCase()));
  const origins = new Set(options.trustedOrigins ?? []);
  const allowed = new BlockList();
  if (follow !== false) {
    for (const cidr of follow.cidrs) {
      const [network, prefix] = parseCidr(cidr)!;
      allowed.addSubnet(network, prefix, isIPv4(network) ? 'ipv4' : 'ipv6');
    }
  }
  const own = options.ownListeners ?? [];
  const local = new Set((options.localAddresses ?? []).map(normaliseAddress));

  /** The address and port reach one of the gateway's own listeners. */
  function isOwnListener(address: string, port: number): boolean {
    const a = normaliseAddress(address);
    for (const listener of own) {
      if (listener.port !== port) continue;
      const bound = normaliseAddress(listener.address);
      const cls = classifyAddress(a);
      if (a === bound || cls === 'loopback' || cls === 'unspecified' || local.has(a)) return true;
      if (bound === '0.0.0.0' || bound === '::') return true; // a listener on every address: any local one
    }
    return false;
  }

  return {
    byName(hostname, port) {
      if (follow === false) return 'refused';
      const name = hostname.toLowerCase();
      if (hosts.has(name) || origins.has(`${name}:${port}`)) return 'allowed';
      return 'check-address';
    },
    address(address, port, namedAllowed) {
      const a = normaliseAddress(address);
      if (isOwnListener(a, port)) return { ok: false, reason: "the destination is one of the gateway's own listeners" };
      if (namedAllowed) return ALLOWED;
      const cls = classifyAddress(a);
      if (cls === 'invalid') return { ok: false, reason: 'the destination is not an IP address' };
      const inner = embeddedIPv4(a) ?? a;
      if (allowed.check(inner, isIPv4(inner) ? 'ipv4' : 'ipv6') || (inner !== a && allowed.check(a, 'ipv6')))
        return ALLOWED;
      if (cls === 'public') return ALLOWED;
      return { ok: false, reason: `the destination address is ${cls} (allow it with the route's followRedirects)` };
    },
  };
}
