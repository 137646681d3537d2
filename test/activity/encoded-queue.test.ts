import { describe, expect, it } from 'vitest';
import { EncodedEventQueue } from '../../src/activity/encoded-queue.js';
import type { ActivityEvent } from '../../src/activity/event.js';
import { activityEventJson, encodedLine, utcDate } from '../../src/activity/event-codec.js';
import { eventFactory } from '../helpers/activity-events.js';

// One event every 7 minutes: a few hundred events span several UTC days.
const makeEvent = eventFactory({
  stepMs: 7 * 60_000,
  perEvent: (seq) => ({ userAgent: `pip/${seq} (Zürich, €, 😀)`.repeat(1 + (seq % 5)) }),
});
const lineOf = (e: ActivityEvent) => `${activityEventJson(e)}\n`;

describe('EncodedEventQueue', () => {
  it('gives back every line and date in order, across segments and index compaction', () => {
    const q = new EncodedEventQueue();
    const events = Array.from({ length: 12_000 }, () => makeEvent()); // ~6 MB of lines: many segments
    const seen: { line: string; date: string }[] = [];
    let next = 0;
    while (next < events.length || q.length > 0) {
      for (let i = 0; i < 700 && next < events.length; i++) q.push(events[next++]!);
      const batch = q.peek(500);
      seen.push(...batch.map((e) => ({ line: encodedLine(e).toString('utf8'), date: e.date })));
      q.drop(batch.length);
    }
    expect(seen).toEqual(events.map((e) => ({ line: lineOf(e), date: utcDate(e.time) })));
    expect(new Set(seen.map((s) => s.date)).size).toBeGreaterThan(30);
  });

  it('never overwrites a batch on its way to a sink, however much is queued after it', () => {
    const q = new EncodedEventQueue();
    // A batch of the last few lines of a segment: once its other lines are delivered, it could be reused.
    for (let i = 0; i < 2_000; i++) q.push(makeEvent());
    q.drop(q.peek(1_990).length);
    const inFlight = q.peek(10);
    const expected = inFlight.map((e) => encodedLine(e).toString('utf8'));
    for (let i = 0; i < 5_000; i++) q.push(makeEvent()); // many segments filled while the batch is out
    expect(inFlight.map((e) => encodedLine(e).toString('utf8'))).toEqual(expected);
    q.drop(10);
    expect(q.length).toBe(5_000);
  });

  it('reuses its buffers when a batch is always out (a busy sink): a bounded set, not one per fill', () => {
    const q = new EncodedEventQueue();
    const buffers = new Set<Buffer>();
    let batch = q.peek(0);
    const expected: string[] = [];
    const seen: string[] = [];
    for (let round = 0; round < 400; round++) {
      // While a batch is being delivered, more events arrive; then it is acked and the next taken.
      for (let i = 0; i < 300; i++) {
        const e = makeEvent();
        expected.push(lineOf(e));
        q.push(e);
      }
      seen.push(...batch.map((e) => encodedLine(e).toString('utf8')));
      q.drop(batch.length);
      batch = q.peek(500);
      for (const e of batch) buffers.add(e.bytes);
    }
    seen.push(...batch.map((e) => encodedLine(e).toString('utf8')));
    expect(seen).toEqual(expected.slice(0, seen.length));
    expect(seen.length).toBeGreaterThan(100_000);
    // 120,000 lines went through; a new buffer per fill would be hundreds of buffers.
    expect(buffers.size).toBeLessThan(64);
  });

  it('holds a line longer than a segment, and goes back to standard segments after it', () => {
    const q = new EncodedEventQueue();
    const long = makeEvent({ userAgent: 'é'.repeat(100_000) }); // ~200 KB of UTF-8
    const events = [makeEvent(), long, makeEvent(), makeEvent()];
    for (const e of events) q.push(e);
    const batch = q.peek(10);
    expect(batch.map((e) => encodedLine(e).toString('utf8'))).toEqual(events.map(lineOf));
    q.drop(batch.length);
    const after = [makeEvent(), makeEvent()];
    for (const e of after) q.push(e);
    const next = q.peek(10);
    expect(next.map((e) => encodedLine(e).toString('utf8'))).toEqual(after.map(lineOf));
    expect(next[0]!.bytes.length).toBeLessThan(100_000);
  });

  it('peeks at most what is queued, drops at most that, and a peek does not consume', () => {
    const q = new EncodedEventQueue();
    expect(q.peek(10)).toEqual([]);
    q.drop(5);
    const events = [makeEvent(), makeEvent(), makeEvent()];
    for (const e of events) q.push(e);
    expect(q.peek(10)).toHaveLength(3);
    expect(q.peek(2).map((e) => encodedLine(e).toString())).toEqual(events.slice(0, 2).map(lineOf));
    expect(q.length).toBe(3);
    q.drop(10);
    expect(q.length).toBe(0);
    const later = makeEvent();
    q.push(later);
    expect(q.peek(10).map((e) => encodedLine(e).toString())).toEqual([lineOf(later)]);
  });

  it('files an event whose time is not ISO by its parsed date, like the file sink', () => {
    const q = new EncodedEventQueue();
    q.push(makeEvent({ time: 'Wed, 01 May 2024 23:30:00 GMT' }));
    expect(q.peek(1)[0]!.date).toBe('2024-05-01');
  });
});
