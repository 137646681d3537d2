import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/activity/event.js';
import { createActivityPipeline } from '../../src/activity/index.js';
import { createFileActivityQuery } from '../../src/activity/recent-file.js';
import { activityEventJson } from '../../src/activity/event-codec.js';
import { createFileSink } from '../../src/activity/sinks/file.js';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/logging/logger.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { eventFactory } from '../helpers/activity-events.js';

/**
 * The recent-activity query over the file sink's NDJSON files (the embedded default), on real
 * files: written by the real sink where the sink can write them, by hand where a test needs
 * what only a crash, a full disk or a retry leaves behind.
 */

// 10 minutes apart from 2024-05-01T12:00Z: a few hundred events span several days' files.
const makeEvent = eventFactory({ stepMs: 600_000 });
const ids = (events: readonly ActivityEvent[]) => events.map((e) => e.id);
const newestFirst = (events: readonly ActivityEvent[]) => ids([...events].sort((a, b) => (a.id < b.id ? 1 : -1)));
const line = (e: ActivityEvent) => `${activityEventJson(e)}\n`;

let root = '';
let n = 0;
beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'tollgate-recent-file-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

/** A fresh data dir and a file sink writing into it, as one gateway process. */
function dataDir(): string {
  const dir = path.join(root, `data-${++n}`);
  mkdirSync(dir);
  return dir;
}
function sink(dir: string, stream: 'production' | 'development' = 'production') {
  const s = createFileSink({ dir, stream, fsync: false });
  closers.push(() => s.close());
  return s;
}
const productionFile = (dir: string, date: string) => path.join(dir, 'activity', `production-${date}.ndjson`);

describe('file activity query', () => {
  it('lists both days newest first, and never the Development files', async () => {
    const dir = dataDir();
    const events = Array.from({ length: 300 }, () => makeEvent());
    const days = new Set(events.map((e) => e.time.slice(0, 10)));
    expect(days.size).toBeGreaterThanOrEqual(2);
    const production = sink(dir);
    for (let i = 0; i < events.length; i += 40) await production.deliver(events.slice(i, i + 40), `p-${i}`);
    // Newer than every Production event, in a file of its own stream.
    await sink(dir, 'development').deliver([makeEvent({ tokenType: 'development', project: 'dev' })], 'd');
    expect(existsSync(productionFile(dir, [...days][0]!))).toBe(true);

    const query = createFileActivityQuery({ dir });
    expect(ids(await query.recent({ limit: 1000 }))).toEqual(newestFirst(events));
    expect(ids(await query.recent({ limit: 5 }))).toEqual(newestFirst(events).slice(0, 5));
    expect(await query.recent({ project: 'dev' })).toEqual([]);
  });

  it('orders interleaved batches of two processes by event id, and a late batch at its own time', async () => {
    const dir = dataDir();
    const workerA = sink(dir);
    const workerB = sink(dir);
    // Each process batches its own events: their id ranges overlap in the file.
    const events = Array.from({ length: 60 }, (_, i) => makeEvent({ project: i % 2 === 0 ? 'a' : 'b' }));
    const ofA = events.filter((e) => e.project === 'a');
    const ofB = events.filter((e) => e.project === 'b');
    for (let i = 0; i < 30; i += 10) {
      await workerB.deliver(ofB.slice(i, i + 10), `b-${i}`);
      await workerA.deliver(ofA.slice(i, i + 10), `a-${i}`);
    }
    // Delivered last from a disk buffer, yet the oldest.
    const late = [makeEvent({ project: 'late' })];
    late[0]!.id = `00${late[0]!.id.slice(2)}`;
    await workerA.deliver(late, 'late');

    const query = createFileActivityQuery({ dir });
    const got = await query.recent({ limit: 1000 });
    expect(ids(got)).toEqual(newestFirst([...events, ...late]));
    expect(ids(await query.recent({ limit: 3 }))).toEqual(newestFirst(events).slice(0, 3));
    expect(ids(await query.recent({ project: 'a', limit: 4 }))).toEqual(newestFirst(ofA).slice(0, 4));
    expect(got.at(-1)).toEqual(late[0]);
  });

  it.each([
    ['project', { project: 'web' }, (e: ActivityEvent) => e.project === 'web'],
    ['ecosystem', { ecosystem: 'maven' }, (e: ActivityEvent) => e.ecosystem === 'maven'],
    ['tokenId', { tokenId: 'tok_b' }, (e: ActivityEvent) => e.tokenId === 'tok_b'],
    ['tokenName', { tokenName: 'ci "quoted" ü' }, (e: ActivityEvent) => e.tokenName === 'ci "quoted" ü'],
    [
      'all four',
      { project: 'web', ecosystem: 'npm', tokenId: 'tok_b', tokenName: 'ci "quoted" ü' },
      (e: ActivityEvent) => e.project === 'web' && e.ecosystem === 'npm' && e.tokenId === 'tok_b',
    ],
  ])('filters by %s exactly', async (_, filter, predicate) => {
    const dir = dataDir();
    const events = Array.from({ length: 48 }, (_, i) =>
      makeEvent({
        project: ['web', 'webshop', 'api'][i % 3]!,
        ecosystem: (['npm', 'maven'] as const)[i % 2]!,
        tokenId: i % 4 < 2 ? 'tok_b' : 'tok_bb',
        tokenName: i % 4 < 2 ? 'ci "quoted" ü' : 'ci',
        // The filter's text inside another field's value is no match.
        userAgent: '"project":"web","ecosystem":"maven","tokenId":"tok_b"',
      }),
    );
    await sink(dir).deliver(events, 'all');
    const expected = newestFirst(events.filter(predicate));
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(events.length);
    const query = createFileActivityQuery({ dir });
    expect(ids(await query.recent(filter))).toEqual(expected);
    expect(ids(await query.recent({ ...filter, limit: 2 }))).toEqual(expected.slice(0, 2));
  });

  it.each<[string, unknown, number]>([
    ['no limit as 100', undefined, 100],
    ['limit 0 as 1', 0, 1],
    ['a negative limit as 1', -3, 1],
    ['a fractional limit rounded down', 4.9, 4],
    ['a string limit as 100', '5', 100],
    ['a huge limit as 1000', 1e9, 1000],
  ])('takes %s', async (_, limit, expected) => {
    const dir = dataDir();
    const events = Array.from({ length: 1200 }, () => makeEvent());
    const production = sink(dir);
    for (let i = 0; i < events.length; i += 500) await production.deliver(events.slice(i, i + 500), `l-${i}`);
    const got = await createFileActivityQuery({ dir }).recent({ limit: limit as number });
    expect(ids(got)).toEqual(newestFirst(events).slice(0, expected));
  });

  it('lists a line written twice (a retried fdatasync) once', async () => {
    const dir = dataDir();
    const events = [makeEvent(), makeEvent(), makeEvent()];
    const production = sink(dir);
    await production.deliver(events, 'once');
    appendFileSync(productionFile(dir, events[0]!.time.slice(0, 10)), events.map(line).join(''));
    await production.deliver([events[1]!], 'again');
    expect(ids(await createFileActivityQuery({ dir }).recent())).toEqual(newestFirst(events));
  });

  it('skips torn and unreadable lines, and lines without a string id', async () => {
    const dir = dataDir();
    const [a, b, c, d] = [makeEvent(), makeEvent(), makeEvent(), makeEvent()];
    const file = productionFile(dir, a.time.slice(0, 10));
    mkdirSync(path.dirname(file), { recursive: true });
    // As a full disk leaves it: the torn start of a line, ended by the sink; the retry writes it whole.
    const torn = line(d).slice(0, 60);
    writeFileSync(
      file,
      [
        line(a),
        `${torn}\n`,
        '{not json\n',
        '42\n',
        'null\n',
        '["an", "array"]\n',
        `${JSON.stringify({ ...b, id: 7 })}\n`,
        `${JSON.stringify({ project: 'no id' })}\n`,
        '\n',
        line(b),
        // Another layout than the sink's (keys reordered, spaces): parsed in full.
        `${JSON.stringify(Object.fromEntries(Object.entries(c).reverse()), null, 1).replace(/\n/g, ' ')}\n`,
        line(d),
      ].join(''),
    );
    const query = createFileActivityQuery({ dir });
    expect(await query.recent()).toEqual([d, c, b, a]);
    expect(ids(await query.recent({ project: c.project, tokenId: c.tokenId, limit: 2 }))).toEqual([d.id, c.id]);
  });

  it('returns the events with exactly their fields', async () => {
    const dir = dataDir();
    const e = makeEvent({ package: null, version: null, file: null, userAgent: null, sealed: true });
    await sink(dir).deliver([e], 'fields');
    const [got] = await createFileActivityQuery({ dir }).recent();
    expect(Object.keys(got!)).toEqual(Object.keys(e));
    expect(got).toEqual(e);
  });

  it.each([5, 64, 333, 4096])('reads lines split across chunks of %i bytes', async (chunkBytes) => {
    const dir = dataDir();
    // Multi-byte characters, so a chunk boundary also falls inside a character.
    const events = Array.from({ length: 40 }, (_, i) =>
      makeEvent({
        tokenName: `ci-ü€😀-${i % 2}`,
        userAgent: `agent ${'é'.repeat(i * 7)}`,
      }),
    );
    const production = sink(dir);
    for (let i = 0; i < events.length; i += 7) await production.deliver(events.slice(i, i + 7), `c-${i}`);
    const query = createFileActivityQuery({ dir, chunkBytes });
    expect(await query.recent({ limit: 1000 })).toEqual([...events].reverse());
    expect(ids(await query.recent({ tokenName: 'ci-ü€😀-1' }))).toEqual(
      newestFirst(events.filter((e) => e.tokenName.endsWith('-1'))),
    );
  });

  it('returns nothing for a missing data dir, a missing or empty activity dir, or only Development files', async () => {
    expect(await createFileActivityQuery({ dir: path.join(root, 'never-made') }).recent()).toEqual([]);
    const dir = dataDir();
    const query = createFileActivityQuery({ dir });
    expect(await query.recent()).toEqual([]);
    mkdirSync(path.join(dir, 'activity'));
    expect(await query.recent({ project: 'x' })).toEqual([]);
    writeFileSync(productionFile(dir, '2024-05-01'), '');
    writeFileSync(path.join(dir, 'activity', 'notes.txt'), line(makeEvent()));
    await sink(dir, 'development').deliver([makeEvent()], 'dev');
    expect(await query.recent()).toEqual([]);
    // `activity` a file, not a directory.
    const odd = dataDir();
    writeFileSync(path.join(odd, 'activity'), 'x');
    expect(await createFileActivityQuery({ dir: odd }).recent()).toEqual([]);
  });

  it('reads at most maxLines lines, across files, however few of them match', async () => {
    const dir = dataDir();
    const production = sink(dir);
    // Two days; the only `rare` events are the oldest line of each day's file.
    const events = Array.from({ length: 3000 }, () => makeEvent());
    const byDay = new Map<string, ActivityEvent[]>();
    for (const e of events) byDay.set(e.time.slice(0, 10), [...(byDay.get(e.time.slice(0, 10)) ?? []), e]);
    expect(byDay.size).toBeGreaterThan(2);
    const days = [...byDay.keys()].sort().slice(-2);
    const [older, newer] = days.map((day) => byDay.get(day)!);
    older![0]!.project = 'rare';
    newer![0]!.project = 'rare';
    await production.deliver(older!, 'older');
    await production.deliver(newer!, 'newer');
    const total = older!.length + newer!.length;

    const rare = { project: 'rare' };
    // The newer file holds newer.length lines: its first line is the last within that budget.
    expect(ids(await createFileActivityQuery({ dir, maxLines: newer!.length - 1 }).recent(rare))).toEqual([]);
    expect(ids(await createFileActivityQuery({ dir, maxLines: newer!.length }).recent(rare))).toEqual([newer![0]!.id]);
    expect(ids(await createFileActivityQuery({ dir, maxLines: total - 1 }).recent(rare))).toEqual([newer![0]!.id]);
    expect(ids(await createFileActivityQuery({ dir, maxLines: total }).recent(rare))).toEqual([
      newer![0]!.id,
      older![0]!.id,
    ]);
    // A filter matching nothing: nothing, after at most the budget.
    expect(
      await createFileActivityQuery({ dir, maxLines: 100, chunkBytes: 512 }).recent({ project: 'nobody' }),
    ).toEqual([]);
    // Without a filter the budget is the window too: the newest maxLines lines.
    expect(ids(await createFileActivityQuery({ dir, maxLines: 10 }).recent({ limit: 1000 }))).toEqual(
      newestFirst(newer!).slice(0, 10),
    );
  });

  it.each([256, 700, 64 * 1024])(
    'skips a line longer than maxLineBytes, counts it, and reads on before it (chunks of %i bytes)',
    async (chunkBytes) => {
      const dir = dataDir();
      const [a, b, c] = [makeEvent(), makeEvent(), makeEvent()];
      const file = productionFile(dir, a.time.slice(0, 10));
      mkdirSync(path.dirname(file), { recursive: true });
      // Long lines first, between events, and last (a line still being written, or never ended).
      const long = (n: number) => `{"id":"${'Z'.repeat(26)}","userAgent":"${'x'.repeat(n)}"}`;
      writeFileSync(
        file,
        `${long(5000)}\n${line(a)}${long(1001)}\n${long(3000)}\n${line(b)}${'y'.repeat(1001)}\n${line(c)}${long(9000)}`,
      );
      const skipped: number[] = [];
      const query = createFileActivityQuery({ dir, chunkBytes, maxLineBytes: 1000, onSkipped: (n) => skipped.push(n) });
      expect(ids(await query.recent())).toEqual([c.id, b.id, a.id]);
      expect(skipped).toEqual([5]);
      // Each skipped line counts against maxLines like any other.
      expect(ids(await createFileActivityQuery({ dir, chunkBytes, maxLineBytes: 1000, maxLines: 5 }).recent())).toEqual(
        [c.id, b.id],
      );
      // Under a larger cap the long lines are read (and the one that is an event with no end is a torn line).
      expect(ids(await createFileActivityQuery({ dir, chunkBytes, maxLineBytes: 10_000 }).recent())).toEqual([
        'Z'.repeat(26),
        c.id,
        b.id,
        a.id,
      ]);
    },
  );

  it('reads at most maxBytes bytes per call, across files', async () => {
    const dir = dataDir();
    const events = Array.from({ length: 300 }, () => makeEvent());
    await sink(dir).deliver(events, 'all');
    const newest = [...events].reverse();
    // The newest lines read whole within the budget, with the newline before each (where a line starts).
    const fit = (budget: number) => {
      let n = 0;
      for (let used = 1; n < newest.length && used + Buffer.byteLength(line(newest[n]!)) <= budget; n++)
        used += Buffer.byteLength(line(newest[n]!));
      return n;
    };
    expect(fit(20_000)).toBeGreaterThan(10);
    expect(fit(20_000)).toBeLessThan(events.length);
    const three = newest.slice(0, 3).reduce((sum, e) => sum + Buffer.byteLength(line(e)), 0);
    expect(fit(three)).toBe(2);
    expect(fit(three + 1)).toBe(3);
    for (const maxBytes of [1, 1000, three, three + 1, 20_000]) {
      const got = await createFileActivityQuery({ dir, maxBytes, chunkBytes: 512 }).recent({ limit: 1000 });
      expect(ids(got)).toEqual(ids(newest.slice(0, fit(maxBytes))));
    }
  });

  it('reads a file while it is appended to: a line still being written is skipped, and read next time', async () => {
    const dir = dataDir();
    const events = Array.from({ length: 20 }, () => makeEvent());
    const production = sink(dir);
    await production.deliver(events.slice(0, 10), 'first');
    const file = productionFile(dir, events[0]!.time.slice(0, 10));
    const next = line(events[10]!);
    appendFileSync(file, next.slice(0, 50)); // half a write, as a reader may see it
    const query = createFileActivityQuery({ dir, chunkBytes: 128 });
    expect(ids(await query.recent())).toEqual(newestFirst(events.slice(0, 10)));
    appendFileSync(file, next.slice(50));
    // Concurrent appends while reading: whatever lands after the open is simply not seen yet.
    const [during] = await Promise.all([query.recent({ limit: 1000 }), production.deliver(events.slice(11), 'rest')]);
    expect(ids(during)).toEqual(newestFirst(during));
    expect(ids(during)).toEqual(expect.arrayContaining(ids(events.slice(0, 11))));
    expect(ids(await query.recent({ limit: 1000 }))).toEqual(newestFirst(events));
  });

  it('rejects bad options at creation', () => {
    expect(() => createFileActivityQuery({ dir: root, maxLines: 0 })).toThrow(/maxLines/);
    expect(() => createFileActivityQuery({ dir: root, chunkBytes: 1.5 })).toThrow(/chunkBytes/);
    expect(() => createFileActivityQuery({ dir: root, maxLineBytes: -1 })).toThrow(/maxLineBytes/);
  });
});

describe('createActivityPipeline: where recent activity comes from without Redis', () => {
  async function pipeline(env: Record<string, string>) {
    const dir = dataDir();
    const loaded = loadConfig({ TOLLGATE_DATA_DIR: dir, TOLLGATE_UPSTREAM: dir, ...env }, dir);
    if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
    const p = await createActivityPipeline(loaded.config, { metrics: createMetrics(), logger: createLogger('silent') });
    closers.push(() => p.stop());
    return { dir, p };
  }
  const tables = (dir: string) => {
    const file = path.join(dir, 'tollgate.db');
    if (!existsSync(file)) return [];
    const db = new Database(file, { readonly: true });
    try {
      return db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'activity'").all();
    } finally {
      db.close();
    }
  };

  it('reads the NDJSON files by default, and keeps no SQLite table', async () => {
    const { dir, p } = await pipeline({});
    expect(p.runners.map((r) => r.name)).toEqual(['file']);
    const events = [makeEvent(), makeEvent()];
    for (const e of events) p.runners[0]!.enqueue(e);
    expect(await p.runners[0]!.drain(5000)).toBe(true);
    expect(await p.query.recent()).toEqual([...events].reverse());
    expect(tables(dir)).toEqual([]);
  });

  it('keeps the SQLite table, as one more sink, when only the webhook records activity', async () => {
    const { dir, p } = await pipeline({
      TOLLGATE_ACTIVITY_SINKS: 'webhook',
      TOLLGATE_ACTIVITY_WEBHOOK_URL: 'http://127.0.0.1:9/hook',
    });
    expect(p.runners.map((r) => r.name).sort()).toEqual(['recent', 'webhook']);
    const recent = p.runners.find((r) => r.name === 'recent')!;
    const e = makeEvent();
    recent.enqueue(e);
    expect(await recent.drain(5000)).toBe(true);
    expect(await p.query.recent()).toEqual([e]);
    expect(tables(dir)).toEqual([{ name: 'activity' }]);
  });
});
