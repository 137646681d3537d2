import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/**
 * The request headers an upstream gets from the client: an allow-list of what package managers
 * send for a download (content negotiation, conditionals and ranges, cache directives, the
 * client's identity, npm's and NuGet's own headers, and a POST body's description). Anything
 * else stays at the gateway: credentials, cookies, and the headers that ask a server behind it
 * to do something other than the download (X-HTTP-Method-Override, X-Original-URL,
 * X-Forwarded-Prefix, True-Client-IP...). The gateway adds Host, X-Forwarded-*, X-Request-Id and
 * the route's own credential itself.
 */
const FORWARDED_TO_UPSTREAM = new Set([
  'accept',
  'accept-encoding',
  'accept-language',
  'accept-charset',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-range',
  'range',
  'cache-control',
  'pragma',
  'user-agent',
  'referer',
  // npm (and pnpm, yarn): what the registry may use for its own statistics
  'npm-command',
  'npm-session',
  'npm-scope',
  'npm-in-ci',
  // NuGet
  'x-nuget-session-id',
  'x-nuget-client-version',
  'x-nuget-protocol-version',
  // a read-only POST's body (npm audit)
  'content-type',
  'content-length',
  'content-encoding',
]);

/** Hop-by-hop headers (RFC 9110 §7.6.1) and cookies never reach the client. */
const DROP_TO_CLIENT = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'set-cookie',
]);

export interface ForwardedInfo {
  /** The client's address as the gateway believes it (trusted proxies honoured). */
  clientIp: string;
  /** The socket peer's address: the hop appended to a trusted proxy's X-Forwarded-For chain. */
  peerIp: string;
  /** The X-Forwarded-For chain received from a trusted proxy, if any. */
  priorForwardedFor: string | undefined;
  proto: string;
  /** The host clients use for the gateway (serialised), undefined when unknown, null when the request named an invalid one. */
  host: string | null | undefined;
}

/** Headers named in Connection are hop-by-hop too. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  // The two values nearly every request and response carry name no header.
  if (!value || value === 'keep-alive' || value === 'close') return undefined;
  const list = (Array.isArray(value) ? value.join(',') : value).split(',');
  const out = new Set<string>();
  for (const t of list) {
    const name = t.trim().toLowerCase();
    if (name && name !== 'close' && name !== 'keep-alive') out.add(name);
  }
  return out.size > 0 ? out : undefined;
}

export function upstreamRequestHeaders(
  incoming: IncomingHttpHeaders,
  upstreamHost: string,
  forwarded: ForwardedInfo,
  requestId: string,
  auth: { name: string; value: string } | undefined,
  /** Send X-Forwarded-Host/-Proto (off for upstreams whose URLs the gateway rewrites). */
  forwardHost = true,
): OutgoingHttpHeaders {
  const extra = connectionTokens(incoming.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in incoming) {
    if (!FORWARDED_TO_UPSTREAM.has(name) || extra?.has(name)) continue;
    out[name] = incoming[name];
  }
  out.host = upstreamHost;
  out['x-forwarded-for'] = forwarded.priorForwardedFor
    ? `${forwarded.priorForwardedFor}, ${forwarded.peerIp}`
    : forwarded.clientIp;
  if (forwardHost) {
    out['x-forwarded-proto'] = forwarded.proto;
    if (forwarded.host) out['x-forwarded-host'] = forwarded.host;
  }
  out['x-request-id'] = requestId;
  if (auth) out[auth.name] = auth.value;
  return out;
}

/**
 * Response headers for the client: hop-by-hop dropped, `Cache-Control: private` so that no shared
 * cache in front of the gateway serves an authenticated response to someone else, and the
 * artifact headers (artifactSafetyHeaders).
 */
export function clientResponseHeaders(upstream: IncomingHttpHeaders, requestId: string): OutgoingHttpHeaders {
  const extra = connectionTokens(upstream.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in upstream) {
    if (DROP_TO_CLIENT.has(name) || extra?.has(name)) continue;
    out[name] = upstream[name];
  }
  out['cache-control'] = privateCacheControl(upstream['cache-control']);
  out['x-request-id'] = requestId;
  out['x-content-type-options'] = 'nosniff';
  out['content-security-policy'] = withSandbox(upstream['content-security-policy']);
  return out;
}

/**
 * An artifact is never a page of the gateway's origin: no content sniffing, and every response is
 * sandboxed whatever its type, so that no HTML, SVG, XHTML or XML with a stylesheet (a PyPI simple
 * page, an uploaded README or icon, a mislabelled file) runs script with the gateway's origin in a
 * browser. Package managers ignore the header. An upstream's own policy is kept beside it (a
 * browser enforces every policy it is sent).
 */
export const ARTIFACT_CSP = 'sandbox';

/** A comma separates policies in one header (CSP 3, "serialized-policy-list"): each is enforced. */
function withSandbox(upstream: string | string[] | undefined): string {
  const own = Array.isArray(upstream) ? upstream.join(', ') : upstream;
  return own ? `${own}, ${ARTIFACT_CSP}` : ARTIFACT_CSP;
}

/** Keeps the upstream's freshness directives but never lets a shared cache store the response. */
export function privateCacheControl(value: string | undefined): string {
  if (!value) return 'private';
  // An upstream sends the same few values again and again: remember the last one.
  if (value === lastCacheControl.value) return lastCacheControl.result;
  const result = privateDirectives(value);
  lastCacheControl = { value, result };
  return result;
}
let lastCacheControl = { value: '', result: 'private' };

function privateDirectives(value: string): string {
  const kept = value
    .split(',')
    .map((d) => d.trim())
    .filter((d) => {
      const name = d.split('=')[0]!.toLowerCase();
      return (
        name !== '' && name !== 'public' && name !== 'private' && name !== 's-maxage' && name !== 'proxy-revalidate'
      );
    });
  return kept.length ? `private, ${kept.join(', ')}` : 'private';
}
