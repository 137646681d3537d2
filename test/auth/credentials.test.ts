import { describe, expect, it } from 'vitest';
import { extractCredential } from '../../src/auth/credentials.js';
import { generateToken } from '../../src/tokens/format.js';

const prod = generateToken('production');
const dev = generateToken('development');
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('extractCredential', () => {
  it.each([
    ['Bearer', `Bearer ${prod}`, 'default', 'production'],
    ['bearer in lower case', `bearer ${dev}`, 'default', 'development'],
    ['Bearer with extra spaces', `  Bearer   ${prod}  `, 'default', 'production'],
    ['Basic project:token', `Basic ${b64(`web-shop:${prod}`)}`, 'web-shop', 'production'],
    ['BASIC in upper case', `BASIC ${b64(`ci:${dev}`)}`, 'ci', 'development'],
    ['bEaReR in mixed case', `bEaReR ${prod}`, 'default', 'production'],
    ['bAsIc in mixed case', `bAsIc ${b64(`ci:${prod}`)}`, 'ci', 'production'],
    ['Basic with an empty user', `Basic ${b64(`:${prod}`)}`, 'default', 'production'],
    ['Basic token as user, empty password', `Basic ${b64(`${prod}:`)}`, 'default', 'production'],
    ['Basic with a unicode project', `Basic ${b64(`prøject:${prod}`)}`, 'prøject', 'production'],
  ])('reads %s', (_label, header, project, tokenType) => {
    const result = extractCredential(header);
    expect(result).toEqual({ kind: 'ok', credential: { token: expect.any(String) as string, project, tokenType } });
  });

  it.each([[undefined], [''], ['   ']])('treats %j as no credential at all (the challenge case)', (header) => {
    expect(extractCredential(header)).toEqual({ kind: 'missing' });
  });

  it.each([
    ['an unknown scheme', `Digest ${prod}`],
    ['a scheme without a value', 'Bearer'],
    ['Basic without a colon', `Basic ${b64(prod)}`],
    ['Basic with bad base64', 'Basic ***'],
    ['a wrong checksum', `Bearer ${prod.slice(0, -1)}${prod.endsWith('x') ? 'y' : 'x'}`],
    ['a truncated token', `Bearer ${prod.slice(0, -1)}`],
    ['a foreign prefix', `Bearer ghp_${prod.slice(4)}`],
    ['a huge value', `Bearer ${'a'.repeat(5000)}`],
    ['a NUL in the project', `Basic ${b64(`a\u0000b:${prod}`)}`],
    ['a control character in the project', `Basic ${b64(`a\nb:${prod}`)}`],
    ['an overlong project', `Basic ${b64(`${'p'.repeat(200)}:${prod}`)}`],
    ['a token with a trailing NUL', `Bearer ${prod}\u0000`],
    // Schemes that only look like Bearer or Basic: a letter off, one too many or few, a symbol,
    // non-ASCII look-alikes (the scheme is compared ASCII case-insensitively, as RFC 9110 says).
    ['Bearer with a letter off', `Bearex ${prod}`],
    ['a longer scheme', `Bearers ${prod}`],
    ['a shorter scheme', `Beare ${prod}`],
    ['Basic with a symbol for a letter', `B@sic ${b64(`ci:${prod}`)}`],
    ['Bearer with a Cyrillic a', `Beаrer ${prod}`],
    ['Basic with a dotted capital I', `BasİC ${b64(`ci:${prod}`)}`],
  ])('rejects %s as malformed without a store read', (_label, header) => {
    expect(extractCredential(header)).toEqual({ kind: 'malformed' });
  });
});
