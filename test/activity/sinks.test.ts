import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ActivityEvent, type EncodedActivityEvent, type Sink } from '../../src/activity/event.js';
import { EncodedEventQueue } from '../../src/activity/encoded-queue.js';
import { loadSigningKeys, type SigningKeys } from '../../src/activity/signing.js';
import {
  activityEventJson,
  decodeActivityEvent,
  encodeActivityEvents,
  encodedLine,
} from '../../src/activity/event-codec.js';
import { activityFilePath, createFileSink } from '../../src/activity/sinks/file.js';
import { createRedisStreamSink } from '../../src/activity/sinks/redis-stream.js';
import { createWebhookSink, WebhookStatusError } from '../../src/activity/sinks/webhook.js';
import { freePort, startRedisServer, startTcpRelay, type RedisServer } from '../helpers/redis-server.js';
import { eventFactory } from '../helpers/activity-events.js';
import { transpileSources } from '../helpers/transpile.js';

let root = '';
beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'tollgate-sinks-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});
let dirs = 0;
const freshDir = () => {
  const dir = path.join(root, `d${++dirs}`);
  mkdirSync(dir);
  return dir;
};

const makeEvent = eventFactory({
  stepMs: 1000,
  perEvent: (seq) => ({
    package: '@acme/lib',
    version: `1.0.${seq}`,
    file: `lib-1.0.${seq}.tgz`,
    bytes: 1234,
    durationMs: 12.5,
  }),
});
const makeEvents = (n: number, over: Partial<ActivityEvent> = {}) => Array.from({ length: n }, () => makeEvent(over));

/** Events as they look after a JSON round trip (what every sink writes). */
const plain = (events: readonly ActivityEvent[]) => JSON.parse(JSON.stringify(events)) as ActivityEvent[];
/** One NDJSON line a sink wrote. */
const parseEvent = (line: string) => JSON.parse(line) as ActivityEvent;

const opened: Sink[] = [];
const track = <S extends Sink>(sink: S): S => {
  opened.push(sink);
  return sink;
};
afterEach(async () => {
  await Promise.all(opened.splice(0).map((sink) => sink.close()));
});

const readLines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '');

interface Child {
  proc: ChildProcess;
  ready: Promise<void>;
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Runs `node script args`; the script prints "ready", waits for a line on stdin, then works. */
function runChild(script: string, args: string[]): Child {
  const proc = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  proc.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.includes('ready\n')) onReady();
  });
  proc.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    proc.on('exit', (code) => {
      onReady();
      resolve({ code, stdout, stderr });
    });
  });
  return { proc, ready, exited };
}

describe('encoded events (how a sink runner holds them in memory)', () => {
  it('hold the UTF-8 bytes of activityEventJson and a newline, and the UTC date', () => {
    const event = makeEvent({ userAgent: 'npm (Zürich, €, 😀, \ud800)', time: '2024-05-01T23:59:59.999Z' });
    const [encoded] = encodeActivityEvents([event]) as [EncodedActivityEvent];
    expect(encodedLine(encoded).equals(Buffer.from(`${activityEventJson(event)}\n`, 'utf8'))).toBe(true);
    expect(encoded.date).toBe('2024-05-01');
  });

  it('decode to exactly the ActivityEvent fields: nothing else an object carried, such as a token', () => {
    const event = makeEvent();
    const decoded = decodeActivityEvent(encodeActivityEvents([{ ...event, token: 'tg_secret' } as ActivityEvent])[0]!);
    expect(decoded).toEqual(plain([event])[0]);
    expect(Object.keys(decoded)).not.toContain('token');
  });
});

describe('file sink', () => {
  it('writes exactly the events given, in order, once, one NDJSON line each', async () => {
    const dir = freshDir();
    const sink = track(createFileSink({ dir, stream: 'production' }));
    expect(sink.name).toBe('file');
    const first = makeEvents(3);
    const second = makeEvents(2);
    await sink.deliver(first, 'b1');
    await sink.deliver(second, 'b2');
    const file = path.join(dir, 'activity', 'production-2024-05-01.ndjson');
    expect(readLines(file).map(parseEvent)).toEqual(plain([...first, ...second]));
    expect(readdirSync(path.join(dir, 'activity'))).toEqual(['production-2024-05-01.ndjson']);
  });

  it('writes the bytes of activityEventJson, newline-terminated, whatever the characters', async () => {
    const dir = freshDir();
    const sink = track(createFileSink({ dir, stream: 'production' }));
    // Multi-byte UTF-8 (2, 3 and 4 bytes), characters JSON escapes, and a lone surrogate half.
    const odd = ['é', '€', '😀', '"quoted" \\ back', 'tab\there\nline', '\u2028', '\ud800', 'x'.repeat(3000)];
    const events = odd.map((userAgent, i) => makeEvent({ userAgent, project: odd[(i + 1) % odd.length]! }));
    await sink.deliver(events, 'bytes');
    const bytes = readFileSync(path.join(dir, 'activity', 'production-2024-05-01.ndjson'));
    expect(bytes.equals(Buffer.from(events.map((e) => `${activityEventJson(e)}\n`).join(''), 'utf8'))).toBe(true);
    expect(
      readLines(path.join(dir, 'activity', 'production-2024-05-01.ndjson')).map((l) => parseEvent(l).userAgent),
    ).toEqual(odd);
  });

  it('keeps Development in its own file, never mixed with Production', async () => {
    const dir = freshDir();
    const production = track(createFileSink({ dir, stream: 'production' }));
    const development = track(createFileSink({ dir, stream: 'development' }));
    expect(development.name).toBe('file-development');
    const prod = makeEvents(2);
    const dev = makeEvents(2, { tokenType: 'development' });
    await production.deliver(prod, 'p');
    await development.deliver(dev, 'd');
    expect(readLines(path.join(dir, 'activity', 'production-2024-05-01.ndjson')).map(parseEvent)).toEqual(plain(prod));
    expect(readLines(path.join(dir, 'activity', 'development-2024-05-01.ndjson')).map(parseEvent)).toEqual(plain(dev));
  });

  it('files each event under its UTC date, a batch across midnight in two files, order kept', async () => {
    const dir = freshDir();
    const sink = track(createFileSink({ dir, stream: 'production' }));
    const before = makeEvent({ time: '2024-05-01T23:59:59.999Z' });
    const after = makeEvent({ time: '2024-05-02T00:00:00.000Z' });
    // 01:30 at UTC+2 is still May 1st in UTC.
    const offset = makeEvent({ time: '2024-05-02T01:30:00.000+02:00' });
    await sink.deliver([before, after, offset], 'midnight');
    expect(readLines(path.join(dir, 'activity', 'production-2024-05-01.ndjson')).map((l) => parseEvent(l).id)).toEqual([
      before.id,
      offset.id,
    ]);
    expect(readLines(path.join(dir, 'activity', 'production-2024-05-02.ndjson')).map((l) => parseEvent(l).id)).toEqual([
      after.id,
    ]);
    expect(readdirSync(path.join(dir, 'activity')).sort()).toEqual([
      'production-2024-05-01.ndjson',
      'production-2024-05-02.ndjson',
    ]);
    expect(activityFilePath(dir, 'production', offset.time)).toBe(
      path.join(dir, 'activity', 'production-2024-05-01.ndjson'),
    );
  });

  it('never writes a property outside ActivityEvent, such as a token', async () => {
    const dir = freshDir();
    const sink = track(createFileSink({ dir, stream: 'production' }));
    const leaky = {
      ...makeEvent(),
      token: 'tgp_secretsecretsecret',
      authorization: 'Bearer tgp_secret',
    } as ActivityEvent;
    await sink.deliver([leaky], 'leak');
    const text = readFileSync(path.join(dir, 'activity', 'production-2024-05-01.ndjson'), 'utf8');
    expect(text).not.toContain('tgp_');
    expect(Object.keys(JSON.parse(text) as Record<string, unknown>)).not.toContain('token');
  });

  it('creates the files with mode 0600', async () => {
    const dir = freshDir();
    const sink = track(createFileSink({ dir, stream: 'production' }));
    await sink.deliver(makeEvents(1), 'mode');
    expect(statSync(path.join(dir, 'activity', 'production-2024-05-01.ndjson')).mode & 0o777).toBe(0o600);
  });

  it('rejects when it cannot write, and a retry of a half-written batch writes only the rest', async () => {
    const dir = freshDir();
    const sink = track(createFileSink({ dir, stream: 'production' }));
    const may1 = makeEvents(2, { time: '2024-05-01T23:00:00.000Z' });
    const may2 = makeEvents(2, { time: '2024-05-02T01:00:00.000Z' });
    // The second day's file cannot be opened: a directory stands in its way.
    const blocked = path.join(dir, 'activity', 'production-2024-05-02.ndjson');
    mkdirSync(blocked, { recursive: true });
    await expect(sink.deliver([...may1, ...may2], 'half')).rejects.toThrow();
    rmSync(blocked, { recursive: true });
    await sink.deliver([...may1, ...may2], 'half');
    expect(readLines(path.join(dir, 'activity', 'production-2024-05-01.ndjson')).map((l) => parseEvent(l).id)).toEqual(
      may1.map((e) => e.id),
    );
    expect(readLines(blocked).map((l) => parseEvent(l).id)).toEqual(may2.map((e) => e.id));
  });

  it("files an event whose time is not the recorder's ISO format by its parsed date, or today's when unreadable", async () => {
    const dir = freshDir();
    const sink = track(createFileSink({ dir, stream: 'production' }));
    const iso = makeEvents(1, { time: '2024-05-01T23:59:59.999Z' });
    const http = makeEvents(1, { time: 'Thu, 02 May 2024 00:00:01 GMT' });
    const unreadable = makeEvents(1, { time: 'not a time' });
    await sink.deliver([...iso, ...http, ...unreadable, ...iso], 'mixed');
    const today = new Date().toISOString().slice(0, 10);
    const lines = (date: string) =>
      readLines(path.join(dir, 'activity', `production-${date}.ndjson`)).map((l) => parseEvent(l).id);
    expect(lines('2024-05-01')).toEqual([iso[0]!.id, iso[0]!.id]);
    expect(lines('2024-05-02')).toEqual([http[0]!.id]);
    expect(lines(today)).toEqual([unreadable[0]!.id]);
    expect(activityFilePath(dir, 'production', 'not a time')).toBe(
      path.join(dir, 'activity', `production-${today}.ndjson`),
    );
  });

  it("writes a runner's batch that spans several queue segments whole, in order, byte for byte", async () => {
    const dir = freshDir();
    const sink = track(createFileSink({ dir, stream: 'production' }));
    const queue = new EncodedEventQueue();
    const events = makeEvents(1_500, { userAgent: 'npm/10.8.2 node/v20.18.1 linux x64 workspaces/false (€, 😀)' });
    queue.push(makeEvent()); // the batch starts inside a segment, not at its beginning
    for (const e of events) queue.push(e);
    queue.drop(1);
    const batch = queue.peek(events.length);
    expect(new Set(batch.map((e) => e.bytes)).size).toBeGreaterThan(3); // lines in several segments
    await sink.deliverEncoded!(batch, 'segments');
    const bytes = readFileSync(path.join(dir, 'activity', 'production-2024-05-01.ndjson'));
    expect(bytes.equals(Buffer.from(events.map((e) => `${activityEventJson(e)}\n`).join(''), 'utf8'))).toBe(true);
  });

  it('keeps every line intact when three processes append large batches to one file at once', async () => {
    const dir = freshDir();
    const build = path.join(dir, 'build');
    mkdirSync(build);
    transpileSources(build, [
      'src/activity/sinks/file.ts',
      'src/activity/event-codec.ts',
      'src/activity/encoded-queue.ts',
    ]);
    const script = path.join(build, 'append.mjs');
    // Lines of ~6 KB and batches of ~150 KB: far beyond PIPE_BUF, so only O_APPEND + one write keeps them whole.
    // Odd batches are plain events (one write), even ones a runner's memory batch spanning several
    // queue segments (one writev).
    writeFileSync(
      script,
      `
import { createFileSink } from './src/activity/sinks/file.js';
import { EncodedEventQueue } from './src/activity/encoded-queue.js';
import { once } from 'node:events';
const queue = new EncodedEventQueue();
const [dir, worker, batches, perBatch] = process.argv.slice(2);
const sink = createFileSink({ dir, stream: 'production' });
const pad = String(worker).repeat(6000);
process.stdout.write('ready\\n');
await once(process.stdin, 'data');
for (let b = 0; b < Number(batches); b++) {
  const events = [];
  for (let i = 0; i < Number(perBatch); i++) {
    events.push({ id: worker + '-' + b + '-' + i, time: '2024-05-01T12:00:00.000Z', requestId: 'r', tokenId: 't',
      tokenName: 'n', tokenType: 'production', project: 'w' + worker, ecosystem: 'npm', kind: 'download', package: 'p',
      version: String(b), file: String(i), method: 'GET', status: 200, bytes: 1, durationMs: 1, clientIp: '127.0.0.1',
      userAgent: pad, sealed: false });
  }
  if (b % 2 === 1) {
    await sink.deliver(events, worker + '-' + b);
    continue;
  }
  for (const e of events) queue.push(e);
  const batch = queue.peek(events.length);
  if (new Set(batch.map((e) => e.bytes)).size < 2) throw new Error('the batch should span several segments');
  await sink.deliverEncoded(batch, worker + '-' + b);
  queue.drop(batch.length);
}
await sink.close();
process.stdin.destroy();
`,
    );
    const batches = 40;
    const perBatch = 25;
    const children = [1, 2, 3].map((worker) =>
      runChild(script, [dir, String(worker), String(batches), String(perBatch)]),
    );
    await Promise.all(children.map((c) => c.ready));
    for (const child of children) child.proc.stdin!.write('go\n');
    const results = await Promise.all(children.map((c) => c.exited));
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });

    const lines = readLines(path.join(dir, 'activity', 'production-2024-05-01.ndjson'));
    expect(lines).toHaveLength(3 * batches * perBatch);
    const seen = new Map<string, number[]>();
    for (const line of lines) {
      const event = JSON.parse(line) as ActivityEvent; // throws on a torn or interleaved line
      const [worker, b, i] = event.id.split('-').map(Number) as [number, number, number];
      expect(event.userAgent).toBe(String(worker).repeat(6000));
      const order = seen.get(String(worker)) ?? [];
      order.push(b * perBatch + i);
      seen.set(String(worker), order);
    }
    // Each process's events appear once each, in the order it wrote them.
    for (const worker of ['1', '2', '3']) {
      expect(seen.get(worker)).toEqual(Array.from({ length: batches * perBatch }, (_, k) => k));
    }
  });
});

describe('redis stream sink', () => {
  let server: RedisServer;
  let admin: Redis;
  let n = 0;
  const key = () => `{tollgate}:activity:test-${++n}`;

  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url, { maxRetriesPerRequest: 0 });
  });
  afterAll(async () => {
    admin.disconnect();
    await server.stop();
  });

  const streamEvents = async (k: string) => {
    const entries = await admin.xrange(k, '-', '+');
    return entries.map(([, fields]) => {
      expect(fields).toHaveLength(2);
      expect(fields[0]).toBe('event');
      return JSON.parse(fields[1]!) as ActivityEvent;
    });
  };

  it('XADDs exactly the events given, in order, once, as one `event` field each', async () => {
    const k = key();
    const sink = track(createRedisStreamSink({ url: server.url, key: k, maxLen: 10_000 }));
    expect(sink.name).toBe('redis');
    const first = makeEvents(3);
    const second = makeEvents(4);
    await sink.deliver(first, 'b1');
    await sink.deliver(second, 'b2');
    expect(await streamEvents(k)).toEqual(plain([...first, ...second]));
  });

  it("writes encoded events (a runner's memory queue) as the same entries, byte for byte", async () => {
    const k = key();
    const sink = track(createRedisStreamSink({ url: server.url, key: k, maxLen: 10_000 }));
    const events = [...makeEvents(2), makeEvent({ userAgent: 'pip/24 (Zürich, €, 😀)', package: 'naïve\u2028pkg' })];
    // As a runner hands them over: lines at offsets within one shared buffer.
    const queue = new EncodedEventQueue();
    queue.push(makeEvent());
    for (const e of events) queue.push(e);
    queue.drop(1);
    const batch = queue.peek(events.length);
    expect(batch[0]!.start).toBeGreaterThan(0);
    await sink.deliverEncoded!(batch, 'b1');
    const entries = await admin.xrange(k, '-', '+');
    expect(entries.map(([, fields]) => fields[1])).toEqual(events.map(activityEventJson));
    expect(await streamEvents(k)).toEqual(plain(events));
  });

  it('writes a batch spanning several queue segments as one entry per event, in order', async () => {
    const k = key();
    const sink = track(createRedisStreamSink({ url: server.url, key: k, maxLen: 10_000 }));
    const events = makeEvents(1_200, { userAgent: 'pip/24.0 CPython/3.12.3 (Zürich, €, 😀, \u2028)' });
    const queue = new EncodedEventQueue();
    for (const e of events) queue.push(e);
    const batch = queue.peek(events.length);
    expect(new Set(batch.map((e) => e.bytes)).size).toBeGreaterThan(2);
    await sink.deliverEncoded!(batch, 'segments');
    const entries = await admin.xrange(k, '-', '+');
    expect(entries.map(([, fields]) => fields[1])).toEqual(events.map(activityEventJson));
  });

  it('does not write a retried batch twice (same batchId), and remembers it for dedupeTtlMs', async () => {
    const k = key();
    const sink = track(createRedisStreamSink({ url: server.url, key: k, maxLen: 10_000, dedupeTtlMs: 60_000 }));
    const batch = makeEvents(3);
    await sink.deliver(batch, 'retried');
    // The reply was "lost": the runner delivers the same batch again.
    await sink.deliver(batch, 'retried');
    expect(await streamEvents(k)).toEqual(plain(batch));
    const ttl = await admin.pttl(`${k}:batch:retried`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    // A different batch is written.
    const next = makeEvents(1);
    await sink.deliver(next, 'next');
    expect(await streamEvents(k)).toEqual(plain([...batch, ...next]));
  });

  it('writes a batch with one script call', async () => {
    const k = key();
    const client = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    await new Promise((resolve) => client.once('ready', resolve));
    const sink = track(createRedisStreamSink({ client, key: k, maxLen: 10_000 }));
    await sink.deliver(makeEvents(1), 'warm');
    const before = await server.commandStats();
    await sink.deliver(makeEvents(50), 'fifty');
    const after = await server.commandStats();
    const calls = (stats: Record<string, number>, name: string) => stats[name] ?? 0;
    expect(calls(after, 'evalsha') + calls(after, 'eval') - calls(before, 'evalsha') - calls(before, 'eval')).toBe(1);
    expect(calls(after, 'xadd') - calls(before, 'xadd')).toBe(50);
    await sink.close();
    expect(client.status).toBe('ready'); // a given client is never closed by the sink
    client.disconnect();
  });

  it('bounds the stream with MAXLEN ~', async () => {
    const k = key();
    const sink = track(createRedisStreamSink({ url: server.url, key: k, maxLen: 100 }));
    for (let b = 0; b < 10; b++) await sink.deliver(makeEvents(100), `bound-${b}`);
    const length = await admin.xlen(k);
    expect(length).toBeGreaterThanOrEqual(100);
    expect(length).toBeLessThan(300);
  });

  it('does not set the batch marker when the XADD fails, so the retry writes the batch', async () => {
    const k = key();
    await admin.set(k, 'not a stream');
    const sink = track(createRedisStreamSink({ url: server.url, key: k, maxLen: 100 }));
    const batch = makeEvents(2);
    await expect(sink.deliver(batch, 'wrongtype')).rejects.toThrow(/WRONGTYPE/);
    expect(await admin.exists(`${k}:batch:wrongtype`)).toBe(0);
    await admin.del(k);
    await sink.deliver(batch, 'wrongtype');
    expect(await streamEvents(k)).toEqual(plain(batch));
  });

  it('rejects at once while Redis is unreachable, and delivers again once it is back', async () => {
    const relay = await startTcpRelay(server.port);
    try {
      const k = key();
      const errors: Error[] = [];
      const sink = track(
        createRedisStreamSink({ url: relay.url, key: k, maxLen: 100, onError: (e) => errors.push(e) }),
      );
      await sink.deliver(makeEvents(1), 'before');
      await relay.cut();
      await expect(sink.deliver(makeEvents(1), 'during')).rejects.toThrow();
      await relay.heal();
      // Reconnection is automatic; the runner's retry succeeds once it is back.
      const after = makeEvents(1);
      await expect
        .poll(
          () =>
            sink.deliver(after, 'after').then(
              () => true,
              () => false,
            ),
          { timeout: 10_000 },
        )
        .toBe(true);
      expect((await streamEvents(k)).map((e) => e.id)).toContain(after[0]!.id);
    } finally {
      await relay.close();
    }
  });

  it('rejects bad options', () => {
    expect(() => createRedisStreamSink({ key: 'k', maxLen: 10 })).toThrow(/url or a client/);
    expect(() => createRedisStreamSink({ url: server.url, key: 'k', maxLen: 0 })).toThrow(/maxLen/);
  });
});

describe('webhook sink', () => {
  let keys: SigningKeys;

  interface Received {
    headers: http.IncomingHttpHeaders;
    body: string;
    payload: { batchId: string; events: ActivityEvent[] };
    header: { alg?: string; kid?: string; typ?: string };
  }

  /** A receiver on loopback that verifies every JWS against the JWKS before answering `status`. */
  async function startReceiver(
    answer: (req: IncomingMessage, res: ServerResponse) => void = (_, res) => res.writeHead(204).end(),
  ) {
    const jwks = createLocalJWKSet(keys.jwks());
    const received: Received[] = [];
    const failures: unknown[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        compactVerify(body, jwks).then(
          ({ payload, protectedHeader }) => {
            received.push({
              headers: req.headers,
              body,
              payload: JSON.parse(new TextDecoder().decode(payload)) as Received['payload'],
              header: protectedHeader,
            });
            answer(req, res);
          },
          (err: unknown) => {
            failures.push(err);
            res.writeHead(400).end();
          },
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/hooks/activity`,
      received,
      failures,
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }

  beforeAll(async () => {
    keys = await loadSigningKeys({ dataDir: freshDir() });
  });

  it('POSTs each batch once as a JWS the receiver verifies against the JWKS, events in order', async () => {
    const receiver = await startReceiver();
    try {
      const sink = track(createWebhookSink({ url: receiver.url, signer: keys.signer, timeoutMs: 5_000 }));
      expect(sink.name).toBe('webhook');
      const first = makeEvents(3);
      const second = makeEvents(2);
      await sink.deliver(first, 'batch-1');
      await sink.deliver(second, 'batch-2');
      expect(receiver.failures).toEqual([]);
      expect(receiver.received.map((r) => r.payload)).toEqual([
        { batchId: 'batch-1', events: plain(first) },
        { batchId: 'batch-2', events: plain(second) },
      ]);
      const [one] = receiver.received;
      expect(one!.header).toEqual({ alg: 'ES256', kid: keys.signer.kid, typ: 'tollgate-activity+jws' });
      expect(one!.headers['content-type']).toBe('application/jose');
      expect(one!.headers['idempotency-key']).toBe('batch-1');
    } finally {
      await receiver.close();
    }
  });

  it("builds the payload from encoded events at any offset of a shared buffer (a runner's batch)", async () => {
    const receiver = await startReceiver();
    try {
      const sink = track(createWebhookSink({ url: receiver.url, signer: keys.signer, timeoutMs: 5_000 }));
      const queue = new EncodedEventQueue();
      queue.push(makeEvent());
      const events = [...makeEvents(2), makeEvent({ userAgent: 'pip/24 (Zürich, €, 😀)' })];
      for (const e of events) queue.push(e);
      queue.drop(1);
      const batch = queue.peek(3);
      expect(batch[0]!.start).toBeGreaterThan(0);
      await sink.deliverEncoded!(batch, 'batch-q');
      expect(receiver.failures).toEqual([]);
      expect(receiver.received.map((r) => r.payload)).toEqual([{ batchId: 'batch-q', events: plain(events) }]);
    } finally {
      await receiver.close();
    }
  });

  it('sends extra headers but keeps its own Content-Type and Idempotency-Key', async () => {
    const receiver = await startReceiver();
    try {
      const sink = track(
        createWebhookSink({
          url: receiver.url,
          signer: keys.signer,
          timeoutMs: 5_000,
          headers: { 'X-Receiver-Key': 'abc', 'Content-Type': 'text/plain', 'Idempotency-Key': 'x' },
        }),
      );
      await sink.deliver(makeEvents(1), 'hdr');
      expect(receiver.received[0]!.headers).toMatchObject({
        'x-receiver-key': 'abc',
        'content-type': 'application/jose',
        'idempotency-key': 'hdr',
      });
    } finally {
      await receiver.close();
    }
  });

  it('fails verification of a tampered JWS', async () => {
    const receiver = await startReceiver();
    try {
      const sink = track(createWebhookSink({ url: receiver.url, signer: keys.signer, timeoutMs: 5_000 }));
      await sink.deliver(makeEvents(1, { bytes: 10 }), 'tamper');
      const [headerPart, payloadPart, signaturePart] = receiver.received[0]!.body.split('.') as [
        string,
        string,
        string,
      ];
      const payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8')) as Received['payload'];
      payload.events[0]!.bytes = 0;
      const forged = `${headerPart}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${signaturePart}`;
      const jwks = createLocalJWKSet(keys.jwks());
      await expect(compactVerify(forged, jwks)).rejects.toThrow();
      // The genuine one verifies.
      await expect(compactVerify(receiver.received[0]!.body, jwks)).resolves.toBeDefined();
      expect(decodeProtectedHeader(forged).kid).toBe(keys.signer.kid);
    } finally {
      await receiver.close();
    }
  });

  it.each([500, 503, 409, 302])('rejects when the receiver answers %i', async (status) => {
    const receiver = await startReceiver((_, res) =>
      res.writeHead(status, { location: 'http://127.0.0.1:1/' }).end('no'),
    );
    try {
      const sink = track(createWebhookSink({ url: receiver.url, signer: keys.signer, timeoutMs: 5_000 }));
      const err = await sink.deliver(makeEvents(1), `status-${status}`).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WebhookStatusError);
      expect((err as WebhookStatusError).status).toBe(status);
      expect(receiver.received).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });

  it('rejects when nothing listens', async () => {
    const port = await freePort();
    const sink = track(createWebhookSink({ url: `http://127.0.0.1:${port}/`, signer: keys.signer, timeoutMs: 5_000 }));
    await expect(sink.deliver(makeEvents(1), 'down')).rejects.toThrow();
  });

  it('rejects when the receiver does not answer within timeoutMs', async () => {
    const receiver = await startReceiver(() => {
      /* never answers */
    });
    try {
      const sink = track(createWebhookSink({ url: receiver.url, signer: keys.signer, timeoutMs: 200 }));
      await expect(sink.deliver(makeEvents(1), 'slow')).rejects.toThrow();
    } finally {
      await receiver.close();
    }
  });

  it('refuses a URL that is not http(s)', () => {
    expect(() => createWebhookSink({ url: 'ftp://example.com/', signer: keys.signer, timeoutMs: 1000 })).toThrow(
      /http/,
    );
    expect(() => createWebhookSink({ url: 'not a url', signer: keys.signer, timeoutMs: 1000 })).toThrow(/http/);
  });
});
