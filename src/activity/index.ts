import path from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import type { Logger } from '../logging/logger.js';
import { createLabelLimiter, type Metrics } from '../metrics/registry.js';
import type { Sink } from './event.js';
import { createSinkRunner, type SinkRunner } from './queue.js';
import { createActivityRecorder, type ActivityRecorder } from './recorder.js';
import { createFileSink } from './sinks/file.js';
import { createWebhookSink } from './sinks/webhook.js';
import { loadSigningKeys } from './signing.js';
import { createRedisActivityQuery, createSqliteActivityLog, type ActivityQuery } from './recent.js';
import { createFileActivityQuery } from './recent-file.js';

export type { ActivityQuery } from './recent.js';
export type { RequestActivity } from './recorder.js';
export { createLeakAlert } from './leak-alert.js';

export interface ActivityPipeline {
  recorder: ActivityRecorder;
  runners: readonly SinkRunner[];
  /** Recent Production activity, fleet-wide: the Redis Stream, else the NDJSON files, else the embedded table. */
  query: ActivityQuery;
  /** Public keys for the signed webhook batches. */
  jwks: () => { keys: object[] };
  /** Stop delivering; what is still queued is kept on disk for the next start. */
  stop(): Promise<void>;
}

/**
 * Builds the Production activity pipeline from the configuration: the sinks (Redis Stream,
 * NDJSON file, signed webhook), one runner (queue, disk buffer, retry) per sink, the recorder
 * that feeds them, and the recent-activity query for the admin page. That query reads the
 * Redis Stream when there is one, else the NDJSON files; only when neither exists (e.g. the
 * webhook alone, no Redis) is a SQLite table kept for it, as one more sink.
 */
export async function createActivityPipeline(
  config: Pick<Config, 'activity' | 'dataDir' | 'redis' | 'metrics'>,
  deps: { metrics: Metrics; logger: Logger },
): Promise<ActivityPipeline> {
  const { activity } = config;
  const { metrics, logger } = deps;
  const keys = await loadSigningKeys({ keyFile: activity.signingKeyFile, dataDir: config.dataDir });
  const spoolRoot = path.join(config.dataDir, 'spool');
  const streamKey = (stream: string) => `${config.redis?.prefix ?? '{tollgate}:'}activity:${stream}`;

  // Loaded only with Redis configured (ioredis adds much to the process's RSS).
  const redisModules = config.redis
    ? { connect: await import('../redis/connect.js'), stream: await import('./sinks/redis-stream.js') }
    : undefined;

  function sinksFor(stream: 'production' | 'development'): Sink[] {
    const sinks: Sink[] = [];
    for (const name of activity.sinks) {
      if (name === 'file') sinks.push(createFileSink({ dir: config.dataDir, stream }));
      if (name === 'redis' && config.redis && redisModules) {
        sinks.push(
          redisModules.stream.createRedisStreamSink({
            url: config.redis.url,
            key: streamKey(stream),
            maxLen: activity.streamMaxLen,
          }),
        );
      }
      // The webhook is the security team's alerting pipeline: Production only, always.
      if (name === 'webhook' && activity.webhook && stream === 'production') {
        sinks.push(
          createWebhookSink({ url: activity.webhook.url, signer: keys.signer, timeoutMs: activity.webhook.timeoutMs }),
        );
      }
    }
    return sinks;
  }

  let queryClient: Redis | Cluster | undefined;
  let query: ActivityQuery;
  // Stored lines longer than any event (of an earlier version, or not the sinks'): skipped by the view, counted here.
  const onSkipped = (n: number) => metrics.activityRecentSkipped.inc(n);
  const productionSinks = sinksFor('production');
  if (config.redis && redisModules && activity.sinks.includes('redis')) {
    queryClient = redisModules.connect.createRedisConnection(config.redis.url, {
      enableOfflineQueue: true,
      maxRetriesPerRequest: 1,
      commandTimeout: 5000,
      lazyConnect: true,
    });
    queryClient.on('error', () => {}); // reconnects by itself; a failed query reports its own error
    query = createRedisActivityQuery({ client: queryClient, key: streamKey('production'), onSkipped });
  } else if (activity.sinks.includes('file')) {
    // The file sink holds every event already: read it, no second copy on the request path's event loop.
    query = createFileActivityQuery({ dir: config.dataDir, maxLines: activity.recentMax, onSkipped });
  } else {
    const recentLog = createSqliteActivityLog({ dataDir: config.dataDir, maxRows: activity.recentMax, onSkipped });
    productionSinks.push(recentLog);
    query = recentLog;
  }

  function runner(sink: Sink, stream: string): SinkRunner {
    // The file sink already names its stream (`file-development`); the others get it appended.
    const label = stream === 'production' || sink.name.endsWith(`-${stream}`) ? sink.name : `${sink.name}-${stream}`;
    return createSinkRunner({
      sink,
      name: label,
      spoolDir: path.join(spoolRoot, label),
      maxMemoryEvents: activity.memoryEvents,
      maxSpoolBytes: activity.spoolMaxBytes,
      batchSize: activity.batchSize,
      flushIntervalMs: activity.flushMs,
      retryBaseMs: 100,
      retryMaxMs: activity.retryMaxMs,
      onDelivered: (n) => metrics.activityEvents.labels(label, 'delivered').inc(n),
      onRetry: (n, err) => {
        metrics.activityEvents.labels(label, 'retried').inc(n);
        logger.warn(
          { sink: label, events: n, err: { message: (err as Error)?.message } },
          'activity sink failed, will retry',
        );
      },
      onDropped: (n, reason) => {
        metrics.activityEvents.labels(label, 'dropped').inc(n);
        logger.error({ sink: label, events: n, reason }, 'activity events dropped: buffer bounds reached');
      },
    });
  }

  const production = productionSinks.map((s) => runner(s, 'production'));
  const development = activity.development ? sinksFor('development').map((s) => runner(s, 'development')) : [];
  const runners = [...production, ...development];

  metrics.activityQueueDepth.reset();
  metrics.sources.activityQueueDepth = () => runners.map((r) => ({ sink: r.name, ...r.depth() }));

  const recorder = createActivityRecorder({
    production,
    development,
    metrics,
    projectLabel: createLabelLimiter(config.metrics.projects, config.metrics.maxProjects),
  });

  return {
    recorder,
    runners,
    query,
    jwks: () => keys.jwks(),
    async stop() {
      await Promise.all(runners.map((r) => r.stop()));
      queryClient?.disconnect();
    },
  };
}
