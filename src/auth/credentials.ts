import { parseTokenType, type TokenType } from '../tokens/format.js';

/** The project a download counts against when the client names none (Bearer, or Basic with an empty user). */
export const DEFAULT_PROJECT = 'default';
/** Longest Authorization header value looked at; anything longer is malformed. */
export const MAX_AUTHORIZATION_LENGTH = 1024;
const MAX_PROJECT_LENGTH = 128;

export interface Credential {
  token: string;
  tokenType: TokenType;
  project: string;
}

export type CredentialResult =
  | { kind: 'ok'; credential: Credential }
  /** No credential at all: the challenge Maven, pip and cargo expect. Not a failure. */
  | { kind: 'missing' }
  /** Something was sent, but it is not a well-formed Tollgate token. No store read. */
  | { kind: 'malformed' };

const MISSING: CredentialResult = { kind: 'missing' };
const MALFORMED: CredentialResult = { kind: 'malformed' };
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const TOKEN_SHAPED = /tg[pd]_[0-9A-Za-z]{20,}/;
// Printable ASCII and non-control Unicode: a project name ends up in logs and metrics.
// eslint-disable-next-line no-control-regex
const BAD_PROJECT = /[\u0000-\u001f\u007f-\u009f]/;

/** `value` starts with `scheme` (lower-case ASCII), in any case, and it is `length` long: no lower-cased copy per request. */
function isScheme(value: string, length: number, scheme: string): boolean {
  if (length !== scheme.length) return false;
  for (let i = 0; i < length; i++) {
    const c = value.charCodeAt(i);
    // ASCII letters only: | 0x20 lower-cases A-Z; a non-letter never matches a letter that way.
    if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== scheme.charCodeAt(i)) return false;
  }
  return true;
}

function tokenCredential(token: string, project: string): CredentialResult {
  const tokenType = parseTokenType(token);
  return tokenType ? { kind: 'ok', credential: { token, tokenType, project } } : MALFORMED;
}

/**
 * Reads the credential from an Authorization header value. Pure: no I/O, no exceptions.
 *
 * - `Bearer <token>` (npm's `_authToken`, cargo, curl): project `default`.
 * - `Basic base64(project:token)` (pip, Maven, Gradle, NuGet, Composer, Go, apt): the user names
 *   the project (empty → `default`). `Basic base64(token:)` (token as user, empty password) is
 *   accepted too, as some clients only have a single "token" field.
 * Scheme names are case-insensitive.
 */
export function extractCredential(header: string | undefined): CredentialResult {
  if (header === undefined) return MISSING;
  const value = header.trim();
  if (value === '') return MISSING;
  if (value.length > MAX_AUTHORIZATION_LENGTH) return MALFORMED;
  const space = value.indexOf(' ');
  if (space <= 0) return MALFORMED;
  const param = value.slice(space + 1).trim();

  if (isScheme(value, space, 'bearer')) return tokenCredential(param, DEFAULT_PROJECT);
  if (!isScheme(value, space, 'basic') || !BASE64.test(param)) return MALFORMED;

  const decoded = Buffer.from(param, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return MALFORMED;
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (password === '' && user !== '') return tokenCredential(user, DEFAULT_PROJECT);
  if (user.length > MAX_PROJECT_LENGTH || BAD_PROJECT.test(user)) return MALFORMED;
  // A token pasted into the user field too must not become a project name (logs, metrics, events).
  const project = user === '' || TOKEN_SHAPED.test(user) ? DEFAULT_PROJECT : user;
  return tokenCredential(password, project);
}
