/**
 * The NDJSON file sink: the embedded default.
 *
 *   <dir>/activity/<stream>-YYYY-MM-DD.ndjson      one JSON object per line, UTC date of the event
 *
 * `dir` is the data dir. Every line is one ActivityEvent as the event codec (event-codec.ts)
 * serialises it: exactly the fields of that type, an allow-list, so whatever else an object
 * carries (a token above all) is never written. Production and Development have separate files,
 * never mixed.
 *
 * Several processes (workers, instances on one host) append to the same file at once. Each
 * batch is opened with O_APPEND and written with ONE write(2) call per file (writev(2) when a
 * runner's batch spans several of its queue's segments): on Linux a write or writev to a regular
 * file holds the inode lock for all its bytes, so an appended batch never interleaves with
 * another process's. A batch that spans UTC midnight is split into consecutive runs per date, one
 * write per run, in order.
 *
 * fsync: one fdatasync per written run (per batch, in practice). `deliver` resolves only when
 * the batch is durably accepted, so a power loss after a resolved deliver loses nothing; with
 * batches of hundreds of events it costs one disk flush per batch. `fsync: false` trades that
 * for a crash of the machine (not of the process) losing the page cache.
 *
 * Retries. The sink remembers, per batchId, how many leading events of a batch are already
 * written and synced, so a retry of a batch that failed half-way (a second date run, a full
 * disk) writes only the rest. A short write (only on a full disk or a file size limit) leaves
 * a torn line: the sink ends it with a newline, so later lines stay intact, and rejects; a
 * reader skips lines that do not parse. A failed fdatasync is retried by writing the run
 * again: a duplicate line (same event `id`, which readers deduplicate on) rather than a loss.
 *
 * This module imports nothing at run time but node:fs, node:path and the event codec, which
 * imports nothing (a multi-process test runs them as plain JavaScript).
 */
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { encodeActivityEvents, ndjson, utcDate } from '../event-codec.js';
import type { EncodedActivityEvent, Sink } from '../event.js';

export type ActivityStream = 'production' | 'development';

export interface FileSinkOptions {
  /** The data dir: files go to `<dir>/activity/`. Created (mode 0700) when absent. */
  dir: string;
  /** Which stream this sink carries: Production (`file`) or Development (`file-development`). */
  stream: ActivityStream;
  /** fdatasync after each write. Default true. */
  fsync?: boolean;
}

/** `<dir>/activity/<stream>-YYYY-MM-DD.ndjson` for the event's UTC date (today's when `time` is unreadable). */
export function activityFilePath(dir: string, stream: ActivityStream, time: string): string {
  return path.join(dir, 'activity', `${stream}-${utcDate(time)}.ndjson`);
}

/** Remembered partial progress is dropped past this many batches (the runner retries one batch at a time). */
const MAX_REMEMBERED_BATCHES = 1_000;

export function createFileSink(options: FileSinkOptions): Sink {
  const { dir, stream } = options;
  if (stream !== 'production' && stream !== 'development') {
    throw new TypeError(`createFileSink: stream must be production or development, got ${JSON.stringify(stream)}`);
  }
  const sync = options.fsync ?? true;
  const activityDir = path.join(dir, 'activity');
  let dirReady: Promise<unknown> | undefined;
  /** batchId → leading events already written and synced. */
  const progress = new Map<string, number>();
  let closed = false;

  /** Appends the buffers with one write(2) or writev(2); rejects unless every byte landed. */
  async function appendOnce(file: string, data: Buffer[]): Promise<void> {
    const handle = await open(file, 'a', 0o600);
    try {
      let length = 0;
      for (const piece of data) length += piece.length;
      const { bytesWritten } = data.length === 1 ? await handle.write(data[0]!) : await handle.writev(data);
      if (bytesWritten < length) {
        // Only on a full disk or a size limit. End the torn line so later appends stay whole.
        await handle.write('\n').catch(() => {});
        throw new Error(`short write to ${file}: ${bytesWritten} of ${length} bytes (disk full?)`);
      }
      if (sync) await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  async function deliverEncoded(events: readonly EncodedActivityEvent[], batchId: string): Promise<void> {
    if (closed) throw new Error('file sink is closed');
    if (events.length === 0) return;
    dirReady ??= mkdir(activityDir, { recursive: true, mode: 0o700 });
    try {
      await dirReady;
    } catch (err) {
      dirReady = undefined;
      throw err;
    }
    let done = progress.get(batchId) ?? 0;
    while (done < events.length) {
      // The next run of events with the same date: one file, one write. The path is built once
      // per run, not per event.
      const { date } = events[done]!;
      let end = done + 1;
      while (end < events.length && events[end]!.date === date) end++;
      await appendOnce(path.join(activityDir, `${stream}-${date}.ndjson`), ndjson(events, done, end));
      done = end;
      if (done < events.length) {
        if (progress.size >= MAX_REMEMBERED_BATCHES) progress.delete(progress.keys().next().value!);
        progress.set(batchId, done);
      }
    }
    progress.delete(batchId);
  }

  return {
    name: stream === 'production' ? 'file' : 'file-development',
    deliver: async function deliver(events, batchId) {
      await deliverEncoded(encodeActivityEvents(events), batchId);
    },
    deliverEncoded,
    close: async function close() {
      closed = true;
      progress.clear();
    },
  };
}
