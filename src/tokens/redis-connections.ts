import { type Cluster, type Redis, type RedisOptions } from 'ioredis';
import { GatewayError } from '../errors.js';
import { createRedisConnection, useOrConnect } from '../redis/connect.js';

export const DEFAULT_REDIS_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 2_000;
/** Reconnect backoff: 50 ms doubling per attempt, capped here; retries forever. */
export const REDIS_RECONNECT_MAX_DELAY_MS = 2_000;

export type RedisClient = Redis | Cluster;

export interface RedisConnectionOptions {
  /** redis:// or rediss:// URL; used when no client is given. */
  url?: string;
  /** An existing connection to use (never closed by the store); its duplicate() carries pub/sub. */
  client?: RedisClient;
  /** Until the first connection, how long a command waits for it; also ioredis connectTimeout. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** A command without a reply after this long fails (a dead peer must not hang a request). Default 2 000 ms. */
  commandTimeoutMs?: number;
  /** Every connection error (they are otherwise swallowed: reconnecting is automatic). */
  onError?: (err: Error) => void;
}

export interface StoreConnections {
  /** The command connection. */
  client: RedisClient;
  /** Whether the store made it (and so closes it). */
  ownsClient: boolean;
  /** Hands an error to onError; a throwing handler is ignored. */
  reportError(this: void, err: Error): void;
  /** Whether the command connection has been ready at least once. */
  everReady(this: void): boolean;
  /** Resolves once the command connection is ready (TOLLGATE_ERR_STORE past connectTimeoutMs or on its end). */
  untilFirstReady(this: void): Promise<void>;
  /** The pub/sub connection, subscribed to `channel`: `notify` on each message and each (re)subscription. */
  startSubscriber(this: void, channel: string, notify: () => void): RedisClient;
}

function reconnectDelayMs(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 16), REDIS_RECONNECT_MAX_DELAY_MS);
}

/**
 * Connections the store creates:
 * - commands: `enableOfflineQueue: false` and `maxRetriesPerRequest: 0`. During an outage a
 *   command fails at once (the gateway then serves stale entries or answers 503) instead of
 *   queueing; a command in flight when the connection drops fails too and is never re-sent, so a
 *   write script cannot run twice. `commandTimeout` covers a peer that stopped answering.
 *   Before the first connection, commands wait for it (up to connectTimeoutMs): a gateway or CLI
 *   that uses the store right after creating it does not fail while connecting.
 * - pub/sub (created on the first onChange): subscribes on every 'ready' itself, then calls the
 *   listeners (once the command connection is up too, so they can catch up with changesSince),
 *   since messages published while it was away are lost. It also calls them on the first
 *   subscription, which closes the window between store creation and subscription.
 * Both reconnect forever: 50 ms doubling up to 2 s.
 */
export function openStoreConnections(options: RedisConnectionOptions): StoreConnections {
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_REDIS_CONNECT_TIMEOUT_MS;
  const reportError = (err: Error): void => {
    try {
      options.onError?.(err);
    } catch {
      // A failing error handler must not take the process down either.
    }
  };

  const redisOptions: RedisOptions = {
    connectTimeout: connectTimeoutMs,
    retryStrategy: reconnectDelayMs,
    enableReadyCheck: true,
  };

  const { client, owned: ownsClient } = useOrConnect(
    options,
    {
      ...redisOptions,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
    },
    reportError,
    'createRedisTokenStore',
  );

  // Until the command connection has been ready once, commands wait for it.
  let everReady = client.status === 'ready';
  if (!everReady)
    client.once('ready', () => {
      everReady = true;
    });
  let firstReady: Promise<void> | undefined;
  const untilFirstReady = (): Promise<void> => {
    firstReady ??= new Promise<void>((resolve, reject) => {
      const done = (err?: GatewayError) => {
        clearTimeout(timer);
        client.off('ready', onReady);
        client.off('end', onEnd);
        if (err) {
          firstReady = undefined;
          reject(err);
        } else {
          resolve();
        }
      };
      const onReady = () => done();
      const onEnd = () => done(new GatewayError('TOLLGATE_ERR_STORE', 'Redis connection closed'));
      const timer = setTimeout(
        () => done(new GatewayError('TOLLGATE_ERR_STORE', `Redis not reachable within ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
      client.on('ready', onReady);
      client.on('end', onEnd);
      if (client.status === 'ready') done();
    });
    return firstReady;
  };

  function startSubscriber(channel: string, notify: () => void): RedisClient {
    const sub = options.client
      ? options.client.duplicate()
      : createRedisConnection(options.url!, { ...redisOptions, autoResubscribe: false, maxRetriesPerRequest: null });
    sub.on('error', reportError);
    sub.on('message', (from: string) => {
      if (from === channel) notify();
    });
    // Listeners catch up through the command connection: notify once both are up.
    const notifyWhenCommandsReady = () => {
      if (client.status === 'ready') notify();
      else client.once('ready', notify);
    };
    sub.on('ready', () => {
      sub.subscribe(channel).then(notifyWhenCommandsReady, reportError);
    });
    if (sub.status === 'wait') sub.connect().catch(() => {});
    return sub;
  }

  return { client, ownsClient, reportError, everReady: () => everReady, untilFirstReady, startSubscriber };
}
