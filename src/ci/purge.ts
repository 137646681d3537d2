import type { TokenRecord, TokenStore } from '../tokens/store.js';

/**
 * Tokens issued to CI jobs do not pile up: every `intervalMs`, those that expired more than
 * `graceMs` ago are deleted from the store (TokenStore.purgeExpiredCi), in batches until none is
 * left. Every instance may run it: the stores delete each token once (one SQLite transaction,
 * one Redis script), so two sweeps at once only split the work. What a purged token did stays
 * in the activity sinks and the log (onPurged gets each record).
 */
export interface CiPurgeOptions {
  store: Pick<TokenStore, 'purgeExpiredCi'>;
  graceMs: number;
  intervalMs: number;
  onPurged: (records: TokenRecord[]) => void;
  onError: (err: unknown) => void;
  /** Tokens deleted per store call. Default 1000. */
  batch?: number;
}

export interface CiPurge {
  /** One sweep now (the timer's work); resolves to how many tokens it deleted. */
  sweep(now?: number): Promise<number>;
  stop(): Promise<void>;
}

export function startCiPurge(options: CiPurgeOptions): CiPurge {
  const batch = options.batch ?? 1_000;
  let running: Promise<number> | undefined;
  let stopped = false;

  async function sweepOnce(now: number): Promise<number> {
    let total = 0;
    for (;;) {
      const purged = await options.store.purgeExpiredCi(now - options.graceMs, batch);
      if (purged.length > 0) options.onPurged(purged);
      total += purged.length;
      if (purged.length < batch || stopped) return total;
    }
  }

  function sweep(now = Date.now()): Promise<number> {
    // One sweep at a time in this process: a slow store must not stack them up.
    running ??= sweepOnce(now).finally(() => {
      running = undefined;
    });
    return running;
  }

  const timer = setInterval(() => {
    sweep().catch(options.onError);
  }, options.intervalMs);
  timer.unref();

  return {
    sweep,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
