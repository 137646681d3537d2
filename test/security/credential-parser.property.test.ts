import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { extractCredential, MAX_AUTHORIZATION_LENGTH } from '../../src/auth/credentials.js';
import { parseTokenType } from '../../src/tokens/format.js';
import {
  BASE62_CHARS,
  isWellFormedToken,
  makeToken,
  specToken,
  TOKEN_LENGTH,
  wellFormedTokenArb,
} from '../helpers/token-oracle.js';

/**
 * Property tests over the pure Authorization parser (src/auth/credentials.ts): whatever a client
 * sends, the parser answers without throwing, and it answers "ok" only for a token that is well
 * formed by the specification (prefix, length, alphabet, CRC32 checksum), which the oracle in
 * test/helpers/token-oracle.ts re-derives independently of src/tokens/format.ts.
 *
 * Every property runs with a fixed seed, so a failure reproduces as is; fast-check prints the
 * seed, path and shrunk counterexample.
 */
const SEED = 7_2026;
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

// Arbitrary header values, from plain noise to near misses of the real grammar.
const controlChar = fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c));
const anyLatin1 = fc.string({ unit: 'binary-ascii', maxLength: 80 });
const anyUnicode = fc.string({ unit: 'binary', maxLength: 80 });
const graphemes = fc.string({ unit: 'grapheme', maxLength: 80 });
const withControls = fc.string({
  unit: fc.oneof(controlChar, fc.constantFrom('B', 'e', 'a', 'r', ' ', ':', '=', '_', 't', 'g', 'p')),
  maxLength: 60,
});
const scheme = fc.constantFrom(
  'Bearer',
  'bearer',
  'BEARER',
  'BeArEr',
  'Basic',
  'basic',
  'BASIC',
  'Token',
  'Digest',
  'Negotiate',
  'Bearer:',
  'Basic:',
  '',
);
const separator = fc.constantFrom(' ', '  ', '\t', '', ' \t ', '\u00a0', '\u3000');
const tokenish = fc.oneof(
  wellFormedTokenArb,
  wellFormedTokenArb.map((t) => t.slice(0, -1)),
  wellFormedTokenArb.map((t) => `${t}x`),
  fc.string({ unit: fc.constantFrom(...BASE62_CHARS, '_'), minLength: 36, maxLength: 44 }).map((s) => `tgp_${s}`),
  anyLatin1,
);
const structured = fc.oneof(
  fc.tuple(scheme, separator, tokenish).map(([s, sep, t]) => `${s}${sep}${t}`),
  fc
    .tuple(scheme, separator, fc.string({ maxLength: 40 }), tokenish)
    .map(([s, sep, user, t]) => `${s}${sep}${b64(`${user}:${t}`)}`),
  fc
    .tuple(scheme, separator, fc.uint8Array({ maxLength: 120 }))
    .map(([s, sep, bytes]) => `${s}${sep}${Buffer.from(bytes).toString('base64')}`),
  fc.tuple(scheme, separator, fc.base64String({ maxLength: 120 })).map(([s, sep, v]) => `${s}${sep}${v}`),
);
/** Headers close to the accepting side: real schemes around well-formed or slightly broken tokens. */
const nearValid = fc
  .tuple(
    fc.constantFrom('Bearer', 'bearer', 'Basic', 'basic'),
    fc.constantFrom(' ', '  ', ' \t'),
    fc.oneof(
      wellFormedTokenArb,
      wellFormedTokenArb.map((t) => t.slice(1)),
      wellFormedTokenArb.map((t) => `${t}${t.at(-1)}`),
    ),
    fc.string({ maxLength: 12 }),
    fc.constantFrom('', ' ', '\t', '\u00a0', ';', 'x'),
  )
  .map(([s, sep, token, user, trailer]) =>
    s.toLowerCase() === 'bearer' ? `${s}${sep}${token}${trailer}` : `${s}${sep}${b64(`${user}:${token}${trailer}`)}`,
  );
const anyHeader = fc.oneof(
  { arbitrary: nearValid, weight: 4 },
  { arbitrary: anyLatin1, weight: 1 },
  { arbitrary: anyUnicode, weight: 1 },
  { arbitrary: graphemes, weight: 1 },
  { arbitrary: withControls, weight: 1 },
  { arbitrary: structured, weight: 6 },
);

/** Single-character edits of a string: substitution, insertion, deletion. */
type Edit = { kind: 'substitute' | 'insert'; at: number; char: string } | { kind: 'delete'; at: number };
const editChar = fc.oneof(fc.constantFrom(...BASE62_CHARS), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));
const editArb = fc.oneof(
  fc.record({
    kind: fc.constant('substitute' as const),
    at: fc.integer({ min: 0, max: TOKEN_LENGTH - 1 }),
    char: editChar,
  }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.integer({ min: 0, max: TOKEN_LENGTH }), char: editChar }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.integer({ min: 0, max: TOKEN_LENGTH - 1 }) }),
);
function applyEdit(token: string, edit: Edit): string {
  if (edit.kind === 'delete') return token.slice(0, edit.at) + token.slice(edit.at + 1);
  if (edit.kind === 'insert') return token.slice(0, edit.at) + edit.char + token.slice(edit.at);
  return token.slice(0, edit.at) + edit.char + token.slice(edit.at + 1);
}

describe('extractCredential, for any input', () => {
  it.each([
    ['printable ASCII strings', fc.string({ maxLength: 200 })],
    ['latin1 strings with every control character (what HTTP header bytes decode to)', anyLatin1],
    ['full-Unicode strings', anyUnicode],
    ['Unicode graphemes', graphemes],
    ['strings dense in control characters and scheme letters', withControls],
    ['scheme + separator + token-like or base64 value', structured],
  ])('prevents a crash on hostile headers: never throws for %s', (_what, arb) => {
    fc.assert(
      fc.property(arb, (header) => {
        const result = extractCredential(header);
        expect(['ok', 'missing', 'malformed']).toContain(result.kind);
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it('prevents resource exhaustion by huge values: anything longer than the limit is malformed, without throwing', () => {
    const huge = fc
      .tuple(
        scheme,
        fc.string({
          unit: fc.oneof(fc.constantFrom(...BASE62_CHARS), controlChar),
          minLength: MAX_AUTHORIZATION_LENGTH + 1,
          maxLength: 50_000,
        }),
      )
      .map(([s, v]) => `${s} ${v}`);
    fc.assert(
      fc.property(huge, (header) => {
        const result = extractCredential(header);
        if (header.trim().length > MAX_AUTHORIZATION_LENGTH) expect(result.kind).toBe('malformed');
      }),
      { seed: SEED, numRuns: 200 },
    );
    for (const size of [1 << 20, 8 << 20]) {
      expect(extractCredential(`Bearer ${'A'.repeat(size)}`).kind).toBe('malformed');
      expect(extractCredential(`Basic ${'QUFB'.repeat(size / 4)}=`).kind).toBe('malformed');
    }
  });

  it('prevents a made-up credential from passing: "ok" only for a token well formed by the spec (prefix, length, checksum)', () => {
    let accepted = 0;
    fc.assert(
      fc.property(anyHeader, (header) => {
        const result = extractCredential(header);
        if (result.kind !== 'ok') return;
        accepted++;
        const { token, tokenType } = result.credential;
        expect(isWellFormedToken(token)).toBe(true);
        expect(token).toHaveLength(TOKEN_LENGTH);
        expect(tokenType).toBe(token.startsWith('tgp_') ? 'production' : 'development');
        // The token came from the header: in clear after Bearer, or inside the Basic base64.
        const param = header
          .trim()
          .slice(header.trim().indexOf(' ') + 1)
          .trim();
        const decoded = Buffer.from(param, 'base64').toString('utf8');
        expect(param === token || decoded.includes(token)).toBe(true);
      }),
      { seed: SEED, numRuns: 20_000 },
    );
    expect(accepted).toBeGreaterThan(500); // the generator does reach the accepting side
  });

  it('agrees with the spec on every header: whenever the spec reads a token the parser reads the same one, and only then', () => {
    // `spec` sees what the server sees (latin1 text); a header the parser accepts must carry the
    // same token per the spec once whitespace around the value is set aside.
    const latin1Headers = fc.oneof(
      anyLatin1,
      withControls,
      nearValid,
      structured.filter((h) => !/[\u0100-\uffff]/.test(h)),
    ); // latin1: no code unit past 0xff
    let specValid = 0;
    fc.assert(
      fc.property(latin1Headers, (header) => {
        const result = extractCredential(header);
        const expected = specToken(header);
        if (expected !== undefined) {
          specValid++;
          expect(result).toMatchObject({ kind: 'ok', credential: { token: expected } });
        } else if (result.kind === 'ok') {
          // The parser is lenient about whitespace only (a tab after the scheme, an NBSP at the end):
          // with whitespace runs collapsed to one space, the spec reads the same token.
          expect(specToken(header.replace(/[\s\u00a0]+/g, ' ').trim())).toBe(result.credential.token);
        }
      }),
      { seed: SEED, numRuns: 20_000 },
    );
    expect(specValid).toBeGreaterThan(250);
  });
});

describe('extractCredential on well-formed credentials', () => {
  it('reads Bearer <token> for any seeded well-formed token, under project "default"', () => {
    fc.assert(
      fc.property(wellFormedTokenArb, fc.constantFrom('Bearer', 'bearer', 'BEARER'), (token, s) => {
        expect(extractCredential(`${s} ${token}`)).toEqual({
          kind: 'ok',
          credential: { token, project: 'default', tokenType: token.startsWith('tgp_') ? 'production' : 'development' },
        });
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it('prevents a wrong project tag: Basic with any printable user (no ":", up to 128 characters) and a valid token yields exactly that project', () => {
    const printableUser = fc
      .oneof(fc.string({ maxLength: 128 }), fc.string({ unit: 'grapheme', maxLength: 60 }))
      // eslint-disable-next-line no-control-regex -- on purpose: a printable user has no control character (C0, DEL, C1)
      .filter((u) => !u.includes(':') && u.length <= 128 && !/[\u0000-\u001f\u007f-\u009f]/.test(u));
    fc.assert(
      fc.property(wellFormedTokenArb, printableUser, (token, user) => {
        const result = extractCredential(`Basic ${b64(`${user}:${token}`)}`);
        expect(result).toEqual({
          kind: 'ok',
          credential: {
            token,
            project: user === '' ? 'default' : user,
            tokenType: token.startsWith('tgp_') ? 'production' : 'development',
          },
        });
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it('reads Basic base64(<token>:) (the token as the user) under project "default"', () => {
    fc.assert(
      fc.property(wellFormedTokenArb, (token) => {
        expect(extractCredential(`Basic ${b64(`${token}:`)}`)).toMatchObject({
          kind: 'ok',
          credential: { token, project: 'default' },
        });
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it('prevents control characters or overlong names from reaching logs as a project: such a Basic user is malformed', () => {
    const badUser = fc
      .oneof(
        fc
          .tuple(
            fc.string({ maxLength: 20 }),
            fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
            fc.string({ maxLength: 20 }),
          )
          .map(([a, c, b]) => `${a}${c}${b}`),
        fc
          .tuple(
            fc.string({ maxLength: 20 }),
            fc.integer({ min: 0x7f, max: 0x9f }).map((c) => String.fromCharCode(c)),
          )
          .map(([a, c]) => `${a}${c}`),
        fc.string({ minLength: 129, maxLength: 400 }),
      )
      .filter((u) => !u.includes(':'));
    fc.assert(
      fc.property(wellFormedTokenArb, badUser, (token, user) => {
        expect(extractCredential(`Basic ${b64(`${user}:${token}`)}`)).toEqual({ kind: 'malformed' });
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });
});

describe('a single-character change to a valid token', () => {
  it('prevents typos and guesses near a real token from being accepted: any substitution, insertion or deletion is rejected', () => {
    fc.assert(
      fc.property(wellFormedTokenArb, editArb, (token, edit) => {
        const changed = applyEdit(token, edit);
        fc.pre(changed !== token); // substituting a character by itself is no change
        expect(isWellFormedToken(changed)).toBe(false); // the oracle agrees it is no token
        expect(parseTokenType(changed)).toBeUndefined();
        expect(extractCredential(`Basic ${b64(`project:${changed}`)}`)).toEqual({ kind: 'malformed' });
        expect(extractCredential(`Basic ${b64(`${changed}:`)}`).kind).not.toBe('ok');
        // In a Bearer header, whitespace added at either end is header whitespace, not part of the token.
        if (changed.trim() !== token) expect(extractCredential(`Bearer ${changed}`)).toEqual({ kind: 'malformed' });
      }),
      { seed: SEED, numRuns: 20_000 },
    );
  });

  it('rejects every substitution at every position exhaustively for one token (all 62 base62 characters and the prefix letters)', () => {
    const token = makeToken('production', 'AbCdEfGhIjKlMnOpQrStUvWxYz0123');
    expect(extractCredential(`Bearer ${token}`).kind).toBe('ok');
    for (let at = 0; at < TOKEN_LENGTH; at++) {
      for (const char of [...BASE62_CHARS, '_', '-']) {
        if (char === token[at]) continue;
        const changed = token.slice(0, at) + char + token.slice(at + 1);
        expect(extractCredential(`Bearer ${changed}`), changed).toEqual({ kind: 'malformed' });
      }
    }
  });

  it('rejects two adjacent characters swapped', () => {
    fc.assert(
      fc.property(wellFormedTokenArb, fc.integer({ min: 0, max: TOKEN_LENGTH - 2 }), (token, at) => {
        fc.pre(token[at] !== token[at + 1]);
        const swapped = token.slice(0, at) + token[at + 1] + token[at] + token.slice(at + 2);
        expect(extractCredential(`Bearer ${swapped}`)).toEqual({ kind: 'malformed' });
      }),
      { seed: SEED, numRuns: 5000 },
    );
  });
});
