/**
 * Where an upstream's redirect points, decided once, on the URL the WHATWG parser makes of it
 * (as every client that would follow it does: Node's fetch under npm, pnpm and yarn, browsers).
 * Parsing first, rather than comparing strings, is what makes `/\host/x`, `\\host/x` or a TAB in
 * `/<TAB>/host/x` count as the other origin they are, and a relative `/x` keep the route prefix.
 */
export type LocationTarget =
  /** On the upstream, below a base the route rewrites: the client is sent to the gateway's URL for it. */
  | { kind: 'gateway'; location: string }
  /** Anywhere else (object storage, another host, the upstream outside the route's base path): the gateway follows it or refuses. */
  | { kind: 'elsewhere'; target: URL }
  /** Not an http(s) URL once resolved. */
  | { kind: 'invalid' };

const INVALID: LocationTarget = { kind: 'invalid' };

/**
 * @param location the Location header as the upstream sent it
 * @param requestUrl the URL the request went to (relative locations resolve against it)
 * @param upstreamBases the upstream base URLs the route rewrites (ending in "/")
 * @param publicBase the route's base on the gateway, as the client sees it (`https://gw/npm/`)
 */
export function resolveLocation(
  location: string,
  requestUrl: string,
  upstreamBases: readonly string[],
  publicBase: string,
): LocationTarget {
  let target: URL;
  try {
    target = new URL(location, requestUrl);
  } catch {
    return INVALID;
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') return INVALID;
  if (target.username || target.password) return { kind: 'elsewhere', target };
  const href = target.href;
  for (const base of upstreamBases) {
    if (href.startsWith(base)) return { kind: 'gateway', location: publicBase + href.slice(base.length) };
  }
  return { kind: 'elsewhere', target };
}
