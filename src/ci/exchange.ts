import { isGatewayError } from '../errors.js';
import { generateToken, generateTokenId, hashToken, type TokenType } from '../tokens/format.js';
import { MAX_NAME_LENGTH } from '../tokens/names.js';
import type { CiIdentity, TokenRecord, TokenStore } from '../tokens/store.js';
import { ciTokenName } from './claims.js';
import {
  exchangeError,
  exchangeSuccess,
  parseExchangeRequest,
  rateLimitedAnswer,
  refusalAnswer,
  type ExchangeAnswer,
  type ExchangeErrorBody,
  type ExchangeSuccessBody,
} from './exchange-form.js';
import type { ExchangeRateLimiter } from './rate.js';
import type { CiRefusalReason, CiVerifier } from './verify.js';

/**
 * One token exchange, from the request's body to the answer: what `POST /-/tollgate/token-exchange`
 * does, without HTTP. In order, each step cheaper than the next: the address's rate (before the
 * ID token is looked at), the form, the ID token (verify.ts: signature, claims, trust policy), the
 * CI identity's rate, the replay claim (one exchange per ID token, in the store so every instance
 * agrees), then an ordinary token is inserted: hashed, typed by the policy, named after the job,
 * expiring after the policy's tokenTtl, carrying the job's CI identity and the policy's
 * restrictions. The request path never sees a JWT again.
 *
 * The ID token and the issued token are in the answer's body only (the issued one) and nowhere
 * else: the outcome handed to onExchange (metrics, the log line) holds neither.
 */

/** Bounded: the metric's `outcome` label. */
export type ExchangeOutcomeKind =
  'issued' | 'invalid_request' | 'refused' | 'replayed' | 'rate_limited' | 'unavailable' | 'error';

export interface ExchangeOutcome {
  outcome: ExchangeOutcomeKind;
  /** The policy that accepted the ID token; undefined before one did. */
  provider: string | undefined;
  /** The verified type; undefined before verification. */
  type: TokenType | undefined;
  /** Why the ID token was refused (verify.ts reasons), or which limit answered 429. */
  reason: CiRefusalReason | 'address' | 'subject' | 'replayed' | 'store' | undefined;
  identity: CiIdentity | undefined;
  /** The issued token's record (its hash, never the token). */
  record: TokenRecord | undefined;
  clientIp: string;
  /** For the operator's log: which issuer was unreachable, what the store said. Never a token. */
  detail: string | undefined;
}

export type ExchangeResult = {
  answer: ExchangeAnswer<ExchangeSuccessBody | ExchangeErrorBody>;
  outcome: ExchangeOutcome;
};

export interface TokenExchangeOptions {
  store: Pick<TokenStore, 'claimOnce' | 'insert'>;
  verifier: CiVerifier;
  rate: ExchangeRateLimiter;
}

export interface ExchangeInput {
  contentType: string | undefined;
  body: string;
  clientIp: string;
}

export type TokenExchange = (input: ExchangeInput, now?: number) => Promise<ExchangeResult>;

/** Names tried when a job's name is held by another live token (the same run exchanging again): `<name> (2)`... */
const NAME_ATTEMPTS = 20;

/** The creator recorded on an issued token: `ci:<policy>`. */
export const ciCreatedBy = (provider: string): string => `ci:${provider}`;

export function createTokenExchange(options: TokenExchangeOptions): TokenExchange {
  const { store, verifier, rate } = options;

  return async function exchangeIdToken(input, now = Date.now()) {
    const outcome: ExchangeOutcome = {
      outcome: 'invalid_request',
      provider: undefined,
      type: undefined,
      reason: undefined,
      identity: undefined,
      record: undefined,
      clientIp: input.clientIp,
      detail: undefined,
    };
    const done = (kind: ExchangeOutcomeKind, answer: ExchangeResult['answer']): ExchangeResult => {
      outcome.outcome = kind;
      return { answer, outcome };
    };

    const addressWait = rate.takeAddress(input.clientIp, now);
    if (addressWait > 0) {
      outcome.reason = 'address';
      return done('rate_limited', rateLimitedAnswer(addressWait, 'address'));
    }
    const parsed = parseExchangeRequest(input.contentType, input.body);
    if (!parsed.ok) return done('invalid_request', parsed);

    const verified = await verifier.verify(parsed.subjectToken, now);
    if (!verified.ok) {
      outcome.reason = verified.reason;
      outcome.detail = verified.detail;
      return done(verified.reason === 'unavailable' ? 'unavailable' : 'refused', refusalAnswer(verified));
    }
    Object.assign(outcome, { provider: verified.provider, type: verified.type, identity: verified.identity });

    const subjectWait = rate.takeSubject(verified.provider, verified.identity.subject, now);
    if (subjectWait > 0) {
      outcome.reason = 'subject';
      return done('rate_limited', rateLimitedAnswer(subjectWait, 'subject'));
    }

    try {
      if (!(await store.claimOnce(verified.replayKey, verified.replayUntil, now))) {
        outcome.reason = 'replayed';
        return done(
          'replayed',
          exchangeError(
            'invalid_request',
            'the ID token was refused (replayed): it has been exchanged already; request a new ID token for each exchange',
          ),
        );
      }
      const token = generateToken(verified.type);
      const expiresAt = now + verified.tokenTtlMs;
      outcome.record = await insertNamed(store, ciTokenName(verified.identity), {
        id: generateTokenId(),
        type: verified.type,
        hash: hashToken(token),
        createdAt: now,
        createdBy: ciCreatedBy(verified.provider),
        expiresAt,
        restrictions: verified.restrictions,
        ci: verified.identity,
      });
      return done(
        'issued',
        exchangeSuccess(token, expiresAt, now, {
          tollgate_id: outcome.record.id,
          tollgate_name: outcome.record.name,
          tollgate_type: verified.type,
          tollgate_provider: verified.provider,
          tollgate_project: verified.project ?? null,
          tollgate_expires_at: new Date(expiresAt).toISOString(),
        }),
      );
    } catch (err) {
      if (!isGatewayError(err) || err.code !== 'TOLLGATE_ERR_STORE') throw err;
      outcome.reason = 'store';
      outcome.detail = err.message;
      return done(
        'error',
        exchangeError('temporarily_unavailable', 'the token store is unavailable: retry later', 503, {
          'retry-after': '5',
        }),
      );
    }
  };
}

/**
 * `name`, else `name (2)`, `name (3)`... while a live token holds it (the same job exchanging
 * again); past NAME_ATTEMPTS, `name (<token id>)`, which no other token can hold.
 */
async function insertNamed(
  store: Pick<TokenStore, 'insert'>,
  name: string,
  record: Omit<Parameters<TokenStore['insert']>[0], 'name'>,
): Promise<TokenRecord> {
  for (let attempt = 1; ; attempt++) {
    const suffix = attempt === 1 ? '' : ` (${attempt > NAME_ATTEMPTS ? record.id : attempt})`;
    const candidate = `${name.slice(0, MAX_NAME_LENGTH - suffix.length)}${suffix}`;
    try {
      return await store.insert({ ...record, name: candidate });
    } catch (err) {
      if (!isGatewayError(err) || err.code !== 'TOLLGATE_ERR_TOKEN_NAME_TAKEN' || attempt > NAME_ATTEMPTS) throw err;
    }
  }
}
