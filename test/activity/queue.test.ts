import { spawn, spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ActivityEvent, type EncodedActivityEvent, type Sink } from '../../src/activity/event.js';
import { createSinkRunner, type SinkRunner, type SinkRunnerOptions } from '../../src/activity/queue.js';
import { openSpool } from '../../src/activity/spool.js';
import { activityEventJson, encodedLine } from '../../src/activity/event-codec.js';
import { transpileSources } from '../helpers/transpile.js';
import { eventFactory } from '../helpers/activity-events.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * The per-sink queue (memory → disk spool → retrying delivery loop) against a scripted
 * in-memory sink: order, at-least-once with a stable batchId, bounded backoff, the disk buffer
 * across stop/start and across a dead process, torn lines, and the disk bound.
 */

let root = '';
beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'tollgate-queue-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});
let dirs = 0;
const freshDir = () => path.join(root, `spool-${++dirs}`);

const makeEvent = eventFactory({ stepMs: 1, perEvent: (seq) => ({ bytes: 1000 + seq }) });
const makeEvents = (n: number) => Array.from({ length: n }, makeEvent);
const ids = (events: readonly ActivityEvent[]) => events.map((e) => e.id);

interface Attempt {
  batchId: string;
  ids: string[];
  ok: boolean;
}

/**
 * A sink under the test's control. `down` rejects every batch; `lostReplies` accepts that many
 * batches and then rejects anyway (the reply was lost: the runner must retry the same batch).
 */
interface ScriptedSink extends Sink {
  down: boolean;
  lostReplies: number;
  attempts: Attempt[];
  /** Every event accepted, duplicates included, in arrival order. */
  accepted: ActivityEvent[];
  /** Accepted events deduplicated by batchId (what an idempotent receiver keeps). */
  kept: ActivityEvent[];
  closed: boolean;
}

function scriptedSink(): ScriptedSink {
  const seenBatches = new Set<string>();
  const sink: ScriptedSink = {
    name: 'scripted',
    down: false,
    lostReplies: 0,
    attempts: [],
    accepted: [],
    kept: [],
    closed: false,
    async deliver(events, batchId) {
      const attempt = { batchId, ids: ids(events), ok: false };
      sink.attempts.push(attempt);
      if (sink.down) throw new Error('sink down');
      sink.accepted.push(...events);
      if (!seenBatches.has(batchId)) {
        seenBatches.add(batchId);
        sink.kept.push(...events);
      }
      if (sink.lostReplies > 0) {
        sink.lostReplies--;
        throw new Error('reply lost');
      }
      attempt.ok = true;
    },
    async close() {
      sink.closed = true;
    },
  };
  return sink;
}

const runners: SinkRunner[] = [];
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.stop()));
});

interface Counters {
  delivered: number;
  retried: number;
  dropped: number;
  dropReasons: string[];
}

function startRunner(
  sink: Sink,
  spoolDir: string,
  over: Partial<SinkRunnerOptions> = {},
): { runner: SinkRunner; counters: Counters } {
  const counters: Counters = { delivered: 0, retried: 0, dropped: 0, dropReasons: [] };
  const runner = createSinkRunner({
    sink,
    spoolDir,
    maxMemoryEvents: 100,
    maxSpoolBytes: 10 * 1024 * 1024,
    batchSize: 10,
    flushIntervalMs: 5,
    retryBaseMs: 5,
    retryMaxMs: 20,
    onDelivered: (n) => {
      counters.delivered += n;
    },
    onRetry: (n) => {
      counters.retried += n;
    },
    onDropped: (n, reason) => {
      counters.dropped += n;
      counters.dropReasons.push(reason);
    },
    ...over,
  });
  runners.push(runner);
  return { runner, counters };
}

/** Every NDJSON line under a spool dir, in the order the files sort (pid dir, then segment). */
function spoolLines(dir: string): string[] {
  const lines: string[] = [];
  for (const pid of readdirSync(dir).sort()) {
    for (const file of readdirSync(path.join(dir, pid)).sort()) {
      lines.push(
        ...readFileSync(path.join(dir, pid, file), 'utf8')
          .split('\n')
          .filter(Boolean),
      );
    }
  }
  return lines;
}

function spoolBytes(dir: string): number {
  let total = 0;
  for (const pid of readdirSync(dir)) {
    for (const file of readdirSync(path.join(dir, pid))) total += statSync(path.join(dir, pid, file)).size;
  }
  return total;
}

/** A pid that belonged to a process which has exited (so the spool treats its folder as orphaned). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(child.stdout);
  expect(pid).toBeGreaterThan(0);
  expect(() => process.kill(pid, 0)).toThrow();
  return pid;
}

describe('sink runner', () => {
  it('hands a sink with deliverEncoded the JSON lines as queued, with the same batch ids, and retries the same bytes', async () => {
    const attempts: { batchId: string; lines: string[] }[] = [];
    let failFirst = true;
    const sink: Sink = {
      name: 'encoded',
      async deliver() {
        throw new Error('deliver() must not be used for batches from memory');
      },
      async deliverEncoded(events: readonly EncodedActivityEvent[], batchId: string) {
        attempts.push({ batchId, lines: events.map((e) => encodedLine(e).toString('utf8')) });
        if (failFirst) {
          failFirst = false;
          throw new Error('reply lost');
        }
      },
      async close() {},
    };
    const { runner, counters } = startRunner(sink, freshDir());
    const events = makeEvents(25);
    for (const e of events) runner.enqueue(e);
    await until(() => counters.delivered === 25, 5000, 'all delivered');
    expect(attempts[0]).toEqual(attempts[1]); // the retry: same batch id, same bytes
    const delivered = attempts.slice(1);
    expect(delivered.flatMap((a) => a.lines)).toEqual(events.map((e) => `${activityEventJson(e)}\n`));
    expect(delivered.map((a) => a.batchId)).toEqual([
      `${events[0]!.id}-10`,
      `${events[10]!.id}-10`,
      `${events[20]!.id}-5`,
    ]);
  });

  it('holds no event object while it waits: what the recorder made can be collected at once', () => {
    // In a child with --expose-gc: 2,000 events queued behind a sink that never answers; after a
    // GC, WeakRefs to them must be empty (the queue holds their encoded lines only).
    const dir = path.join(root, `retain-${++dirs}`);
    mkdirSync(dir);
    transpileSources(dir, [
      'src/activity/queue.ts',
      'src/activity/encoded-queue.ts',
      'src/activity/spool.ts',
      'src/activity/event.ts',
      'src/activity/event-codec.ts',
    ]);
    writeFileSync(
      path.join(dir, 'retain.mjs'),
      `
      import { createSinkRunner } from './src/activity/queue.js';
      const sink = { name: 'stuck', deliver: () => new Promise(() => {}), deliverEncoded: () => new Promise(() => {}), close: async () => {} };
      const runner = createSinkRunner({ sink, spoolDir: process.argv[2], maxMemoryEvents: 10000, maxSpoolBytes: 1e7,
        batchSize: 100000, flushIntervalMs: 60000, retryBaseMs: 10, retryMaxMs: 10 });
      const refs = [];
      // In a function of its own: a suspended top-level await would keep the last event in a register.
      (function enqueueAll() {
      for (let i = 0; i < 2000; i++) {
        const event = { id: 'E' + i, time: new Date(1714564800000 + i).toISOString(), requestId: 'r' + i, tokenId: 't', tokenName: 'n',
          tokenType: 'production', project: 'default', ecosystem: 'npm', kind: 'download', package: 'p' + i, version: '1.0.' + i,
          file: null, method: 'GET', status: 200, bytes: i, durationMs: 1, clientIp: '10.0.0.1', userAgent: 'ua ' + i, sealed: false };
        refs.push(new WeakRef(event));
        runner.enqueue(event);
      }
      })();
      await new Promise((r) => setTimeout(r, 50));
      globalThis.gc();
      console.log(JSON.stringify({ alive: refs.filter((r) => r.deref() !== undefined).length, depth: runner.depth() }));
      process.exit(0);
    `,
    );
    const child = spawnSync(process.execPath, ['--expose-gc', path.join(dir, 'retain.mjs'), path.join(dir, 'spool')], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(child.status, child.stderr).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({ alive: 0, depth: { memory: 2000, disk: 0 } });
  });

  it('delivers a partial batch once the flush interval passes, without waiting for a full batch', async () => {
    const sink = scriptedSink();
    const { runner } = startRunner(sink, freshDir(), { batchSize: 500, flushIntervalMs: 20 });
    const events = makeEvents(3);
    for (const e of events) runner.enqueue(e);
    await until(() => sink.kept.length === 3, 5000, 'a partial batch delivered');
    expect(ids(sink.kept)).toEqual(ids(events));
    expect(await runner.drain(5000)).toBe(true);
  });

  it('keeps the order across memory → disk → memory, each event once', async () => {
    const sink = scriptedSink();
    sink.down = true;
    const dir = freshDir();
    const { runner, counters } = startRunner(sink, dir, { maxMemoryEvents: 5, batchSize: 3 });

    const first = makeEvents(20);
    for (const e of first) runner.enqueue(e);
    // 5 in memory, the other 15 spilled to disk behind them.
    expect(runner.depth()).toEqual({ memory: 5, disk: 15 });
    await until(() => spoolLines(dir).length === 15, 5000, 'spill to disk');
    expect(spoolLines(dir).map((l) => (JSON.parse(l) as ActivityEvent).id)).toEqual(ids(first.slice(5)));

    // While the disk holds events, new ones queue behind them on disk, never ahead in memory.
    const second = makeEvents(4);
    for (const e of second) runner.enqueue(e);
    await until(() => runner.depth().disk === 19, 5000, 'second spill');
    expect(runner.depth().memory).toBe(5);

    sink.down = false;
    expect(await runner.drain(10_000)).toBe(true);
    expect(ids(sink.accepted)).toEqual(ids([...first, ...second]));
    expect(counters.delivered).toBe(24);
    expect(counters.retried).toBeGreaterThan(0);
    expect(counters.dropped).toBe(0);
    expect(runner.depth()).toEqual({ memory: 0, disk: 0 });

    // The disk drained: new events stay in memory again, and still arrive in order.
    const third = makeEvents(3);
    for (const e of third) runner.enqueue(e);
    expect(runner.depth()).toEqual({ memory: 3, disk: 0 });
    expect(await runner.drain(10_000)).toBe(true);
    expect(ids(sink.accepted)).toEqual(ids([...first, ...second, ...third]));
  });

  it('keeps the order while the sink flaps and events keep coming', async () => {
    const sink = scriptedSink();
    const { runner } = startRunner(sink, freshDir(), { maxMemoryEvents: 7, batchSize: 4 });
    const all: ActivityEvent[] = [];
    for (let round = 0; round < 12; round++) {
      sink.down = round % 3 !== 2;
      for (const e of makeEvents(6)) {
        all.push(e);
        runner.enqueue(e);
      }
      await sleep(15);
    }
    sink.down = false;
    expect(await runner.drain(15_000)).toBe(true);
    // Nothing is reordered, nothing lost, nothing duplicated (no reply was lost here).
    expect(ids(sink.accepted)).toEqual(ids(all));
  });

  it('retries a failed batch unchanged, with the same batchId, so an idempotent sink keeps each event once', async () => {
    const sink = scriptedSink();
    sink.down = true;
    const { runner } = startRunner(sink, freshDir(), { batchSize: 10, flushIntervalMs: 0 });
    const early = makeEvents(3);
    for (const e of early) runner.enqueue(e);
    await until(() => sink.attempts.length >= 2, 5000, 'two failed attempts');
    // More events arrive while the first batch is being retried: they must not join it.
    const late = makeEvents(4);
    for (const e of late) runner.enqueue(e);
    await until(() => sink.attempts.length >= 4, 5000, 'more failed attempts');
    // Next: the batch is accepted but the reply is lost, so the runner sends it again.
    sink.lostReplies = 1;
    sink.down = false;
    expect(await runner.drain(10_000)).toBe(true);

    const firstBatch = sink.attempts[0]!;
    expect(firstBatch.ids).toEqual(ids(early));
    const retries = sink.attempts.filter((a) => a.batchId === firstBatch.batchId);
    expect(retries.length).toBeGreaterThanOrEqual(5); // ≥4 failures, the lost reply, the success
    for (const a of retries) expect(a.ids).toEqual(firstBatch.ids);
    expect(retries.at(-1)!.ok).toBe(true);
    // Every batchId always names the same events.
    const byId = new Map<string, string>();
    for (const a of sink.attempts) {
      const key = a.ids.join(',');
      expect(byId.get(a.batchId) ?? key).toBe(key);
      byId.set(a.batchId, key);
    }
    // At least once: the lost reply shows as a duplicate; deduplicated on batchId, exactly once.
    expect(sink.accepted.length).toBe(early.length * 2 + late.length);
    expect(ids(sink.kept)).toEqual(ids([...early, ...late]));
  });

  it('backs off a failing sink instead of hammering it (attempts over a window are bounded)', async () => {
    const sink = scriptedSink();
    sink.down = true;
    const { runner } = startRunner(sink, freshDir(), { retryBaseMs: 10, retryMaxMs: 100, flushIntervalMs: 0 });
    runner.enqueue(makeEvent());
    await until(() => sink.attempts.length >= 1, 5000, 'first attempt');
    const start = sink.attempts.length;
    await sleep(1000);
    const attempts = sink.attempts.length - start;
    // Full jitter up to 100 ms averages ~50 ms per wait, ~20 tries a second; a loop without
    // backoff makes thousands. It does keep trying.
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(60);
  });

  it('on stop() writes the memory queue to disk ahead of what is already there, and a new runner delivers it all in order', async () => {
    const down = scriptedSink();
    down.down = true;
    const dir = freshDir();
    const { runner } = startRunner(down, dir, { maxMemoryEvents: 3 });
    const events = makeEvents(8);
    for (const e of events) runner.enqueue(e);
    await until(() => runner.depth().disk === 5, 5000, 'spill');
    await runner.stop();
    expect(down.closed).toBe(true);
    // Memory (oldest) first, then the older spill, on disk.
    expect(spoolLines(dir).map((l) => (JSON.parse(l) as ActivityEvent).id)).toEqual(ids(events));

    // A runner started later on the same folder (same process here) delivers all of it, in order.
    const up = scriptedSink();
    const { runner: next } = startRunner(up, dir);
    expect(next.depth().disk).toBe(8);
    const more = makeEvents(2);
    for (const e of more) next.enqueue(e);
    expect(await next.drain(10_000)).toBe(true);
    expect(ids(up.accepted)).toEqual(ids([...events, ...more]));
    expect(spoolLines(dir)).toEqual([]);
  });

  it('delivers, in order, what a dead process left in its spool folder', async () => {
    const dir = freshDir();
    // A process that died with events buffered: stop a runner, then move its folder to a dead pid.
    const down = scriptedSink();
    down.down = true;
    const { runner } = startRunner(down, dir, { maxMemoryEvents: 2 });
    const orphaned = makeEvents(6);
    for (const e of orphaned) runner.enqueue(e);
    await until(() => runner.depth().disk === 4, 5000, 'spill');
    await runner.stop();
    const pid = deadPid();
    renameSync(path.join(dir, String(process.pid)), path.join(dir, String(pid)));

    const up = scriptedSink();
    const { runner: next } = startRunner(up, dir);
    expect(next.depth().disk).toBe(6);
    expect(await next.drain(10_000)).toBe(true);
    expect(ids(up.accepted)).toEqual(ids(orphaned));
    // The dead process's folder was adopted and removed.
    expect(readdirSync(dir)).toEqual([String(process.pid)]);
  });

  it('skips a torn last line left by a crash, and loses nothing appended after it', async () => {
    const dir = freshDir();
    const own = path.join(dir, String(deadPid()));
    mkdirSync(own, { recursive: true });
    const older = makeEvents(2);
    const whole = makeEvents(3);
    const torn = JSON.stringify(makeEvent()).slice(0, 40);
    writeFileSync(path.join(own, '001000000000.ndjson'), `${older.map((e) => JSON.stringify(e)).join('\n')}\n`);
    // The newest segment ends in half a line: a crash mid-append.
    writeFileSync(path.join(own, '001000000001.ndjson'), `${whole.map((e) => JSON.stringify(e)).join('\n')}\n${torn}`);

    const sink = scriptedSink();
    sink.down = true;
    const { runner } = startRunner(sink, dir);
    // New events queue behind the buffered ones, on disk.
    const after = makeEvents(2);
    for (const e of after) runner.enqueue(e);
    await until(() => runner.depth().disk >= 8, 5000, 'spill behind the torn segment');
    sink.down = false;
    expect(await runner.drain(10_000)).toBe(true);
    expect(ids(sink.accepted)).toEqual(ids([...older, ...whole, ...after]));
  });

  it('moves on to the next segment when a whole segment is unreadable', async () => {
    const dir = freshDir();
    const own = path.join(dir, String(deadPid()));
    mkdirSync(own, { recursive: true });
    const good = makeEvents(2);
    writeFileSync(path.join(own, '001000000000.ndjson'), '{"id":"01HX torn');
    writeFileSync(path.join(own, '001000000001.ndjson'), `${good.map((e) => JSON.stringify(e)).join('\n')}\n`);
    const sink = scriptedSink();
    const { runner } = startRunner(sink, dir);
    await until(() => sink.accepted.length === 2, 5000, 'the readable segment delivered');
    expect(ids(sink.accepted)).toEqual(ids(good));
    expect(await runner.drain(5000)).toBe(true);
  });

  it('never lets the disk buffer grow past maxSpoolBytes; what does not fit is dropped, counted, and the newest', async () => {
    const sink = scriptedSink();
    sink.down = true;
    const dir = freshDir();
    const sample = makeEvent();
    const lineBytes = Buffer.byteLength(JSON.stringify(sample)) + 1;
    const maxSpoolBytes = lineBytes * 4 + Math.floor(lineBytes / 2); // room for four events and a half
    const { runner, counters } = startRunner(sink, dir, { maxMemoryEvents: 2, maxSpoolBytes });

    // A burst, enqueued synchronously: every spill is in flight at once.
    const events = [sample, ...makeEvents(49)];
    for (const e of events) runner.enqueue(e);
    await until(
      () => counters.dropped + runner.depth().disk + runner.depth().memory === 50 && runner.depth().disk === 4,
      5000,
      'spills settled',
    );
    expect(spoolBytes(dir)).toBeLessThanOrEqual(maxSpoolBytes);
    expect(counters.dropped).toBe(44);
    expect(new Set(counters.dropReasons)).toEqual(new Set(['disk-full']));

    sink.down = false;
    expect(await runner.drain(10_000)).toBe(true);
    // The oldest events survived, in order; the newest were dropped.
    expect(ids(sink.accepted)).toEqual(ids(events.slice(0, 6)));
  });
});

describe('spool', () => {
  it('renumbers leftovers without overwriting one segment with another', async () => {
    const dir = freshDir();
    const own = path.join(dir, String(process.pid));
    mkdirSync(own, { recursive: true });
    // A prepended segment sorts below the first sequence number: renumbering must not clobber.
    const a = makeEvents(2);
    const b = makeEvents(2);
    writeFileSync(path.join(own, '000999999999.ndjson'), `${a.map((e) => JSON.stringify(e)).join('\n')}\n`);
    writeFileSync(path.join(own, '001000000000.ndjson'), `${b.map((e) => JSON.stringify(e)).join('\n')}\n`);
    const spool = openSpool(dir);
    expect(spool.events).toBe(4);
    const seen: string[] = [];
    for (;;) {
      const segment = await spool.peek();
      if (!segment) break;
      seen.push(...ids(segment.events));
      await segment.ack();
    }
    expect(seen).toEqual(ids([...a, ...b]));
    expect(spool.events).toBe(0);
    expect(spool.bytes).toBe(0);
  });
  it('adopts a folder whose adopter died half-way (claimed as <dead pid>.<dead claimer pid>)', async () => {
    const dir = freshDir();
    const claimed = path.join(dir, `${deadPid()}.${deadPid()}`);
    mkdirSync(claimed, { recursive: true });
    const events = makeEvents(3);
    writeFileSync(path.join(claimed, '001000000000.ndjson'), `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
    const spool = openSpool(dir);
    const segment = await spool.peek();
    expect(ids(segment!.events)).toEqual(ids(events));
    await segment!.ack();
    expect(readdirSync(dir)).toEqual([String(process.pid)]);
  });
});

describe('spool adoption by several processes at once', () => {
  it("lets workers starting together adopt a dead process's buffer without crashing, losing or duplicating an event", async () => {
    // The spool module as plain JavaScript, for child processes (it imports only node:*).
    const build = path.join(root, 'build');
    mkdirSync(build);
    writeFileSync(path.join(build, 'package.json'), '{"type":"module"}');
    const source = readFileSync(fileURLToPath(new URL('../../src/activity/spool.ts', import.meta.url)), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    writeFileSync(path.join(build, 'spool.js'), outputText);
    // Each child: wait for "go", open the spool (adopting orphans), read and ack all it got, print the ids.
    writeFileSync(
      path.join(build, 'worker.js'),
      `
      import { openSpool } from './spool.js';
      process.stdin.once('data', async () => {
        const spool = openSpool(process.argv[2]);
        const ids = [];
        for (;;) {
          const segment = await spool.peek();
          if (!segment) break;
          ids.push(...segment.events.map((e) => e.id));
          await segment.ack();
        }
        process.stdout.write(JSON.stringify(ids));
        process.exit(0);
      });
      process.stdout.write('ready\\n');
    `,
    );

    // Two dead processes left 150 segments of 4 events each.
    const dir = freshDir();
    const perOrphan: string[][] = [];
    for (const pid of [deadPid(), deadPid()]) {
      const orphan = path.join(dir, String(pid));
      mkdirSync(orphan, { recursive: true });
      const list: string[] = [];
      for (let i = 0; i < 75; i++) {
        const events = makeEvents(4);
        list.push(...ids(events));
        writeFileSync(
          path.join(orphan, `${String(1_000_000_000 + i).padStart(12, '0')}.ndjson`),
          `${events.map((e) => JSON.stringify(e)).join('\n')}\n`,
        );
      }
      perOrphan.push(list);
    }
    const all = perOrphan.flat();

    const children = Array.from({ length: 4 }, () => {
      const proc = spawn(process.execPath, [path.join(build, 'worker.js'), dir], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      proc.stdout.on('data', (c: Buffer) => {
        out += c.toString();
      });
      proc.stderr.on('data', (c: Buffer) => {
        err += c.toString();
      });
      const ready = new Promise<void>((resolve) =>
        proc.stdout.on('data', () => {
          if (out.includes('ready')) resolve();
        }),
      );
      const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        proc.on('close', (code) => resolve({ code, out: out.replace(/^ready\n/, ''), err }));
      });
      return { proc, ready, done };
    });
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.proc.stdin.write('go\n');
    const results = await Promise.all(children.map((c) => c.done));

    for (const r of results) expect(r.code, r.err).toBe(0);
    const got = results.flatMap((r) => JSON.parse(r.out) as string[]);
    // Every event once, across the workers.
    expect(got.length).toBe(all.length);
    expect(new Set(got)).toEqual(new Set(all));
    // Each dead process's folder went to one worker, whole, and it reads it in the original order.
    const mine = results.map((r) => JSON.parse(r.out) as string[]);
    for (const list of perOrphan) {
      const holders = mine.filter((m) => m.some((id) => list.includes(id)));
      expect(holders).toHaveLength(1);
      expect(holders[0]!.filter((id) => list.includes(id))).toEqual(list);
    }
    // Nothing is left behind: every claimed folder was emptied and removed.
    expect(readdirSync(dir).every((d) => /^\d+$/.test(d))).toBe(true);
  });
});
