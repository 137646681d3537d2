import type { CiRefusalReason, CiRefused } from './verify.js';

/**
 * The token-exchange request and its answers (RFC 8693 §2.1-2.2.2, RFC 6749 §5.1-5.2), as pure
 * functions: the endpoint (`POST /-/tollgate/token-exchange`) reads the body, calls
 * parseExchangeRequest, verifies the subject token and answers with one of the bodies below.
 *
 * Supported: `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, a `subject_token`
 * of type `...:token-type:id_token` or `...:token-type:jwt`, and `requested_token_type` absent or
 * `...:token-type:access_token`. `resource`, `audience` and `scope` are accepted and ignored (the
 * gateway is the only target). Delegation (`actor_token`) is refused. A description never holds
 * a token.
 */

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** Where the gateway answers exchanges, on the proxy port. */
export const TOKEN_EXCHANGE_PATH = '/-/tollgate/token-exchange';
/** Longest request body the endpoint should read: the ID token is at most MAX_ID_TOKEN_LENGTH. */
export const MAX_EXCHANGE_BODY_BYTES = 32 * 1024;

/** RFC 6749 §5.2 and RFC 8693 §2.2.2 error codes, plus the two the endpoint needs for 503 and 429. */
export type ExchangeErrorCode = 'invalid_request' | 'unsupported_grant_type' | 'temporarily_unavailable' | 'slow_down';

export interface ExchangeErrorBody {
  error: ExchangeErrorCode;
  error_description: string;
}

/** An answer to send: status, JSON body, and the headers beyond `Content-Type: application/json`. */
export interface ExchangeAnswer<B> {
  status: number;
  headers: Record<string, string>;
  body: B;
}

export interface ExchangeRequest {
  ok: true;
  subjectToken: string;
  subjectTokenType: typeof ID_TOKEN_TYPE | typeof JWT_TOKEN_TYPE;
}

export type ParsedExchange = ExchangeRequest | ({ ok: false } & ExchangeAnswer<ExchangeErrorBody>);

/** RFC 6749 §5.1: token answers, and errors that follow them, are never cached. */
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' } as const;
const SINGLE = [
  'grant_type',
  'subject_token',
  'subject_token_type',
  'requested_token_type',
  'actor_token',
  'actor_token_type',
] as const;

export function exchangeError(
  error: ExchangeErrorCode,
  description: string,
  status = 400,
  headers: Record<string, string> = {},
): ExchangeAnswer<ExchangeErrorBody> {
  return { status, headers: { ...NO_STORE, ...headers }, body: { error, error_description: description } };
}

function invalid(description: string): { ok: false } & ExchangeAnswer<ExchangeErrorBody> {
  return { ok: false, ...exchangeError('invalid_request', description) };
}

/** The form of a token-exchange request, checked; `contentType` is the request's Content-Type header. */
export function parseExchangeRequest(contentType: string | undefined, body: string): ParsedExchange {
  const mediaType = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (mediaType !== 'application/x-www-form-urlencoded') {
    return invalid('the request body must be application/x-www-form-urlencoded (RFC 8693 section 2.1)');
  }
  if (body.length > MAX_EXCHANGE_BODY_BYTES)
    return invalid(`the request body must be at most ${MAX_EXCHANGE_BODY_BYTES} bytes`);
  const form = new URLSearchParams(body);
  for (const name of SINGLE) {
    if (form.getAll(name).length > 1) return invalid(`${name} must not be repeated`);
  }
  const grantType = form.get('grant_type');
  if (!grantType) return invalid('grant_type is required');
  if (grantType !== TOKEN_EXCHANGE_GRANT) {
    return {
      ok: false,
      ...exchangeError('unsupported_grant_type', `the only grant_type supported is ${TOKEN_EXCHANGE_GRANT}`),
    };
  }
  if (form.has('actor_token') || form.has('actor_token_type'))
    return invalid('delegation (actor_token) is not supported');
  const requested = form.get('requested_token_type');
  if (requested !== null && requested !== ACCESS_TOKEN_TYPE)
    return invalid(`requested_token_type must be ${ACCESS_TOKEN_TYPE} (or absent)`);
  const subjectToken = form.get('subject_token');
  if (!subjectToken) return invalid("subject_token is required: the CI job's OIDC ID token");
  const subjectTokenType = form.get('subject_token_type');
  if (subjectTokenType !== ID_TOKEN_TYPE && subjectTokenType !== JWT_TOKEN_TYPE) {
    return invalid(`subject_token_type must be ${ID_TOKEN_TYPE} or ${JWT_TOKEN_TYPE}`);
  }
  return { ok: true, subjectToken, subjectTokenType };
}

/** What each refusal tells the CI job: the check that failed, never what was expected. */
const REFUSAL_TEXT: Record<string, string> = {
  malformed: 'it is not a signed JWT',
  algorithm: 'its signature algorithm is not allowed (asymmetric algorithms only)',
  issuer: 'its issuer is not trusted by this gateway',
  signature: "its signature does not verify with the issuer's keys",
  audience: 'its audience is not the one this gateway expects',
  expired: 'it has expired',
  'not-yet-valid': 'it is not valid yet (nbf or iat in the future)',
  lifetime: 'its lifetime (exp - iat) is longer than this gateway accepts',
};

/** The description of a refusal reason: `the ID token was refused (<reason>): <why>`. */
export function refusalDescription(reason: CiRefusalReason): string {
  const claim = /^(missing-claim|allow):(.*)$/.exec(reason);
  const why = claim
    ? claim[1] === 'missing-claim'
      ? `it lacks the claim "${claim[2]}"`
      : `its claim "${claim[2]}" does not match the trust policy`
    : (REFUSAL_TEXT[reason] ?? 'it was refused');
  return `the ID token was refused (${reason}): ${why}`;
}

/** A verifier's refusal as an answer: 400 invalid_request (RFC 8693 §2.2.2), or 503 when the issuer's keys are unavailable. */
export function refusalAnswer(refused: Pick<CiRefused, 'reason'>): ExchangeAnswer<ExchangeErrorBody> {
  if (refused.reason === 'unavailable') {
    return exchangeError(
      'temporarily_unavailable',
      "the CI provider's signing keys cannot be fetched: retry later",
      503,
      { 'retry-after': '5' },
    );
  }
  return exchangeError('invalid_request', refusalDescription(refused.reason));
}

/** 429 with Retry-After, for an address or a CI identity over its exchange rate. */
export function rateLimitedAnswer(retryAfterS: number, what: 'address' | 'subject'): ExchangeAnswer<ExchangeErrorBody> {
  const who = what === 'address' ? 'this address' : 'this CI identity';
  return exchangeError('slow_down', `too many token exchanges from ${who}: retry in ${retryAfterS} s`, 429, {
    'retry-after': String(retryAfterS),
  });
}

export interface ExchangeSuccessBody {
  access_token: string;
  issued_token_type: typeof ACCESS_TOKEN_TYPE;
  token_type: 'Bearer';
  /** Seconds until the token expires. */
  expires_in: number;
  [extra: `tollgate_${string}`]: unknown;
}

/**
 * RFC 8693 §2.2.1: the issued token, its type and lifetime, never cached. `extra` adds Tollgate's
 * own fields (`tollgate_type`, `tollgate_name`...), prefixed so they cannot clash with RFC ones.
 */
export function exchangeSuccess(
  token: string,
  expiresAt: number,
  now: number,
  extra: Record<`tollgate_${string}`, unknown> = {},
): ExchangeAnswer<ExchangeSuccessBody> {
  return {
    status: 200,
    headers: { ...NO_STORE },
    body: {
      access_token: token,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: Math.max(0, Math.floor((expiresAt - now) / 1000)),
      ...extra,
    },
  };
}
