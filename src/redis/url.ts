/**
 * TOLLGATE_REDIS_URL, parsed. Kept apart from connect.ts so that configuration can validate a
 * URL without loading the Redis client.
 *
 *   redis://[:password@]host:port[/db]            a single server (rediss:// for TLS)
 *   redis-sentinel://[:password@]h1:p1,h2:p2/name  Sentinel: the master called `name`, found
 *                                                 through the sentinels, followed on failover
 *   redis-cluster://[:password@]h1:p1,h2:p2        Redis Cluster, from any of its nodes
 */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | {
      kind: 'sentinel';
      nodes: { host: string; port: number }[];
      name: string;
      password: string | undefined;
      db: number;
    }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; password: string | undefined };

const SCHEMES = /^(redis|rediss|redis-sentinel|redis-cluster):\/\//;

/** The target, or a sentence saying what is wrong with the URL. */
export function parseRedisUrl(url: string): RedisTarget | string {
  const scheme = SCHEMES.exec(url)?.[1];
  if (!scheme) return 'must be a redis://, rediss://, redis-sentinel:// or redis-cluster:// URL';
  if (scheme === 'redis' || scheme === 'rediss') {
    try {
      new URL(url);
    } catch {
      return 'is not a valid URL';
    }
    return { kind: 'single', url };
  }
  const rest = url.slice(scheme.length + 3);
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : '';
  const afterAuth = at >= 0 ? rest.slice(at + 1) : rest;
  const slash = afterAuth.indexOf('/');
  const hostList = slash >= 0 ? afterAuth.slice(0, slash) : afterAuth;
  const path = slash >= 0 ? afterAuth.slice(slash + 1) : '';
  const password = auth ? decodeURIComponent(auth.slice(auth.indexOf(':') + 1)) || undefined : undefined;
  const nodes: { host: string; port: number }[] = [];
  for (const entry of hostList.split(',').filter(Boolean)) {
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(entry);
    if (!m) return `has a bad host:port "${entry}"`;
    nodes.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) });
  }
  if (nodes.length === 0) return 'names no host:port';
  if (scheme === 'redis-cluster') return { kind: 'cluster', nodes, password };
  const [name, db] = path.split('/');
  if (!name) return 'must name the master: redis-sentinel://host:port,host:port/<master name>[/db]';
  return { kind: 'sentinel', nodes, name: decodeURIComponent(name), password, db: db ? Number(db) : 0 };
}
