import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from './logging/logger.js';
import type { MetricsSource } from './metrics/select.js';

/**
 * TOLLGATE_WORKERS > 1: one primary process supervises N workers that each run the whole
 * gateway and share its ports (the kernel spreads connections: SCHED_NONE, no hop through the
 * primary). Workers share the token store, its change notifications and the sinks exactly as
 * separate instances do (per-process spool folders, O_APPEND files, Redis). /metrics, answered
 * by whichever worker gets the scrape, asks the primary, which sums every worker's registry.
 */

const METRICS_REQUEST = 'tollgate:metrics-request';
const METRICS_RESPONSE = 'tollgate:metrics-response';

interface MetricsMessage {
  type: string;
  id: number;
  text?: string;
  error?: string;
}

export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/**
 * In a worker: expose this registry to the primary and return a source that asks for everyone's
 * (/metrics then answers for the whole cluster, whichever worker gets the scrape).
 */
export function clusterMetricsSource(registry: Registry): MetricsSource {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one makes prom-client answer the primary's requests for this worker's metrics.
  new AggregatorRegistry();
  let next = 0;
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
  process.on('message', (msg: MetricsMessage) => {
    if (msg?.type !== METRICS_RESPONSE) return;
    const w = waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id);
    if (msg.error !== undefined) w.reject(new Error(msg.error));
    else w.resolve(msg.text ?? '');
  });
  return {
    contentType: registry.contentType,
    metrics() {
      const id = ++next;
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error('cluster metrics timed out'));
        }, 5000);
        waiting.set(id, {
          resolve: (t) => {
            clearTimeout(timer);
            resolve(t);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        process.send!({ type: METRICS_REQUEST, id });
      });
    },
  };
}

/**
 * In the primary: fork the workers, replace any that dies unexpectedly, answer metrics
 * requests, and on SIGTERM/SIGINT pass the signal on and exit 0 once every worker has finished
 * its in-flight downloads.
 */
export function runPrimary(workers: number, logger: Logger): void {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const aggregator = new AggregatorRegistry();
  let stopping = false;

  const onMessage = (worker: Worker, msg: MetricsMessage): void => {
    if (msg?.type !== METRICS_REQUEST) return;
    aggregator.clusterMetrics().then(
      (text) => worker.isConnected() && worker.send({ type: METRICS_RESPONSE, id: msg.id, text }),
      (err: Error) => worker.isConnected() && worker.send({ type: METRICS_RESPONSE, id: msg.id, error: err.message }),
    );
  };
  const fork = (): void => {
    const worker = cluster.fork();
    worker.on('message', (msg: MetricsMessage) => onMessage(worker, msg));
  };

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        logger.info('all workers stopped');
        logger.flush();
        process.exit(0);
      }
      return;
    }
    logger.error({ workerPid: worker.process.pid, code, signal }, 'worker died; starting another');
    setTimeout(fork, 500).unref();
  });

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping workers');
    for (const worker of Object.values(cluster.workers ?? {}))
      worker?.process.kill(signal === 'SIGINT' ? 'SIGTERM' : signal);
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));

  for (let i = 0; i < workers; i++) fork();
  logger.info({ workers }, 'tollgate primary started workers');
}
