import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createError } from '../../errors.js';
import type { SecretScanningConfig } from '../../config/index.js';

/** A key set is read again for an unknown key id at most this often (a flood of made-up ids costs nothing). */
export const KEY_REFRESH_MIN_INTERVAL_MS = 5_000;
const FETCH_TIMEOUT_MS = 5_000;
const MAX_KEY_SET_BYTES = 256 * 1024;

/**
 * The public keys that sign secret-scanning reports, in GitHub's format:
 * `{"public_keys": [{"key_identifier": "...", "key": "-----BEGIN PUBLIC KEY-----...", "is_current": true}]}`.
 * Every listed key verifies (GitHub signs with a retiring key for a while after rotating), not
 * only the current one. Read from a file or fetched from a URL; read again when a report names a
 * key id not known yet, at most once every KEY_REFRESH_MIN_INTERVAL_MS.
 */
export interface ScannerKeys {
  /** The key with this identifier; undefined when the set has none; TOLLGATE_ERR_SCANNING_UNAVAILABLE when it cannot be read. */
  key(id: string): Promise<KeyObject | undefined>;
}

export function createScannerKeys(config: SecretScanningConfig, now: () => number = Date.now): ScannerKeys {
  let keys = new Map<string, KeyObject>();
  let loadedAt = -Infinity;
  let loading: Promise<void> | undefined;

  async function read(): Promise<string> {
    if (config.keysFile !== undefined) return readFile(config.keysFile, 'utf8');
    const res = await fetch(config.keysUrl, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error' });
    if (!res.ok) throw new Error(`the key set's URL answered ${res.status}`);
    const text = await res.text();
    if (text.length > MAX_KEY_SET_BYTES) throw new Error('the key set is too large');
    return text;
  }

  async function load(): Promise<void> {
    let text: string;
    try {
      text = await read();
    } catch (err) {
      throw createError('TOLLGATE_ERR_SCANNING_UNAVAILABLE', (err as Error).message, { cause: err });
    }
    keys = parseKeySet(text);
    loadedAt = now();
  }

  return {
    async key(id) {
      if (loadedAt === -Infinity || (!keys.has(id) && now() - loadedAt >= KEY_REFRESH_MIN_INTERVAL_MS)) {
        loading ??= load().finally(() => {
          loading = undefined;
        });
        await loading;
      }
      return keys.get(id);
    },
  };
}

/** GitHub's key set → key id → public key. A key that does not parse is left out; a set that does not parse is an error. */
export function parseKeySet(text: string): Map<string, KeyObject> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw createError('TOLLGATE_ERR_SCANNING_UNAVAILABLE', 'the key set is not JSON');
  }
  const list = (doc as { public_keys?: unknown } | null)?.public_keys;
  if (!Array.isArray(list))
    throw createError('TOLLGATE_ERR_SCANNING_UNAVAILABLE', 'the key set has no public_keys list');
  const keys = new Map<string, KeyObject>();
  for (const entry of list as { key_identifier?: unknown; key?: unknown }[]) {
    if (typeof entry?.key_identifier !== 'string' || typeof entry.key !== 'string') continue;
    try {
      keys.set(entry.key_identifier, createPublicKey(entry.key));
    } catch {
      // a key this runtime cannot read verifies nothing
    }
  }
  return keys;
}
