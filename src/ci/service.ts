import type { Config } from '../config/index.js';
import { errorFields } from '../logging/error-fields.js';
import type { Logger } from '../logging/logger.js';
import type { Metrics } from '../metrics/registry.js';
import type { TokenRecord, TokenStore } from '../tokens/store.js';
import { createTokenExchange, type ExchangeOutcome, type TokenExchange } from './exchange.js';
import { startCiPurge, type CiPurge } from './purge.js';
import { createExchangeRateLimiter } from './rate.js';
import { createCiVerifier } from './verify.js';

/** The CI exchange as a gateway runs it: what the proxy's token-exchange endpoint takes, and the purge. */
export interface CiExchangeService {
  exchange: TokenExchange;
  /** Counts and logs one exchange's outcome (the endpoint calls it after every exchange). */
  onExchange: (outcome: ExchangeOutcome) => void;
  purge: CiPurge;
}

/**
 * The CI token exchange (exchange.ts, served by proxy/own/token-exchange.ts): each exchange
 * counted (`tollgate_ci_exchanges_total`) and logged without a token; the issued token is an
 * ordinary record, so the admin audit list shows it as created by `ci:<policy>`. And the purge of
 * expired issued tokens, started here, logged per token (the log keeps the record the store no
 * longer holds).
 */
export function createCiExchange(
  config: Pick<Config, 'ciProviders' | 'ciExchange'>,
  deps: { store: TokenStore; metrics: Metrics; logger: Logger },
): CiExchangeService {
  const { store, metrics, logger } = deps;
  const exchange = createTokenExchange({
    store,
    verifier: createCiVerifier(config.ciProviders, config.ciExchange),
    rate: createExchangeRateLimiter(config.ciExchange),
  });
  /** A token's and a CI identity's fields in a log line (never the token itself). */
  const tokenFields = (r: TokenRecord | undefined) => ({ tokenId: r?.id, tokenName: r?.name, tokenType: r?.type });
  const onExchange = (o: ExchangeOutcome): void => {
    metrics.ciExchanges.labels(o.provider ?? 'none', o.outcome, o.record ? o.record.type : 'none').inc();
    const { subject, repository, ref, runId } = o.identity ?? {};
    const fields = {
      event: 'ci.exchange',
      outcome: o.outcome,
      reason: o.reason,
      detail: o.detail,
      provider: o.provider,
    };
    const line = { ...fields, clientIp: o.clientIp, subject, repository, ref, runId, ...tokenFields(o.record) };
    if (o.outcome === 'unavailable' || o.outcome === 'error') logger.warn(line, 'CI token exchange failed');
    else logger.info(line, o.outcome === 'issued' ? 'CI token issued' : 'CI token exchange refused');
  };
  const purge = startCiPurge({
    store,
    graceMs: config.ciExchange.purgeGraceMs,
    intervalMs: config.ciExchange.purgeIntervalMs,
    onPurged: (records) => {
      metrics.ciTokensPurged.inc(records.length);
      for (const r of records) {
        const { provider, subject, repository } = r.ci ?? {};
        const job = { provider, subject, repository, createdBy: r.createdBy, expiresAt: r.expiresAt };
        logger.info({ event: 'ci.token_purged', ...tokenFields(r), ...job }, 'expired CI token purged');
      }
    },
    onError: (err) => logger.warn({ err: errorFields(err) }, 'CI token purge failed; retried at the next interval'),
  });
  return { exchange, onExchange, purge };
}
