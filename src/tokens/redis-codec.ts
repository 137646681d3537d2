import type { TokenType } from './format.js';
import { decodeCi, decodeLeak, decodeRestrictions, encodeJson } from './record-codec.js';
import type { AdminCredentialRecord, NewTokenRecord, TokenChange, TokenRecord } from './store.js';

/**
 * How the Redis store writes a record and reads it back. A token is a HASH with the fields id,
 * name, type, hash, createdAt, createdBy, and when set expiresAt, revokedAt, revokedBy,
 * lastUsedAt, and (schema 3) restrictions, leak, ci (JSON), replacedBy, overlapEndsAt, replaces
 * (an absent field is null); numbers are decimal strings.
 */

const num = (value: string | undefined): number | null => (value === undefined ? null : Number(value));

export function fieldsToRecord(f: Record<string, string>): TokenRecord | undefined {
  const { id, name, type, hash, createdAt, createdBy } = f;
  if (id === undefined || name === undefined || hash === undefined || createdAt === undefined) return undefined;
  return {
    id,
    name,
    type: type as TokenType,
    hash,
    createdAt: Number(createdAt),
    createdBy: createdBy ?? '',
    expiresAt: num(f.expiresAt),
    revokedAt: num(f.revokedAt),
    revokedBy: f.revokedBy ?? null,
    lastUsedAt: num(f.lastUsedAt),
    restrictions: decodeRestrictions(f.restrictions, id),
    replacedBy: f.replacedBy ?? null,
    overlapEndsAt: num(f.overlapEndsAt),
    replaces: f.replaces ?? null,
    leak: decodeLeak(f.leak, id),
    ci: decodeCi(f.ci, id),
  };
}

/** HGETALL as a Lua script returns it: [field, value, field, value, ...]. */
export function pairsToFields(flat: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return fields;
}

export function pairsToRecord(flat: string[]): TokenRecord | undefined {
  return fieldsToRecord(pairsToFields(flat));
}

/** A new record (a rotation's: with the token it replaces) as HSET's field/value list. */
export function recordToFields(record: NewTokenRecord, replaces: string | null = null): string[] {
  const fields: string[] = [
    'id',
    record.id,
    'name',
    record.name,
    'type',
    record.type,
    'hash',
    record.hash,
    'createdAt',
    String(record.createdAt),
    'createdBy',
    record.createdBy,
  ];
  if (record.expiresAt !== null) fields.push('expiresAt', String(record.expiresAt));
  const restrictions = encodeJson(record.restrictions);
  if (restrictions !== null) fields.push('restrictions', restrictions);
  const ci = encodeJson(record.ci);
  if (ci !== null) fields.push('ci', ci);
  if (replaces !== null) fields.push('replaces', replaces);
  return fields;
}

/** A change-log member, `<rev>:<subject>` (the subject may hold colons itself). */
export function parseChange(member: string): TokenChange {
  const colon = member.indexOf(':');
  return { rev: Number(member.slice(0, colon)), hash: member.slice(colon + 1) };
}

export function fieldsToAdminCredential(f: Record<string, string>): AdminCredentialRecord | undefined {
  const { salt, fingerprint, since } = f;
  if (salt === undefined || fingerprint === undefined || since === undefined) return undefined;
  return { salt, fingerprint, since: Number(since) };
}
