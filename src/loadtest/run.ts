import { performance } from 'node:perf_hooks';
import type { Instance } from 'autocannon';
import { DEFAULT_TIMEOUT_S } from './options.js';
import { createRunStats, type RunStats, type Second } from './stats.js';
import type { TokenMix } from './tokens.js';

export interface LoadOptions {
  /** Full URL of the artifact (target origin and path). */
  url: URL;
  connections: number;
  durationS: number;
  rate: number | undefined;
  mix: TokenMix;
  /** Stops the run early (SIGINT, cold tokens exhausted). */
  signal: AbortSignal;
  /** Each second, with the second just closed and the stats so far. */
  onSecond?: (second: Second, stats: RunStats) => void;
  /** When the first requests go out (performance.now() clock). */
  onStart?: (startedAt: number) => void;
  /** Every answer with its request's send time (performance.now() clock): for the revocation measurement. */
  onAnswer?: (status: number, sentAt: number) => void;
  /** Once the load runs, ms after its start: for the revocation halfway. */
  at?: { ms: number; run: () => void };
}

export interface LoadResult {
  stats: RunStats;
  /** From the first request to the end, seconds. */
  elapsedS: number;
  /** CPU time of this process over the run, as a share of one core (the load generator's own load). */
  generatorCpuShare: number;
}

/**
 * One autocannon run (autocannon is loaded here, when a load test runs: the rest of Tollgate
 * never needs it). Every request takes its Authorization header from the token mix; every
 * response, error and timeout is counted by `stats.ts` from the clients' own events.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { default: autocannon } = await import('autocannon');
  const stats = createRunStats();
  const host = options.url.host;
  const cpuBefore = process.cpuUsage();
  const onAnswer = options.onAnswer;
  const startedAt = performance.now();
  options.onStart?.(startedAt);
  let tickTimer: NodeJS.Timeout | undefined;
  let atTimer: NodeJS.Timeout | undefined;

  let instance: Instance | undefined;
  const stop = () => instance?.stop();
  try {
    await new Promise<void>((resolve, reject) => {
      instance = autocannon(
        {
          url: options.url.href,
          connections: options.connections,
          duration: options.durationS,
          ...(options.rate ? { overallRate: options.rate } : {}),
          timeout: DEFAULT_TIMEOUT_S,
          pipelining: 1,
          // The Host a client would send (autocannon writes hostname:port, even for port 80 or 443).
          headers: { host },
          requests: [
            {
              method: 'GET',
              setupRequest: function withToken(req) {
                req.headers.authorization = options.mix.next();
                return req;
              },
            },
          ],
          setupClient: function countClient(client) {
            client.on('response', (status, bytes, responseTime) => {
              stats.onResponse(status, bytes, responseTime);
              onAnswer?.(status, performance.now() - responseTime);
            });
            client.on('timeout', () => stats.onError('timeouts'));
            client.on('connError', () => stats.onError('errors'));
          },
        },
        (err) => (err ? reject(err) : resolve()),
      );
      if (options.signal.aborted) stop();
      options.signal.addEventListener('abort', stop, { once: true });
      tickTimer = setInterval(() => {
        const second = stats.tick(secondsSince(startedAt));
        options.onSecond?.(second, stats);
      }, 1000);
      if (options.at) atTimer = setTimeout(options.at.run, options.at.ms);
    });
  } finally {
    options.signal.removeEventListener('abort', stop);
    clearInterval(tickTimer);
    clearTimeout(atTimer);
  }

  const elapsedMs = performance.now() - startedAt;
  // What came after the last whole second.
  if (stats.secondPending()) stats.tick(secondsSince(startedAt));
  const cpu = process.cpuUsage(cpuBefore);
  return { stats, elapsedS: elapsedMs / 1000, generatorCpuShare: (cpu.user + cpu.system) / 1000 / elapsedMs };
}

/** Seconds since `start` (performance.now() clock), to a tenth. */
function secondsSince(start: number): number {
  return Math.round((performance.now() - start) / 100) / 10;
}
