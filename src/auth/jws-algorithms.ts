/**
 * JWS signature algorithms Tollgate accepts on a token an identity provider signed (an admin's
 * OIDC ID token, a CI job's): asymmetric only. Never `none`, and never HMAC, whose "secret" a
 * forger could take to be the provider's public key.
 */
export const ASYMMETRIC_JWS_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
