import { tokenEndsAt, type CiIdentity, type LeakReport, type PurgedToken, type TokenRecord } from '../tokens/store.js';

export interface AuditEntry {
  time: string;
  /**
   * `rotated`: this token was created as the replacement of `replaces`. `purged`: an expired
   * token issued to a CI job, deleted from the store (its earlier entries stay in the trail).
   */
  action: 'created' | 'rotated' | 'revoked' | 'purged';
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
 * Tokens issued to CI jobs and purged once expired come from the store's record of the purge,
 * with one more entry for the purge itself.
 */
export function auditEntries(records: readonly TokenRecord[], purged: readonly PurgedToken[] = []): AuditEntry[] {
  const live = new Set(records.map((r) => r.id));
  const gone = purged.filter((p) => !live.has(p.record.id));
  const all = [...records, ...gone.map((p) => p.record)];
  const byId = new Map(all.map((r) => [r.id, r]));
  const entries: AuditEntry[] = [];
  for (const { record: r, purgedAt } of gone) {
    entries.push({
      time: iso(purgedAt),
      action: 'purged',
      by: 'tollgate',
      tokenId: r.id,
      tokenName: r.name,
      tokenType: r.type,
      detail:
        r.expiresAt === null
          ? 'deleted from the token store'
          : `expired ${iso(r.expiresAt)}, deleted from the token store`,
      ...(r.ci ? { ci: r.ci } : {}),
    });
  }
  for (const r of all) {
    const what = { tokenId: r.id, tokenName: r.name, tokenType: r.type, ...(r.ci ? { ci: r.ci } : {}) };
    if (r.replaces !== null) {
      entries.push({
        time: iso(r.createdAt),
        action: 'rotated',
        by: r.createdBy,
        ...what,
        detail: rotationDetail(r, byId.get(r.replaces)),
        replaces: r.replaces,
      });
    } else {
      entries.push({ time: iso(r.createdAt), action: 'created', by: r.createdBy, ...what, detail: null });
    }
    if (r.revokedAt !== null) {
      const leak = r.leak ?? undefined;
      entries.push({
        time: iso(r.revokedAt),
        action: 'revoked',
        by: r.revokedBy ?? 'unknown',
        ...what,
        detail: leak ? leakDetail(leak) : null,
        ...(leak ? { leak } : {}),
      });
    }
  }
  return entries.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
}
