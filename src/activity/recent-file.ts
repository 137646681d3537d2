/**
 * Recent activity from the NDJSON file sink's Production files: the embedded default, with no
 * second copy of the events (the file sink writes them already, durably, for every process on
 * the host; see sinks/file.ts).
 *
 *   <dir>/activity/production-YYYY-MM-DD.ndjson      newest date first, each file from its end
 *
 * Development files are never read.
 *
 * The window. One call reads at most `maxLines` lines (TOLLGATE_ACTIVITY_RECENT_MAX, default
 * 10 000): the newest ones, from the end of the newest file backwards, then the day before, and
 * so on, in chunks of `chunkBytes` (64 KiB) with fs/promises (no read blocks the event loop), up
 * to the size each file had when opened (a file being appended to meanwhile is fine). Among those
 * lines it returns the newest `limit` events matching the filter, by event id (ULIDs sort by
 * time), deduplicated by id. That is the window the SQLite fallback table keeps (its newest
 * recentMax rows), and a page view costs at most recentMax lines of I/O, found or not.
 * It does not stop at the first `limit` matches: several processes append their batches to one
 * file, each batch up to a flush interval old (or much older, from a disk buffer), so lines are
 * only roughly in time order and the newest events are not necessarily the last lines.
 *
 * Lines that do not parse (a torn line after a full disk), that are not an object, or lack a
 * string `id` are skipped; a line the sink wrote twice (a retried fdatasync) is listed once. A
 * line longer than `maxLineBytes` (1 MiB; the sink writes nothing near that) ends the scan of
 * its file, so a file that is not the sink's cannot make one call read it whole.
 *
 * Cost. Lines in the sink's layout (`{"id":"…",` from JSON.stringify) are not parsed while
 * scanning: the id is sliced out, and each filter is a byte search for its exact serialisation
 * (`"project":"web"`: JSON.stringify escapes every quote inside a string, so the search finds
 * the field or nothing). Only the newest candidates are parsed, about `limit` of them. Any other
 * layout is parsed in full. The CPU work comes in slices of one chunk between reads, so a page
 * view never holds the event loop for a whole scan.
 */
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ActivityEvent } from './event.js';
import { positiveInteger } from './positive-integer.js';
import {
  DEFAULT_RECENT_SCAN_MAX, matchesRecentFilter, normalizeRecentFilter, parseRecentEvent, type ActivityQuery,
  type NormalizedRecentFilter,
} from './recent.js';

export const DEFAULT_RECENT_CHUNK_BYTES = 64 * 1024;
export const DEFAULT_RECENT_MAX_LINE_BYTES = 1024 * 1024;

export interface FileActivityQueryOptions {
  /** The data dir: reads `<dir>/activity/production-*.ndjson`. */
  dir: string;
  /** Lines read at most per call, newest first. Default 10 000. */
  maxLines?: number;
  /** Bytes per read, from the end of a file backwards. Default 64 KiB. */
  chunkBytes?: number;
  /** A longer line ends the scan of its file. Default 1 MiB. */
  maxLineBytes?: number;
}

const PRODUCTION_FILE = /^production-\d{4}-\d{2}-\d{2}\.ndjson$/;
const NEWLINE = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** How the sink's lines begin (activityEventJson: `id` first, no whitespace). */
const ID_PREFIX = Buffer.from('{"id":"', 'latin1');

/** A line kept for the final sort: its bytes (parsed only if it makes the cut), or the event when already parsed. */
interface Candidate {
  id: string;
  data: Buffer | undefined;
  start: number;
  end: number;
  event: ActivityEvent | undefined;
}

const newestIdFirst = (a: Candidate, b: Candidate) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export function createFileActivityQuery(options: FileActivityQueryOptions): ActivityQuery {
  const activityDir = path.join(options.dir, 'activity');
  const maxLines = positiveInteger('createFileActivityQuery', 'maxLines', options.maxLines ?? DEFAULT_RECENT_SCAN_MAX);
  const chunkBytes = positiveInteger('createFileActivityQuery', 'chunkBytes', options.chunkBytes ?? DEFAULT_RECENT_CHUNK_BYTES);
  const maxLineBytes = positiveInteger('createFileActivityQuery', 'maxLineBytes', options.maxLineBytes ?? DEFAULT_RECENT_MAX_LINE_BYTES);

  /** One call's state: `line` looks at one line and keeps it in `candidates` if it may match. */
  function scanner(match: NormalizedRecentFilter['match']) {
    const needles = Object.entries(match).map(([field, value]) => Buffer.from(`"${field}":${JSON.stringify(value)}`, 'utf8'));
    const candidates: Candidate[] = [];

    /** One line, data[start, end) without its newline. */
    function line(data: Buffer, start: number, end: number): void {
      const idStart = start + ID_PREFIX.length;
      if (end > idStart && data.compare(ID_PREFIX, 0, ID_PREFIX.length, start, idStart) === 0) {
        const idEnd = data.indexOf(QUOTE, idStart);
        if (idEnd > idStart && idEnd < end) {
          let plain = true;
          for (let i = idStart; i < idEnd; i++) if (data[i] === BACKSLASH) plain = false;
          if (plain) {
            if (needles.length > 0) {
              const bytes = data.subarray(start, end);
              for (const needle of needles) if (bytes.indexOf(needle) < 0) return;
            }
            candidates.push({ id: data.toString('utf8', idStart, idEnd), data, start, end, event: undefined });
            return;
          }
        }
      }
      const event = parseRecentEvent(data.toString('utf8', start, end));
      if (event && matchesRecentFilter(event, match)) candidates.push({ id: event.id, data: undefined, start: 0, end: 0, event });
    }

    return { candidates, line };
  }

  /**
   * Hands `line` the lines of one file, last first, at most `budget` of them (empty lines are
   * not counted). Returns the budget left.
   */
  async function scanFile(file: string, budget: number, line: (data: Buffer, start: number, end: number) => void): Promise<number> {
    let handle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      if (isMissing(err)) return budget; // removed since the listing
      throw err;
    }
    try {
      let pos = (await handle.stat()).size;
      /** The start of the line the previous (later) chunk began in the middle of. */
      let carry: Buffer | undefined;
      while (pos > 0 && budget > 0) {
        const length = Math.min(chunkBytes, pos);
        pos -= length;
        const data = Buffer.allocUnsafe(length + (carry?.length ?? 0));
        const { bytesRead } = await handle.read(data, 0, length, pos);
        if (bytesRead < length) break; // the file shrank under us: what was read is all there is
        carry?.copy(data, length);
        let end = data.length;
        for (;;) {
          const nl = end === 0 ? -1 : data.lastIndexOf(NEWLINE, end - 1);
          if (nl < 0 && pos > 0) break; // this line began in an earlier chunk
          if (end > nl + 1) {
            line(data, nl + 1, end);
            if (--budget === 0) return 0;
          }
          if (nl < 0) break;
          end = nl;
        }
        carry = data.subarray(0, end);
        if (carry.length > maxLineBytes) return budget - 1; // not the sink's: leave the rest of this file
      }
      return budget;
    } finally {
      await handle.close();
    }
  }

  return {
    recent: async function recent(filter) {
      const { match, limit } = normalizeRecentFilter(filter);
      let names: string[];
      try {
        names = await readdir(activityDir);
      } catch (err) {
        if (isMissing(err)) return [];
        throw err;
      }
      const files = names.filter((name) => PRODUCTION_FILE.test(name)).sort().reverse();
      const { candidates, line } = scanner(match);
      let budget = maxLines;
      for (const name of files) {
        if (budget === 0) break;
        budget = await scanFile(path.join(activityDir, name), budget, line);
      }

      candidates.sort(newestIdFirst);
      const events: ActivityEvent[] = [];
      const seen = new Set<string>();
      for (const c of candidates) {
        if (events.length === limit) break;
        if (seen.has(c.id)) continue;
        const event = c.event ?? parseRecentEvent(c.data!.toString('utf8', c.start, c.end));
        // A torn line can start well and break off: it fails here, and a whole copy may follow.
        if (!event || event.id !== c.id || !matchesRecentFilter(event, match)) continue;
        seen.add(c.id);
        events.push(event);
      }
      return events;
    },
  };
}
