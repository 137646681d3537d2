import { GatewayError } from '../errors.js';
import { isLive, type TokenRecord } from './store.js';

/**
 * Which tokens a list shows (the CLI's `token list` and the admin API's GET /tokens): CI-issued
 * tokens are many and short-lived, so by default a list shows the tokens admins made, with a
 * count of CI-issued live tokens per provider, and shows CI-issued ones only when asked.
 */

/** `admin`: tokens made by admins (the default); `ci`: CI-issued ones; `all`: both. */
export type TokenSource = 'admin' | 'ci' | 'all';

export interface TokenListFilter {
  source: TokenSource;
  /** CI-issued tokens of this trust policy (ciProviders[].name) only; implies `ci` unless `all`. */
  provider?: string | undefined;
}

/** A provider name as a filter takes it: what ciProviders[].name may be (config/ci.ts). */
const PROVIDER = /^[a-z0-9-]{1,40}$/;

/**
 * The filter from its parts as a query string or flags give them: `source` (absent: `admin`,
 * or `ci` when a provider is named). Bad input is TOLLGATE_ERR_TOKEN_INPUT naming the field.
 */
export function parseTokenListFilter(input: {
  source?: string | undefined;
  provider?: string | undefined;
}): TokenListFilter {
  const provider = input.provider === undefined || input.provider === '' ? undefined : input.provider;
  if (provider !== undefined && !PROVIDER.test(provider)) {
    throw new GatewayError(
      'TOLLGATE_ERR_TOKEN_INPUT',
      'provider must be a CI provider name: 1 to 40 characters of a-z, 0-9 and "-"',
    );
  }
  const source = input.source === undefined || input.source === '' ? (provider ? 'ci' : 'admin') : input.source;
  if (source !== 'admin' && source !== 'ci' && source !== 'all') {
    throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT', `source must be admin, ci or all, got "${source.slice(0, 40)}"`);
  }
  if (provider !== undefined && source === 'admin') {
    throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT', 'provider names CI-issued tokens: it needs source ci or all');
  }
  return { source, provider };
}

/** The records the filter shows, in the order given (the store's: newest first). */
export function filterTokens(records: readonly TokenRecord[], filter: TokenListFilter): TokenRecord[] {
  const { source, provider } = filter;
  return records.filter((r) => {
    if (r.ci === null) return source !== 'ci' && provider === undefined;
    if (source === 'admin') return false;
    return provider === undefined || r.ci.provider === provider;
  });
}

/** CI-issued tokens that still work (not revoked, expired or past their overlap), per provider, by name. */
export function liveCiTokenCounts(records: readonly TokenRecord[], now = Date.now()): Record<string, number> {
  const counts = new Map<string, number>();
  for (const r of records) {
    if (r.ci !== null && isLive(r, now)) counts.set(r.ci.provider, (counts.get(r.ci.provider) ?? 0) + 1);
  }
  return Object.fromEntries([...counts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
