import type { Logger } from '../logging/logger.js';
import type { Metrics } from '../metrics/registry.js';
import type { LeakReporter } from '../tokens/leaks.js';
import type { TokenRecord } from '../tokens/store.js';
import type { ActivityRecorder } from './recorder.js';

/**
 * The alert for tokens a leak report revoked (tokens/leaks.ts revokes them): each one counted
 * (`tollgate_tokens_leaked_total`, by reporter), logged without its value, and written as a
 * `leaked` event to the Production activity sinks, whatever the token's type.
 */
export function createLeakAlert(recorder: ActivityRecorder, metrics: Metrics, logger: Logger) {
  return function alertLeaked(revoked: readonly TokenRecord[], reporter: LeakReporter): void {
    const reporterLabel = reporter.source === 'github' ? 'github' : 'admin';
    for (const record of revoked) {
      metrics.tokensLeaked.labels(reporterLabel, record.type).inc();
      logger.warn(
        {
          event: 'token.leaked',
          tokenId: record.id,
          tokenType: record.type,
          source: record.leak?.source,
          url: record.leak?.url,
        },
        'leaked token revoked',
      );
      recorder.recordLeak({
        tokenId: record.id,
        tokenName: record.name,
        tokenType: record.type,
        clientIp: reporter.clientIp ?? '',
        at: record.revokedAt ?? Date.now(),
        leak: record.leak ?? { source: reporter.source, url: null, location: null },
      });
    }
  };
}
