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
 *   userAgent   384
 *   package     768    (from the path, like version and file)
 *   version     128    real versions of every ecosystem are far shorter
 *   file        512
 *   project     384    128 characters (all credentials.ts accepts) of at most 3 bytes: never cut
 *   tokenName   300    100 characters (all the token service accepts): never cut
 *   clientIp    64     an IP address is at most 45 characters; longer is not an address
 *   method      24     the proxy passes GET, HEAD and POST only (4 characters: never measured)
 *   ci          each claim of a CI identity (from a signed ID token, still not the gateway's own):
 *               provider 48, subject 256, repository 160, ref 160, sha 72, workflow 128,
 *               runId 32, actor 64; the event lists `ci` as truncated when any was cut
 *   leak        source 64, url 1024, location 32 (only on `leaked` alerts, which have no path)
 *
 * The other fields are the gateway's own, bounded by construction: the ULID, the time, the
 * request id, the store's token id, the token type, ecosystem and kind, numbers and booleans.
 * With every capped field full and the longest numbers, a CI identity included, the line stays
 * under 4096 bytes (test/activity/event-caps.test.ts builds that worst case).
 *
 * Cost: a value of at most cap/6 UTF-16 units cannot be over its cap (6 bytes is the most one
 * unit takes), so the usual short fields are passed by one length comparison, with no call;
 * only longer ones are measured, one charCodeAt loop, with no allocation unless the value is cut.
 */
import type { ActivityCi, ActivityEvent, ActivityLeak, CappedField } from './event.js';

/** A recorded event's JSON line, newline included, is always shorter than this. */
export const MAX_EVENT_LINE_BYTES = 4096;

const TOKEN_NAME_CAP = 300;
const PROJECT_CAP = 384;
const PACKAGE_CAP = 768;
const VERSION_CAP = 128;
const FILE_CAP = 512;
const METHOD_CAP = 24;
const CLIENT_IP_CAP = 64;
const USER_AGENT_CAP = 384;

/** Bytes each claim of a CI identity may take (see above). */
export const CI_CAPS: Readonly<Record<keyof ActivityCi, number>> = Object.freeze({
  provider: 48,
  subject: 256,
  repository: 160,
  ref: 160,
  sha: 72,
  workflow: 128,
  runId: 32,
  actor: 64,
});
export const LEAK_CAPS: Readonly<Record<keyof ActivityLeak, number>> = Object.freeze({
  source: 64,
  url: 1024,
  location: 32,
});

/** Bytes each capped field may take in the JSON line, escapes included. */
export const FIELD_CAPS: Readonly<Record<CappedField, number>> = Object.freeze({
  tokenName: TOKEN_NAME_CAP,
  project: PROJECT_CAP,
  package: PACKAGE_CAP,
  version: VERSION_CAP,
  file: FILE_CAP,
  method: METHOD_CAP,
  clientIp: CLIENT_IP_CAP,
  userAgent: USER_AGENT_CAP,
  // Objects: each of their strings has its own cap (CI_CAPS, LEAK_CAPS); these are their sums.
  ci: Object.values(CI_CAPS).reduce((a, b) => a + b, 0),
  leak: Object.values(LEAK_CAPS).reduce((a, b) => a + b, 0),
});

/** What a cut value ends with. */
export const TRUNCATION_MARK = '…';
const MARK_BYTES = 3;

/** Bytes an ASCII character takes in a JSON string: 1; 2 for `"`, `\` and \b \t \n \f \r; 6 for other controls (`\u0000`). */
const ASCII_JSON_BYTES = new Uint8Array(128).map((_, c) => {
  if (c === 0x22 || c === 0x5c || c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d) return 2;
  return c < 0x20 ? 6 : 1;
});

/**
 * Bytes the character at `i` takes in a JSON string (UTF-8, JSON's escapes), as a negative
 * number when it is a surrogate pair (4 bytes, two units). A lone surrogate is 6: JSON.stringify
 * writes it as `\uXXXX`.
 */
function widthAt(value: string, i: number): number {
  const c = value.charCodeAt(i);
  if (c < 0x80) return ASCII_JSON_BYTES[c]!;
  if (c < 0x800) return 2;
  if (c < 0xd800 || c > 0xdfff) return 3;
  const next = c <= 0xdbff ? value.charCodeAt(i + 1) : 0; // NaN past the end: no pair
  return next >= 0xdc00 && next <= 0xdfff ? -4 : 6;
}

/** True when `value` takes at most `maxBytes` in a JSON string. Stops as soon as it is over. */
function fitsJson(value: string, maxBytes: number): boolean {
  const n = value.length;
  if (n * 6 <= maxBytes) return true; // no UTF-16 unit takes more than 6 bytes
  if (n > maxBytes) return false; // every unit takes at least 1
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const w = widthAt(value, i);
    if (w < 0) {
      bytes -= w;
      i++;
    } else {
      bytes += w;
    }
    if (bytes > maxBytes) return false;
  }
  return true;
}

/** `value` (known not to fit `maxBytes`) cut to its longest prefix that fits with the mark after it. */
function cutJson(value: string, maxBytes: number): string {
  const room = maxBytes - MARK_BYTES;
  let bytes = 0;
  for (let i = 0; i < value.length; i += 1) {
    const w = widthAt(value, i);
    if (bytes + Math.abs(w) > room) return value.slice(0, i) + TRUNCATION_MARK;
    bytes += Math.abs(w);
    if (w < 0) i++;
  }
  return value; // it fitted after all: nothing to cut
}

/**
 * `value` if it takes at most `maxBytes` in a JSON string (UTF-8, escapes included), else its
 * longest prefix that, followed by "…", does. Never cuts a surrogate pair.
 */
export function capJsonString(value: string, maxBytes: number): string {
  return fitsJson(value, maxBytes) ? value : cutJson(value, maxBytes);
}

/** fitsJson with its first test where it is called (small enough to be inlined): the usual short field costs no call. */
const fits = (value: string, maxBytes: number) => value.length * 6 <= maxBytes || fitsJson(value, maxBytes);

/** Cuts one field (a string over its cap) to its cap; gives the list of fields cut so far. */
function cutField(event: ActivityEvent, field: CappedField, cut: CappedField[] | undefined): CappedField[] | undefined {
  (event as unknown as Record<CappedField, string>)[field] = cutJson(event[field] as string, FIELD_CAPS[field]);
  (cut ??= []).push(field);
  return cut;
}

/**
 * Cuts every capped field of `event` that is over its cap (see FIELD_CAPS) and lists them in
 * `event.truncated`, in field order. Leaves `truncated` as it is when nothing was cut. The
 * recorder calls this for every event: a field short enough to fit whatever it holds costs one
 * comparison; only longer ones are measured.
 */
export function capEventFields(e: ActivityEvent): void {
  let cut: CappedField[] | undefined;
  if (!fits(e.tokenName, TOKEN_NAME_CAP)) cut = cutField(e, 'tokenName', cut);
  if (!fits(e.project, PROJECT_CAP)) cut = cutField(e, 'project', cut);
  if (e.package !== null && !fits(e.package, PACKAGE_CAP)) cut = cutField(e, 'package', cut);
  if (e.version !== null && !fits(e.version, VERSION_CAP)) cut = cutField(e, 'version', cut);
  if (e.file !== null && !fits(e.file, FILE_CAP)) cut = cutField(e, 'file', cut);
  if (!fits(e.method, METHOD_CAP)) cut = cutField(e, 'method', cut);
  if (!fits(e.clientIp, CLIENT_IP_CAP)) cut = cutField(e, 'clientIp', cut);
  if (e.userAgent !== null && !fits(e.userAgent, USER_AGENT_CAP)) cut = cutField(e, 'userAgent', cut);
  if (e.ci !== null && cutIdentities.has(e.ci)) (cut ??= []).push('ci');
  if (cut !== undefined) e.truncated = cut;
}

/** The CI identities capIdentity returned with a claim cut: their events list `ci` as truncated. */
const cutIdentities = new WeakSet<object>();

/**
 * A CI identity as events carry it: only the claims it has, each cut to its cap. Made once per
 * cached token (the recorder remembers it), not per event.
 */
export function capIdentity(ci: Readonly<Record<string, unknown>>): ActivityCi {
  let wasCut = false;
  const out: Record<string, string> = {};
  for (const key of Object.keys(CI_CAPS) as (keyof ActivityCi)[]) {
    const value = ci[key];
    if (typeof value !== 'string') continue;
    const fitted = capJsonString(value, CI_CAPS[key]);
    if (fitted !== value) wasCut = true;
    out[key] = fitted;
  }
  out.provider ??= '';
  out.subject ??= '';
  const identity = Object.freeze(out) as unknown as ActivityCi;
  if (wasCut) cutIdentities.add(identity);
  return identity;
}

/** A leak report as a `leaked` alert carries it, each field cut to its cap; the second value says whether one was. */
export function capLeak(leak: ActivityLeak): [ActivityLeak, boolean] {
  const source = capJsonString(leak.source, LEAK_CAPS.source);
  const url = leak.url === null ? null : capJsonString(leak.url, LEAK_CAPS.url);
  const location = leak.location === null ? null : capJsonString(leak.location, LEAK_CAPS.location);
  return [{ source, url, location }, source !== leak.source || url !== leak.url || location !== leak.location];
}
