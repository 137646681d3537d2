import { classifyAddress } from '../net/addresses.js';
import type { Secrecy } from './schema.js';

/** URL and host rules shared by every check that needs them, and the one way a value is shown in a message. */

/**
 * Loopback only: 127.0.0.0/8 in any form the URL parser normalises to a dotted quad (`127.1`,
 * `0x7f.0.0.1`, `2130706433`), ::1 (bare, bracketed or written out; also IPv4-mapped 127.x) and
 * localhost.
 */
export function isLoopbackHost(host: string): boolean {
  if (!/^[\w.:[\]-]+$/.test(host)) return false; // no userinfo, port-and-path or other tail to misread
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  let hostname: string;
  try {
    const url = new URL(`http://${bracketed}/`);
    if (url.port !== '') return false;
    hostname = url.hostname;
  } catch {
    return false;
  }
  // The one definition of loopback (net/addresses.ts), on the URL parser's normal form of the host.
  return hostname === 'localhost' || classifyAddress(hostname.replace(/^\[(.*)\]$/, '$1')) === 'loopback';
}

/** An http: or https: URL, or undefined. */
export function parseHttpUrl(value: string): URL | undefined {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

const SCHEME = /^([a-z][a-z0-9+.-]*:)\/\//i;
/** host[:port], or a comma-separated list of them (Redis Sentinel and Cluster URLs). */
const HOSTS = /^(?:(?:\[[\da-f:.]+\]|[\w.%-]+)(?::\d+)?(?:,|$))*$/i;

/**
 * A URL as a problem line may show it: scheme://host[:port], with `***@` where userinfo was and
 * `/…` where a path, query or fragment was (any of them can be a credential). Undefined for a
 * value that does not start with scheme://, which is not shown at all.
 */
export function showUrl(value: string): string | undefined {
  const scheme = SCHEME.exec(value)?.[1];
  if (!scheme) return undefined;
  const rest = value.slice(scheme.length + 2);
  const end = rest.search(/[/?#]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  const tail = rest.slice(authority.length);
  const at = authority.lastIndexOf('@');
  const host = authority.slice(at + 1);
  // An "@" past the authority may end a password holding an unencoded "/": show no host then.
  if (tail.includes('@') || !HOSTS.test(host)) return `${scheme}//…`;
  return `${scheme}//${at >= 0 ? '***@' : ''}${host}${tail && tail !== '/' ? '/…' : ''}`;
}

/** A setting's value as text when it is a scalar (what an environment variable or a config file holds), else undefined. */
function scalarText(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    default:
      return undefined;
  }
}

/** `, got "<value>"` as far as its secrecy allows; nothing for a secret or a value that is no scalar (an object, a missing value). */
export function got(value: unknown, secrecy: Secrecy | undefined): string {
  if (secrecy === 'value') return '';
  const text = scalarText(value);
  if (text === undefined) return '';
  const shown = secrecy === 'url' ? showUrl(text) : text;
  return shown === undefined ? '' : `, got ${JSON.stringify(shown)}`;
}

/** Why a value is not an http(s) origin (scheme://host[:port] and nothing else), or undefined. */
export function originProblem(value: string, example: string): string | undefined {
  const url = parseHttpUrl(value);
  if (
    url &&
    (url.pathname === '/' || url.pathname === '') &&
    !url.search &&
    !url.hash &&
    !url.username &&
    !url.password
  )
    return undefined;
  return `must be an http(s) origin such as ${example}${got(value, 'url')}`;
}

/** Why a value is not an https URL (http only on loopback) without credentials, or undefined. */
export function secureUrlProblem(value: string): string | undefined {
  const url = parseHttpUrl(value);
  if (!url || (url.protocol !== 'https:' && !isLoopbackHost(url.hostname)))
    return `must be an https URL (http only on loopback)${got(value, 'url')}`;
  if (url.username || url.password) return `must not carry credentials in the URL${got(value, 'url')}`;
  return undefined;
}
