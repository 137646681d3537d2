import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';

/**
 * A Redis keyspace as a fixture file holds it (test/tokens/fixtures/*\/redis-keyspace.json):
 * every key with its type, TTL (ms, -1 for none) and value (a ZSET as [member, score, ...]).
 */
interface KeyspaceEntry {
  key: string;
  type: 'string' | 'hash' | 'zset' | 'set' | 'list';
  ttl: number;
  value: unknown;
}

/** Writes every key of the fixture into the Redis at `url` (which should be empty). */
export async function loadKeyspace(url: string, file: string | URL): Promise<void> {
  const { keys } = JSON.parse(readFileSync(file, 'utf8')) as { keys: KeyspaceEntry[] };
  const client = new Redis(url);
  try {
    const pipeline = client.pipeline();
    for (const { key, type, ttl, value } of keys) {
      if (type === 'string') pipeline.set(key, value as string);
      else if (type === 'hash') pipeline.hset(key, value as Record<string, string>);
      else if (type === 'set') pipeline.sadd(key, ...(value as string[]));
      else if (type === 'list') pipeline.rpush(key, ...(value as string[]));
      else {
        const flat = value as string[];
        const args: string[] = [];
        for (let i = 0; i + 1 < flat.length; i += 2) args.push(flat[i + 1]!, flat[i]!);
        pipeline.zadd(key, ...args);
      }
      if (ttl > 0) pipeline.pexpire(key, ttl);
    }
    for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
  } finally {
    client.disconnect();
  }
}
