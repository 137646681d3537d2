import type { Cluster, Redis } from 'ioredis';
import type { SharedFailureCounter } from './rate-limit.js';

/**
 * Fleet-wide failure counts in Redis: one key per address per fixed window, written in one
 * pipeline per flush (INCRBY + PEXPIRE per address), never per request. Keys share the
 * configured hash-tagged prefix: `{tollgate}:authfail:<window>:<address>`.
 */
export function createRedisFailureCounter(options: {
  client: Redis | Cluster;
  prefix: string;
  windowMs: number;
}): SharedFailureCounter {
  const { client, prefix, windowMs } = options;
  const keyOf = (window: number, address: string) => `${prefix}authfail:${window}:${address}`;
  return {
    windowMs,
    async total(address) {
      return Number((await client.get(keyOf(Math.floor(Date.now() / windowMs), address))) ?? 0);
    },
    async add(counts) {
      const window = Math.floor(Date.now() / windowMs);
      const pipeline = client.pipeline();
      const addresses = [...counts.keys()];
      for (const address of addresses) {
        const key = keyOf(window, address);
        pipeline.incrby(key, counts.get(address)!);
        pipeline.pexpire(key, windowMs * 2);
      }
      const results = (await pipeline.exec()) ?? [];
      const totals = new Map<string, number>();
      addresses.forEach((address, i) => {
        const [err, value] = results[i * 2] ?? [new Error('no reply'), null];
        if (!err) totals.set(address, Number(value));
      });
      return totals;
    },
  };
}
