import type { TokenChange, TokenStore } from './store.js';

/** Changes read from the store in one catch-up, in order; 'reset' when they cannot be known (drop everything cached). */
export type ChangeBatch = readonly TokenChange[] | 'reset';

export interface ChangeFeedOptions {
  store: Pick<TokenStore, 'revision' | 'changesSince' | 'onChange'>;
  /** How often the store's revision is checked (backstop for pushed notifications). */
  pollMs: number;
  onError?: (err: unknown, what: string) => void;
}

export interface ChangeFeed {
  /** Every batch read from now on goes to `handler`, in order. Returns an unsubscribe function. */
  subscribe(handler: (batch: ChangeBatch) => void): () => void;
  /** Catch up with the store now (also runs on notifications and every pollMs). */
  sync(): Promise<void>;
  /** When the store last answered a catch-up (epoch ms): the start of a serve-stale window. */
  readonly lastSyncOk: number;
  start(): Promise<void>;
  stop(): void;
}

/**
 * One process's reading of the store's change log, shared by everything that caches what the
 * store holds (the token cache, the admin sessions): changes are pushed (Redis pub/sub) and
 * polled (the revision), read with changesSince from the last revision seen, and handed to every
 * subscriber. A reader that fell behind the log (or a store that was reset) gets 'reset', so no
 * change is lost to a reconnect.
 */
export function createChangeFeed(options: ChangeFeedOptions): ChangeFeed {
  const { store } = options;
  const handlers = new Set<(batch: ChangeBatch) => void>();
  const report = options.onError ?? (() => {});
  let lastRevision = 0;
  let lastSyncOk = Date.now();
  let syncing: Promise<void> | undefined;
  let resync = false;
  let pollTimer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;

  function deliver(batch: ChangeBatch): void {
    for (const handler of [...handlers]) {
      try {
        handler(batch);
      } catch (err) {
        report(err, 'change handler');
      }
    }
  }

  async function catchUp(): Promise<void> {
    const { changes, revision, complete } = await store.changesSince(lastRevision);
    if (revision === lastRevision) return;
    // Fell behind the change log (or the store was reset): nothing cached can be trusted.
    deliver(!complete || revision < lastRevision ? 'reset' : changes);
    lastRevision = revision;
  }

  function sync(): Promise<void> {
    if (syncing) {
      resync = true;
      return syncing;
    }
    syncing = (async () => {
      try {
        do {
          resync = false;
          await catchUp();
          lastSyncOk = Date.now();
        } while (resync);
      } finally {
        syncing = undefined;
      }
    })();
    return syncing;
  }

  return {
    subscribe(handler) {
      handlers.add(handler);
      return () => {
        handlers.delete(handler);
      };
    },
    sync,
    get lastSyncOk() {
      return lastSyncOk;
    },
    async start() {
      lastRevision = await store.revision();
      lastSyncOk = Date.now();
      unsubscribe = store.onChange(() => {
        sync().catch((err) => report(err, 'change sync'));
      });
      pollTimer = setInterval(() => {
        sync().catch((err) => report(err, 'change poll'));
      }, options.pollMs);
      pollTimer.unref();
    },
    stop() {
      clearInterval(pollTimer);
      unsubscribe?.();
    },
  };
}
