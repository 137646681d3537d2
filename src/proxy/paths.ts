import type { RouteConfig } from '../config/index.js';

export const MAX_PATH_LENGTH = 4096;

/**
 * True when a raw request target (path and query, as received) is safe to route and forward:
 * absolute path, no dot segments in any encoding (`..`, `%2e%2e`, `..%2f`, `%2e%2e%5c`, double
 * encoded `%252e`), no backslashes or NUL, valid percent-encoding, bounded length. Paths are
 * forwarded byte for byte, so what is checked here is exactly what the upstream receives.
 */
export function isSafePath(rawPath: string): boolean {
  if (rawPath.length > MAX_PATH_LENGTH || rawPath.charCodeAt(0) !== 0x2f /* / */) return false;
  // Fast path: nothing encoded, no dots next to a slash, no backslash.
  const q = rawPath.indexOf('?');
  const path = q < 0 ? rawPath : rawPath.slice(0, q);
  if (path.indexOf('\\') >= 0) return false;
  if (path.indexOf('%') < 0 && path.indexOf('/.') < 0) return true;
  for (const segment of path.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return false; // bad percent-encoding
    }
    if (decoded.indexOf('\0') >= 0 || decoded.indexOf('\\') >= 0) return false;
    // A decoded segment may hold "/" (npm's @scope%2fname): check each part of it.
    for (const part of decoded.split('/')) {
      // Java servers (Tomcat, Jetty: Nexus, Artifactory) drop ";params" from a segment, so
      // "..;" and "..;jsessionid=x" are dot segments to them.
      const name = part.split(';', 1)[0];
      if (name === '.' || name === '..') return false;
    }
    // Double encoding of ".", "/", "\" or "%": a second decoder upstream must not see a dot segment.
    if (/%(2e|2f|5c|25|00)/i.test(decoded)) return false;
  }
  return true;
}

/**
 * The raw request target with its single-dot path segments removed (`/apt/./Packages` becomes
 * `/apt/Packages`, a trailing `/.` becomes `/`), as RFC 3986 §5.2.4 normalises them; the query
 * string is left alone. apt asks for exactly such paths from a flat repository (`deb URL ./`).
 * A "." never leaves its directory, so this opens nothing: ".." and every encoded dot are
 * still refused by isSafePath, which runs on the result.
 */
export function removeSingleDotSegments(rawPath: string): string {
  const q = rawPath.indexOf('?');
  const path = q < 0 ? rawPath : rawPath.slice(0, q);
  if (path.indexOf('/./') < 0 && !path.endsWith('/.')) return rawPath;
  let out = path;
  for (let previous = ''; previous !== out;) {
    previous = out;
    out = out.replaceAll('/./', '/');
  }
  if (out.endsWith('/.')) out = out.slice(0, -1);
  return q < 0 ? out : out + rawPath.slice(q);
}

export interface RouteMatch {
  route: RouteConfig;
  /** What follows the prefix, query string included, byte for byte. */
  rest: string;
}

/** Longest-prefix match on the raw path (routes come sorted longest first). `/npm` matches `/npm/`. */
export function createRouteMatcher(routes: readonly RouteConfig[]): (rawPath: string) => RouteMatch | undefined {
  return function matchRoute(rawPath) {
    for (const route of routes) {
      const { prefix } = route;
      if (rawPath.startsWith(prefix)) return { route, rest: rawPath.slice(prefix.length) };
      // The prefix without its trailing slash, alone or followed by a query string.
      const bare = prefix.length - 1;
      if (
        bare > 0 &&
        rawPath.startsWith(prefix.slice(0, bare)) &&
        (rawPath.length === bare || rawPath.charCodeAt(bare) === 0x3f) /* ? */
      ) {
        return { route, rest: rawPath.slice(bare) };
      }
    }
    return undefined;
  };
}
