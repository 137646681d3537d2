import { isIP } from 'node:net';
import { classifyAddress, embeddedIPv4 } from '../net/addresses.js';

/**
 * Which Host names the admin listener answers, every path included (/healthz, /readyz,
 * /metrics): a page on another site can make the browser resolve its own name to 127.0.0.1 (DNS
 * rebinding) and then read the admin listener as same-origin, but it cannot choose the Host the
 * browser sends, which stays its own name. So the listener answers only:
 *
 * - loopback: `localhost`, 127.0.0.0/8, [::1] (a container HEALTHCHECK, a local browser);
 * - the address the connection reached, as an IP literal: for a listener bound to one address
 *   that is that address; bound to 0.0.0.0 or ::, whichever interface address the client used
 *   (a Kubernetes probe or a scrape by pod IP). An IP literal cannot be rebound;
 * - TOLLGATE_ADMIN_HOST when it is a name;
 * - TOLLGATE_PUBLIC_ADMIN_URL's host, with its port (the default port when it names none).
 *
 * Ports are not compared for the first three: a port mapping (docker -p 19090:9090) changes it.
 * Anything else is 421 Misdirected Request.
 */

export interface AdminHostOptions {
  /** TOLLGATE_ADMIN_HOST: the address or name the listener is bound to. */
  adminHost?: string;
  /** TOLLGATE_PUBLIC_ADMIN_URL, an origin. */
  publicOrigin?: string;
}

/** Only the characters of a DNS name, an IPv4 address or a bracketed IPv6 address, and a port. */
const HOST_CHARS = /^[A-Za-z0-9._-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

function parseHost(value: string, protocol = 'http:'): URL | undefined {
  if (value.length > 262 || !HOST_CHARS.test(value)) return undefined;
  try {
    return new URL(`${protocol}//${value}/`);
  } catch {
    return undefined;
  }
}

/** One spelling per IP address (brackets off, IPv6 compressed, an IPv4-mapped form as IPv4); undefined for a name. */
function canonicalIp(value: string): string | undefined {
  const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  const family = isIP(bare);
  if (family === 4) return bare;
  if (family !== 6) return undefined;
  return embeddedIPv4(bare) ?? new URL(`http://[${bare}]/`).hostname.slice(1, -1);
}

export function createAdminHostCheck(
  options: AdminHostOptions,
): (host: string | undefined, localAddress: string | undefined) => boolean {
  const bound = options.adminHost === undefined ? undefined : canonicalIp(options.adminHost);
  const boundName =
    options.adminHost !== undefined && bound === undefined ? options.adminHost.toLowerCase() : undefined;
  const publicUrl = options.publicOrigin === undefined ? undefined : new URL(options.publicOrigin);
  let lastHost: string | undefined;
  let lastLocal: string | undefined;
  let lastAnswer = false;

  function decide(host: string, localAddress: string | undefined): boolean {
    if (publicUrl && parseHost(host, publicUrl.protocol)?.host === publicUrl.host) return true;
    const url = parseHost(host);
    if (!url) return false;
    const { hostname } = url;
    if (hostname === 'localhost' || classifyAddress(hostname) === 'loopback') return true;
    if (boundName !== undefined && hostname === boundName) return true;
    const ip = canonicalIp(hostname);
    if (ip === undefined) return false;
    if (bound !== undefined && ip === bound && classifyAddress(bound) !== 'unspecified') return true;
    return localAddress !== undefined && ip === canonicalIp(localAddress);
  }

  return function isAdminHost(host, localAddress) {
    if (host === undefined) return false;
    // Clients repeat the same Host on the same address: remember the last answer.
    if (host !== lastHost || localAddress !== lastLocal) {
      lastAnswer = decide(host, localAddress);
      lastHost = host;
      lastLocal = localAddress;
    }
    return lastAnswer;
  };
}
