import { GatewayError } from '../errors.js';
import { isLive, tokenState, type TokenRecord } from './store.js';

/**
 * Token names: what a new one may be, how names compare, and which token a name designates.
 *
 * A name is printable ASCII (letters, digits, spaces, punctuation), so that no two names can look
 * the same while being different (a Cyrillic "а" beside a Latin "a"), at most MAX_NAME_LENGTH
 * characters, and never shaped like a token id (`tok_...`): the CLI takes an id or a name, and a
 * name spelled like an id would make one stand for the other. Names are unique among live tokens
 * ignoring case. Tokens created before these rules keep their names: two live tokens whose names
 * differ only in case stay usable and listed, and a lookup by such a name is refused as ambiguous
 * (use the id) rather than guessed. A rotation makes two live tokens of one name on purpose: the
 * replacement is active, its predecessor `rotated` until its overlap ends; they are one token's two
 * generations, so only active tokens hold a name and count towards an ambiguity.
 */

export const MAX_NAME_LENGTH = 100;
const TOKEN_ID_SHAPE = /^tok_/i;

export function validateName(input: string | undefined): string {
  const name = (input ?? '').trim();
  if (name.length === 0) throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT', 'name is required');
  if (name.length > MAX_NAME_LENGTH)
    throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT', `name must be at most ${MAX_NAME_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name))
    throw new GatewayError('TOLLGATE_ERR_TOKEN_INPUT', 'name must not contain control characters');
  if (!/^[\x20-\x7e]+$/.test(name)) {
    throw new GatewayError(
      'TOLLGATE_ERR_TOKEN_INPUT',
      'name must be printable ASCII: letters A-Z, digits, spaces and punctuation (letters of other scripts can look like these)',
    );
  }
  if (TOKEN_ID_SHAPE.test(name)) {
    throw new GatewayError(
      'TOLLGATE_ERR_TOKEN_INPUT',
      'name must not start with "tok_": that is how token ids start, and revoke takes either',
    );
  }
  return name;
}

/**
 * The form names are compared in: ASCII letters lower-cased, every other character as it is
 * (names written before the ASCII rule may hold others). SQLite's lower() and Redis Lua's
 * string.lower() fold exactly these, so the stores' indexes agree with this function.
 */
export function foldName(name: string): string {
  return name.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}

/**
 * Which of the non-revoked tokens whose name folds like the one asked for it designates: the one
 * active token; several active ones (names that clash from before the case rule) is ambiguous and
 * refused; none active, the newest still in a rotation overlap, else the newest expired one
 * (revoking that changes nothing but its label).
 */
export function resolveName(
  name: string,
  candidates: readonly TokenRecord[],
  now = Date.now(),
): TokenRecord | undefined {
  const open = candidates.filter((r) => r.revokedAt === null);
  const active = open.filter((r) => tokenState(r, now) === 'active');
  if (active.length > 1) {
    throw new GatewayError(
      'TOLLGATE_ERR_TOKEN_AMBIGUOUS',
      `${active.length} live tokens are named "${name}" ignoring case (${active.map((r) => r.id).join(', ')}): use the id`,
    );
  }
  if (active.length === 1) return active[0];
  const newest = [...open].sort((a, b) => b.createdAt - a.createdAt);
  return newest.find((r) => isLive(r, now)) ?? newest[0];
}

/**
 * What a name designates for revocation: the token resolveName chooses, then every other live
 * token of that name (earlier generations still in their rotation overlap). Empty for none.
 */
export function designatedByName(name: string, candidates: readonly TokenRecord[], now = Date.now()): TokenRecord[] {
  const chosen = resolveName(name, candidates, now);
  if (!chosen) return [];
  return [chosen, ...candidates.filter((r) => r.id !== chosen.id && isLive(r, now))];
}
