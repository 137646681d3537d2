import { createHash } from 'node:crypto';
import {
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { CiExchangeConfig, CiProviderConfig } from '../config/index.js';
import type { TokenType } from '../tokens/format.js';
import type { TokenRestrictions } from '../tokens/restrictions.js';
import type { CiIdentity } from '../tokens/store.js';
import { ciIdentity, claimText, compileRules, firstMismatch, type Claims, type ClaimRules } from './claims.js';
import { createKeySource, KeysUnavailable } from './keys.js';
import { ASYMMETRIC_JWS_ALGORITHMS } from '../auth/jws-algorithms.js';

/**
 * A CI job's OIDC ID token, checked against the trust policies (`ciProviders`): the signature
 * (asymmetric algorithms only, keys from the issuer), `iss`, `aud`, `exp`, `iat`, `nbf` and `sub`,
 * the longest lifetime, then the policies of that issuer in order: the first whose `allow` all
 * match accepts, and its `production` rules type the token. No store, no HTTP server: the
 * exchange endpoint calls this, then issues and records the token.
 *
 * A refusal names the check that failed, never the expected value and never the token.
 */

/** Why an ID token was refused; `unavailable` when the issuer's keys cannot be fetched (answer 503, retry). */
export type CiRefusalReason =
  | 'malformed'
  | 'algorithm'
  | 'issuer'
  | 'signature'
  | 'audience'
  | 'expired'
  | 'not-yet-valid'
  | 'lifetime'
  | `missing-claim:${string}`
  | `allow:${string}`
  | 'unavailable';

export interface CiVerified {
  ok: true;
  /** The policy (ciProviders[].name) that accepted the token. */
  provider: string;
  /** Production when the policy's `production` rules all match, else Development. */
  type: TokenType;
  /** The value of the policy's `project` claim; undefined when the policy names none. */
  project: string | undefined;
  /** Who the job is, for the issued token's record and events. */
  identity: CiIdentity;
  /** The policy's restrictions for the issued token (null: none). */
  restrictions: TokenRestrictions | null;
  /** Lifetime of the issued token. */
  tokenTtlMs: number;
  /** One exchange per ID token: `jti:<sha256 of iss and jti>`, or `sha256:<sha256 of the token>` without a jti. Hex, fixed length. */
  replayKey: string;
  /** Until when the replay key must be remembered (epoch ms): the ID token's `exp` plus the clock skew. */
  replayUntil: number;
}

export interface CiRefused {
  ok: false;
  reason: CiRefusalReason;
  /** For the operator's log when the reason is `unavailable` (which issuer, what failed); never a token. */
  detail?: string;
}

export type CiVerification = CiVerified | CiRefused;

export interface CiVerifier {
  /** `now` is epoch ms (default Date.now()). Never throws: every failure is a CiRefused. */
  verify(idToken: string, now?: number): Promise<CiVerification>;
}

export interface CiVerifierOptions extends Pick<CiExchangeConfig, 'maxIdTokenLifetimeMs' | 'clockSkewMs'> {
  /** One fetch of a discovery document or key set. Default 5000 ms. */
  fetchTimeoutMs?: number;
  /** Least time between key-set refetches for an unknown `kid`. Default 5000 ms. */
  keyRefetchCooldownMs?: number;
}

/** Signature algorithms accepted: asymmetric only (auth/jws-algorithms.ts). */
export const CI_ALGORITHMS = ASYMMETRIC_JWS_ALGORITHMS;
const ALGORITHMS: ReadonlySet<string> = new Set(CI_ALGORITHMS);
/** Far above any CI provider's ID token (1 to 2 KB); a longer subject is not parsed at all. */
export const MAX_ID_TOKEN_LENGTH = 16 * 1024;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

interface Policy {
  config: CiProviderConfig;
  allow: ClaimRules;
  production: ClaimRules;
}

interface Issuer {
  name: string;
  keys: JWTVerifyGetKey;
  policies: Policy[];
}

const refuse = (reason: CiRefusalReason, detail?: string): CiRefused =>
  detail === undefined ? { ok: false, reason } : { ok: false, reason, detail };

export function createCiVerifier(providers: readonly CiProviderConfig[], options: CiVerifierOptions): CiVerifier {
  const skewS = Math.floor(options.clockSkewMs / 1000);
  const maxLifetimeS = Math.floor(options.maxIdTokenLifetimeMs / 1000);
  const keyOptions = {
    timeoutMs: options.fetchTimeoutMs ?? 5000,
    refetchCooldownMs: options.keyRefetchCooldownMs ?? 5000,
  };
  const issuers = new Map<string, Issuer>();
  for (const config of providers) {
    let issuer = issuers.get(config.issuer);
    if (!issuer) {
      issuer = { name: config.issuer, keys: createKeySource(config.issuer, config.jwksUrl, keyOptions), policies: [] };
      issuers.set(config.issuer, issuer);
    }
    issuer.policies.push({ config, allow: compileRules(config.allow), production: compileRules(config.production) });
  }

  async function verifyCiIdToken(idToken: string, now = Date.now()): Promise<CiVerification> {
    if (typeof idToken !== 'string' || idToken.length > MAX_ID_TOKEN_LENGTH || !JWT_SHAPE.test(idToken))
      return refuse('malformed');
    let alg: unknown;
    let unverified: JWTPayload;
    try {
      alg = decodeProtectedHeader(idToken).alg;
      unverified = decodeJwt(idToken);
    } catch {
      return refuse('malformed');
    }
    if (typeof alg !== 'string' || !ALGORITHMS.has(alg)) return refuse('algorithm');
    if (unverified.iss === undefined) return refuse('missing-claim:iss');
    const issuer = typeof unverified.iss === 'string' ? issuers.get(unverified.iss) : undefined;
    if (!issuer) return refuse('issuer');

    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(idToken, issuer.keys, {
        issuer: issuer.name,
        algorithms: [...ALGORITHMS],
        requiredClaims: ['exp', 'iat', 'sub'],
        currentDate: new Date(now),
        clockTolerance: skewS,
      }));
    } catch (err) {
      return joseRefusal(err);
    }
    if (typeof claims.sub !== 'string' || claims.sub === '') return refuse('missing-claim:sub');
    const nowS = Math.floor(now / 1000);
    if (claims.iat! > nowS + skewS) return refuse('not-yet-valid');
    if (claims.exp! - claims.iat! > maxLifetimeS) return refuse('lifetime');

    return accept(issuer, claims as Claims & { sub: string; exp: number }, idToken, skewS);
  }

  return { verify: verifyCiIdToken };
}

/** The first policy of the issuer whose audience and `allow` match; else why the closest one refused. */
function accept(
  issuer: Issuer,
  claims: Claims & { sub: string; exp: number },
  idToken: string,
  skewS: number,
): CiVerification {
  const aud = claims.aud;
  if (aud === undefined) return refuse('missing-claim:aud');
  const audiences = Array.isArray(aud) ? aud : [aud];
  let refusal: CiRefused | undefined;
  for (const { config, allow, production } of issuer.policies) {
    if (!audiences.includes(config.audience)) continue;
    const mismatch = firstMismatch(claims, allow);
    if (mismatch !== undefined) {
      refusal ??= refuse(`allow:${mismatch}`);
      continue;
    }
    const project = config.project === undefined ? undefined : claimText(claims, config.project);
    if (config.project !== undefined && (project === undefined || project === ''))
      return refuse(`missing-claim:${config.project}`);
    const jti = typeof claims.jti === 'string' && claims.jti !== '' ? claims.jti : undefined;
    return {
      ok: true,
      provider: config.name,
      type: production.length > 0 && firstMismatch(claims, production) === undefined ? 'production' : 'development',
      project,
      identity: ciIdentity(config, claims, claims.sub, project),
      restrictions: config.restrictions,
      tokenTtlMs: config.tokenTtlMs,
      replayKey: jti === undefined ? `sha256:${sha256(idToken)}` : `jti:${sha256(`${issuer.name}\n${jti}`)}`,
      replayUntil: (claims.exp + skewS) * 1000,
    };
  }
  return refusal ?? refuse('audience');
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** jose's error → the check that failed. */
function joseRefusal(err: unknown): CiRefused {
  if (err instanceof KeysUnavailable) return refuse('unavailable', err.message);
  if (err instanceof joseErrors.JWTExpired) return refuse('expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return refuse(`missing-claim:${err.claim}`);
    if (err.claim === 'nbf') return refuse('not-yet-valid');
    if (err.claim === 'iss') return refuse('issuer');
    return refuse('malformed'); // a time claim that is not a number
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return refuse('algorithm');
  if (
    err instanceof joseErrors.JWSSignatureVerificationFailed ||
    err instanceof joseErrors.JWKSNoMatchingKey ||
    err instanceof joseErrors.JWKSMultipleMatchingKeys
  )
    return refuse('signature');
  return refuse('malformed');
}
