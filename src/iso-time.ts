/** 9999-12-31T23:59:59.999Z: later times have a six-digit year (`+010000-...`). */
const MAX_FOUR_DIGIT_YEAR_MS = 253_402_300_799_999;
let isoSecond = Number.NaN;
/** `YYYY-MM-DDTHH:MM:SS.` of isoSecond. */
let isoPrefix = '';

/**
 * `new Date(ms).toISOString()`, keeping the text up to the second from the previous call: log lines and events
 * come many per second, and the date and time to the second change far less often.
 */
export function isoTime(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms > MAX_FOUR_DIGIT_YEAR_MS) return new Date(ms).toISOString();
  const milli = ms % 1000;
  const second = ms - milli;
  if (second !== isoSecond) {
    isoPrefix = new Date(second).toISOString().slice(0, 20);
    isoSecond = second;
  }
  return `${isoPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}
