/**
 * The Redis Stream sink: the default when TOLLGATE_REDIS_URL is set.
 *
 * Key layout (`key` is e.g. `{tollgate}:activity:production`; its `{...}` hash tag puts every key
 * below in one Cluster slot, so the script also runs on a Cluster):
 *
 *   <key>                  STREAM  one entry per event, one field: `event` = the event JSON
 *                                   (exactly the ActivityEvent fields, see activityEventJson);
 *                                   trimmed with XADD MAXLEN ~ maxLen
 *   <key>:batch:<batchId>  STRING  "1", PX dedupeTtlMs: this batch is already in the stream
 *
 * One field only: consumers (XREAD, XREADGROUP) and the recent-activity query parse the JSON
 * anyway, and Redis cannot index stream fields, so copies of project/ecosystem/tokenName would
 * only add bytes.
 *
 * A batch is one Lua script, atomic: when the marker exists the batch was written before (a retry
 * after a lost reply) and nothing is added; otherwise every event is XADDed in order and the
 * marker is set. The marker is set after the XADDs, in the same script, so an XADD that fails
 * (a key of the wrong type) leaves no marker behind that would hide the batch from its retry.
 *
 * The connection fails fast like the token store's: no offline queue, no re-sent command (so the
 * script never runs twice for one call), a command timeout. `deliver` waits for the first
 * connection (up to connectTimeoutMs) and afterwards rejects at once while Redis is away: the
 * runner retries with backoff.
 */
import type { Cluster, Redis } from 'ioredis';
import { quitOrDisconnect, useOrConnect } from '../../redis/connect.js';
import type { ActivityEvent, EncodedActivityEvent, Sink } from '../event.js';
import { activityEventJson, ndjson } from '../event-codec.js';
import { positiveInteger } from '../../positive-integer.js';

/** How long a written batch is remembered. Longer than any retry of a batch whose reply was lost. */
export const DEFAULT_ACTIVITY_DEDUPE_TTL_MS = 3_600_000;
export const DEFAULT_ACTIVITY_REDIS_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_ACTIVITY_REDIS_COMMAND_TIMEOUT_MS = 5_000;
/** Reconnect backoff: 50 ms doubling per attempt, capped here; retries forever. */
const RECONNECT_MAX_DELAY_MS = 2_000;

type RedisClient = Redis | Cluster;

export interface RedisStreamSinkOptions {
  /** An existing connection (never closed by the sink). Give it fail-fast options. */
  client?: RedisClient;
  /** redis:// or rediss:// URL; used when no client is given. The sink owns this connection. */
  url?: string;
  /** The stream key, with a hash tag first: `{tollgate}:activity:production`. */
  key: string;
  /** Approximate bound of the stream (XADD MAXLEN ~). */
  maxLen: number;
  /** How long a written batchId is remembered. Default 3 600 000 ms (1 h). */
  dedupeTtlMs?: number;
  /** Until the first connection, how long deliver waits for it; also ioredis connectTimeout. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** A script without a reply after this long fails. Default 5 000 ms. */
  commandTimeoutMs?: number;
  /** Connection errors of an owned connection (they are otherwise swallowed: reconnecting is automatic). */
  onError?: (err: Error) => void;
}

/**
 * KEYS: stream, marker. ARGV: maxLen, dedupeTtlMs, then the events' JSON lines, one or more per
 * argument, newline-separated (JSON text never holds a raw newline byte, nor does UTF-8 inside a
 * character). Returns the number of entries added, or -1 when the batch was already written.
 */
const APPEND_BATCH_LUA = `
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local added = 0
for i = 3, #ARGV do
  for line in string.gmatch(ARGV[i], '[^\\n]+') do
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'event', line)
    added = added + 1
  end
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return added
`;

interface AppendCommand {
  tollgateActivityAppend(
    stream: string,
    marker: string,
    maxLen: string,
    ttlMs: string,
    ...events: (string | Buffer)[]
  ): Promise<number>;
}

function reconnectDelayMs(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 16), RECONNECT_MAX_DELAY_MS);
}

export function createRedisStreamSink(options: RedisStreamSinkOptions): Sink {
  const { key } = options;
  if (!key) throw new TypeError('createRedisStreamSink needs a key');
  const maxLen = String(positiveInteger('createRedisStreamSink', 'maxLen', options.maxLen));
  const ttlMs = String(
    positiveInteger('createRedisStreamSink', 'dedupeTtlMs', options.dedupeTtlMs ?? DEFAULT_ACTIVITY_DEDUPE_TTL_MS),
  );
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_ACTIVITY_REDIS_CONNECT_TIMEOUT_MS;
  const markerKey = (batchId: string) => `${key}:batch:${batchId}`;

  const reportError = (err: Error): void => {
    try {
      options.onError?.(err);
    } catch {
      // A failing error handler must not take the process down.
    }
  };

  const { client, owned: ownsClient } = useOrConnect(
    options,
    {
      connectTimeout: connectTimeoutMs,
      retryStrategy: reconnectDelayMs,
      enableReadyCheck: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? DEFAULT_ACTIVITY_REDIS_COMMAND_TIMEOUT_MS,
    },
    reportError,
    'createRedisStreamSink',
  );
  client.defineCommand('tollgateActivityAppend', { lua: APPEND_BATCH_LUA, numberOfKeys: 2 });
  const commands = client as unknown as AppendCommand;

  let everReady = client.status === 'ready';
  if (!everReady)
    client.once('ready', () => {
      everReady = true;
    });

  /** Before the first connection only: waits for it, up to connectTimeoutMs. */
  function untilFirstReady(): Promise<void> {
    if (everReady || client.status === 'ready') return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        client.off('ready', onReady);
        client.off('end', onEnd);
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => done();
      const onEnd = () => done(new Error('Redis connection closed'));
      const timer = setTimeout(
        () => done(new Error(`Redis not reachable within ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
      client.on('ready', onReady);
      client.on('end', onEnd);
    });
  }

  let closed = false;

  async function append(lines: (string | Buffer)[], batchId: string): Promise<void> {
    if (closed) throw new Error('redis sink is closed');
    if (lines.length === 0) return;
    await untilFirstReady();
    await commands.tollgateActivityAppend(key, markerKey(batchId), maxLen, ttlMs, ...lines);
  }

  return {
    name: 'redis',

    deliver: async function deliver(events: readonly ActivityEvent[], batchId: string) {
      await append(events.map(activityEventJson), batchId);
    },

    /**
     * The JSON lines go to Redis as the bytes they are (ioredis writes a Buffer argument as is),
     * a run of them per argument: a view per event lived until the reply, long enough to be
     * promoted to V8's old generation.
     */
    deliverEncoded: async function deliverEncoded(events: readonly EncodedActivityEvent[], batchId: string) {
      if (events.length > 0) await append(ndjson(events, 0, events.length), batchId);
    },

    close: async function close() {
      if (closed) return;
      closed = true;
      if (!ownsClient) return;
      client.off('error', reportError);
      client.on('error', () => {});
      await quitOrDisconnect(client);
    },
  };
}
