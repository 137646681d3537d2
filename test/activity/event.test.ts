import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newEventId, type ActivityEvent } from '../../src/activity/event.js';
import { isoTime } from '../../src/iso-time.js';
import { ACTIVITY_EVENT_FIELDS, activityEventJson, RecordedActivityEvent } from '../../src/activity/event-codec.js';
import { eventFactory } from '../helpers/activity-events.js';

/**
 * The event's own parts, made cheaply per request: the ULID id, the ISO time, and the JSON line
 * every sink writes (one object literal, kept on the recorder's events). Each is checked against
 * the plain construction it replaces.
 */

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** The 48-bit millisecond time as the first 10 characters of a ULID. */
function ulidTime(ms: number): string {
  let out = '';
  for (let i = 0, t = ms; i < 10; i++, t = Math.floor(t / 32)) out = CROCKFORD[t % 32] + out;
  return out;
}
/** The 80 random bits as a number of base-32 digits (BigInt: 16 digits do not fit a double). */
const ulidRandom = (id: string) => [...id.slice(10)].reduce((n, c) => n * 32n + BigInt(CROCKFORD.indexOf(c)), 0n);

describe('newEventId', () => {
  it('encodes the millisecond in the first 10 characters, Crockford base32', () => {
    for (const ms of [0, 1, 31, 32, 1_714_564_800_000, Date.now(), 2 ** 48 - 1]) {
      const id = newEventId(ms);
      expect(id).toMatch(ULID);
      expect(id.slice(0, 10)).toBe(ulidTime(ms));
    }
  });

  it('counts up by one within a millisecond, and draws fresh random bits for the next', () => {
    const ms = Date.now() + 1_000_000;
    const ids = Array.from({ length: 1000 }, () => newEventId(ms));
    for (let i = 1; i < ids.length; i++) {
      expect(ids[i]!.slice(0, 10)).toBe(ids[0]!.slice(0, 10));
      // Wraps to 0 only past 32^16 - 1; 1000 steps from a random start never get there in practice.
      expect(ulidRandom(ids[i]!) - ulidRandom(ids[i - 1]!)).toBe(1n);
    }
    expect([...ids].sort()).toEqual(ids);
    const next = newEventId(ms + 1);
    expect(next > ids.at(-1)!).toBe(true);
    expect(next.slice(0, 10)).toBe(ulidTime(ms + 1));
  });

  it('does not repeat itself across milliseconds', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) ids.add(newEventId(1_000_000 + (i >> 2)));
    expect(ids.size).toBe(10_000);
  });
});

describe('isoTime', () => {
  it('gives exactly what toISOString gives, within a second, across seconds, days and years', () => {
    const starts = [0, 999, 1000, 1_714_607_999_990, 1_714_608_000_000, Date.now(), 253_402_300_799_000];
    for (const start of starts) {
      for (let ms = start; ms < start + 1500; ms += 7) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    }
    // Out of order too: the kept second is replaced, not trusted.
    for (const ms of [5_000_123, 1_000, 5_000_999, 4_999_999, 5_000_000])
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });

  it('falls back to toISOString outside four-digit years and for fractions, and throws where it throws', () => {
    for (const ms of [-1, -86_400_001, 253_402_300_800_000, 1.5, 1_714_608_000_000.75]) {
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    }
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
    expect(() => isoTime(8.64e15 + 1)).toThrow(RangeError);
  });
});

/** The serialisation activityEventJson had before it was made faster: the reference for the bytes. */
function referenceJson(event: ActivityEvent): string {
  const record: Record<string, unknown> = {};
  for (const field of ACTIVITY_EVENT_FIELDS) record[field] = event[field] ?? null;
  return JSON.stringify(record);
}

const makeEvent = eventFactory({
  stepMs: 1000,
  perEvent: (seq) => ({
    package: '@acme/lib',
    version: `1.0.${seq}`,
    file: `lib-1.0.${seq}.tgz`,
    userAgent: 'npm/10 "quoted" \\ é \u2028',
    durationMs: 12.5,
  }),
});

describe('activityEventJson', () => {
  it('writes every field in ACTIVITY_EVENT_FIELDS order, byte for byte as before', () => {
    const event = makeEvent();
    const json = activityEventJson(event);
    expect(json).toBe(referenceJson(event));
    expect(Object.keys(JSON.parse(json) as object)).toEqual([...ACTIVITY_EVENT_FIELDS]);
  });

  it('leaves out extra properties and writes missing ones as null', () => {
    const withExtra = { ...makeEvent(), token: 'tgp_secret', headers: { authorization: 'x' } } as ActivityEvent;
    const missing = { ...makeEvent(), userAgent: undefined, package: undefined } as unknown as ActivityEvent;
    const reordered = Object.fromEntries(Object.entries(makeEvent()).reverse()) as unknown as ActivityEvent;
    for (const event of [withExtra, missing, reordered]) expect(activityEventJson(event)).toBe(referenceJson(event));
    expect(activityEventJson(withExtra)).not.toContain('tgp_secret');
    expect(JSON.parse(activityEventJson(missing))).toMatchObject({ userAgent: null, package: null });
  });

  it('serialises a recorded event once, the same line as for the plain event', () => {
    const plain = makeEvent();
    const recorded = new RecordedActivityEvent(plain);
    const line = activityEventJson(recorded);
    expect(line).toBe(referenceJson(plain));
    expect(activityEventJson(recorded)).toBe(line);
    // What JSON.stringify, spreading and comparisons see: the event's fields, in order, nothing else.
    expect(Object.keys(recorded)).toEqual([...ACTIVITY_EVENT_FIELDS]);
    expect(JSON.stringify(recorded)).toBe(JSON.stringify(plain));
    expect({ ...recorded }).toEqual(plain);
    expect(recorded).toEqual(plain);
  });

  it('writes any value in any field byte for byte as JSON.stringify of the projected object', () => {
    // Strings of any code units (quotes, backslashes, controls, U+2028, lone and paired surrogates),
    // every kind of number (-0, NaN, Infinity, 1e21, fractions), booleans, null, undefined, objects.
    const anyValue = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({
        unit: fc.constantFrom('"', '\\', '\n', '\u0000', '\u001f', '\u007f', '\u2028', '\ud83d', '\ude00', 'é', 'a'),
      }),
      fc.double(),
      fc.integer(),
      fc.constantFrom(-0, 1e21, Number.NaN, Number.POSITIVE_INFINITY),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.object(),
    );
    const anyEvent = fc.record(Object.fromEntries(ACTIVITY_EVENT_FIELDS.map((field) => [field, anyValue])));
    fc.assert(
      fc.property(anyEvent, (fields) => {
        const event = fields as unknown as ActivityEvent;
        expect(activityEventJson(event)).toBe(referenceJson(event));
        expect(new RecordedActivityEvent(event).json()).toBe(referenceJson(event));
      }),
      { numRuns: 2000 },
    );
    // Typed values, as the recorder makes them: the fast paths.
    const typedEvent = fc.record({
      ...Object.fromEntries(
        ACTIVITY_EVENT_FIELDS.map((field) => [field, fc.oneof(fc.string({ unit: 'grapheme' }), fc.constant(null))]),
      ),
      status: fc.integer({ min: 100, max: 599 }),
      bytes: fc.nat(),
      durationMs: fc.double({ min: 0, max: 1e6, noNaN: true }),
      sealed: fc.boolean(),
    });
    fc.assert(
      fc.property(typedEvent, (fields) => {
        const event = fields as unknown as ActivityEvent;
        expect(activityEventJson(event)).toBe(referenceJson(event));
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps the allow-list for a recorded event that gained a property', () => {
    const recorded = new RecordedActivityEvent(makeEvent());
    (recorded as unknown as Record<string, unknown>).token = 'tgp_secret';
    expect(activityEventJson(recorded)).toBe(referenceJson(recorded));
    expect(activityEventJson(recorded)).not.toContain('tgp_secret');
  });
});
