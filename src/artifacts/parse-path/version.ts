/**
 * Version-shaped strings, for every parser and for the sealed rule. No regular expressions: each
 * check is one bounded, left-to-right scan (a path is client input).
 */

/** Longer versions are neither guessed from a path nor sealed (no real version is this long). */
export const MAX_VERSION_CHARS = 256;

export function isDigitAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 0x30 && c <= 0x39;
}

/** `0` or 1-9 digits without a leading zero: a "plain number". */
export function isPlainNumber(s: string, start: number, end: number): boolean {
  const len = end - start;
  if (len < 1 || len > 9) return false;
  if (len > 1 && s.charCodeAt(start) === 0x30 /* 0 */) return false;
  for (let i = start; i < end; i++) if (!isDigitAt(s, i)) return false;
  return true;
}

/** Starts with a digit, or `v`/`V` then a digit: `1.0.0`, `v2.3`, `33.2.1-jre`. */
export function looksLikeVersion(s: string | undefined): s is string {
  if (s === undefined || s.length === 0 || s.length > MAX_VERSION_CHARS) return false;
  if (isDigitAt(s, 0)) return true;
  const c = s.charCodeAt(0);
  return (c === 0x76 || c === 0x56) && isDigitAt(s, 1);
}

/** Index of the last `sep` that is followed by a digit, or -1. */
export function lastSepBeforeDigit(s: string, sep: string): number {
  for (let i = s.lastIndexOf(sep); i >= 0; i = i === 0 ? -1 : s.lastIndexOf(sep, i - 1)) {
    if (isDigitAt(s, i + 1)) return i;
  }
  return -1;
}

/** Index of the first `sep` followed by a `MAJOR.MINOR.PATCH...` version, or -1 (npm, cargo file names). */
export function firstSepBeforeSemver(s: string, sep: string): number {
  for (let i = s.indexOf(sep); i >= 0; i = s.indexOf(sep, i + 1)) {
    if (startsWithSemverCore(s, i + 1)) return i;
  }
  return -1;
}

/** `N.N.N` at `start`, followed by the end or a non-digit, non-dot character. */
export function startsWithSemverCore(s: string, start: number): boolean {
  let i = start;
  for (let part = 0; part < 3; part++) {
    const from = i;
    while (i < s.length && isDigitAt(s, i)) i++;
    if (i === from || i - from > 9) return false;
    if (part < 2) {
      if (s.charCodeAt(i) !== 0x2e /* . */) return false;
      i++;
    }
  }
  return i === s.length || (s.charCodeAt(i) !== 0x2e && !isDigitAt(s, i));
}
