import { describe, expect, it } from 'vitest';
import { designatedByName, foldName, resolveName } from '../../src/tokens/names.js';
import { parseExpiry, parseOverlap, parseTokenTypeInput, toTokenView, validateName } from '../../src/tokens/service.js';
import { storedRecord, type TokenRecord } from '../../src/tokens/store.js';

const NOW = Date.parse('2026-11-27T12:00:00.000Z');

describe('parseExpiry', () => {
  it.each([
    [undefined, null],
    ['never', null],
    ['NEVER', null],
    ['30d', NOW + 30 * 86_400_000],
    ['1d', NOW + 86_400_000],
    ['2031-05-04', Date.parse('2031-05-04T23:59:59.999Z')],
    ['2027-01-01T00:00:00Z', Date.parse('2027-01-01T00:00:00Z')],
    ['2027-01-01T10:30:00+02:00', Date.parse('2027-01-01T08:30:00Z')],
  ])('reads %j', (input, expected) => {
    expect(parseExpiry(input, NOW)).toBe(expected);
  });

  it.each([
    ['0d', /at least 1d/],
    ['2020-01-01', /in the past/],
    ['2026-02-30', /not a calendar date/],
    ['2027-01-01T00:00:00', /never, <N>d, a date/],
    ['tomorrow', /never, <N>d, a date/],
    ['-5d', /never, <N>d, a date/],
  ])('refuses %j with a clear message', (input, message) => {
    expect(() => parseExpiry(input, NOW)).toThrow(message);
  });
});

describe('token input', () => {
  it('accepts the two types in any case and refuses others', () => {
    expect(parseTokenTypeInput('Production')).toBe('production');
    expect(parseTokenTypeInput('development')).toBe('development');
    expect(() => parseTokenTypeInput('admin')).toThrow(/production or development/);
  });

  it('requires a printable name of at most 100 characters', () => {
    expect(validateName('  ci-main  ')).toBe('ci-main');
    expect(() => validateName('')).toThrow(/required/);
    expect(() => validateName('x'.repeat(101))).toThrow(/at most 100/);
    expect(() => validateName('a\nb')).toThrow(/control/);
  });

  it.each([['tok_AbCdEfGhIjKlMnOp'], ['TOK_deploy'], ['tok_']])(
    'prevents a name shaped like a token id (%s) from shadowing that id in revoke: refused',
    (name) => {
      expect(() => validateName(name)).toThrow(/must not start with "tok_"/);
    },
  );

  it.each([
    ['Cyrillic а in a Latin word', 'deploy-bot-\u0430'],
    ['Greek Ο for O', 'CI-\u039F'],
    ['a non-breaking space', 'ci\u00a0main'],
    ['an emoji', 'ci-\u{1F680}'],
  ])('prevents look-alike names: %s is refused (printable ASCII only)', (_what, name) => {
    expect(() => validateName(name)).toThrow(/printable ASCII/);
  });

  it('keeps accepting printable ASCII names, spaces and punctuation included', () => {
    expect(validateName('Team A / nightly (CI) #3 @x_tok_y')).toBe('Team A / nightly (CI) #3 @x_tok_y');
    expect(validateName('token-for-tok_things')).toBe('token-for-tok_things');
  });

  it("folds names as the stores' indexes do: ASCII letters only", () => {
    expect(foldName('Deploy-Bot')).toBe('deploy-bot');
    expect(foldName('ÄRGER-X')).toBe('Ärger-x');
  });
});

describe('parseOverlap', () => {
  it.each([
    [undefined, 24 * 3_600_000],
    ['', 24 * 3_600_000],
    ['0', 0],
    ['1s', 1000],
    ['90m', 90 * 60_000],
    ['36h', 36 * 3_600_000],
    ['7d', 7 * 86_400_000],
    ['90d', 90 * 86_400_000],
  ])('reads %j', (input, expected) => {
    expect(parseOverlap(input)).toBe(expected);
  });

  it.each(['91d', '-1h', '1w', 'soon', '1.5h', '24 h'])('refuses %j, naming the field and its forms', (input) => {
    expect(() => parseOverlap(input)).toThrow(/overlap must be 0, <N>s, <N>m, <N>h or <N>d, at most 90d/);
  });
});

describe('what a name designates', () => {
  let n = 0;
  const record = (name: string, over: Partial<TokenRecord> = {}): TokenRecord => ({
    ...storedRecord({
      id: `tok_${++n}`,
      name,
      type: 'production',
      hash: `h${n}`,
      createdAt: NOW + n,
      createdBy: 't',
      expiresAt: null,
    }),
    ...over,
  });

  it("takes a token and its rotated-out predecessor as one token's two generations, the active one first", () => {
    const old = record('deploy', { replacedBy: 'tok_new', overlapEndsAt: NOW + 3_600_000 });
    const current = record('Deploy', { replaces: old.id });
    expect(resolveName('DEPLOY', [old, current], NOW)?.id).toBe(current.id);
    expect(designatedByName('deploy', [old, current], NOW).map((r) => r.id)).toEqual([current.id, old.id]);
    // Once the overlap ended, the old one is no longer designated.
    expect(designatedByName('deploy', [old, current], NOW + 3_600_000).map((r) => r.id)).toEqual([current.id]);
  });

  it('still refuses two unrelated active tokens of one name (clashes from before the case rule), rotated or not', () => {
    const upper = record('Twin');
    const lower = record('twin');
    const lowerOld = record('twin', { replacedBy: lower.id, overlapEndsAt: NOW + 1000 });
    expect(() => designatedByName('twin', [upper, lower, lowerOld], NOW)).toThrow(
      /2 live tokens are named "twin".*use the id/,
    );
  });

  it('designates a token still in its overlap when its replacement was revoked, before any expired one', () => {
    const expired = record('ci', { expiresAt: NOW - 1 });
    const old = record('ci', { overlapEndsAt: NOW + 1000 });
    expect(designatedByName('ci', [expired, old], NOW).map((r) => r.id)).toEqual([old.id]);
    expect(designatedByName('ci', [expired], NOW).map((r) => r.id)).toEqual([expired.id]);
    expect(designatedByName('ci', [], NOW)).toEqual([]);
  });

  it('shows a rotated token as rotated, ending at its overlap or its expiry, whichever is first', () => {
    const rotated = record('r', { expiresAt: NOW + 60_000, overlapEndsAt: NOW + 3_600_000, replacedBy: 'tok_x' });
    expect(toTokenView(rotated, NOW)).toMatchObject({
      state: 'rotated',
      replacedBy: 'tok_x',
      endsAt: new Date(NOW + 60_000).toISOString(),
      overlapEndsAt: new Date(NOW + 3_600_000).toISOString(),
      restrictions: null,
      leak: null,
    });
    const restricted = record('s', { restrictions: { routes: ['/npm/'], ratePerMinute: 60 } });
    expect(toTokenView(restricted, NOW).restrictions).toEqual({ routes: ['/npm/'], rate: 60 });
  });
});
