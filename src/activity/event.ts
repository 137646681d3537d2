import { randomFillSync } from 'node:crypto';
import type { Ecosystem } from '../config/schema.js';
import type { CiIdentity } from '../tokens/store.js';

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
  /**
   * download, or metadata (index pages, packuments, checksums): a kind of its own. `leaked`: not a
   * request but an alert, the token was reported leaked and revoked (see `leak`).
   */
  kind: 'download' | 'metadata' | 'leaked';
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
  /**
   * True when the response was not sent in full: the client went away (or the transfer broke off)
   * before the end of the body. `bytes` is then what was sent. Lines written before this field
   * existed lack it: read as false.
   */
  aborted: boolean;
  /**
   * The fields cut to their cap (see event-caps.ts), in field order; empty when none was. A cut
   * value ends with "…". Lines written before this field existed lack it: read as empty.
   */
  truncated: readonly CappedField[];
  /**
   * The CI job a token exchanged for an OIDC identity was issued to (the claims its provider has);
   * null for tokens an admin made. Lines written before this field existed lack it: read as null.
   */
  ci: ActivityCi | null;
  /** For kind `leaked`: who reported the token and where it was found; null otherwise. */
  leak: ActivityLeak | null;
}

/** A CI job's identity in an event: only the claims its provider has (its project is the event's `project`). */
export type ActivityCi = Omit<CiIdentity, 'project'>;

export interface ActivityLeak {
  source: string;
  url: string | null;
  location: string | null;
}

/** The fields that come from the client (or are otherwise unbounded) and are cut to a cap in the event. */
export type CappedField =
  'tokenName' | 'project' | 'package' | 'version' | 'file' | 'method' | 'clientIp' | 'userAgent' | 'ci' | 'leak';

/**
 * A sink delivers batches of events somewhere (a Redis Stream, an NDJSON file, a webhook).
 * `deliver` resolves only when the batch is durably accepted; it rejects to ask for a retry.
 * `batchId` is stable across retries of the same batch, so a sink can make a retried batch
 * idempotent (a lost reply must not write the batch twice).
 */
export interface Sink {
  readonly name: string;
  deliver(events: readonly ActivityEvent[], batchId: string): Promise<void>;
  /**
   * The same, for events as a sink runner holds them in memory (EncodedEventQueue): a sink that
   * only writes the JSON lines takes them as they are. Without it, the runner decodes them for
   * deliver().
   */
  deliverEncoded?(events: readonly EncodedActivityEvent[], batchId: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * An event as a sink runner holds it (see EncodedEventQueue): its JSON line, encoded once at
 * enqueue, and the date the file sink files it under.
 */
export interface EncodedActivityEvent {
  /** The UTC date of `time`, YYYY-MM-DD: the daily file the event belongs to. */
  readonly date: string;
  /**
   * The line, activityEventJson(event) and a newline as UTF-8, is bytes[start, end). Within a
   * batch, events whose lines lie back to back share `bytes` (one queue segment, or the one buffer
   * of encodeActivityEvents), and a sink writes such a run as one slice.
   */
  readonly bytes: Buffer;
  readonly start: number;
  readonly end: number;
}

const CROCKFORD = Buffer.from('0123456789ABCDEFGHJKMNPQRSTVWXYZ', 'latin1');

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
let lastTime = -1;
/** The last id's 80 random bits, one base-32 digit (0-31) per byte. */
const lastRandom = new Uint8Array(16);
/** The last id's characters: the time part is rewritten only when the millisecond changes. */
const chars = Buffer.alloc(26);

/**
 * ULID: 48-bit millisecond time + 80 random bits, Crockford base32, monotonic within a millisecond.
 * Built in place in one 26-byte buffer, the time part rewritten only when the millisecond changes
 * (arrays sliced, mapped and joined per id were slower).
 */
export function newEventId(now = Date.now()): string {
  if (now === lastTime) {
    for (let i = 15; i >= 0; i--) {
      if (lastRandom[i]! < 31) {
        lastRandom[i]!++;
        break;
      }
      lastRandom[i] = 0;
    }
  } else {
    for (let i = 0; i < 16; i++) lastRandom[i] = nextRandom() & 31;
    let t = now;
    for (let i = 9; i >= 0; i--) {
      chars[i] = CROCKFORD[t % 32]!;
      t = Math.floor(t / 32);
    }
    lastTime = now;
  }
  for (let i = 0; i < 16; i++) chars[10 + i] = CROCKFORD[lastRandom[i]!]!;
  return chars.toString('latin1', 0, 26);
}
