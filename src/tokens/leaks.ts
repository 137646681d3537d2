import { hashToken, parseTokenType } from './format.js';
import { isLive, type LeakReport, type TokenRecord, type TokenStore } from './store.js';

/**
 * Leaked tokens: a secret scanner (GitHub secret scanning, gitleaks, trufflehog, a script) reports
 * token values it found; each one that is a live Tollgate token is revoked on the spot, recording
 * who reported it and where it was found. Shared by the GitHub secret-scanning endpoint and the
 * admin API's revoke-leaked; the answer is GitHub's verdict format, so both can return it as is.
 */

/** One reported value, as a scanner found it (GitHub's report: token, type, url, source → location). */
export interface LeakReportInput {
  token: string;
  type?: string | undefined;
  url?: string | undefined;
  location?: string | undefined;
}

/**
 * Who reports: `source` names the scanner (`github`, `gitleaks`); `by` is the revokedBy recorded;
 * `clientIp`, where the report came from (for the alert; not recorded on the token).
 */
export interface LeakReporter {
  source: string;
  by: string;
  clientIp?: string | undefined;
}

/** GitHub's verdict for one reported value. Never the value itself: its SHA-256. */
export interface LeakVerdict {
  token_hash: string;
  token_type: string;
  label: 'true_positive' | 'false_positive';
}

export interface LeakOutcome {
  /** One per report, in order. */
  verdicts: LeakVerdict[];
  /** The tokens this call revoked. */
  revoked: TokenRecord[];
}

export const DEFAULT_LEAK_TOKEN_TYPE = 'tollgate_token';
const MAX_URL_CHARS = 2048;
const MAX_LABEL_CHARS = 100;

/** A reporter's text as recorded: control characters out, bounded length; empty → null. */
function clean(value: string | undefined, max: number): string | null {
  const text = (value ?? '')
    // eslint-disable-next-line no-control-regex -- on purpose: control characters are dropped
    .replace(/[\u0000-\u001f\u007f]/g, '')
    .trim()
    .slice(0, max);
  return text === '' ? null : text;
}

/**
 * Revokes every reported value that is a live token (not revoked, not past its end; a token in its
 * rotation overlap is live): `true_positive`. Anything else is `false_positive`: not a token's
 * shape or checksum, unknown, already revoked or ended, or revoked meanwhile by someone else. A
 * value reported twice in one call gets the same verdict twice. `token_type` echoes the report's
 * type (default `tollgate_token`).
 */
export async function revokeLeakedTokens(
  store: TokenStore,
  reports: readonly LeakReportInput[],
  reporter: LeakReporter,
  now = Date.now(),
): Promise<LeakOutcome> {
  const source = clean(reporter.source, MAX_LABEL_CHARS) ?? 'unknown';
  const byHash = new Map<string, LeakVerdict['label']>();
  const revoked: TokenRecord[] = [];
  const verdicts: LeakVerdict[] = [];
  for (const report of reports) {
    // The hash of the value exactly as reported: GitHub checks it against its own.
    const value = typeof report.token === 'string' ? report.token : '';
    const tokenHash = hashToken(value);
    let label = byHash.get(tokenHash);
    if (label === undefined) {
      label = 'false_positive';
      // The shape and checksum first: a made-up value costs no store read.
      const record = parseTokenType(value) ? await store.findByHash(tokenHash) : undefined;
      if (record && isLive(record, now)) {
        const leak: LeakReport = {
          source,
          url: clean(report.url, MAX_URL_CHARS),
          location: clean(report.location, MAX_LABEL_CHARS),
        };
        const done = await store.revokeIds([record.id], reporter.by, now, leak);
        if (done.length > 0) {
          revoked.push(...done);
          label = 'true_positive';
        }
      }
      byHash.set(tokenHash, label);
    }
    verdicts.push({
      token_hash: tokenHash,
      token_type: clean(report.type, MAX_LABEL_CHARS) ?? DEFAULT_LEAK_TOKEN_TYPE,
      label,
    });
  }
  return { verdicts, revoked };
}

/** Reports leaked values and returns GitHub-style verdicts (the secret-scanning endpoint, revoke-leaked). */
export type ReportLeaks = (reports: LeakReportInput[], reporter: LeakReporter) => Promise<LeakVerdict[]>;

/**
 * Leaked tokens, whoever reports them (signed secret-scanning reports on the proxy port, the admin
 * API's revoke-leaked): each live one revoked (revokeLeakedTokens), then `onRevoked` told which
 * ones this report revoked (the gateway hands it activity's leak alert: counted, logged, written to
 * the Production sinks). This module knows no alert, as the cache knows no store.
 */
export function createLeakReporting(
  store: TokenStore,
  onRevoked: (revoked: readonly TokenRecord[], reporter: LeakReporter) => void,
): ReportLeaks {
  return async function reportLeaks(reports, reporter) {
    const { verdicts, revoked } = await revokeLeakedTokens(store, reports, reporter);
    onRevoked(revoked, reporter);
    return verdicts;
  };
}
