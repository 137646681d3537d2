/**
 * The NDJSON file sink: the embedded default.
 *
 *   <dir>/activity/<stream>-YYYY-MM-DD.ndjson      one JSON object per line, UTC date of the event
 *
 * `dir` is the data dir. Every line is one ActivityEvent with exactly the fields of that type
 * (an allow-list: whatever else an object carries, a token above all, is never written), in the
 * order given. Production and Development have separate files, never mixed.
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
 * This module imports nothing at run time but node:fs and node:path (a multi-process test
 * runs it as plain JavaScript).
 */
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import type { ActivityEvent, EncodedActivityEvent, Sink } from '../event.js';

export type ActivityStream = 'production' | 'development';

export interface FileSinkOptions {
  /** The data dir: files go to `<dir>/activity/`. Created (mode 0700) when absent. */
  dir: string;
  /** Which stream this sink carries: Production (`file`) or Development (`file-development`). */
  stream: ActivityStream;
  /** fdatasync after each write. Default true. */
  fsync?: boolean;
}

/** Every field of an ActivityEvent, in the order written. Adding a field to the type without listing it here fails to compile. */
export const ACTIVITY_EVENT_FIELDS = [
  'id', 'time', 'requestId', 'tokenId', 'tokenName', 'tokenType', 'project', 'ecosystem', 'kind',
  'package', 'version', 'file', 'method', 'status', 'bytes', 'durationMs', 'clientIp', 'userAgent', 'sealed',
] as const satisfies readonly (keyof ActivityEvent)[];

type MissingField = Exclude<keyof ActivityEvent, (typeof ACTIVITY_EVENT_FIELDS)[number]>;
// Compile-time check: fails when ActivityEvent gains a field not listed above.
const everyFieldListed: [MissingField] extends [never] ? true : MissingField = true;
void everyFieldListed;

/**
 * The event as a JSON string with exactly the ActivityEvent fields, in a fixed order. Every sink
 * serializes through this: an extra property (a token, a header) never leaves the gateway.
 * An event made by the recorder (a RecordedActivityEvent) is serialised once, however many
 * sinks write it.
 */
export function activityEventJson(event: ActivityEvent): string {
  return event instanceof RecordedActivityEvent ? event.json() : projectedJson(event);
}

/**
 * One object literal in ACTIVITY_EVENT_FIELDS order (test/activity/event.test.ts holds it to that), so every
 * projection has the same shape; a record filled field by field in a loop took 1.85 µs per event
 * against 1.36 µs for this.
 */
function projectedJson(e: ActivityEvent): string {
  return JSON.stringify({
    id: e.id ?? null,
    time: e.time ?? null,
    requestId: e.requestId ?? null,
    tokenId: e.tokenId ?? null,
    tokenName: e.tokenName ?? null,
    tokenType: e.tokenType ?? null,
    project: e.project ?? null,
    ecosystem: e.ecosystem ?? null,
    kind: e.kind ?? null,
    package: e.package ?? null,
    version: e.version ?? null,
    file: e.file ?? null,
    method: e.method ?? null,
    status: e.status ?? null,
    bytes: e.bytes ?? null,
    durationMs: e.durationMs ?? null,
    clientIp: e.clientIp ?? null,
    userAgent: e.userAgent ?? null,
    sealed: e.sealed ?? null,
  } satisfies Record<keyof ActivityEvent, unknown>);
}

/**
 * An ActivityEvent as the recorder makes it: the same fields, in the same order, plus its JSON
 * line once made, in a private field (invisible to JSON.stringify, spreading and comparisons).
 * Every sink of the pipeline (file, Redis Stream, webhook, and the recent-activity table where
 * there is one) writes the same event object; they share one JSON.stringify. A WeakMap from event
 * to line did that before, but cost more than a second stringify (measured per event, with the
 * file sink and the recent table both fed: 2.7-3.1 µs with the WeakMap, its
 * entries adding ephemeron work to every GC; 2.5-2.7 µs without any cache; 1.4 µs with this field).
 * It lives here, beside activityEventJson, because this module imports nothing at run time.
 */
export class RecordedActivityEvent implements ActivityEvent {
  declare id: string;
  declare time: string;
  declare requestId: string;
  declare tokenId: string;
  declare tokenName: string;
  declare tokenType: ActivityEvent['tokenType'];
  declare project: string;
  declare ecosystem: ActivityEvent['ecosystem'];
  declare kind: ActivityEvent['kind'];
  declare package: string | null;
  declare version: string | null;
  declare file: string | null;
  declare method: string;
  declare status: number;
  declare bytes: number;
  declare durationMs: number;
  declare clientIp: string;
  declare userAgent: string | null;
  declare sealed: boolean;
  #json: string | undefined = undefined;

  /** Copies the fields, in ACTIVITY_EVENT_FIELDS order (the order of own properties is the order of assignment). */
  constructor(e: ActivityEvent) {
    this.id = e.id;
    this.time = e.time;
    this.requestId = e.requestId;
    this.tokenId = e.tokenId;
    this.tokenName = e.tokenName;
    this.tokenType = e.tokenType;
    this.project = e.project;
    this.ecosystem = e.ecosystem;
    this.kind = e.kind;
    this.package = e.package;
    this.version = e.version;
    this.file = e.file;
    this.method = e.method;
    this.status = e.status;
    this.bytes = e.bytes;
    this.durationMs = e.durationMs;
    this.clientIp = e.clientIp;
    this.userAgent = e.userAgent;
    this.sealed = e.sealed;
  }

  /** The line activityEventJson gives, made on first use. */
  json(): string {
    this.#json ??= projectedJson(this);
    return this.#json;
  }
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** `YYYY-MM-DD`, the UTC date of an event's `time` (today's when `time` is unreadable). */
export function utcDate(time: string): string {
  if (ISO_UTC.test(time)) return time.slice(0, 10); // the recorder's own format: no parsing per event
  const ms = Date.parse(time);
  return new Date(Number.isFinite(ms) ? ms : Date.now()).toISOString().slice(0, 10);
}

/** `<dir>/activity/<stream>-YYYY-MM-DD.ndjson` for the event's UTC date (today's when `time` is unreadable). */
export function activityFilePath(dir: string, stream: ActivityStream, time: string): string {
  return path.join(dir, 'activity', `${stream}-${utcDate(time)}.ndjson`);
}

/** The event's line, newline included, as a view of its bytes. */
export function encodedLine(encoded: EncodedActivityEvent): Buffer {
  return encoded.bytes.subarray(encoded.start, encoded.end);
}

/** The event an encoded one was made from, as a plain object with exactly the ActivityEvent fields. */
export function decodeActivityEvent(encoded: EncodedActivityEvent): ActivityEvent {
  return JSON.parse(encoded.bytes.toString('utf8', encoded.start, encoded.end)) as ActivityEvent;
}

/** Runs past this many are copied into one buffer: one writev(2) takes at most IOV_MAX (1024) pieces. */
const MAX_WRITE_PIECES = 256;

/**
 * events[start..end) as NDJSON bytes: one slice per run of lines that lie back to back (a runner's
 * batch: one per queue segment it spans), and a line of its own otherwise.
 */
export function ndjson(events: readonly EncodedActivityEvent[], start: number, end: number): Buffer[] {
  const runs: Buffer[] = [];
  let from = events[start]!;
  let to = from.end;
  for (let i = start + 1; i < end; i++) {
    const e = events[i]!;
    if (e.bytes === from.bytes && e.start === to) {
      to = e.end;
      continue;
    }
    runs.push(from.bytes.subarray(from.start, to));
    from = e;
    to = e.end;
  }
  runs.push(from.bytes.subarray(from.start, to));
  // Past IOV_MAX pieces libuv splits a writev into several writes, which could interleave with another process's.
  return runs.length > MAX_WRITE_PIECES ? [Buffer.concat(runs)] : runs;
}

/**
 * Events as a sink runner holds them (see EncodedActivityEvent), for sinks given plain events:
 * their JSON lines back to back in one buffer, as a runner's batch holds them.
 */
export function encodeActivityEvents(events: readonly ActivityEvent[]): EncodedActivityEvent[] {
  const lines = events.map((e) => `${activityEventJson(e)}\n`);
  const bytes = Buffer.from(lines.join(''), 'utf8');
  let at = 0;
  return events.map((e, i) => {
    const start = at;
    at += Buffer.byteLength(lines[i]!, 'utf8');
    return { date: utcDate(e.time), bytes, start, end: at };
  });
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
      // per run (path.join per event took 0.5 µs).
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
