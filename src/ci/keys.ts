import { createRemoteJWKSet, errors as joseErrors, type JWTVerifyGetKey } from 'jose';
import { secureUrlProblem } from '../config/urls.js';

/**
 * An issuer's signing keys: from its OpenID discovery document (`<issuer>/.well-known/openid-configuration`,
 * whose `issuer` must be the configured one, and the `jwks_uri` it names), or from a configured
 * JWKS URL. jose's remote key set caches the keys (10 minutes) and refetches them for an unknown
 * `kid` at most once per cooldown. Keys that cannot be fetched throw KeysUnavailable: the
 * exchange then fails ("unavailable", 503), it never opens.
 */

export class KeysUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeysUnavailable';
  }
}

export interface KeySourceOptions {
  /** One fetch of the discovery document or the key set. */
  timeoutMs: number;
  /** Least time between two fetches of the key set for an unknown `kid`. */
  refetchCooldownMs: number;
}

/** Longest discovery document read (GitHub's is about 1.5 KB). */
const MAX_DISCOVERY_BYTES = 256 * 1024;

/** The key getter jwtVerify takes, for one issuer. Nothing is fetched before the first token of that issuer. */
export function createKeySource(
  issuer: string,
  jwksUrl: string | undefined,
  options: KeySourceOptions,
): JWTVerifyGetKey {
  let keys: JWTVerifyGetKey | undefined;
  let discovering: Promise<JWTVerifyGetKey> | undefined;

  const remote = (url: URL) =>
    createRemoteJWKSet(url, { timeoutDuration: options.timeoutMs, cooldownDuration: options.refetchCooldownMs });

  function keySet(): Promise<JWTVerifyGetKey> {
    if (keys) return Promise.resolve(keys);
    // One discovery at a time; a failed one is tried again by the next token.
    discovering ??= (jwksUrl ? Promise.resolve(new URL(jwksUrl)) : discoverJwksUrl(issuer, options.timeoutMs))
      .then((url) => (keys = remote(url)))
      .finally(() => {
        discovering = undefined;
      });
    return discovering;
  }

  return async function issuerKey(header, token) {
    const getKey = await keySet();
    try {
      return await getKey(header, token);
    } catch (err) {
      if (isFetchFailure(err)) throw new KeysUnavailable(`the key set of ${issuer} cannot be fetched`, { cause: err });
      throw err;
    }
  };
}

/** jose's remote key set failed to fetch (network, timeout, not 200, not a key set), rather than finding no key. */
function isFetchFailure(err: unknown): boolean {
  return (
    err instanceof joseErrors.JWKSTimeout ||
    err instanceof joseErrors.JWKSInvalid ||
    (err instanceof joseErrors.JOSEError && err.code === 'ERR_JOSE_GENERIC') ||
    !(err instanceof joseErrors.JOSEError)
  );
}

/** The `jwks_uri` of the issuer's discovery document, checked: same issuer, https (http on loopback). */
async function discoverJwksUrl(issuer: string, timeoutMs: number): Promise<URL> {
  const where = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  let doc: unknown;
  try {
    const response = await fetch(where, {
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: 'application/json' },
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new KeysUnavailable(`the discovery document of ${issuer} answered HTTP ${response.status}`);
    }
    doc = JSON.parse(await boundedText(response, MAX_DISCOVERY_BYTES));
  } catch (err) {
    if (err instanceof KeysUnavailable) throw err;
    const reason = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    throw new KeysUnavailable(`the discovery document of ${issuer} cannot be fetched (${reason})`, { cause: err });
  }
  const { issuer: named, jwks_uri: jwksUri } = (doc ?? {}) as { issuer?: unknown; jwks_uri?: unknown };
  if (named !== issuer) throw new KeysUnavailable(`the discovery document at ${where} names another issuer`);
  if (typeof jwksUri !== 'string' || secureUrlProblem(jwksUri)) {
    throw new KeysUnavailable(`the discovery document of ${issuer} has no https jwks_uri (http only on loopback)`);
  }
  return new URL(jwksUri);
}

async function boundedText(response: Response, max: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += (chunk as Uint8Array).length;
    if (size > max) throw new KeysUnavailable(`the discovery document is larger than ${max} bytes`);
    chunks.push(chunk as Uint8Array);
  }
  return Buffer.concat(chunks).toString('utf8');
}
