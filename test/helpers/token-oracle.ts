import { crc32 } from 'node:zlib';
import fc from 'fast-check';

/**
 * What a well-formed Tollgate token and a well-formed Authorization header are, written from
 * the specification (issue 2) rather than imported from src/, so that tests can check the
 * gateway's parser against it instead of against itself.
 *
 *   token   = ("tgp_" / "tgd_") 30*base62 checksum      ; 40 characters
 *   checksum = 6 base62 digits of CRC32(prefix + random), most significant first
 *   header  = "Bearer" SP token  /  "Basic" SP base64(user ":" token)  /  "Basic" SP base64(token ":")
 *             scheme names case-insensitive; OWS (SP, HTAB) around the value is not part of it;
 *             the Basic user (the project) is at most 128 characters without control characters
 */

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const BASE62_CHARS = [...BASE62];
export const TOKEN_LENGTH = 40;

export function checksumOf(body: string): string {
  let n = crc32(body);
  let out = '';
  for (let i = 0; i < 6; i++) {
    out = BASE62[n % 62]! + out;
    n = Math.floor(n / 62);
  }
  return out;
}

export function isWellFormedToken(s: string): boolean {
  return /^tg[pd]_[0-9A-Za-z]{36}$/.test(s) && checksumOf(s.slice(0, 34)) === s.slice(34);
}

/** A well-formed token from 30 base62 characters: tests derive tokens from a seed, not from crypto. */
export function makeToken(type: 'production' | 'development', random30: string): string {
  const body = (type === 'production' ? 'tgp_' : 'tgd_') + random30;
  return body + checksumOf(body);
}

/** Seeded well-formed tokens (never stored anywhere: the store has no record of them). */
export const wellFormedTokenArb: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom<'production' | 'development'>('production', 'development'),
    fc.string({ unit: fc.constantFrom(...BASE62_CHARS), minLength: 30, maxLength: 30 }),
  )
  .map(([type, random]) => makeToken(type, random));

/**
 * The token a header value carries when it is well formed by the specification, else undefined.
 * `value` is what the server sees: the header's bytes read as latin1.
 */
export function specToken(value: string): string | undefined {
  const v = value.replace(/^[ \t]+|[ \t]+$/g, '');
  const bearer = /^bearer +(\S+)$/i.exec(v);
  if (bearer) return isWellFormedToken(bearer[1]!) ? bearer[1] : undefined;
  const basic = /^basic +([A-Za-z0-9+/]+={0,2})$/i.exec(v);
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (password === '' && isWellFormedToken(user)) return user;
  // The user names a project, which ends up in logs and metrics: at most 128 characters, no control characters.
  // eslint-disable-next-line no-control-regex -- on purpose: the same control characters (C0, DEL, C1) the gateway refuses
  if (user.length > 128 || /[\u0000-\u001f\u007f-\u009f]/.test(user)) return undefined;
  return isWellFormedToken(password) ? password : undefined;
}
