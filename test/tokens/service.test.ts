import { describe, expect, it } from 'vitest';
import { foldName } from '../../src/tokens/names.js';
import { parseExpiry, parseTokenTypeInput, validateName } from '../../src/tokens/service.js';

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

  it.each([
    ['tok_AbCdEfGhIjKlMnOp'],
    ['TOK_deploy'],
    ['tok_'],
  ])('prevents a name shaped like a token id (%s) from shadowing that id in revoke: refused', (name) => {
    expect(() => validateName(name)).toThrow(/must not start with "tok_"/);
  });

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

  it('folds names as the stores\' indexes do: ASCII letters only', () => {
    expect(foldName('Deploy-Bot')).toBe('deploy-bot');
    expect(foldName('ÄRGER-X')).toBe('Ärger-x');
  });
});
