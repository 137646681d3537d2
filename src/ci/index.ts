// CI jobs' OIDC identities exchanged for short-lived tokens: verification, the request form and
// its answers, rate limits, the issued token's name, the exchange itself (exchange.ts, through the
// store it is given), the purge of expired issued tokens, and both as a gateway runs them, counted
// and logged (service.ts). No HTTP server here; docs/ci.md is the operator's guide.
export {
  createCiVerifier,
  CI_ALGORITHMS,
  MAX_ID_TOKEN_LENGTH,
  type CiVerifier,
  type CiVerifierOptions,
  type CiVerification,
  type CiVerified,
  type CiRefused,
  type CiRefusalReason,
} from './verify.js';
export {
  parseExchangeRequest,
  refusalAnswer,
  refusalDescription,
  rateLimitedAnswer,
  exchangeSuccess,
  exchangeError,
  TOKEN_EXCHANGE_GRANT,
  TOKEN_EXCHANGE_PATH,
  ID_TOKEN_TYPE,
  JWT_TOKEN_TYPE,
  ACCESS_TOKEN_TYPE,
  MAX_EXCHANGE_BODY_BYTES,
  type ExchangeRequest,
  type ParsedExchange,
  type ExchangeAnswer,
  type ExchangeErrorBody,
  type ExchangeErrorCode,
  type ExchangeSuccessBody,
} from './exchange-form.js';
export { createExchangeRateLimiter, type ExchangeRateLimiter, type ExchangeRateOptions } from './rate.js';
export { ciTokenName, ciIdentity, claimAt, claimText } from './claims.js';
export {
  createTokenExchange,
  ciCreatedBy,
  type TokenExchange,
  type ExchangeOutcome,
  type ExchangeOutcomeKind,
  type ExchangeInput,
  type ExchangeResult,
} from './exchange.js';
export { startCiPurge, type CiPurge, type CiPurgeOptions } from './purge.js';
export { createCiExchange, type CiExchangeService } from './service.js';
