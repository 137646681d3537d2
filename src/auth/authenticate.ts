import { hashToken } from '../tokens/format.js';
import type { CachedToken, TokenCache } from '../tokens/cache.js';
import { extractCredential, type Credential } from './credentials.js';
import type { Principal } from './principal.js';

export type AuthFailure = 'missing' | 'malformed' | 'invalid' | 'revoked' | 'expired' | 'unavailable';

export type AuthOutcome =
  | { ok: true; principal: Principal }
  | { ok: false; reason: AuthFailure };

const fail = {
  missing: { ok: false, reason: 'missing' },
  malformed: { ok: false, reason: 'malformed' },
  invalid: { ok: false, reason: 'invalid' },
  revoked: { ok: false, reason: 'revoked' },
  expired: { ok: false, reason: 'expired' },
  unavailable: { ok: false, reason: 'unavailable' },
} as const satisfies Record<AuthFailure, AuthOutcome>;

export type Authenticate = (authorization: string | undefined, now: number) => AuthOutcome | Promise<AuthOutcome>;

/**
 * The auth decision: parse the header (pure), hash, look the hash up in the cache. A cache hit
 * is fully synchronous; only a miss returns a promise. A malformed token never reaches the store.
 */
export function createAuthenticator(cache: TokenCache): Authenticate {
  function decide(token: CachedToken | undefined, credential: Credential, now: number): AuthOutcome {
    if (token === undefined) return fail.invalid;
    if (token.revoked) return fail.revoked;
    if (token.expiresAt !== null && token.expiresAt <= now) return fail.expired;
    cache.touch(token, now);
    return {
      ok: true,
      principal: { tokenId: token.id, tokenName: token.name, tokenType: token.type, project: credential.project },
    };
  }

  return function authenticate(authorization, now) {
    const result = extractCredential(authorization);
    if (result.kind !== 'ok') return fail[result.kind];
    const { credential } = result;
    const found = cache.lookup(hashToken(credential.token), now);
    if (found instanceof Promise) {
      return found.then((token) => decide(token, credential, now), () => fail.unavailable);
    }
    return decide(found, credential, now);
  };
}
