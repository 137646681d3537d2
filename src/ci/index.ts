// CI jobs' OIDC identities exchanged for short-lived tokens: what the exchange endpoint builds on
// (verification, the request form and its answers, rate limits, the issued token's name). No
// store and no HTTP server here; docs/ci.md is the operator's guide.
export {
  createCiVerifier, CI_ALGORITHMS, MAX_ID_TOKEN_LENGTH,
  type CiVerifier, type CiVerifierOptions, type CiVerification, type CiVerified, type CiRefused, type CiRefusalReason,
} from './verify.js';
export {
  parseExchangeRequest, refusalAnswer, refusalDescription, rateLimitedAnswer, exchangeSuccess, exchangeError,
  TOKEN_EXCHANGE_GRANT, TOKEN_EXCHANGE_PATH, ID_TOKEN_TYPE, JWT_TOKEN_TYPE, ACCESS_TOKEN_TYPE, MAX_EXCHANGE_BODY_BYTES,
  type ExchangeRequest, type ParsedExchange, type ExchangeAnswer, type ExchangeErrorBody, type ExchangeErrorCode, type ExchangeSuccessBody,
} from './exchange-form.js';
export { createExchangeRateLimiter, type ExchangeRateLimiter, type ExchangeRateOptions } from './rate.js';
export { ciTokenName, ciIdentity, claimAt, claimText } from './claims.js';
