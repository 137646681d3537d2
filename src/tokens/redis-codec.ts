import type { TokenType } from './format.js';
import type { NewTokenRecord, TokenChange, TokenRecord } from './store.js';

/** How the Redis store writes a token record (a HASH, numbers as decimal strings) and reads it back. */

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
  };
}

export function pairsToRecord(flat: string[]): TokenRecord | undefined {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return fieldsToRecord(fields);
}

export function parseChange(member: string): TokenChange {
  const colon = member.indexOf(':');
  return { rev: Number(member.slice(0, colon)), hash: member.slice(colon + 1) };
}

/** A new record as HSET's field/value list (an absent field is null). */
export function recordToFields(record: NewTokenRecord): string[] {
  const fields: string[] = [
    'id', record.id, 'name', record.name, 'type', record.type, 'hash', record.hash,
    'createdAt', String(record.createdAt), 'createdBy', record.createdBy,
  ];
  if (record.expiresAt !== null) fields.push('expiresAt', String(record.expiresAt));
  return fields;
}
