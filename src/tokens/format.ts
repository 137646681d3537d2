import { hash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * Token format: `<prefix><30 random base62 chars><6 base62 chars of CRC32>`, 40 characters.
 * 30 base62 characters carry 178 bits from crypto.randomBytes. The checksum lets the gateway
 * reject a mistyped or made-up token without touching the store, and lets secret scanners
 * (GitHub's, gitleaks) recognise a leaked token by its shape.
 */
export type TokenType = 'production' | 'development';

export const TOKEN_PREFIXES: Readonly<Record<TokenType, string>> = { production: 'tgp_', development: 'tgd_' };
const RANDOM_CHARS = 30;
const CHECKSUM_CHARS = 6;
const PREFIX_CHARS = 4;
export const TOKEN_LENGTH = PREFIX_CHARS + RANDOM_CHARS + CHECKSUM_CHARS;
/** For scanners and docs: what a Tollgate token looks like. */
export const TOKEN_PATTERN = /^tg[pd]_[0-9A-Za-z]{36}$/;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Character code -> base62 digit (TOKEN_PATTERN admits only those characters). */
const BASE62_VALUE = new Uint8Array(128);
for (let i = 0; i < BASE62.length; i++) BASE62_VALUE[BASE62.charCodeAt(i)] = i;

function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 * 62: reject the top bytes so every character is equally likely.
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

function checksum(body: string): string {
  let n = crc32(body);
  let out = '';
  for (let i = 0; i < CHECKSUM_CHARS; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

export function generateToken(type: TokenType): string {
  const body = TOKEN_PREFIXES[type] + randomBase62(RANDOM_CHARS);
  return body + checksum(body);
}

/**
 * The token's type when it is well formed (prefix, length, alphabet, checksum), else undefined.
 * Pure and cheap: a malformed token never costs a store read.
 */
export function parseTokenType(token: string): TokenType | undefined {
  if (token.length !== TOKEN_LENGTH || !TOKEN_PATTERN.test(token)) return undefined;
  // The checksum characters read as the number they encode (6 base62 digits hold any CRC32
  // exactly), compared with the CRC32 of the rest: no string built per request.
  let written = 0;
  for (let i = TOKEN_LENGTH - CHECKSUM_CHARS; i < TOKEN_LENGTH; i++)
    written = written * 62 + BASE62_VALUE[token.charCodeAt(i)]!;
  if (written !== crc32(token.slice(0, TOKEN_LENGTH - CHECKSUM_CHARS))) return undefined;
  return token.charCodeAt(2) === 0x70 /* p */ ? 'production' : 'development';
}

/**
 * SHA-256 of the token, hex: what the store keeps and the cache is keyed by. The one-shot
 * crypto.hash (Node >= 20.12) takes well under half the time of createHash().update().digest().
 */
export function hashToken(token: string): string {
  return hash('sha256', token, 'hex');
}

export function generateTokenId(): string {
  return `tok_${randomBase62(16)}`;
}
