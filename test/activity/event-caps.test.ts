import { isUtf8 } from 'node:buffer';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent, CappedField } from '../../src/activity/event.js';
import { activityEventJson, RecordedActivityEvent } from '../../src/activity/event-codec.js';
import {
  capEventFields,
  capIdentity,
  capJsonString,
  CI_CAPS,
  FIELD_CAPS,
  MAX_EVENT_LINE_BYTES,
  TRUNCATION_MARK,
} from '../../src/activity/event-caps.js';
import { parseArtifactPath } from '../../src/artifacts/parse-path/index.js';
import { createActivityRecorder, type LeakActivity, type RequestActivity } from '../../src/activity/recorder.js';
import type { SinkRunner } from '../../src/activity/queue.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { basic } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { tempDir, type TempDir } from '../helpers/route-config.js';

/**
 * Issue 20, "Activity events are unbounded in bytes": a 12 KB User-Agent and a 4 KB path made a
 * 16 KB event, in every sink (the Redis Stream is bounded by count only). Every field the client
 * chooses is cut to its cap, marked, and one event's line stays under 4 KiB whatever it sends.
 */

const CAPPED = Object.keys(FIELD_CAPS) as CappedField[];
/** The capped fields that are strings (`ci` and `leak` are objects whose strings have caps of their own). */
const STRINGS = CAPPED.filter((f) => f !== 'ci' && f !== 'leak');
const FULL = '\u0000'.repeat(5000);
const jsonBytes = (s: string) => Buffer.byteLength(JSON.stringify(s)) - 2;
const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/** `got` is `original`, or a prefix of it cut at a character boundary, marked, within `cap`. */
function expectCapped(got: string, original: string, cap: number, cut: boolean): void {
  expect(jsonBytes(got)).toBeLessThanOrEqual(cap);
  if (!cut) {
    expect(got).toBe(original);
    return;
  }
  expect(jsonBytes(original)).toBeGreaterThan(cap);
  expect(got.endsWith(TRUNCATION_MARK)).toBe(true);
  const kept = got.slice(0, -TRUNCATION_MARK.length);
  expect(original.startsWith(kept)).toBe(true);
  // Never inside a surrogate pair; and as long as it can be: the next character would not fit.
  expect(isHigh(kept.charCodeAt(kept.length - 1)) && isLow(original.charCodeAt(kept.length))).toBe(false);
  const next = isHigh(original.charCodeAt(kept.length)) && isLow(original.charCodeAt(kept.length + 1)) ? 2 : 1;
  expect(jsonBytes(original.slice(0, kept.length + next)) + 3).toBeGreaterThan(cap);
}

/** The recorder, with a runner that keeps what it is given. */
function recorder() {
  const events: ActivityEvent[] = [];
  const runner = { name: 'keep', enqueue: (e: ActivityEvent) => events.push(e) } as unknown as SinkRunner;
  const r = createActivityRecorder({
    production: [runner],
    development: [runner],
    metrics: createMetrics({ defaultMetrics: false }),
    projectLabel: (p) => p,
  });
  return { record: (a: RequestActivity) => r.record(a), recordLeak: (l: LeakActivity) => r.recordLeak(l), events };
}

/** Every byte of a string's UTF-8, percent-encoded: how a client sends any segment. */
const percentEncoded = (s: string) =>
  [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

function activity(over: Partial<RequestActivity> & { project?: string; tokenName?: string } = {}): RequestActivity {
  const { project = 'web', tokenName = 'ci', ...rest } = over;
  return {
    requestId: '0a1b2c3d-1',
    principal: {
      tokenId: 'tok_0123456789abcdef',
      tokenName,
      tokenType: 'production',
      project,
      restrictions: undefined,
      ci: undefined,
    },
    ecosystem: 'generic',
    path: '/tools/1.0.0/tools-1.0.0.tgz',
    method: 'GET',
    status: 200,
    bytes: 1000,
    durationMs: 12.5,
    clientIp: '10.0.0.7',
    userAgent: 'npm/10.8.1 node/v20.15.0 linux x64 workspaces/false',
    aborted: false,
    endedAt: Date.now(),
    ...rest,
  };
}

describe('capJsonString', () => {
  it('returns the very string it was given when it fits (no copy for the usual short fields)', () => {
    for (const s of ['', 'npm/10', 'é'.repeat(256), '"'.repeat(256), 'a'.repeat(512), `${'a'.repeat(508)}😀`]) {
      expect(capJsonString(s, 512)).toBe(s);
    }
  });

  it.each<[string, string, number, string]>([
    ['ASCII', 'a'.repeat(600), 512, `${'a'.repeat(509)}…`],
    ['one byte over', 'a'.repeat(513), 512, `${'a'.repeat(509)}…`],
    ['quotes (2 bytes each)', '"'.repeat(300), 512, `${'"'.repeat(254)}…`],
    ['control characters (6 bytes each)', '\u0000'.repeat(100), 512, `${'\u0000'.repeat(84)}…`],
    ['2-byte characters', 'é'.repeat(300), 512, `${'é'.repeat(254)}…`],
    ['a surrogate pair across the cut', `${'a'.repeat(508)}😀b`, 512, `${'a'.repeat(508)}…`],
    ['lone surrogates (6 bytes each, as JSON writes them)', '\ud800'.repeat(100), 512, `${'\ud800'.repeat(84)}…`],
  ])('cuts %s at a character boundary, marked, within the cap', (_, value, cap, expected) => {
    const got = capJsonString(value, cap);
    expect(got).toBe(expected);
    expectCapped(got, value, cap, true);
  });

  it('cuts any string to its cap without splitting a character', () => {
    const anyString = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 2000 }),
      fc.string({
        unit: fc.constantFrom('a', '"', '\\', '\n', '\u0000', '\u007f', 'é', '€', '\u2028', '😀', '\ud83d', '\ude00'),
        maxLength: 2000,
      }),
    );
    fc.assert(
      fc.property(anyString, fc.integer({ min: 16, max: 1100 }), (value, cap) => {
        const got = capJsonString(value, cap);
        expectCapped(got, value, cap, got !== value);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('activity events are bounded in bytes whatever the client sends', () => {
  it('keeps the line under 4 KiB in the worst case: every capped field full, the longest values of the rest', () => {
    const worst = new RecordedActivityEvent({
      id: '7ZZZZZZZZZZZZZZZZZZZZZZZZZ',
      time: '2024-12-31T23:59:59.999Z',
      requestId: `ffffffff-${Number.MAX_SAFE_INTEGER.toString(36)}`, // the proxy's: 8 hex digits and a counter
      tokenId: 'tok_0123456789abcdef', // the store's
      tokenName: '\u0000'.repeat(5000),
      tokenType: 'development',
      project: '\u0000'.repeat(5000),
      ecosystem: 'composer',
      kind: 'metadata',
      package: '\u0000'.repeat(5000),
      version: '\u0000'.repeat(5000),
      file: '\u0000'.repeat(5000),
      method: '\u0000'.repeat(5000),
      status: 599,
      bytes: Number.MAX_SAFE_INTEGER,
      durationMs: 1.2345678901234568e21, // 17 significant digits and an exponent: as long as a double prints
      clientIp: '\u0000'.repeat(5000),
      userAgent: '\u0000'.repeat(5000),
      sealed: false,
      aborted: false,
      truncated: [],
      // A CI token's identity with every claim full.
      ci: capIdentity({
        provider: FULL,
        subject: FULL,
        repository: FULL,
        ref: FULL,
        sha: FULL,
        workflow: FULL,
        runId: FULL,
        actor: FULL,
      }),
      leak: null,
    });
    capEventFields(worst);
    expect(worst.truncated).toEqual(CAPPED.filter((f) => f !== 'leak'));
    for (const field of STRINGS)
      expect(jsonBytes(worst[field] as string), field).toBeGreaterThan(FIELD_CAPS[field] - 6);
    for (const [claim, cap] of Object.entries(CI_CAPS))
      expect(jsonBytes((worst.ci as unknown as Record<string, string>)[claim]!), claim).toBeGreaterThan(cap - 6);
    expect(Buffer.byteLength(`${activityEventJson(worst)}\n`)).toBeLessThan(MAX_EVENT_LINE_BYTES);
  });

  it('keeps a leaked alert under 4 KiB whatever its report says', () => {
    const { recordLeak, events } = recorder();
    recordLeak({
      tokenId: 'tok_0123456789abcdef',
      tokenName: FULL,
      tokenType: 'production',
      clientIp: FULL,
      at: Date.now(),
      leak: { source: FULL, url: FULL, location: FULL },
    });
    const [event] = events;
    expect(event).toMatchObject({ kind: 'leaked', truncated: ['tokenName', 'clientIp', 'leak'] });
    expect(Buffer.byteLength(`${activityEventJson(event!)}\n`)).toBeLessThan(MAX_EVENT_LINE_BYTES);
  });

  it('makes events whose line is always under 4 KiB, valid UTF-8 JSON, each field whole or cut and marked', () => {
    const anyText = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 1500 }),
      fc.string({
        unit: fc.constantFrom('a', '"', '\\', '\u0000', '\u001f', 'é', '€', '😀', '\ud800', '\udfff', '\u2028'),
        maxLength: 1500,
      }),
      fc.string({ maxLength: 40 }),
    );
    const { record, events } = recorder();
    fc.assert(
      fc.property(
        fc.record({
          userAgent: fc.option(anyText, { nil: undefined }),
          project: anyText,
          tokenName: anyText,
          clientIp: anyText,
          method: anyText,
          name: anyText,
          version: anyText,
          file: anyText,
          ecosystem: fc.constantFrom('generic', 'npm', 'maven', 'pypi'),
          development: fc.boolean(),
          aborted: fc.boolean(),
        }),
        (c) => {
          // A layout that names package, version and file, each segment percent-encoded byte by byte.
          const requestPath = `/p${percentEncoded(c.name)}/1${percentEncoded(c.version)}/${percentEncoded(c.file)}`;
          const a = activity({
            userAgent: c.userAgent,
            project: c.project,
            tokenName: c.tokenName,
            clientIp: c.clientIp,
            method: c.method,
            path: requestPath,
            ecosystem: c.ecosystem,
            aborted: c.aborted,
          });
          if (c.development) (a.principal as { tokenType: string }).tokenType = 'development';
          events.length = 0;
          record(a);
          expect(events).toHaveLength(1);
          const event = events[0]!;
          const line = `${activityEventJson(event)}\n`;
          const bytes = Buffer.from(line, 'utf8');
          expect(bytes.length).toBeLessThan(MAX_EVENT_LINE_BYTES);
          expect(isUtf8(bytes)).toBe(true);
          expect(bytes.toString('utf8')).toBe(line); // nothing lost to the encoding: no lone surrogate in the text
          expect(JSON.parse(line)).toEqual({ ...event, truncated: [...event.truncated] });
          expect(event.aborted).toBe(c.aborted);

          const ref = parseArtifactPath(a.ecosystem, a.path);
          const original: Record<Exclude<CappedField, 'ci' | 'leak'>, string | null> = {
            tokenName: c.tokenName,
            project: c.project,
            package: ref.package,
            version: ref.version,
            file: ref.file,
            method: c.method,
            clientIp: c.clientIp,
            userAgent: c.userAgent ?? null,
          };
          expect(event.ci).toBeNull();
          expect(event.leak).toBeNull();
          for (const field of STRINGS) {
            const cut = event.truncated.includes(field);
            if (original[field] === null) expect(event[field]).toBeNull();
            else expectCapped(event[field] as string, original[field], FIELD_CAPS[field], cut);
          }
          expect(event.truncated).toEqual(CAPPED.filter((f) => event.truncated.includes(f))); // in field order
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('leaves ordinary events as they are: nothing truncated', () => {
    const { record, events } = recorder();
    record(
      activity({
        path: '/@acme%2fwidgets/-/widgets-1.4.2.tgz',
        ecosystem: 'npm',
        userAgent: `pip/24.0 ${JSON.stringify({ installer: { name: 'pip' }, python: '3.12.3', ci: null }).repeat(3)}`,
      }),
    );
    const [event] = events;
    expect(event).toMatchObject({
      package: '@acme/widgets',
      version: '1.4.2',
      file: 'widgets-1.4.2.tgz',
      truncated: [],
    });
    expect(activityEventJson(event!)).toContain('"aborted":false,"truncated":[],"ci":null,"leak":null}');
  });
});

describe('through a real gateway', () => {
  let origin: Origin;
  let scratch: TempDir;
  let gw: TestGateway;
  beforeAll(async () => {
    origin = await startOrigin();
    scratch = tempDir('tollgate-event-caps-');
    gw = await startTestGateway({
      TOLLGATE_CONFIG: scratch.configFile([{ prefix: '/files/', upstream: `${origin.url}/`, ecosystem: 'generic' }]),
      TOLLGATE_ACTIVITY_FLUSH_MS: '10',
    });
  });
  afterAll(async () => {
    await gw?.close();
    await origin?.close();
    scratch?.remove();
  });

  it('writes a request with a 12 KB User-Agent and a 4 KB path as an event under 4 KiB, marked truncated', async () => {
    const { token } = await gw.createToken({ type: 'production' });
    const name = `tool-${'n'.repeat(1400)}`;
    const version = `1.${'é'.repeat(200)}`; // the path parser takes versions of up to 256 characters
    const file = `${'f'.repeat(1300)}.bin`;
    const urlPath = `/files/${name}/${encodeURIComponent(version)}/${file}`;
    expect(urlPath.length).toBeGreaterThan(3900);
    const res = await fetch(`${gw.url}${urlPath}`, {
      headers: { authorization: basic('web', token), 'user-agent': `agent/${'u'.repeat(12_000)}` },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();

    const dir = path.join(gw.dataDir, 'activity');
    const lines = async () => {
      for (const runner of gw.gateway.activity.runners) await runner.drain(10_000);
      try {
        return readdirSync(dir)
          .filter((f) => f.startsWith('production-'))
          .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean));
      } catch {
        return [];
      }
    };
    await expect.poll(async () => (await lines()).length, { timeout: 10_000 }).toBe(1);
    const [line] = await lines();
    expect(Buffer.byteLength(`${line}\n`)).toBeLessThan(MAX_EVENT_LINE_BYTES);
    const event = JSON.parse(line!) as ActivityEvent;
    expect(event.truncated).toEqual(['package', 'version', 'file', 'userAgent']);
    expect(event.package).toBe(`${name.slice(0, FIELD_CAPS.package - 3)}…`);
    expect(event.version).toBe(`1.${'é'.repeat((FIELD_CAPS.version - 3 - 2) >> 1)}…`); // 2 bytes each
    expect(event.file).toBe(`${file.slice(0, FIELD_CAPS.file - 3)}…`);
    expect(event.userAgent).toBe(`agent/${'u'.repeat(FIELD_CAPS.userAgent - 9)}…`);
    expect(event).toMatchObject({ project: 'web', status: 200, aborted: false });
  });
});
