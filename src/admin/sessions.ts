import { randomBytes, scrypt } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../logging/logger.js';
import type { ChangeBatch, ChangeFeed } from '../tokens/change-feed.js';
import { changeSubject, type AdminCredentialRecord, type AdminRecords } from '../tokens/store.js';

/**
 * What ends an admin browser session before its expiry, shared by every worker and instance on
 * the same token store (a per-process deny list let a signed-out cookie keep working on the
 * other workers):
 *
 * - Sign-out records the session id in the store until the session would have expired.
 * - The admin credential: each instance records at start a fingerprint of its admin token (scrypt
 *   with a per-store random salt: an admin token may be a weak passphrase, and the store must not
 *   be a way to test guesses quickly; never the token). An instance that starts with another admin
 *   token replaces it, with the time: sessions issued before then are void on every instance,
 *   including those still running with the previous token (whose own cookies the new token's
 *   instances refuse anyway, by signature).
 *
 * Both are read like tokens: cached in the process, the entries dropped when the store's change
 * log names them (`session:<id>`, `admin-credential`) through the process's change feed. Without
 * a feed nothing is cached and every check reads the store.
 */

export interface AdminSessionState {
  /** At start: records this instance's admin credential, voiding older sessions everywhere if it changed. */
  registerCredential(token: string): Promise<void>;
  /** False for a signed-out session, or one issued before the admin credential last changed. */
  isLive(id: string, issuedAt: number): Promise<boolean>;
  /** Signs the session out on every instance sharing the store. */
  end(id: string, expiresAt: number): Promise<void>;
  close(): void;
}

export interface AdminSessionStateOptions {
  store: AdminRecords;
  /** The process's change feed over the same store (the token cache's). */
  feed?: ChangeFeed;
  /** How long a cached answer is kept at most, a backstop to the change feed. */
  cacheTtlMs: number;
  logger: Logger;
  now?: () => number;
}

/** scrypt cost: N=2^14, r=8 (16 MiB, tens of ms), once per start; a guess costs an attacker the same. */
const SCRYPT = { N: 2 ** 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const MAX_CACHED_SESSIONS = 10_000;
const REGISTER_ATTEMPTS = 5;

export function credentialFingerprint(token: string, salt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    scrypt(token, `tollgate-admin-credential:${salt}`, 32, SCRYPT, (err, key) =>
      err ? reject(err) : resolve(key.toString('base64url')),
    );
  });
}

export function createAdminSessionState(options: AdminSessionStateOptions): AdminSessionState {
  const { store, feed, logger } = options;
  const now = options.now ?? Date.now;
  const revoked = new LRUCache<string, boolean>({ max: MAX_CACHED_SESSIONS, ttl: options.cacheTtlMs });
  let credential: Promise<AdminCredentialRecord | undefined> | undefined;
  let ownFingerprint: string | undefined;
  /** Bumped on every invalidation: a store read that straddles one is not cached. */
  let epoch = 0;

  function readCredential(): Promise<AdminCredentialRecord | undefined> {
    if (credential) return credential;
    const read = store.readAdminCredential();
    if (feed) {
      credential = read;
      read.catch(() => {
        if (credential === read) credential = undefined;
      });
    }
    return read;
  }

  async function isRevoked(id: string): Promise<boolean> {
    const cached = revoked.get(id);
    if (cached !== undefined) return cached;
    const startEpoch = epoch;
    const answer = await store.isSessionRevoked(id, now());
    if (feed && epoch === startEpoch) revoked.set(id, answer);
    return answer;
  }

  async function credentialChanged(): Promise<void> {
    const record = await readCredential();
    if (record && ownFingerprint !== undefined && record.fingerprint !== ownFingerprint) {
      logger.warn(
        { event: 'admin.credential_replaced', since: new Date(record.since).toISOString() },
        'another instance started with a different admin token: sessions issued before then are void everywhere; restart this instance with the new admin token',
      );
    }
  }

  function onChanges(batch: ChangeBatch): void {
    epoch++;
    if (batch === 'reset') {
      revoked.clear();
      credential = undefined;
      return;
    }
    for (const change of batch) {
      const subject = changeSubject(change);
      if (subject.kind === 'session') revoked.delete(subject.id);
      else if (subject.kind === 'admin-credential') {
        credential = undefined;
        credentialChanged().catch((err: unknown) =>
          logger.warn({ err: { message: (err as Error).message } }, 'admin credential record unreadable'),
        );
      }
    }
  }
  const unsubscribe = feed?.subscribe(onChanges);

  return {
    registerCredential: async function registerCredential(token) {
      for (let attempt = 0; attempt < REGISTER_ATTEMPTS; attempt++) {
        const current = await store.readAdminCredential();
        const salt = current?.salt ?? randomBytes(16).toString('base64url');
        const fingerprint = await credentialFingerprint(token, salt);
        ownFingerprint = fingerprint;
        if (current?.fingerprint === fingerprint) return;
        // The first credential a store sees voids nothing: sessions from before the upgrade stay.
        const next = { salt, fingerprint, since: current ? now() : 0 };
        if (await store.replaceAdminCredential(current?.fingerprint, next)) {
          credential = undefined;
          if (current) {
            logger.warn(
              { event: 'admin.credential_changed', since: new Date(next.since).toISOString() },
              'the admin token differs from the one the token store knew: admin sessions issued until now are void on every instance',
            );
          }
          return;
        }
      }
      throw new Error('could not record the admin credential in the token store: other instances keep changing it');
    },

    isLive: async function isLive(id, issuedAt) {
      const record = await readCredential();
      if (record && issuedAt < record.since) return false;
      return !(await isRevoked(id));
    },

    end: async function end(id, expiresAt) {
      epoch++;
      revoked.set(id, true);
      await store.revokeSession(id, expiresAt);
    },

    close() {
      unsubscribe?.();
    },
  };
}
