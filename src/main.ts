import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig } from './config/index.js';
import { createLogger } from './logging/logger.js';
import { openTokenStore } from './tokens/index.js';
import { startGateway } from './gateway.js';
import { errorFields } from './logging/error-fields.js';
import { clusterMetricsSource, isClusterWorker, runPrimary } from './cluster.js';

/** Exit code for configuration and usage errors. */
export const EXIT_CONFIG = 2;

/**
 * Runs the gateway: the only place that reads the configuration, opens the store, wires the
 * listeners and handles SIGTERM/SIGINT (stop accepting, finish in-flight downloads, exit 0).
 */
export async function runGateway(): Promise<void> {
  const result = loadConfig();
  if (!result.ok) {
    process.stderr.write(`tollgate: invalid configuration\n${result.problems.map((p) => `  ${p}\n`).join('')}`);
    process.exit(EXIT_CONFIG);
  }
  const config = result.config;
  const logger = createLogger(config.logLevel);
  if (config.workers > 1 && !isClusterWorker()) {
    runPrimary(config.workers, logger);
    return;
  }
  const store = await openTokenStore(config, (err) =>
    logger.warn({ err: errorFields(err) }, 'token store connection problem'),
  );

  let gateway;
  try {
    // Before anything uses the store: a store of an earlier version is brought up to date (once).
    const schema = await store.migrate();
    if (schema.from !== schema.to)
      logger.info({ store: store.kind, from: schema.from, to: schema.to }, 'token store migrated');
    gateway = await startGateway(config, {
      logger,
      store,
      metricsSource: isClusterWorker() ? clusterMetricsSource : undefined,
    });
  } catch (err) {
    logger.fatal({ err: errorFields(err) }, 'gateway failed to start');
    logger.flush();
    await store.close().catch(() => {});
    process.exitCode = 1;
    return;
  }
  // Before the line that says the gateway is up: a supervisor (or `tollgate serve`) may send SIGTERM
  // as soon as it reads it, and a signal with no listener yet kills the process at once.
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down: finishing in-flight downloads');
    logger.flush();
    void (async () => {
      await gateway.shutdown();
      await store.close().catch(() => {});
      logger.info('stopped');
      logger.flush();
      process.exit(0);
    })();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  const scheme = config.tls ? 'https' : 'http';
  logger.info(
    {
      proxy: `${scheme}://${config.host}:${gateway.proxyPort}`,
      admin: `http://${config.adminHost}:${gateway.adminPort}`,
      store: store.kind,
      routes: config.routes.map((r) => ({ prefix: r.prefix, ecosystem: r.ecosystem, upstream: r.upstream.kind })),
    },
    'tollgate listening',
  );
  // The destination buffers up to 16 KiB or 200 ms: push this line out now, so an operator (or a
  // supervisor waiting for readiness) sees that the gateway is up without waiting for traffic.
  logger.flush();
}

function isEntryPoint(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return realpathSync(argv1) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) void runGateway();
