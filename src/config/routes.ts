import { statSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_UPSTREAM_DIR, REWRITE_BY_DEFAULT, type RouteFileEntry, type UpstreamAuth } from './schema.js';
import type { Checked, Context } from './sources.js';
import { parseCidr } from '../net/addresses.js';
import type { FollowRedirects, RouteConfig, Upstream } from './types.js';
import { got, parseHttpUrl } from './urls.js';

/** Routes: the config file's list, or TOLLGATE_UPSTREAM as one route "/", or the shipped example tree. */
export function checkRoutes({ s, where, configFile, cwd, fileDir }: Context): Checked<RouteConfig[]> {
  const problems: string[] = [];
  if (s.upstream && s.routes) {
    problems.push(`${where('upstream')} and the routes in ${configFile} are both set: use one or the other`);
  }
  const fromEnv = s.upstream !== undefined;
  const entries: RouteFileEntry[] = s.upstream ? [routeTo(s.upstream)] : (s.routes ?? [routeTo(DEFAULT_UPSTREAM_DIR)]);
  const routes: RouteConfig[] = [];
  const seen = new Set<string>();
  entries.forEach((entry, i) => {
    const at = fromEnv ? where('upstream') : `${where('routes')}[${i}]`;
    const prefix = entry.prefix.endsWith('/') ? entry.prefix : `${entry.prefix}/`;
    if (seen.has(prefix)) problems.push(`${at}.prefix: duplicate route prefix "${prefix}"`);
    if (prefix.startsWith(OWN_NAMESPACE))
      problems.push(`${at}.prefix: "${prefix}" is under ${OWN_NAMESPACE}, Tollgate's own endpoints on the proxy port`);
    seen.add(prefix);
    const upstream = resolveUpstream(entry.upstream, fromEnv ? cwd : fileDir);
    if (typeof upstream === 'string') {
      problems.push(upstreamProblem(fromEnv ? at : `${at}.upstream`, entry.upstream, upstream));
      return;
    }
    const followRedirects = redirectPolicy(entry.followRedirects, `${at}.followRedirects`, problems);
    routes.push({
      prefix,
      ecosystem: entry.ecosystem,
      upstream,
      upstreamAuthHeader: authHeader(entry.upstreamAuth),
      allowPost: entry.allowPost.map((p) => prefix + p.slice(1)),
      rewriteBases:
        upstream.kind === 'http' && (entry.rewrite ?? REWRITE_BY_DEFAULT.includes(entry.ecosystem))
          ? [upstream.url.href, ...entry.rewriteFrom.map((u) => (u.endsWith('/') ? u : `${u}/`))]
          : undefined,
      followRedirects,
    });
  });
  if (routes.length === 0 && problems.length === 0) problems.push(`${configFile}: routes must list at least one route`);
  routes.sort((a, b) => b.prefix.length - a.prefix.length);
  return { value: routes, problems };
}

/**
 * TOLLGATE_UPSTREAM's own check, for the run whose other settings failed the schema: a bad
 * upstream is reported in the same run as everything else, not after the rest is fixed.
 */
export function upstreamOnlyProblems(value: unknown, where: string, cwd: string): string[] {
  if (typeof value !== 'string') return [];
  const upstream = resolveUpstream(value, cwd);
  return typeof upstream === 'string' ? [upstreamProblem(where, value, upstream)] : [];
}

const PUBLIC_ONLY: FollowRedirects = { hosts: [], cidrs: [] };
/** Tollgate's own endpoints on the proxy port (src/proxy/own/): no route may take the namespace. */
const OWN_NAMESPACE = '/-/tollgate/';

function redirectPolicy(value: RouteFileEntry['followRedirects'], at: string, problems: string[]): FollowRedirects {
  if (value === undefined) return PUBLIC_ONLY;
  if (value === false) return false;
  value.cidrs.forEach((cidr, i) => {
    if (!parseCidr(cidr))
      problems.push(
        `${at}.cidrs[${i}] must be an IP address or CIDR range such as 10.1.0.0/16, got ${JSON.stringify(cidr)}`,
      );
  });
  return { hosts: value.hosts.map((h) => h.toLowerCase()), cidrs: value.cidrs };
}

function routeTo(upstream: string): RouteFileEntry {
  return { prefix: '/', upstream, ecosystem: 'generic', allowPost: [], rewriteFrom: [] };
}

/** A URL is shown as scheme://host[:port] only; a directory path as given. */
function upstreamProblem(where: string, value: string, why: string): string {
  return `${where} must be an http(s) URL or a directory${got(value, isUrlLike(value) ? 'url' : undefined)}${why ? ` (${why})` : ''}`;
}

function isUrlLike(value: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(value);
}

function resolveUpstream(value: string, baseDir: string): Upstream | string {
  if (isUrlLike(value)) {
    const url = parseHttpUrl(value);
    if (!url) return '';
    if (url.search || url.hash) return 'no query or fragment allowed';
    if (url.username || url.password) return 'put credentials in upstreamAuth, not the URL';
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    return { kind: 'http', url };
  }
  const root = path.resolve(baseDir, value);
  try {
    if (!statSync(root).isDirectory()) return 'not a directory';
  } catch {
    return 'no such directory';
  }
  return { kind: 'dir', root };
}

function authHeader(auth: UpstreamAuth | undefined): RouteConfig['upstreamAuthHeader'] {
  if (!auth) return undefined;
  switch (auth.type) {
    case 'basic':
      return {
        name: 'authorization',
        value: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`,
      };
    case 'bearer':
      return { name: 'authorization', value: `Bearer ${auth.token}` };
    case 'header':
      return { name: auth.name.toLowerCase(), value: auth.value };
  }
}
