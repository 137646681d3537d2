import { BlockList, isIPv4 } from 'node:net';
import { createError } from '../errors.js';
import { embeddedIPv4, normaliseAddress, parseCidr } from '../net/addresses.js';

/**
 * What a token may reach, as the CLI, the admin API, the page and the stores share it. Every field
 * is optional; a token without restrictions reaches every route, package and network, at any rate.
 */
export interface TokenRestrictions {
  /** Route prefixes (as configured, ending in "/") the token may use. */
  routes?: string[];
  /** Package patterns, named as activity events name packages; `*` matches any run of characters. */
  packages?: string[];
  /** Client networks (CIDRs or addresses, after TOLLGATE_TRUSTED_PROXIES) the token may be used from. */
  networks?: string[];
  /** At most this many requests in any 60 seconds (fleet-wide with Redis). */
  ratePerMinute?: number;
}

/** Which restriction refused a request. */
export type RestrictionKind = 'route' | 'package' | 'network' | 'rate';

export const MAX_RATE_PER_MINUTE = 1_000_000;
const MAX_ENTRIES = 100;
const MAX_PATTERN_LENGTH = 256;

/** The input shape (CLI flags, API body): every list optional, the rate as N or "N/min". */
export interface RestrictionsInput {
  routes?: unknown;
  packages?: unknown;
  networks?: unknown;
  rate?: unknown;
}

function invalid(detail: string): never {
  throw createError('TOLLGATE_ERR_TOKEN_INPUT', detail);
}

function stringList(value: unknown, field: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) invalid(`${field} must be a list of strings`);
  if (list.length > MAX_ENTRIES) invalid(`${field} may list at most ${MAX_ENTRIES} entries`);
  const trimmed = list.map((x) => x.trim());
  return trimmed.length === 0 ? undefined : [...new Set(trimmed)];
}

/** `N`, `N/min` or `N/m`: requests a minute. */
export function parseRate(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : '';
  const match = /^(\d{1,7})(?:\s*\/\s*(?:min|m))?$/i.exec(text);
  const n = match ? Number(match[1]) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_RATE_PER_MINUTE) {
    invalid(`rate must be a whole number of requests a minute from 1 to ${MAX_RATE_PER_MINUTE}, such as 600/min`);
  }
  return n;
}

/**
 * Checks restriction input and returns the restrictions to store (null for none). Every problem is
 * a TOLLGATE_ERR_TOKEN_INPUT that names the field: an unknown route prefix, an empty or oversized
 * package pattern, a network that is not an address or CIDR, a rate out of range.
 */
export function parseRestrictions(input: RestrictionsInput, knownRoutes: readonly string[]): TokenRestrictions | null {
  const out: TokenRestrictions = {};
  const routes = stringList(input.routes, 'routes');
  if (routes) {
    out.routes = routes.map((route) => {
      const prefix = route.endsWith('/') ? route : `${route}/`;
      if (!knownRoutes.includes(prefix)) {
        invalid(`routes: "${route.slice(0, 100)}" is not a route prefix of this gateway (${knownRoutes.join(', ')})`);
      }
      return prefix;
    });
  }
  const packages = stringList(input.packages, 'packages');
  if (packages) {
    for (const pattern of packages) {
      if (pattern === '') invalid('packages: a pattern must not be empty');
      if (pattern.length > MAX_PATTERN_LENGTH)
        invalid(`packages: a pattern must be at most ${MAX_PATTERN_LENGTH} characters`);
      // eslint-disable-next-line no-control-regex
      if (/[\u0000-\u001f\u007f\s]/.test(pattern))
        invalid('packages: a pattern must not contain spaces or control characters');
    }
    out.packages = packages;
  }
  const networks = stringList(input.networks, 'networks');
  if (networks) {
    for (const network of networks) {
      if (!parseCidr(network))
        invalid(`networks: "${network.slice(0, 60)}" is not an IP address or CIDR range such as 10.1.0.0/16`);
    }
    out.networks = networks;
  }
  const rate = parseRate(input.rate);
  if (rate !== undefined) out.ratePerMinute = rate;
  return Object.keys(out).length === 0 ? null : out;
}

/** One line for a table: `routes /npm/; packages @acme/*; networks 10.0.0.0/8; 600/min`, or `-`. */
export function summariseRestrictions(r: TokenRestrictions | null | undefined): string {
  if (!r) return '-';
  const parts: string[] = [];
  if (r.routes) parts.push(`routes ${r.routes.join(',')}`);
  if (r.packages) parts.push(`packages ${r.packages.join(',')}`);
  if (r.networks) parts.push(`networks ${r.networks.join(',')}`);
  if (r.ratePerMinute !== undefined) parts.push(`${r.ratePerMinute}/min`);
  return parts.join('; ');
}

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
export type Glob = readonly string[];

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
  return r.packages === undefined || anyGlobMatches(r.packages, name);
}

/** Whether `name` matches one of `globs` (patterns already split at their `*`s). */
export function anyGlobMatches(globs: readonly Glob[], name: string): boolean {
  return globs.some((glob) => matchesGlob(glob, name));
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
