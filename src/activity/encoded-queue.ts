import type { ActivityEvent, EncodedActivityEvent } from './event.js';
import { activityEventJson, utcDate } from './sinks/file.js';

const INITIAL_BYTES = 64 * 1024;
/** The index arrays are cut down once this many delivered entries lead them. */
const COMPACT_AFTER = 4096;

const digit = (s: string, i: number): number => s.charCodeAt(i) - 48;

/** YYYY-MM-DD as the number YYYYMMDD, read digit by digit (no substrings). */
function dayNumber(date: string): number {
  const year = digit(date, 0) * 1000 + digit(date, 1) * 100 + digit(date, 2) * 10 + digit(date, 3);
  return year * 10_000 + (digit(date, 5) * 10 + digit(date, 6)) * 100 + digit(date, 8) * 10 + digit(date, 9);
}

/**
 * A sink runner's memory queue: the events' JSON lines back to back in one buffer, and where
 * each line ends and its UTC date as numbers in two arrays. No object per event: events wait
 * for their batch long enough to outlive young-generation GCs, and whatever they are held by is
 * copied by each GC and then promoted to the old generation (as objects, most of what V8
 * promoted per request). The objects a sink gets (EncodedActivityEvent) are made per batch.
 *
 * Lines are appended. When the buffer is full, the queued lines move to its start if they take
 * at most half of it and no batch is out (between peek() and drop()); otherwise to a new buffer
 * twice their size, and the old one stays as it was, so a batch on its way to a sink (views into
 * it) is never overwritten. Moving within the buffer matters: a new buffer per move was ~1 MB of
 * ArrayBuffer every few hundred events, and such allocations hasten V8's GCs.
 */
export class EncodedEventQueue {
  #buf = Buffer.allocUnsafe(INITIAL_BYTES);
  /** The logical offset (counted since the queue began) of #buf[0]. */
  #base = 0;
  /** Logical offsets: where the first queued line starts, where the last one ends. */
  #start = 0;
  #end = 0;
  /** Per event, from index #first on: the logical offset where its line ends, and its date as YYYYMMDD. */
  #ends: number[] = [];
  #days: number[] = [];
  #first = 0;
  /** A batch is out: its lines must stay where they are. */
  #pinned = false;
  /** The last date string made, reused for the events of one day. */
  #dayNumber = 0;
  #dayString = '';

  get length(): number {
    return this.#ends.length - this.#first;
  }

  push(event: ActivityEvent): void {
    const json = activityEventJson(event);
    const room = json.length * 3 + 1; // UTF-8 needs at most 3 bytes per UTF-16 unit
    if (this.#end - this.#base + room > this.#buf.length) this.#move(room);
    const at = this.#end - this.#base;
    const written = this.#buf.write(json, at, 'utf8');
    this.#buf[at + written] = 0x0a;
    this.#end += written + 1;
    this.#ends.push(this.#end);
    this.#days.push(dayNumber(utcDate(event.time)));
  }

  /** The first `count` queued events (at most length), as a sink gets them. They stay queued until drop(). */
  peek(count: number): EncodedActivityEvent[] {
    const n = Math.min(count, this.length);
    if (n > 0) this.#pinned = true;
    const out: EncodedActivityEvent[] = new Array(n);
    const bytes = this.#buf;
    const base = this.#base;
    let from = this.#start - base;
    for (let i = 0; i < n; i++) {
      const to = this.#ends[this.#first + i]! - base;
      out[i] = { date: this.#date(this.#days[this.#first + i]!), bytes, start: from, end: to };
      from = to;
    }
    return out;
  }

  /** Forgets the first `count` queued events (delivered). */
  drop(count: number): void {
    const n = Math.min(count, this.length);
    this.#pinned = false;
    if (n === 0) return;
    this.#first += n;
    this.#start = this.#ends[this.#first - 1]!;
    if (this.length === 0) {
      this.#ends = [];
      this.#days = [];
      this.#first = 0;
      // After a backlog, give the large buffer back (a batch still being written keeps its own view).
      if (this.#buf.length > 4 * INITIAL_BYTES) {
        this.#buf = Buffer.allocUnsafe(INITIAL_BYTES);
        this.#base = this.#start;
      }
    } else if (this.#first >= COMPACT_AFTER && this.#first * 2 >= this.#ends.length) {
      this.#ends = this.#ends.slice(this.#first);
      this.#days = this.#days.slice(this.#first);
      this.#first = 0;
    }
  }

  /** Moves the queued lines to a new buffer with room for `room` more bytes. */
  #move(room: number): void {
    const live = this.#end - this.#start;
    if (!this.#pinned && 2 * (live + room) <= this.#buf.length) {
      this.#buf.copyWithin(0, this.#start - this.#base, this.#end - this.#base);
      this.#base = this.#start;
      return;
    }
    const next = Buffer.allocUnsafe(Math.max(INITIAL_BYTES, 2 * (live + room)));
    this.#buf.copy(next, 0, this.#start - this.#base, this.#end - this.#base);
    this.#buf = next;
    this.#base = this.#start;
  }

  #date(day: number): string {
    if (day !== this.#dayNumber) {
      this.#dayNumber = day;
      const y = Math.floor(day / 10_000);
      const m = Math.floor(day / 100) % 100;
      const d = day % 100;
      this.#dayString = `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
    }
    return this.#dayString;
  }
}
