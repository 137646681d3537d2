import { hashToken } from '../tokens/format.js';
import { NOT_CACHED, type CachedToken, type TokenCache } from '../tokens/cache.js';
import { extractCredential, type Credential } from './credentials.js';
import type { Principal } from './principal.js';

export type AuthFailure = 'missing' | 'malformed' | 'invalid' | 'revoked' | 'expired' | 'unavailable' | 'rate-limited';

export type AuthOutcome = { ok: true; principal: Principal } | { ok: false; reason: AuthFailure };

const fail = {
  missing: { ok: false, reason: 'missing' },
  malformed: { ok: false, reason: 'malformed' },
  invalid: { ok: false, reason: 'invalid' },
  revoked: { ok: false, reason: 'revoked' },
  expired: { ok: false, reason: 'expired' },
  unavailable: { ok: false, reason: 'unavailable' },
  'rate-limited': { ok: false, reason: 'rate-limited' },
} as const satisfies Record<AuthFailure, AuthOutcome>;

/**
 * What one connection last presented: its Authorization header, the credential it parsed to and
 * the token's hash, and the last outcome with the cache entry it came from. Kept on the
 * connection (an object per socket, owned by the caller: make it with newCredentialMemo) and
 * dropped with it.
 */
export interface CredentialMemo {
  header: string | undefined;
  credential: Credential | undefined;
  hash: string | undefined;
  token: CachedToken | undefined;
  allowed: AuthOutcome | undefined;
}

/**
 * An empty memo with every field in place: V8 then keeps them inside the object instead of a
 * separate property array (ten thousand idle connections each hold one; bench/README.md,
 * "Ten thousand kept-alive connections").
 */
export function newCredentialMemo(): CredentialMemo {
  return { header: undefined, credential: undefined, hash: undefined, token: undefined, allowed: undefined };
}

/**
 * `storeReads` false: the client's address used up its failed authentications, so a token the
 * cache does not know is refused ('rate-limited') rather than read from the store; a cached one
 * is judged as usual (a cache hit costs nothing, and a shared NAT or CI egress address must not
 * lock out everyone behind it).
 */
export type Authenticate = (
  authorization: string | undefined,
  now: number,
  memo?: CredentialMemo,
  storeReads?: boolean,
) => AuthOutcome | Promise<AuthOutcome>;

/**
 * The auth decision: parse the header (pure), hash, look the hash up in the cache. A cache hit
 * is fully synchronous; only a miss returns a promise. A malformed token never reaches the store.
 *
 * With a `memo`, a connection that sends the header it sent last time (a package manager on a
 * kept-alive connection sends the same one with every request) skips the parse and the hash: the
 * header is compared as a string. The hash is still looked up on every request, so a revocation,
 * expiry or outage applies to the very next request, and the outcome is reused only while the
 * cache hands back the very entry it came from. Only well-formed credentials are memoised.
 * Parsing and hashing every request cost the running gateway a measurable share of its CPU per
 * request, far more than a hot loop suggests (bench/README.md, "The auth cost, side by side").
 */
export function createAuthenticator(cache: TokenCache): Authenticate {
  // One outcome per cache entry (and project), shared by every connection that presents the
  // token, instead of two objects per connection; a change in the store replaces the entry, and
  // the outcome goes with it.
  const outcomes = new WeakMap<CachedToken, AuthOutcome & { ok: true }>();

  function decide(
    token: CachedToken | undefined,
    credential: Credential,
    now: number,
    memo: CredentialMemo | undefined,
  ): AuthOutcome {
    if (token === undefined) return fail.invalid;
    if (token.revoked) return fail.revoked;
    if (token.expiresAt !== null && token.expiresAt <= now) return fail.expired;
    cache.touch(token, now);
    // The same cache entry (a change in the store replaces it) and the same credential: the
    // outcome the connection got last time, not two new objects per request.
    if (memo !== undefined && memo.token === token && memo.credential === credential) return memo.allowed!;
    const project = token.ci?.project ?? credential.project;
    let allowed = outcomes.get(token);
    if (allowed === undefined || allowed.principal.project !== project) {
      allowed = {
        ok: true,
        principal: {
          tokenId: token.id,
          tokenName: token.name,
          tokenType: token.type,
          project,
          restrictions: token.restrictions,
          ci: token.ci,
        },
      };
      outcomes.set(token, allowed);
    }
    if (memo !== undefined && memo.credential === credential) {
      memo.token = token;
      memo.allowed = allowed;
      // The cache entry's own copy of the hash (the same value): the connection's goes.
      memo.hash = token.hash;
    }
    return allowed;
  }

  return function authenticate(authorization, now, memo, storeReads = true) {
    let credential: Credential;
    let hash: string;
    if (memo !== undefined && authorization !== undefined && authorization === memo.header) {
      credential = memo.credential!;
      hash = memo.hash!;
    } else {
      const result = extractCredential(authorization);
      if (result.kind !== 'ok') return fail[result.kind];
      credential = result.credential;
      hash = hashToken(credential.token);
      if (memo !== undefined) {
        memo.header = authorization;
        memo.credential = credential;
        memo.hash = hash;
        memo.token = undefined;
        memo.allowed = undefined;
      }
    }
    const found = cache.lookup(hash, now, storeReads);
    if (found === NOT_CACHED) return fail['rate-limited'];
    if (found instanceof Promise) {
      return found.then(
        (token) => decide(token, credential, now, memo),
        () => fail.unavailable,
      );
    }
    return decide(found, credential, now, memo);
  };
}
