import { readFileSync } from 'node:fs';
import { generateToken, parseTokenType } from '../tokens/format.js';
import { inputError } from './options.js';

/** Well-formed unknown tokens (valid checksum) for --invalid-share: each is one store read per gateway, then a negative-cache hit. */
export const INVALID_TOKENS = 64;
/** With --cold-share: the first lines of the file, reused all run long (cached after their first use on each gateway). */
export const WARM_TOKENS = 10;

/**
 * The tokens of a file, one a line (blank lines and surrounding spaces ignored, repeats counted
 * once). A line that is not a well-formed Tollgate token is named by its number, never shown.
 */
export function readTokenFile(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw inputError(`cannot read the token file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  const tokens = new Set<string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    if (!parseTokenType(line)) {
      throw inputError(
        `the token file ${file}, line ${i + 1}: not a Tollgate token (tgp_ or tgd_, 40 characters, valid checksum)`,
      );
    }
    tokens.add(line);
  }
  if (tokens.size === 0) throw inputError(`the token file ${file} holds no tokens (one a line)`);
  return [...tokens];
}

/** The one secret in a small file (the admin token), trimmed; never shown. */
export function readSecretFile(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw inputError(`cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  const secret = text.trim();
  if (secret === '') throw inputError(`the ${what} file ${file} is empty`);
  // eslint-disable-next-line no-control-regex -- on purpose: the file holds one secret on one line, no control character
  if (/[\u0000-\u001f\u007f]/.test(secret))
    throw inputError(`the ${what} file ${file} must hold the ${what} alone, on one line`);
  return secret;
}

export type RequestKind = 'warm' | 'invalid' | 'cold';

export interface TokenMix {
  /** The Authorization header of the next request. */
  next(): string;
  /** Requests sent so far, by kind. */
  readonly sent: Record<RequestKind, number>;
  /** Cold tokens not used yet (Infinity without --cold-share). */
  coldLeft(): number;
  /** Set when a cold request found no unused token left: the run must stop. */
  readonly exhausted: boolean;
}

export interface TokenMixOptions {
  /** The tokens that answer 200: the whole file, or the token --revocation created. */
  tokens: string[];
  invalidShare: number;
  coldShare: number;
  /** Basic with this project as the user; undefined: Bearer. */
  basicProject: string | undefined;
  /** Called once, when the cold tokens run out. */
  onExhausted?: () => void;
}

/** How many tokens the file needs for --cold-share: the warm ones and at least one cold one. */
export function checkColdTokens(
  count: number,
  coldShare: number,
  expectedRequests: number | undefined,
  file: string,
): void {
  if (coldShare === 0) return;
  if (count <= WARM_TOKENS) {
    throw inputError(
      `--cold-share uses the first ${WARM_TOKENS} tokens of the file as warm ones and each further token once: ${file} holds ${count}`,
    );
  }
  if (expectedRequests === undefined) return;
  const needed = Math.ceil(expectedRequests * coldShare);
  if (count - WARM_TOKENS < needed) {
    throw inputError(
      `--cold-share ${coldShare} at this --rate and --duration needs up to ${needed} unused tokens beyond the first ${WARM_TOKENS}: ${file} holds ${count}`,
    );
  }
}

/**
 * Chooses each request's token. The kinds are interleaved by largest deficit, so after n requests
 * each kind has had its share of n within one request (no randomness: the cold tokens a run needs
 * are known from its request count). Warm requests cycle through the warm tokens; each cold
 * request takes the next token of the file never used in this run, so no gateway of a fleet has
 * cached it from this run, whichever gateway the load balancer picks.
 */
export function createTokenMix(options: TokenMixOptions): TokenMix {
  const header =
    options.basicProject === undefined
      ? (token: string) => `Bearer ${token}`
      : (token: string) => `Basic ${Buffer.from(`${options.basicProject}:${token}`).toString('base64')}`;
  const warmCount = options.coldShare > 0 ? Math.min(WARM_TOKENS, options.tokens.length) : options.tokens.length;
  const warm = options.tokens.slice(0, warmCount).map(header);
  const cold = options.tokens; // from index warmCount on, each once
  let coldNext = warmCount;
  const invalid =
    options.invalidShare > 0
      ? Array.from({ length: INVALID_TOKENS }, (_, i) =>
          header(generateToken(i % 2 === 0 ? 'production' : 'development')),
        )
      : [];
  const warmShare = 1 - options.invalidShare - options.coldShare;
  const sent: Record<RequestKind, number> = { warm: 0, invalid: 0, cold: 0 };
  let total = 0;
  let exhausted = false;

  return {
    sent,
    get exhausted() {
      return exhausted;
    },
    coldLeft: () => (options.coldShare > 0 ? cold.length - coldNext : Infinity),
    next: function nextAuthorization(): string {
      total++;
      const dInvalid = options.invalidShare * total - sent.invalid;
      const dCold = options.coldShare * total - sent.cold;
      const dWarm = warmShare * total - sent.warm;
      if (dInvalid > 0 && dInvalid >= dCold && dInvalid >= dWarm) {
        return invalid[sent.invalid++ % invalid.length]!;
      }
      if (dCold > 0 && dCold >= dWarm) {
        if (coldNext < cold.length) {
          sent.cold++;
          return header(cold[coldNext++]!);
        }
        if (!exhausted) {
          exhausted = true;
          options.onExhausted?.();
        }
      }
      return warm[sent.warm++ % warm.length]!;
    },
  };
}
