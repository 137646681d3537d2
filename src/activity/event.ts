import { randomFillSync } from 'node:crypto';
import type { Ecosystem } from '../config/schema.js';

/**
 * One authenticated request, as the security team sees it. Production events go to the
 * alerting pipeline; Development events exist only when a separate Development stream is
 * configured, and never share a sink with Production.
 */
export interface ActivityEvent {
  /** Time-ordered unique id (ULID): receivers deduplicate on it. */
  id: string;
  /** ISO 8601, when the response ended. */
  time: string;
  requestId: string;
  tokenId: string;
  tokenName: string;
  tokenType: 'production' | 'development';
  /** The Basic user; `default` when empty or Bearer. */
  project: string;
  ecosystem: Ecosystem;
  /** download, or metadata (index pages, packuments, checksums): a kind of its own. */
  kind: 'download' | 'metadata';
  /** Maven as group:artifact, npm with its scope; null when the path names none. */
  package: string | null;
  version: string | null;
  file: string | null;
  method: string;
  status: number;
  bytes: number;
  durationMs: number;
  clientIp: string;
  userAgent: string | null;
  /** True when the version is a patched build (+spN, and -spN where certain). */
  sealed: boolean;
}

/**
 * A sink delivers batches of events somewhere (a Redis Stream, an NDJSON file, a webhook).
 * `deliver` resolves only when the batch is durably accepted; it rejects to ask for a retry.
 * `batchId` is stable across retries of the same batch, so a sink can make a retried batch
 * idempotent (a lost reply must not write the batch twice).
 */
export interface Sink {
  readonly name: string;
  deliver(events: readonly ActivityEvent[], batchId: string): Promise<void>;
  close(): Promise<void>;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** Random bytes drawn 4 KiB at a time: one randomFillSync per 256 ids, not one per id. */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;
function nextRandom(): number {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  return pool[poolOffset++]!;
}
let lastTime = 0;
let lastRandom: number[] = [];

/** ULID: 48-bit millisecond time + 80 random bits, Crockford base32, monotonic within a millisecond. */
export function newEventId(now = Date.now()): string {
  let random: number[];
  if (now === lastTime) {
    random = lastRandom.slice();
    for (let i = random.length - 1; i >= 0; i--) {
      if (random[i]! < 31) {
        random[i]!++;
        break;
      }
      random[i] = 0;
    }
  } else {
    random = new Array<number>(16);
    for (let i = 0; i < 16; i++) random[i] = nextRandom() & 31;
  }
  lastTime = now;
  lastRandom = random;
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time + random.map((r) => CROCKFORD[r]).join('');
}
