import { BlockList, isIPv4 } from 'node:net';
import { embeddedIPv4, normaliseAddress, parseCidr } from '../net/addresses.js';
import type { TokenRestrictions } from '../tokens/restrictions.js';

/**
 * A token's restrictions made ready for the request path, once per cached token record: a Set of
 * route prefixes, package patterns split at their `*`, a BlockList of networks. Checking them
 * builds nothing per request; a token without restrictions has none (`undefined`) and pays one
 * property read.
 */
export interface CompiledRestrictions {
  readonly routes: ReadonlySet<string> | undefined;
  readonly packages: readonly Glob[] | undefined;
  readonly networks: BlockList | undefined;
  readonly ratePerMinute: number | undefined;
}

/** A package pattern: the literal runs between its `*`s. */
type Glob = readonly string[];

export function compileRestrictions(r: TokenRestrictions | null | undefined): CompiledRestrictions | undefined {
  if (!r) return undefined;
  let networks: BlockList | undefined;
  if (r.networks?.length) {
    networks = new BlockList();
    for (const cidr of r.networks) {
      const parsed = parseCidr(cidr);
      if (parsed) networks.addSubnet(parsed[0], parsed[1], isIPv4(parsed[0]) ? 'ipv4' : 'ipv6');
    }
  }
  return {
    routes: r.routes?.length ? new Set(r.routes) : undefined,
    packages: r.packages?.length ? r.packages.map((p) => p.split('*')) : undefined,
    networks,
    ratePerMinute: r.ratePerMinute,
  };
}

/**
 * Whether `name` matches a pattern split at its `*`s: the first run is a prefix, the last a
 * suffix, the others appear in order between. Linear scans, no regular expression to backtrack.
 */
export function matchesGlob(glob: Glob, name: string): boolean {
  if (glob.length === 1) return name === glob[0];
  const first = glob[0]!;
  const last = glob[glob.length - 1]!;
  if (name.length < first.length + last.length || !name.startsWith(first) || !name.endsWith(last)) return false;
  let at = first.length;
  const end = name.length - last.length;
  for (let i = 1; i < glob.length - 1; i++) {
    const part = glob[i]!;
    const found = name.indexOf(part, at);
    if (found < 0 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}

export function packageAllowed(r: CompiledRestrictions, name: string): boolean {
  return r.packages === undefined || r.packages.some((glob) => matchesGlob(glob, name));
}

export function networkAllowed(r: CompiledRestrictions, clientIp: string): boolean {
  if (r.networks === undefined) return true;
  const address = normaliseAddress(clientIp);
  const v4 = isIPv4(address) ? address : embeddedIPv4(address);
  if (v4 !== undefined && r.networks.check(v4, 'ipv4')) return true;
  try {
    return r.networks.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
  } catch {
    return false; // not an address at all
  }
}
