import { tokenEndsAt, type CiIdentity, type LeakReport, type TokenRecord } from '../tokens/store.js';

export interface AuditEntry {
  time: string;
  /** `rotated`: this token was created as the replacement of `replaces`. */
  action: 'created' | 'rotated' | 'revoked';
  by: string;
  tokenId: string;
  tokenName: string;
  tokenType: TokenRecord['type'];
  /** A line for people: what a rotation replaced and until when, why a token was revoked; null for nothing more. */
  detail: string | null;
  /** rotated: the id of the token replaced. */
  replaces?: string;
  /** revoked as leaked: the report (who found it, where). */
  leak?: LeakReport;
  /** A token issued to a CI job: the job. */
  ci?: CiIdentity;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** `leaked, found by gitleaks at https://... (commit)`. */
export function leakDetail(leak: LeakReport): string {
  return `leaked, found by ${leak.source}${leak.url ? ` at ${leak.url}` : ''}${leak.location ? ` (${leak.location})` : ''}`;
}

function rotationDetail(record: TokenRecord, previous: TokenRecord | undefined): string {
  if (!previous) return `replaces ${record.replaces}`;
  const endsAt = tokenEndsAt(previous);
  if (endsAt === null) return `replaces ${previous.id}`;
  return endsAt > record.createdAt
    ? `replaces ${previous.id}, which works until ${iso(endsAt)}`
    : `replaces ${previous.id}, refused from then on`;
}

/**
 * The audit trail of token changes, read from the token records themselves (createdAt/By,
 * replaces, revokedAt/By, leak): it lives in the store, so it is fleet-wide and cannot drift from
 * the tokens. A rotation is one entry (the new token, `rotated`); each revocation is one more.
 */
export function auditEntries(records: readonly TokenRecord[]): AuditEntry[] {
  const byId = new Map(records.map((r) => [r.id, r]));
  const entries: AuditEntry[] = [];
  for (const r of records) {
    const what = { tokenId: r.id, tokenName: r.name, tokenType: r.type, ...(r.ci ? { ci: r.ci } : {}) };
    if (r.replaces !== null) {
      entries.push({
        time: iso(r.createdAt), action: 'rotated', by: r.createdBy, ...what,
        detail: rotationDetail(r, byId.get(r.replaces)), replaces: r.replaces,
      });
    } else {
      entries.push({ time: iso(r.createdAt), action: 'created', by: r.createdBy, ...what, detail: null });
    }
    if (r.revokedAt !== null) {
      const leak = r.leak ?? undefined;
      entries.push({
        time: iso(r.revokedAt), action: 'revoked', by: r.revokedBy ?? 'unknown', ...what,
        detail: leak ? leakDetail(leak) : null, ...(leak ? { leak } : {}),
      });
    }
  }
  return entries.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
}
