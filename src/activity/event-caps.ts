/**
 * Caps on the fields of an activity event that come from the client (or are otherwise not
 * bounded by the gateway), so that one event's JSON line, newline included, is always shorter
 * than MAX_EVENT_LINE_BYTES, whatever a request carries: a 12 KB User-Agent, a 4 KB path full
 * of `%00`, a forwarded address that is no address.
 *
 * A cap counts the bytes the value takes inside the JSON line: UTF-8, with JSON's escapes (`\"`
 * is 2 bytes, a control character `\u0000` 6, a lone surrogate `\udc00` 6). A value over its cap
 * is cut at a character boundary (never inside a UTF-8 sequence or a surrogate pair) and ends
 * with "…" (U+2026, 3 bytes, within the cap); the event's `truncated` lists the fields cut.
 *
 *   userAgent   512
 *   package     1024   (from the path, like version and file)
 *   version     256    npm's semver refuses longer versions; real ones of every ecosystem are shorter
 *   file        1024
 *   project     384    128 characters (all credentials.ts accepts) of at most 3 bytes: never cut
 *   tokenName   300    100 characters (all the token service accepts): never cut
 *   clientIp    64     an IP address is at most 45 characters; longer is not an address
 *   method      16     the proxy passes GET, HEAD and POST only
 *
 * The other fields are the gateway's own, bounded by construction: the ULID, the time, the
 * request id, the store's token id, the token type, ecosystem and kind, numbers and booleans.
 * With every capped field full and the longest numbers, the line stays under 4096 bytes
 * (test/activity/event-caps.test.ts builds that worst case).
 *
 * Cost: a value of at most cap/6 UTF-16 units cannot be over its cap (6 bytes is the most one
 * unit takes), so the usual short fields are passed by one length comparison; only longer
 * ones are measured, one charCodeAt loop, with no allocation unless the value is cut.
 */
import type { ActivityEvent, CappedField } from './event.js';

/** A recorded event's JSON line, newline included, is always shorter than this. */
export const MAX_EVENT_LINE_BYTES = 4096;

/** Bytes each capped field may take in the JSON line, escapes included. */
export const FIELD_CAPS: Readonly<Record<CappedField, number>> = Object.freeze({
  tokenName: 300,
  project: 384,
  package: 1024,
  version: 256,
  file: 1024,
  method: 16,
  clientIp: 64,
  userAgent: 512,
});

/** What a cut value ends with. */
export const TRUNCATION_MARK = '…';
const MARK_BYTES = 3;

/**
 * `value` if it takes at most `maxBytes` in a JSON string (UTF-8, escapes included), else its
 * longest prefix that, followed by "…", does. Never cuts a surrogate pair.
 */
export function capJsonString(value: string, maxBytes: number): string {
  const n = value.length;
  if (n * 6 <= maxBytes) return value;
  const room = maxBytes - MARK_BYTES;
  let bytes = 0;
  /** Where the prefix that fits in `room` ends: set at the first character that does not. */
  let cut = -1;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    let width: number;
    let units = 1;
    if (c < 0x80) {
      if (c >= 0x20) width = c === 0x22 || c === 0x5c ? 2 : 1;
      else width = c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d ? 2 : 6;
    } else if (c < 0x800) {
      width = 2;
    } else if (c < 0xd800 || c > 0xdfff) {
      width = 3;
    } else {
      const next = c <= 0xdbff && i + 1 < n ? value.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        width = 4;
        units = 2;
      } else {
        width = 6; // a lone surrogate: JSON.stringify writes it as \uXXXX
      }
    }
    if (cut < 0 && bytes + width > room) cut = i;
    bytes += width;
    if (bytes > maxBytes) return value.slice(0, cut) + TRUNCATION_MARK;
    i += units - 1;
  }
  return value;
}

/**
 * Cuts every capped field of `event` that is over its cap (see FIELD_CAPS) and lists them in
 * `event.truncated`, in field order. Leaves `truncated` as it is when nothing was cut. Written
 * out field by field: the recorder calls this for every event.
 */
export function capEventFields(event: ActivityEvent): void {
  let cut: CappedField[] | undefined;
  let v: string;
  if ((v = capJsonString(event.tokenName, FIELD_CAPS.tokenName)) !== event.tokenName) {
    event.tokenName = v;
    (cut ??= []).push('tokenName');
  }
  if ((v = capJsonString(event.project, FIELD_CAPS.project)) !== event.project) {
    event.project = v;
    (cut ??= []).push('project');
  }
  if (event.package !== null && (v = capJsonString(event.package, FIELD_CAPS.package)) !== event.package) {
    event.package = v;
    (cut ??= []).push('package');
  }
  if (event.version !== null && (v = capJsonString(event.version, FIELD_CAPS.version)) !== event.version) {
    event.version = v;
    (cut ??= []).push('version');
  }
  if (event.file !== null && (v = capJsonString(event.file, FIELD_CAPS.file)) !== event.file) {
    event.file = v;
    (cut ??= []).push('file');
  }
  if ((v = capJsonString(event.method, FIELD_CAPS.method)) !== event.method) {
    event.method = v;
    (cut ??= []).push('method');
  }
  if ((v = capJsonString(event.clientIp, FIELD_CAPS.clientIp)) !== event.clientIp) {
    event.clientIp = v;
    (cut ??= []).push('clientIp');
  }
  if (event.userAgent !== null && (v = capJsonString(event.userAgent, FIELD_CAPS.userAgent)) !== event.userAgent) {
    event.userAgent = v;
    (cut ??= []).push('userAgent');
  }
  if (cut !== undefined) event.truncated = cut;
}
