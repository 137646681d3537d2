import { createLocalTokenRateLimiter } from '../auth/token-rate.js';
import type { CiExchangeConfig } from '../config/index.js';

/**
 * How often exchanges may be made: per client address (checked before the ID token is looked
 * at, so a flood costs no key fetch or signature check) and per CI identity (policy and `sub`,
 * once verified). Sliding logs (auth/token-rate.ts): never more than N in any 60 seconds. In
 * memory, per process, bounded (least recently seen keys dropped).
 */
export interface ExchangeRateLimiter {
  /** Counts one exchange from `address`: 0 when it may go, else the seconds to wait (Retry-After). */
  takeAddress(address: string, now: number): number;
  /** Counts one exchange by the identity `sub` of policy `provider`: 0, or the seconds to wait. */
  takeSubject(provider: string, subject: string, now: number): number;
}

export interface ExchangeRateOptions extends Pick<CiExchangeConfig, 'perAddressPerMinute' | 'perSubjectPerMinute'> {
  /** Addresses, and identities, tracked at once. Default 10000 each. */
  maxKeys?: number;
}

export function createExchangeRateLimiter(options: ExchangeRateOptions): ExchangeRateLimiter {
  const addresses = createLocalTokenRateLimiter(options.maxKeys);
  const subjects = createLocalTokenRateLimiter(options.maxKeys);
  return {
    takeAddress: (address, now) => addresses.takeLocal(address, options.perAddressPerMinute, now),
    // The policy name is [a-z0-9-]+: no `sub` can forge another policy's key.
    takeSubject: (provider, subject, now) =>
      subjects.takeLocal(`${provider}:${subject}`, options.perSubjectPerMinute, now),
  };
}
