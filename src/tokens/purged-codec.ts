import { fieldsToRecord } from './redis-codec.js';
import type { PurgedToken, TokenRecord } from './store.js';

/**
 * How both stores keep a purged CI token for the audit trail: its record as the Redis store's
 * field map (strings, JSON for the object fields, absent for null; redis-codec.ts), without its
 * hash, as one JSON text. The Redis purge script writes the same form from the token's HASH.
 */
export function encodePurged(record: TokenRecord): string {
  const fields: Record<string, string> = {};
  for (const [key, value] of Object.entries(record)) {
    if (key === 'hash' || value === null || value === undefined) continue;
    fields[key] = typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  return JSON.stringify(fields);
}

/** The archived record (hash blanked), or undefined for an entry that cannot be read back. */
export function decodePurged(json: string, purgedAt: number): PurgedToken | undefined {
  try {
    const fields = JSON.parse(json) as Record<string, string>;
    const record = fieldsToRecord({ ...fields, hash: '' });
    return record === undefined ? undefined : { record, purgedAt };
  } catch {
    return undefined; // one damaged entry must not hide the rest of the trail
  }
}
