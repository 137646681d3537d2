/**
 * The activity event codec: the shape of an event on the wire. Every sink, the runners' memory
 * queue and the recent-activity views serialise and read events through this module, so an event
 * has one JSON form wherever it goes:
 *
 *   {"id":"…","time":"…",…,"sealed":false,"aborted":false,"truncated":[]}\n
 *                                exactly the ActivityEvent fields, in ACTIVITY_EVENT_FIELDS order,
 *                                one line each, under MAX_EVENT_LINE_BYTES for a recorded event
 *                                (event-caps.ts)
 *
 * An allow-list: whatever else an object carries (a token above all) is never serialised.
 *
 * This module imports nothing at run time (a multi-process test runs it, with the file sink, as
 * plain JavaScript).
 */
import type { ActivityEvent, EncodedActivityEvent } from './event.js';

/** Every field of an ActivityEvent, in the order written. Adding a field to the type without listing it here fails to compile. */
export const ACTIVITY_EVENT_FIELDS = [
  'id',
  'time',
  'requestId',
  'tokenId',
  'tokenName',
  'tokenType',
  'project',
  'ecosystem',
  'kind',
  'package',
  'version',
  'file',
  'method',
  'status',
  'bytes',
  'durationMs',
  'clientIp',
  'userAgent',
  'sealed',
  'aborted',
  'truncated',
  'ci',
  'leak',
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
 * projection has the same shape; a record filled field by field in a loop is slower.
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
    aborted: e.aborted ?? null,
    truncated: e.truncated ?? null,
    ci: e.ci ?? null,
    leak: e.leak ?? null,
  } satisfies Record<keyof ActivityEvent, unknown>);
}

/**
 * An ActivityEvent as the recorder makes it: the same fields, in the same order, plus its JSON
 * line once made, in a private field (invisible to JSON.stringify, spreading and comparisons).
 * Every sink of the pipeline (file, Redis Stream, webhook, and the recent-activity table where
 * there is one) writes the same event object; they share one JSON.stringify. A WeakMap from event
 * to line did that before, but cost more than a second stringify (its entries add ephemeron work
 * to every GC). It lives here, beside activityEventJson, which must know it.
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
  declare aborted: boolean;
  declare truncated: ActivityEvent['truncated'];
  declare ci: ActivityEvent['ci'];
  declare leak: ActivityEvent['leak'];
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
    this.aborted = e.aborted;
    this.truncated = e.truncated;
    this.ci = e.ci;
    this.leak = e.leak;
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

/** The event's line, newline included, as a view of its bytes. */
export function encodedLine(encoded: EncodedActivityEvent): Buffer {
  return encoded.bytes.subarray(encoded.start, encoded.end);
}

/** The event an encoded one was made from, as a plain object with exactly the ActivityEvent fields. */
export function decodeActivityEvent(encoded: EncodedActivityEvent): ActivityEvent {
  return withLaterFields(JSON.parse(encoded.bytes.toString('utf8', encoded.start, encoded.end)) as ActivityEvent);
}

/** `truncated` of an event with no field cut: one shared, frozen empty list. */
export const NOTHING_TRUNCATED: ActivityEvent['truncated'] = Object.freeze([]);

/**
 * A decoded event with the fields that lines of earlier versions lack (or hold as null) filled in
 * as those versions meant them: `aborted` false, `truncated` empty, `ci` and `leak` null. Every reader of stored lines
 * (the runners' disk buffer, the recent-activity views) goes through this.
 */
export function withLaterFields(event: ActivityEvent): ActivityEvent {
  if (typeof event !== 'object' || event === null) return event; // not an event: the caller's to refuse
  if (typeof event.aborted !== 'boolean') event.aborted = false;
  if (!Array.isArray(event.truncated)) event.truncated = NOTHING_TRUNCATED;
  if (typeof event.ci !== 'object') event.ci = null;
  if (typeof event.leak !== 'object') event.leak = null;
  return event;
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
