import { createHash, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createRemoteJWKSet, jwtVerify, SignJWT, errors as joseErrors, type JWTPayload } from 'jose';
import proxyAddr from 'proxy-addr';
import type { Config, OidcConfig } from '../config/index.js';
import type { Logger } from '../logging/logger.js';
import type { ChangeFeed } from '../tokens/change-feed.js';
import type { AdminRecords } from '../tokens/store.js';
import { loadAdminCredential, type AdminCredential } from './credential.js';
import { createAdminSessionState } from './sessions.js';
import { createSignInLimit, type SignInLimit } from './sign-in-limit.js';
import { createError, type GatewayError } from '../errors.js';
import { ASYMMETRIC_JWS_ALGORITHMS } from '../auth/jws-algorithms.js';

/**
 * Who may use the admin API, and how a browser stays signed in.
 *
 * - Admin token: `Authorization: Bearer <admin token>` on any request, or `{"token": ...}` posted
 *   to /api/v1/session. Compared in constant time (SHA-256 of both sides, then timingSafeEqual).
 *   The identity is `admin`.
 * - OIDC: `Authorization: Bearer <JWT>` verified with jose against the configured JWKS: signature
 *   (asymmetric algorithms only), `iss`, `aud`, `exp`, and the admin claim. The identity is the
 *   JWT's `email`, else its `sub`.
 * - Browser session: a JWT (HS256) in an HttpOnly, SameSite=Strict, Path=/ cookie (Secure and
 *   `__Host-` prefixed when TOLLGATE_PUBLIC_ADMIN_URL is https), valid for the session TTL, no
 *   renewal. Its key is derived from the admin token with HKDF, so rotating the admin token signs
 *   everyone out. It carries a random per-session CSRF token that state-changing requests must
 *   echo in X-CSRF-Token. Signing out, and an instance starting with another admin token, end
 *   sessions on every worker and instance sharing the token store (sessions.ts).
 * - Failed admin credentials are limited per client address (sign-in-limit.ts); the address is
 *   the socket's, or a trusted proxy's X-Forwarded-For (TOLLGATE_TRUSTED_PROXIES).
 */

export type SignInMethod = 'token' | 'oidc';

export interface AdminPrincipal {
  /** The admin identity recorded as createdBy / revokedBy. */
  identity: string;
  via: SignInMethod;
  /** Set when the request was authenticated by the session cookie. */
  session?: Session;
}

/** The admin API's Hono environment: requireAdmin sets `admin`. */
export type AdminEnv = { Variables: { admin: AdminPrincipal } };

export interface Session {
  identity: string;
  via: SignInMethod;
  /** Per-session CSRF token (also inside the signed cookie). */
  csrf: string;
  /** Session id (JWT jti). */
  id: string;
  /** Epoch ms. */
  expiresAt: number;
  /** Epoch ms. */
  issuedAt: number;
}

export interface AdminAuth {
  /** `__Host-tollgate_session` behind TLS, else `tollgate_session`. */
  readonly cookieName: string;
  /** True when TOLLGATE_PUBLIC_ADMIN_URL is an https origin. */
  readonly secureCookies: boolean;
  /** The origin browsers use (TOLLGATE_PUBLIC_ADMIN_URL), if configured. */
  readonly publicOrigin: string | undefined;
  readonly sessionTtlMs: number;
  readonly oidcEnabled: boolean;
  /** Where the admin token came from (never the token). */
  readonly credentialSource: AdminCredential['source'];
  /** Constant-time comparison with the admin token. */
  isAdminToken(candidate: string): boolean;
  /** The value of an `Authorization: Bearer` header: the admin token or an OIDC JWT. Throws a GatewayError. */
  verifyBearer(credential: string): Promise<AdminPrincipal>;
  issueSession(principal: Pick<AdminPrincipal, 'identity' | 'via'>): Promise<{ cookie: string; session: Session }>;
  /**
   * undefined for anything but a valid, unexpired session that was neither signed out nor issued
   * before the admin credential last changed. Throws TOLLGATE_ERR_STORE when the store cannot say.
   */
  verifySession(cookie: string): Promise<Session | undefined>;
  /** Signs the session out on every worker and instance sharing the token store. */
  endSession(session: Session): Promise<void>;
  /** Constant-time comparison of a request's CSRF header with the session's token. */
  checkCsrf(session: Session, header: string | undefined): boolean;
  /** The client address failed credentials count against (undefined: no socket, nothing counted). */
  clientAddress(incoming: IncomingMessage | undefined): string | undefined;
  /** Seconds before this address may present an admin credential again (0: now). */
  signInRetryAfter(address: string | undefined): Promise<number>;
  /** Counts a failed admin credential from the address. */
  signInFailed(address: string | undefined): void;
  close(): void;
}

export interface AdminAuthDeps {
  logger: Logger;
  /** Where signed-out sessions and the admin credential record are kept (the token store). */
  store: AdminRecords;
  /** The process's change feed over that store (the token cache's): answers are then cached. */
  changes?: ChangeFeed;
  /** Clock (epoch ms); tests move it. Default Date.now. */
  now?: () => number;
}

const SESSION_ISSUER = 'tollgate-admin';
const SESSION_AUDIENCE = 'tollgate-admin-session';
const OIDC_ALGORITHMS = [...ASYMMETRIC_JWS_ALGORITHMS];
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

type AdminAuthConfig = Pick<Config, 'admin' | 'dataDir' | 'redis' | 'trustedProxies' | 'cacheTtlMs'>;

/**
 * Loads (or generates) the admin token, records it in the token store (voiding older sessions
 * everywhere if it changed) and builds the verifiers.
 */
export async function createAdminAuth(config: AdminAuthConfig, deps: AdminAuthDeps): Promise<AdminAuth> {
  const credential = await loadAdminCredential(config.admin, config.dataDir, deps.logger);
  const signInLimit = await createSignInLimit(config);
  try {
    const auth = createAdminAuthFromCredential(config, credential, signInLimit, deps);
    await auth.ready;
    return auth;
  } catch (err) {
    signInLimit.stop();
    throw err;
  }
}

function createAdminAuthFromCredential(
  config: AdminAuthConfig,
  credential: AdminCredential,
  signInLimit: SignInLimit,
  deps: AdminAuthDeps,
): AdminAuth & { ready: Promise<void> } {
  const { admin } = config;
  const now = deps.now ?? Date.now;
  const adminDigest = sha256(credential.token);
  const sessionKey = new Uint8Array(
    hkdfSync('sha256', credential.token, 'tollgate-admin-session', 'session-key-v1', 32),
  );
  const secureCookies = admin.publicUrl?.startsWith('https:') ?? false;
  const verifyOidc = admin.oidc ? createOidcVerifier(admin.oidc, now) : undefined;
  const sessions = createAdminSessionState({
    store: deps.store,
    feed: deps.changes,
    cacheTtlMs: config.cacheTtlMs,
    logger: deps.logger,
    now,
  });
  const ready = sessions.registerCredential(credential.token).catch((err: unknown) => {
    sessions.close();
    throw err;
  });
  const trust = proxyAddr.compile(config.trustedProxies);

  function isAdminToken(candidate: string): boolean {
    return timingSafeEqual(sha256(candidate), adminDigest);
  }

  return {
    ready,
    cookieName: secureCookies ? '__Host-tollgate_session' : 'tollgate_session',
    secureCookies,
    publicOrigin: admin.publicUrl,
    sessionTtlMs: admin.sessionTtlMs,
    oidcEnabled: verifyOidc !== undefined,
    credentialSource: credential.source,
    isAdminToken,

    verifyBearer: async function verifyBearer(value) {
      if (isAdminToken(value)) return { identity: 'admin', via: 'token' };
      if (!JWT_SHAPE.test(value)) throw createError('TOLLGATE_ERR_ADMIN_CREDENTIAL');
      if (!verifyOidc)
        throw createError('TOLLGATE_ERR_ADMIN_CREDENTIAL', 'OIDC sign-in is not configured on this gateway');
      return verifyOidc(value);
    },

    issueSession: async function issueSession(principal) {
      const issuedAt = now();
      const session: Session = {
        identity: principal.identity,
        via: principal.via,
        csrf: randomBytes(32).toString('base64url'),
        id: randomBytes(16).toString('base64url'),
        // JWT times are whole seconds: round down so the cookie never outlives the JWT.
        expiresAt: Math.floor((issuedAt + admin.sessionTtlMs) / 1000) * 1000,
        issuedAt,
      };
      // iatMs: the issue time to the millisecond, compared with when the admin credential changed.
      const cookie = await new SignJWT({ via: session.via, csrf: session.csrf, iatMs: issuedAt })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(session.identity)
        .setIssuer(SESSION_ISSUER)
        .setAudience(SESSION_AUDIENCE)
        .setJti(session.id)
        .setIssuedAt(Math.floor(issuedAt / 1000))
        .setExpirationTime(session.expiresAt / 1000)
        .sign(sessionKey);
      return { cookie, session };
    },

    verifySession: async function verifySession(cookie) {
      if (!JWT_SHAPE.test(cookie)) return undefined;
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(cookie, sessionKey, {
          algorithms: ['HS256'],
          issuer: SESSION_ISSUER,
          audience: SESSION_AUDIENCE,
          requiredClaims: ['sub', 'jti', 'exp', 'iat'],
          currentDate: new Date(now()),
          clockTolerance: 0,
        }));
      } catch {
        return undefined;
      }
      const { sub, jti, exp, iat, iatMs, via, csrf } = payload;
      if (
        typeof sub !== 'string' ||
        typeof jti !== 'string' ||
        typeof exp !== 'number' ||
        typeof iat !== 'number' ||
        typeof csrf !== 'string' ||
        (via !== 'token' && via !== 'oidc')
      )
        return undefined;
      // Cookies of the previous version carry iat (seconds) only.
      const issuedAt = typeof iatMs === 'number' ? iatMs : iat * 1000;
      if (!(await sessions.isLive(jti, issuedAt))) return undefined;
      return { identity: sub, via, csrf, id: jti, expiresAt: exp * 1000, issuedAt };
    },

    endSession: function endSession(session) {
      return sessions.end(session.id, session.expiresAt);
    },

    checkCsrf: function checkCsrf(session, header) {
      if (!header) return false;
      return timingSafeEqual(sha256(header), sha256(session.csrf));
    },

    clientAddress: function clientAddress(incoming) {
      if (!incoming?.socket?.remoteAddress) return undefined;
      return proxyAddr(incoming, trust);
    },

    signInRetryAfter: async (address) => (address === undefined ? 0 : signInLimit.retryAfter(address)),
    signInFailed: (address) => {
      if (address !== undefined) signInLimit.fail(address);
    },

    close() {
      sessions.close();
      signInLimit.stop();
    },
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** jose-verified OIDC bearer → admin principal, or a GatewayError that says why (never the token). */
function createOidcVerifier(oidc: OidcConfig, now: () => number): (jwt: string) => Promise<AdminPrincipal> {
  const jwks = createRemoteJWKSet(new URL(oidc.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 });
  const { name: claimName, value: claimValue } = oidc.adminClaim;

  return async function verifyOidcBearer(jwt) {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(jwt, jwks, {
        issuer: oidc.issuer,
        audience: oidc.audience,
        algorithms: OIDC_ALGORITHMS,
        requiredClaims: ['exp'],
        currentDate: new Date(now()),
        clockTolerance: 30,
      }));
    } catch (err) {
      throw oidcError(err);
    }
    if (!hasAdminClaim(payload, claimName, claimValue)) {
      throw createError('TOLLGATE_ERR_ADMIN_FORBIDDEN', `the token lacks the admin claim ${claimName}=${claimValue}`);
    }
    const identity =
      typeof payload.email === 'string' && payload.email !== ''
        ? payload.email
        : typeof payload.sub === 'string' && payload.sub !== ''
          ? payload.sub
          : undefined;
    if (!identity) throw createError('TOLLGATE_ERR_ADMIN_CREDENTIAL', 'the token has neither email nor sub');
    return { identity, via: 'oidc' };
  };
}

function oidcError(err: unknown): GatewayError {
  if (err instanceof joseErrors.JWTExpired)
    return createError('TOLLGATE_ERR_ADMIN_CREDENTIAL', 'the token has expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return createError('TOLLGATE_ERR_ADMIN_CREDENTIAL', `the token's "${err.claim}" claim is wrong or missing`);
  }
  if (
    err instanceof joseErrors.JWKSTimeout ||
    err instanceof joseErrors.JWKSInvalid ||
    (err instanceof joseErrors.JOSEError && err.code === 'ERR_JOSE_GENERIC') ||
    (err instanceof Error && !(err instanceof joseErrors.JOSEError))
  ) {
    // fetch failed, non-200 or not a key set: the identity provider's JWKS is unusable.
    return createError('TOLLGATE_ERR_ADMIN_OIDC_UNAVAILABLE');
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey)
    return createError('TOLLGATE_ERR_ADMIN_CREDENTIAL', 'no key in the JWKS matches the token');
  if (err instanceof joseErrors.JOSEAlgNotAllowed)
    return createError('TOLLGATE_ERR_ADMIN_CREDENTIAL', "the token's algorithm is not allowed");
  return createError('TOLLGATE_ERR_ADMIN_CREDENTIAL', "the token's signature or format is invalid");
}

/** `<claim>=<value>`: the claim (top-level, else a dot path) equals the value or is an array holding it. */
export function hasAdminClaim(payload: JWTPayload, name: string, value: string): boolean {
  let claim: unknown = payload[name];
  if (claim === undefined && name.includes('.')) {
    claim = payload;
    for (const part of name.split('.')) {
      claim =
        claim !== null && typeof claim === 'object' && !Array.isArray(claim)
          ? (claim as Record<string, unknown>)[part]
          : undefined;
    }
  }
  const same = (v: unknown) =>
    (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number') && String(v) === value;
  return Array.isArray(claim) ? claim.some(same) : same(claim);
}
