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
 * 10 000) and at most `maxBytes` bytes (16 MiB), whichever comes first: the newest ones, from the
 * end of the newest file backwards, then the day before, and so on, in chunks of `chunkBytes`
 * (64 KiB) with fs/promises (no read blocks the event loop), up to the size each file had when
 * opened (a file being appended to meanwhile is fine). Among those lines it returns the newest
 * `limit` events matching the filter, by event id (ULIDs sort by time), deduplicated by id. That
 * is the window the SQLite fallback table keeps (its newest recentMax rows), and a page view
 * costs at most recentMax lines of I/O, found or not.
 * It does not stop at the first `limit` matches: several processes append their batches to one
 * file, each batch up to a flush interval old (or much older, from a disk buffer), so lines are
 * only roughly in time order and the newest events are not necessarily the last lines.
 *
 * Lines that do not parse (a torn line after a full disk), that are not an object, or lack a
 * string `id` are skipped; a line the sink wrote twice (a retried fdatasync) is listed once. A
 * line longer than `maxLineBytes` (MAX_EVENT_LINE_BYTES, 4 KiB: longer than any event the
 * recorder makes, see event-caps.ts) is skipped without being held whole, counted (onSkipped),
 * and the scan goes on before it.
 *
 * Memory. A call holds one buffer of chunkBytes + maxLineBytes, reused for every read (a line
 * split across two chunks is moved behind the next chunk, never longer than maxLineBytes), and
 * the parsed events that may still make the cut: at most 2 × limit of them, pruned back to the
 * newest `limit` (whose oldest id then bars every older line unparsed). Neither grows with the
 * files' size or their lines' length.
 *
 * Cost. Lines in the sink's layout (`{"id":"…",` from JSON.stringify) are not parsed while
 * scanning: the id is sliced out and compared with that bar, and each filter is a byte search
 * for its exact serialisation (`"project":"web"`, and for a CI job's repository
 * `"repository":"acme/web"`, a key only the event's `ci` has: JSON.stringify escapes every quote
 * inside a string, so the search finds the field or nothing). Only lines that may make the cut are parsed:
 * read newest first, about `limit` of them. Any other layout is parsed in full. The CPU work
 * comes in slices of one chunk between reads, so a page view never holds the event loop for a
 * whole scan.
 */
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ActivityEvent } from './event.js';
import { MAX_EVENT_LINE_BYTES } from './event-caps.js';
import { positiveInteger } from '../positive-integer.js';
import {
  DEFAULT_RECENT_SCAN_MAX,
  matchesRecentFilter,
  normalizeRecentFilter,
  parseRecentEvent,
  type ActivityQuery,
  type NormalizedRecentFilter,
} from './recent.js';

export const DEFAULT_RECENT_CHUNK_BYTES = 64 * 1024;
export const DEFAULT_RECENT_MAX_LINE_BYTES = MAX_EVENT_LINE_BYTES;
export const DEFAULT_RECENT_MAX_BYTES = 16 * 1024 * 1024;

export interface FileActivityQueryOptions {
  /** The data dir: reads `<dir>/activity/production-*.ndjson`. */
  dir: string;
  /** Lines read at most per call, newest first. Default 10 000. */
  maxLines?: number;
  /** Bytes read at most per call, over every file. Default 16 MiB. */
  maxBytes?: number;
  /** Bytes per read, from the end of a file backwards. Default 64 KiB. */
  chunkBytes?: number;
  /** A longer line (newline excluded) is skipped and counted. Default MAX_EVENT_LINE_BYTES (4 KiB). */
  maxLineBytes?: number;
  /** Told, after a call that skipped any, how many lines it skipped for being longer than maxLineBytes. */
  onSkipped?: (lines: number) => void;
}

const PRODUCTION_FILE = /^production-\d{4}-\d{2}-\d{2}\.ndjson$/;
const NEWLINE = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** How the sink's lines begin (activityEventJson: `id` first, no whitespace). */
const ID_PREFIX = Buffer.from('{"id":"', 'latin1');

const newestIdFirst = (a: ActivityEvent, b: ActivityEvent) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** One call's reading budget and what it found along the way. */
interface Scan {
  /** Lines left to read (empty lines are not counted). */
  lines: number;
  /** Bytes left to read. */
  bytes: number;
  /** Lines skipped for being longer than maxLineBytes. */
  skipped: number;
  /** The one read buffer of the call: chunkBytes + maxLineBytes. */
  readonly buf: Buffer;
}

export function createFileActivityQuery(options: FileActivityQueryOptions): ActivityQuery {
  const activityDir = path.join(options.dir, 'activity');
  const maxLines = positiveInteger('createFileActivityQuery', 'maxLines', options.maxLines ?? DEFAULT_RECENT_SCAN_MAX);
  const maxBytes = positiveInteger('createFileActivityQuery', 'maxBytes', options.maxBytes ?? DEFAULT_RECENT_MAX_BYTES);
  const chunkBytes = positiveInteger(
    'createFileActivityQuery',
    'chunkBytes',
    options.chunkBytes ?? DEFAULT_RECENT_CHUNK_BYTES,
  );
  const maxLineBytes = positiveInteger(
    'createFileActivityQuery',
    'maxLineBytes',
    options.maxLineBytes ?? DEFAULT_RECENT_MAX_LINE_BYTES,
  );
  const { onSkipped } = options;

  /**
   * One call's state: `line` looks at one line and keeps its event if it may be among the newest
   * `limit` matching ones; `newest` gives those at the end.
   */
  function collector(match: NormalizedRecentFilter['match'], limit: number) {
    const needles = Object.entries(match).map(([field, value]) =>
      Buffer.from(`"${field}":${JSON.stringify(value)}`, 'utf8'),
    );
    /** Matching events by id, each id once: at most 2 × limit, pruned back to the newest limit. */
    const kept = new Map<string, ActivityEvent>();
    /** Once pruned, the oldest id kept: a line with this id or an older one cannot make the cut. */
    let floor: string | undefined;

    function keep(event: ActivityEvent): void {
      kept.set(event.id, event);
      if (kept.size < 2 * limit) return;
      const ids = [...kept.keys()].sort();
      for (let i = 0; i < ids.length - limit; i++) kept.delete(ids[i]!);
      floor = ids[ids.length - limit];
    }
    const wanted = (id: string) => (floor === undefined || id > floor) && !kept.has(id);

    /** One line, data[start, end) without its newline. The event is parsed from a copy: data is reused. */
    function line(data: Buffer, start: number, end: number): void {
      const idStart = start + ID_PREFIX.length;
      if (end > idStart && data.compare(ID_PREFIX, 0, ID_PREFIX.length, start, idStart) === 0) {
        const idEnd = data.indexOf(QUOTE, idStart);
        if (idEnd > idStart && idEnd < end) {
          let plain = true;
          for (let i = idStart; i < idEnd; i++) if (data[i] === BACKSLASH) plain = false;
          if (plain) {
            const id = data.toString('utf8', idStart, idEnd);
            if (!wanted(id)) return;
            if (needles.length > 0) {
              const bytes = data.subarray(start, end);
              for (const needle of needles) if (bytes.indexOf(needle) < 0) return;
            }
            const event = parseRecentEvent(data.toString('utf8', start, end));
            // A torn line can start well and break off: it fails here, and a whole copy may follow.
            if (event && event.id === id && matchesRecentFilter(event, match)) keep(event);
            return;
          }
        }
      }
      const event = parseRecentEvent(data.toString('utf8', start, end));
      if (event && wanted(event.id) && matchesRecentFilter(event, match)) keep(event);
    }

    const newest = () => [...kept.values()].sort(newestIdFirst).slice(0, limit);
    return { line, newest };
  }

  /** Hands `line` the lines of one file, last first, within the call's budget. */
  async function scanFile(
    file: string,
    scan: Scan,
    line: (data: Buffer, start: number, end: number) => void,
  ): Promise<void> {
    let handle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      if (isMissing(err)) return; // removed since the listing
      throw err;
    }
    const { buf } = scan;
    try {
      let pos = (await handle.stat()).size;
      /** buf[0, carry): the start of the line the previous (later) chunk began in the middle of. */
      let carry = 0;
      /** Inside a line longer than maxLineBytes (counted already): its bytes are passed over. */
      let skipping = false;
      while (pos > 0 && scan.lines > 0 && scan.bytes > 0) {
        const length = Math.min(chunkBytes, pos, scan.bytes);
        pos -= length;
        scan.bytes -= length;
        if (carry > 0) buf.copy(buf, length, 0, carry); // the partial line goes behind the new chunk
        const { bytesRead } = await handle.read(buf, 0, length, pos);
        if (bytesRead < length) return; // the file shrank under us: what was read is all there is
        let end = length + carry;
        carry = 0;
        for (;;) {
          const nl = end === 0 ? -1 : buf.lastIndexOf(NEWLINE, end - 1);
          if (nl < 0 && pos > 0) break; // this line began in an earlier chunk
          if (skipping) {
            skipping = false; // buf(nl, end) is the start of the long line
          } else if (end > nl + 1) {
            if (end - nl - 1 > maxLineBytes) scan.skipped++;
            else line(buf, nl + 1, end);
            if (--scan.lines === 0) return;
          }
          if (nl < 0) return;
          end = nl;
        }
        if (skipping) continue; // the whole chunk lies inside the long line
        if (end > maxLineBytes) {
          // Longer than any event already: counted, and passed over up to its start.
          scan.skipped++;
          if (--scan.lines === 0) return;
          skipping = true;
          continue;
        }
        carry = end;
      }
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
      const files = names
        .filter((name) => PRODUCTION_FILE.test(name))
        .sort()
        .reverse();
      const { line, newest } = collector(match, limit);
      const scan: Scan = {
        lines: maxLines,
        bytes: maxBytes,
        skipped: 0,
        buf: Buffer.allocUnsafe(chunkBytes + maxLineBytes),
      };
      for (const name of files) {
        if (scan.lines === 0 || scan.bytes === 0) break;
        await scanFile(path.join(activityDir, name), scan, line);
      }
      if (scan.skipped > 0) onSkipped?.(scan.skipped);
      return newest();
    },
  };
}
