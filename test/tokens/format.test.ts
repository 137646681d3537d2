import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  generateToken,
  generateTokenId,
  hashToken,
  parseTokenType,
  TOKEN_LENGTH,
  TOKEN_PREFIXES,
  type TokenType,
} from '../../src/tokens/format.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const TYPES: TokenType[] = ['production', 'development'];

/** The checksum as documented in format.ts, computed independently. */
function checksumOf(body: string): string {
  let n = crc32(body);
  let out = '';
  for (let i = 0; i < 6; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

describe('generateToken', () => {
  it.each([
    ['production', 'tgp_'],
    ['development', 'tgd_'],
  ] as const)('gives a %s token the %s prefix', (type, prefix) => {
    expect(TOKEN_PREFIXES[type]).toBe(prefix);
    expect(generateToken(type).startsWith(prefix)).toBe(true);
  });

  it.each(TYPES)('makes a 40-character base62 %s token that parses back to its type', (type) => {
    const token = generateToken(type);
    expect(TOKEN_LENGTH).toBe(40);
    expect(token).toHaveLength(40);
    expect(token.slice(4)).toMatch(/^[0-9A-Za-z]{36}$/);
    expect(parseTokenType(token)).toBe(type);
  });

  it('ends with the base62 CRC32 of the rest', () => {
    const token = generateToken('production');
    expect(token.slice(34)).toBe(checksumOf(token.slice(0, 34)));
  });

  it('never repeats itself over 1000 tokens', () => {
    const tokens = new Set(Array.from({ length: 1000 }, (_, i) => generateToken(TYPES[i % 2]!)));
    expect(tokens.size).toBe(1000);
  });
});

describe('parseTokenType', () => {
  it.each(TYPES)('rejects every single-character change of a %s token', (type) => {
    for (let sample = 0; sample < 10; sample++) {
      const token = generateToken(type);
      for (let i = 0; i < token.length; i++) {
        for (const c of BASE62 + '_') {
          if (c === token[i]) continue;
          const changed = token.slice(0, i) + c + token.slice(i + 1);
          if (parseTokenType(changed) !== undefined) {
            throw new Error(`accepted ${changed} (position ${i} changed from ${token[i]} to ${c})`);
          }
        }
      }
    }
  });

  it('rejects an unknown prefix even with a valid checksum', () => {
    const body = `tgx_${generateToken('production').slice(4, 34)}`;
    const token = body + checksumOf(body);
    expect(token).toHaveLength(40);
    expect(parseTokenType(token)).toBeUndefined();
    const github = `ghp_${generateToken('production').slice(4, 34)}`;
    expect(parseTokenType(github + checksumOf(github))).toBeUndefined();
  });

  it('rejects a token one character too short or too long', () => {
    const token = generateToken('development');
    expect(parseTokenType(token.slice(0, -1))).toBeUndefined();
    expect(parseTokenType(`${token}a`)).toBeUndefined();
    const longBody = `tgd_${token.slice(4, 34)}x`;
    expect(parseTokenType(longBody + checksumOf(longBody))).toBeUndefined();
  });

  it.each(['', 'tgp_', 'Bearer x', ' '.repeat(40), 'tgp_'.padEnd(40, '!')])('rejects %j', (input) => {
    expect(parseTokenType(input)).toBeUndefined();
  });
});

describe('hashToken', () => {
  it('is SHA-256 in lowercase hex', () => {
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const token = generateToken('production');
    expect(hashToken(token)).toBe(createHash('sha256').update(token).digest('hex'));
    expect(hashToken(token)).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('generateTokenId', () => {
  it('makes distinct tok_ ids', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => generateTokenId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^tok_[0-9A-Za-z]{16}$/);
  });
});
