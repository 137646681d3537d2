import type { ActivityEvent, EncodedActivityEvent } from './event.js';
import { activityEventJson, utcDate } from './event-codec.js';

/** Lines are written into segments of this size (a longer line gets a segment of its own). */
const SEGMENT_BYTES = 64 * 1024;
/** Delivered segments kept for reuse. */
const SPARE_SEGMENTS = 4;
/** Entries the index arrays start with; after a backlog they go back to this size. */
const INITIAL_ENTRIES = 1024;

const digit = (s: string, i: number): number => s.charCodeAt(i) - 48;

/** YYYY-MM-DD as the number YYYYMMDD, read digit by digit (no substrings). */
function dayNumber(date: string): number {
  const year = digit(date, 0) * 1000 + digit(date, 1) * 100 + digit(date, 2) * 10 + digit(date, 3);
  return year * 10_000 + (digit(date, 5) * 10 + digit(date, 6)) * 100 + digit(date, 8) * 10 + digit(date, 9);
}

/**
 * A sink runner's memory queue: the events' JSON lines back to back in 64 KiB segments, and per
 * event its segment, where its line ends and its UTC date as numbers in three typed arrays. No
 * object per event: events wait for their batch long enough to outlive young-generation GCs, and
 * whatever they are held by is copied by each GC and then promoted to the old generation (as
 * objects, most of what V8 promoted per request). The objects a sink gets (EncodedActivityEvent)
 * are made per batch. The typed arrays are reused, not regrown per batch: JavaScript arrays
 * pushed to from empty for every batch were promoted too.
 *
 * Lines are appended to the last segment, and to a new one when it is full. A segment is given
 * back only once every line in it was delivered (drop()), so a batch on its way to a sink (views
 * into its segments) is never overwritten; a few delivered segments are kept and reused. Under
 * load a batch is nearly always out: a queue that moved its lines to a new buffer whenever one
 * was out allocated a steady stream of ArrayBuffers, which V8 promoted and freed only in major
 * GCs (RSS grew between them).
 */
export class EncodedEventQueue {
  /** The segments holding queued lines, oldest first; lines are appended to the last. */
  #segments: Buffer[] = [Buffer.allocUnsafe(SEGMENT_BYTES)];
  /** The number of #segments[0]: segments are numbered in order since the queue began. */
  #firstSegment = 0;
  /** Where the next line goes in the last segment. */
  #tail = 0;
  /** Where the first queued line starts in its segment. */
  #start = 0;
  /** Per event, at indexes [#first, #next): its segment's number, where its line ends in it, its date as YYYYMMDD. */
  #segmentOf = new Float64Array(INITIAL_ENTRIES);
  #ends = new Float64Array(INITIAL_ENTRIES);
  #days = new Int32Array(INITIAL_ENTRIES);
  #first = 0;
  #next = 0;
  #spares: Buffer[] = [];
  /** The last date string made, reused for the events of one day. */
  #dayNumber = 0;
  #dayString = '';

  get length(): number {
    return this.#next - this.#first;
  }

  push(event: ActivityEvent): void {
    const json = activityEventJson(event);
    let segment = this.#segments[this.#segments.length - 1]!;
    // UTF-8 needs at most 3 bytes per UTF-16 unit; count exactly only when that bound does not fit.
    if (this.#tail + json.length * 3 + 1 > segment.length) {
      const size = Buffer.byteLength(json) + 1;
      if (this.#tail + size > segment.length) segment = this.#newSegment(size);
    }
    const written = segment.write(json, this.#tail, 'utf8');
    segment[this.#tail + written] = 0x0a;
    this.#tail += written + 1;
    if (this.#next === this.#ends.length) this.#makeRoom();
    const i = this.#next++;
    this.#segmentOf[i] = this.#firstSegment + this.#segments.length - 1;
    this.#ends[i] = this.#tail;
    this.#days[i] = dayNumber(utcDate(event.time));
  }

  /** The first `count` queued events (at most length), as a sink gets them. They stay queued until drop(). */
  peek(count: number): EncodedActivityEvent[] {
    const n = Math.min(count, this.length);
    const out = new Array<EncodedActivityEvent>(n);
    let from = this.#start;
    let number = n > 0 ? this.#segmentOf[this.#first]! : 0;
    for (let i = 0; i < n; i++) {
      const k = this.#first + i;
      if (this.#segmentOf[k] !== number) {
        number = this.#segmentOf[k]!;
        from = 0;
      }
      const to = this.#ends[k]!;
      out[i] = {
        date: this.#date(this.#days[k]!),
        bytes: this.#segments[number - this.#firstSegment]!,
        start: from,
        end: to,
      };
      from = to;
    }
    return out;
  }

  /** Forgets the first `count` queued events (delivered); segments left without a queued line are given back. */
  drop(count: number): void {
    const n = Math.min(count, this.length);
    if (n === 0) return;
    this.#first += n;
    if (this.length === 0) {
      // Nothing queued, so no batch is out: start again at the beginning of one standard segment.
      const last = this.#segments.pop()!;
      for (const segment of this.#segments) this.#spare(segment);
      this.#segments = [
        last.length === SEGMENT_BYTES ? last : (this.#spares.pop() ?? Buffer.allocUnsafe(SEGMENT_BYTES)),
      ];
      this.#firstSegment = this.#segmentOf[this.#first - 1]!;
      this.#tail = 0;
      this.#start = 0;
      this.#first = 0;
      this.#next = 0;
      if (this.#ends.length > 4 * INITIAL_ENTRIES) this.#resize(INITIAL_ENTRIES); // after a backlog
      return;
    }
    const number = this.#segmentOf[this.#first]!;
    this.#start = this.#segmentOf[this.#first - 1] === number ? this.#ends[this.#first - 1]! : 0;
    while (this.#firstSegment < number) {
      this.#spare(this.#segments.shift()!);
      this.#firstSegment++;
    }
  }

  /** The index arrays are full at the end: move the entries to their start, or to arrays twice as large. */
  #makeRoom(): void {
    const live = this.#next - this.#first;
    if (2 * live > this.#ends.length) {
      this.#resize(2 * this.#ends.length);
      return;
    }
    this.#segmentOf.copyWithin(0, this.#first, this.#next);
    this.#ends.copyWithin(0, this.#first, this.#next);
    this.#days.copyWithin(0, this.#first, this.#next);
    this.#first = 0;
    this.#next = live;
  }

  #resize(entries: number): void {
    const live = this.#next - this.#first;
    const segmentOf = new Float64Array(entries);
    const ends = new Float64Array(entries);
    const days = new Int32Array(entries);
    segmentOf.set(this.#segmentOf.subarray(this.#first, this.#next));
    ends.set(this.#ends.subarray(this.#first, this.#next));
    days.set(this.#days.subarray(this.#first, this.#next));
    this.#segmentOf = segmentOf;
    this.#ends = ends;
    this.#days = days;
    this.#first = 0;
    this.#next = live;
  }

  /** Appends a segment with room for `size` bytes and makes it the one written to. */
  #newSegment(size: number): Buffer {
    const segment =
      size > SEGMENT_BYTES ? Buffer.allocUnsafe(size) : (this.#spares.pop() ?? Buffer.allocUnsafe(SEGMENT_BYTES));
    this.#segments.push(segment);
    this.#tail = 0;
    return segment;
  }

  #spare(segment: Buffer): void {
    if (segment.length === SEGMENT_BYTES && this.#spares.length < SPARE_SEGMENTS) this.#spares.push(segment);
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
