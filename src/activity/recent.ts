/**
 * Recent activity for the admin page, fleet-wide, newest first, from one of (src/activity/index.ts
 * picks the first that applies):
 * - with Redis, the activity Redis Stream every instance writes to (createRedisActivityQuery);
 * - with the file sink (the embedded default), the NDJSON files every process on the host
 *   appends to (createFileActivityQuery, recent-file.ts): no second copy of the events;
 * - otherwise (e.g. only the webhook sink, no Redis), a bounded `activity` table in
 *   `<dataDir>/tollgate.db`, the token store's file, which is then also a Sink (`recent`) fed by
 *   every process on the host (createSqliteActivityLog).
 *
 * Filters match exactly (project, ecosystem, tokenId, tokenName, and repository: the CI identity's,
 * `ci.repository`); absent or empty means any.
 * `limit` defaults to 100 and is clamped to 1..1000 (a non-number means the default), so bad
 * input from a query string never throws. An unknown ecosystem simply matches nothing.
 *
 * Order. Redis: stream order, the order batches arrived in, newest first. Files and SQLite: event
 * id order (ULIDs sort by time), newest first, so a batch delivered late from a disk buffer still
 * shows at its own time.
 */
import type Database from 'better-sqlite3';
import type { Cluster, Redis } from 'ioredis';
import { openDatabase } from '../sqlite/open.js';
import type { ActivityEvent, Sink } from './event.js';
import { activityEventJson, withLaterFields } from './event-codec.js';
import { MAX_EVENT_LINE_BYTES } from './event-caps.js';
import { positiveInteger } from '../positive-integer.js';

export const DEFAULT_RECENT_LIMIT = 100;
export const MAX_RECENT_LIMIT = 1_000;
/** The Redis query reads at most this many stream entries per call looking for matches. */
export const DEFAULT_RECENT_SCAN_MAX = 10_000;
/**
 * Stream entries read at most per XREVRANGE: one reply holds a page whole, so this bounds what
 * a view holds at once (entries are under MAX_EVENT_LINE_BYTES, those of earlier versions maybe not).
 */
const REDIS_PAGE = 250;

export interface RecentFilter {
  project?: string;
  ecosystem?: string;
  tokenId?: string;
  tokenName?: string;
  /** The CI job's repository (the event's `ci.repository`). */
  repository?: string;
  /** Default 100, clamped to 1..1000. */
  limit?: number;
}

export interface ActivityQuery {
  /** The newest events matching every given filter, newest first. */
  recent(filter?: RecentFilter): Promise<ActivityEvent[]>;
}

const FILTER_FIELDS = ['project', 'ecosystem', 'tokenId', 'tokenName', 'repository'] as const;
type FilterField = (typeof FILTER_FIELDS)[number];

/** A filter field's value in an event: `repository` is the CI identity's (null: none). */
function fieldOf(event: ActivityEvent, field: FilterField): string | null | undefined {
  return field === 'repository' ? event.ci?.repository : event[field];
}

export interface NormalizedRecentFilter {
  /** Only the filters that are set (non-empty strings). */
  match: Partial<Record<FilterField, string>>;
  limit: number;
}

/** Clamps the limit and drops empty or non-string filters (input may come straight from a query string). */
export function normalizeRecentFilter(filter: RecentFilter = {}): NormalizedRecentFilter {
  const match: Partial<Record<FilterField, string>> = {};
  for (const field of FILTER_FIELDS) {
    const value: unknown = filter[field];
    if (typeof value === 'string' && value !== '') match[field] = value;
  }
  const raw: unknown = filter.limit;
  let limit = DEFAULT_RECENT_LIMIT;
  if (typeof raw === 'number' && !Number.isNaN(raw)) {
    limit = Math.min(MAX_RECENT_LIMIT, Math.max(1, Math.floor(raw)));
  }
  return { match, limit };
}

/** True when the event has every set filter's value (exact match). */
export function matchesRecentFilter(event: ActivityEvent, match: NormalizedRecentFilter['match']): boolean {
  for (const field of FILTER_FIELDS) {
    const wanted = match[field];
    if (wanted !== undefined && fieldOf(event, field) !== wanted) return false;
  }
  return true;
}

/**
 * The event a stored JSON text holds; undefined when it does not parse, is not an object, or lacks
 * a string id. Lines of earlier versions get the later fields' defaults (withLaterFields).
 */
export function parseRecentEvent(json: string | undefined): ActivityEvent | undefined {
  if (json === undefined) return undefined;
  try {
    const event = JSON.parse(json) as ActivityEvent | null;
    return typeof event === 'object' && event !== null && typeof event.id === 'string'
      ? withLaterFields(event)
      : undefined;
  } catch {
    return undefined;
  }
}

/** True when a stored event text is longer than MAX_EVENT_LINE_BYTES in UTF-8: not one the recorder made, never kept by a view. */
export function longerThanAnEvent(json: string): boolean {
  if (json.length > MAX_EVENT_LINE_BYTES) return true;
  return json.length * 3 > MAX_EVENT_LINE_BYTES && Buffer.byteLength(json, 'utf8') > MAX_EVENT_LINE_BYTES;
}

// ---------------------------------------------------------------------------------------------
// Embedded: a bounded table in the SQLite store's file.

const SCHEMA = `
CREATE TABLE IF NOT EXISTS activity (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  id         TEXT NOT NULL UNIQUE,
  project    TEXT NOT NULL,
  ecosystem  TEXT NOT NULL,
  token_id   TEXT NOT NULL,
  token_name TEXT NOT NULL,
  event      TEXT NOT NULL
);
-- No index per filter column: every index is another B-tree write per event on the request
-- path's event loop, and a filtered read walks the id index of a table bounded at a few
-- thousand rows. (Indexes of earlier versions are dropped.)
DROP INDEX IF EXISTS activity_project;
DROP INDEX IF EXISTS activity_token_id;
DROP INDEX IF EXISTS activity_token_name;
`;

/** What each filter compares in a row: a column, or (repository, rarely asked for) the event's JSON. */
const COLUMNS: Record<FilterField, string> = {
  project: 'project',
  ecosystem: 'ecosystem',
  tokenId: 'token_id',
  tokenName: 'token_name',
  repository: "(CASE WHEN json_valid(event) THEN json_extract(event, '$.ci.repository') END)",
};

/**
 * Rows per INSERT statement: a batch of 500 goes in 10 statements plus one per leftover row.
 * Cheaper than one statement per row (fewer calls into SQLite, and AUTOINCREMENT's
 * sqlite_sequence update once per statement, not per row); larger statements gained nothing more.
 */
const ROWS_PER_INSERT = 50;

export interface SqliteActivityLogOptions {
  dataDir: string;
  /** Rows kept: the most recently recorded ones. */
  maxRows: number;
  /** File name under dataDir. Default tollgate.db (the token store's file). */
  fileName?: string;
  /** Told, after a read that skipped any, how many rows it skipped for being longer than MAX_EVENT_LINE_BYTES. */
  onSkipped?: (rows: number) => void;
}

export type SqliteActivityLog = Sink & ActivityQuery & { readonly file: string };

/**
 * The `activity` table, the fallback when neither the Redis Stream nor the file sink holds the
 * events: one row per event (id unique: a retried batch inserts nothing twice), the event JSON
 * plus the filter columns. After each batch, rows beyond the maxRows most recently inserted are
 * deleted (by insertion order, so a late batch from a disk buffer is kept). WAL, busy_timeout
 * 5 s (synchronous=NORMAL, below), so several processes write and the admin page reads at once.
 */
export function createSqliteActivityLog(options: SqliteActivityLogOptions): SqliteActivityLog {
  const maxRows = positiveInteger('createSqliteActivityLog', 'maxRows', options.maxRows);
  // NORMAL: in WAL mode a crash of the process loses nothing; only a power loss may lose the
  // last batches of this view (the sinks proper keep the events). FULL would fsync on the
  // event loop for every batch (better-sqlite3 is synchronous).
  const { db, file } = openDatabase({ dataDir: options.dataDir, fileName: options.fileName, synchronous: 'NORMAL' });
  db.exec(SCHEMA);

  const row = '(?, ?, ?, ?, ?, ?)';
  const insertSql = 'INSERT OR IGNORE INTO activity (id, project, ecosystem, token_id, token_name, event) VALUES ';
  const insertOne = db.prepare<string[]>(insertSql + row);
  const insertMany = db.prepare<string[][]>(insertSql + Array<string>(ROWS_PER_INSERT).fill(row).join(', '));
  const params = new Array<string>(ROWS_PER_INSERT * 6);
  // Trim to the newest maxRows rows by counting rows, not sequence numbers: the sequence has
  // gaps, because a multi-row INSERT OR IGNORE consumes a number for every row it ignores (a
  // retried batch over rows the table holds), so "seq <= last seq - maxRows" deleted too many.
  // The OFFSET walks maxRows rows of the table once per batch, a cost shared by the batch's
  // events (this table is only the fallback).
  const trim = db.prepare<[number]>(
    'DELETE FROM activity WHERE seq <= (SELECT seq FROM activity ORDER BY seq DESC LIMIT 1 OFFSET ?)',
  );

  const insertBatch = db.transaction((events: readonly ActivityEvent[]) => {
    let i = 0;
    for (; i + ROWS_PER_INSERT <= events.length; i += ROWS_PER_INSERT) {
      for (let j = 0; j < ROWS_PER_INSERT; j++) {
        const e = events[i + j]!;
        params[j * 6] = e.id;
        params[j * 6 + 1] = e.project;
        params[j * 6 + 2] = e.ecosystem;
        params[j * 6 + 3] = e.tokenId;
        params[j * 6 + 4] = e.tokenName;
        params[j * 6 + 5] = activityEventJson(e);
      }
      insertMany.run(params);
    }
    for (; i < events.length; i++) {
      const e = events[i]!;
      insertOne.run(e.id, e.project, e.ecosystem, e.tokenId, e.tokenName, activityEventJson(e));
    }
    trim.run(maxRows);
  });

  /**
   * One prepared statement per combination of filters, made on first use. A row longer than an
   * event can be (one of an earlier version) comes back as null: a view never holds it.
   */
  const queries = new Map<string, Database.Statement<unknown[], { event: string | null }>>();
  const queryFor = (fields: FilterField[]) => {
    const cacheKey = fields.join(',');
    let statement = queries.get(cacheKey);
    if (!statement) {
      const where = fields.length > 0 ? `WHERE ${fields.map((f) => `${COLUMNS[f]} = ?`).join(' AND ')}` : '';
      statement = db.prepare<unknown[], { event: string | null }>(
        `SELECT CASE WHEN length(CAST(event AS BLOB)) <= ${MAX_EVENT_LINE_BYTES} THEN event END AS event FROM activity ${where} ORDER BY id DESC LIMIT ?`,
      );
      queries.set(cacheKey, statement);
    }
    return statement;
  };

  return {
    name: 'recent',
    file,

    deliver: async function deliver(events) {
      if (!db.open) throw new Error('recent-activity log is closed');
      if (events.length > 0) insertBatch.immediate(events);
    },

    recent: async function recent(filter) {
      const { match, limit } = normalizeRecentFilter(filter);
      const fields = FILTER_FIELDS.filter((f) => match[f] !== undefined);
      const rows = queryFor(fields).all(...fields.map((f) => match[f]!), limit);
      const events: ActivityEvent[] = [];
      let skipped = 0;
      for (const row of rows) {
        if (row.event === null) skipped++;
        const event = parseRecentEvent(row.event ?? undefined);
        if (event) events.push(event);
      }
      if (skipped > 0) options.onSkipped?.(skipped);
      return events;
    },

    close: async function close() {
      if (db.open) db.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Redis: the activity stream.

export interface RedisActivityQueryOptions {
  /** The gateway's command connection (not closed here). */
  client: Redis | Cluster;
  /** The stream key the Redis sink writes, e.g. `{tollgate}:activity:production`. */
  key: string;
  /** Stream entries read at most per call. Default 10 000. */
  scanMax?: number;
  /** Told, after a call that skipped any, how many entries it skipped for being longer than MAX_EVENT_LINE_BYTES. */
  onSkipped?: (entries: number) => void;
}

/**
 * XREVRANGE from the newest entry in pages (COUNT = limit without a filter, 250 with one, at most
 * 250) until `limit` matches are found, the stream ends, or scanMax entries were read. With a
 * filter that matches rarely, fewer than `limit` events come back: only the newest scanMax
 * entries are searched, so one page view costs at most scanMax entries' worth of Redis work.
 * An entry longer than an event can be (MAX_EVENT_LINE_BYTES) is skipped and counted
 * (onSkipped): a view holds one page and at most `limit` events of at most 4 KiB.
 */
export function createRedisActivityQuery(options: RedisActivityQueryOptions): ActivityQuery {
  const { client, key } = options;
  const scanMax = positiveInteger('createRedisActivityQuery', 'scanMax', options.scanMax ?? DEFAULT_RECENT_SCAN_MAX);

  return {
    recent: async function recent(filter) {
      const { match, limit } = normalizeRecentFilter(filter);
      const filtered = Object.keys(match).length > 0;
      const pageSize = filtered ? REDIS_PAGE : Math.min(limit, REDIS_PAGE);
      const events: ActivityEvent[] = [];
      let end = '+';
      let scanned = 0;
      let skipped = 0;
      while (events.length < limit && scanned < scanMax) {
        const count = Math.min(pageSize, scanMax - scanned);
        const entries = await client.xrevrange(key, end, '-', 'COUNT', count);
        for (const [, fields] of entries) {
          scanned++;
          let json: string | undefined;
          for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'event') json = fields[i + 1];
          if (json !== undefined && longerThanAnEvent(json)) {
            skipped++;
            continue;
          }
          const event = parseRecentEvent(json);
          if (event && matchesRecentFilter(event, match)) {
            events.push(event);
            if (events.length === limit) break;
          }
        }
        if (entries.length < count) break;
        end = `(${entries[entries.length - 1]![0]}`;
      }
      if (skipped > 0) options.onSkipped?.(skipped);
      return events;
    },
  };
}
