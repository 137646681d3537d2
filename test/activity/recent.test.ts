import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ActivityEvent } from '../../src/activity/event.js';
import {
  createRedisActivityQuery,
  createSqliteActivityLog,
  normalizeRecentFilter,
  parseRecentEvent,
  type ActivityQuery,
  type RecentFilter,
} from '../../src/activity/recent.js';
import { createFileActivityQuery } from '../../src/activity/recent-file.js';
import { createFileSink } from '../../src/activity/sinks/file.js';
import { createRedisStreamSink } from '../../src/activity/sinks/redis-stream.js';
import { generateToken, generateTokenId, hashToken } from '../../src/tokens/format.js';
import { createSqliteTokenStore } from '../../src/tokens/sqlite-store.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { eventFactory } from '../helpers/activity-events.js';
import { inWorldWritableDir, sqliteModes } from '../helpers/file-modes.js';

const makeEvent = eventFactory({
  stepMs: 1000,
  perEvent: () => ({
    tokenId: 'tok_a',
    tokenName: 'ci-a',
    package: 'left-pad',
    version: '1.3.0',
    file: 'left-pad-1.3.0.tgz',
    bytes: 100,
    durationMs: 3,
    clientIp: '10.0.0.1',
    userAgent: null,
  }),
});

const ids = (events: readonly ActivityEvent[]) => events.map((e) => e.id);
const newestFirst = (events: readonly ActivityEvent[]) => ids([...events].reverse());

/**
 * A CI job's identity in an event: tok_b's jobs run in `acme/<project>`; tok_a's in a fork, with
 * a workflow that names `acme/<project>` too (a repository filter matches the repository only).
 */
const ciOf = (tokenId: string, project: string): ActivityEvent['ci'] =>
  tokenId === 'tok_b'
    ? {
        provider: 'github',
        subject: `repo:acme/${project}:ref:refs/heads/main`,
        repository: `acme/${project}`,
        ref: 'refs/heads/main',
        runId: '4242',
      }
    : {
        provider: 'github',
        subject: 'repo:fork',
        repository: `acme/${project}-fork`,
        workflow: `acme/${project}`,
        runId: '7',
      };

/** A mixed history: 2 projects × 3 ecosystems × 2 tokens, delivered oldest first in batches of 5. */
function history(): ActivityEvent[] {
  const events: ActivityEvent[] = [];
  for (let round = 0; round < 3; round++) {
    for (const project of ['web', 'billing']) {
      for (const ecosystem of ['npm', 'maven', 'pypi'] as const) {
        for (const [tokenId, tokenName] of [
          ['tok_a', 'ci-a'],
          ['tok_b', 'ci-b'],
        ] as const) {
          events.push(
            makeEvent({
              project,
              ecosystem,
              tokenId,
              tokenName,
              ci: round === 2 && tokenId === 'tok_a' ? null : ciOf(tokenId, project),
            }),
          );
        }
      }
    }
  }
  return events;
}

interface Backend {
  name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A fresh, empty log: deliver batches to it, query it (told of the lines it skips). */
  open(
    onSkipped?: (n: number) => void,
  ): Promise<{ deliver: (events: ActivityEvent[], batchId: string) => Promise<void>; query: ActivityQuery }>;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

function sqliteBackend(): Backend {
  let root = '';
  let n = 0;
  return {
    name: 'sqlite',
    async setup() {
      root = mkdtempSync(path.join(tmpdir(), 'tollgate-recent-'));
    },
    async teardown() {
      rmSync(root, { recursive: true, force: true });
    },
    async open(onSkipped) {
      const log = createSqliteActivityLog({ dataDir: path.join(root, `db-${++n}`), maxRows: 10_000, onSkipped });
      closers.push(() => log.close());
      return { deliver: (events, batchId) => log.deliver(events, batchId), query: log };
    },
  };
}

/** The embedded default: the NDJSON file sink writes, the file query reads its Production files. */
function fileBackend(): Backend {
  let root = '';
  let n = 0;
  return {
    name: 'file',
    async setup() {
      root = mkdtempSync(path.join(tmpdir(), 'tollgate-recent-file-'));
    },
    async teardown() {
      rmSync(root, { recursive: true, force: true });
    },
    async open(onSkipped) {
      const dir = path.join(root, `data-${++n}`);
      const sink = createFileSink({ dir, stream: 'production', fsync: false });
      closers.push(() => sink.close());
      return {
        deliver: (events, batchId) => sink.deliver(events, batchId),
        query: createFileActivityQuery({ dir, onSkipped }),
      };
    },
  };
}

function redisBackend(): Backend {
  let server: RedisServer;
  let client: Redis;
  let n = 0;
  return {
    name: 'redis',
    async setup() {
      server = await startRedisServer();
      client = new Redis(server.url, { maxRetriesPerRequest: 0 });
    },
    async teardown() {
      client.disconnect();
      await server.stop();
    },
    async open(onSkipped) {
      const key = `{tollgate}:activity:recent-${++n}`;
      const sink = createRedisStreamSink({ url: server.url, key, maxLen: 100_000 });
      closers.push(() => sink.close());
      return {
        deliver: (events, batchId) => sink.deliver(events, batchId),
        query: createRedisActivityQuery({ client, key, onSkipped }),
      };
    },
  };
}

describe.each([sqliteBackend(), fileBackend(), redisBackend()])('$name recent activity', (backend) => {
  beforeAll(() => backend.setup());
  afterAll(() => backend.teardown());

  async function filled() {
    const log = await backend.open();
    const events = history();
    for (let i = 0; i < events.length; i += 5) await log.deliver(events.slice(i, i + 5), `h-${i}`);
    return { ...log, events };
  }

  it('returns events newest first', async () => {
    const { query, events } = await filled();
    expect(ids(await query.recent())).toEqual(newestFirst(events));
    expect(await query.recent({ limit: 3 })).toEqual(JSON.parse(JSON.stringify(events.slice(-3).reverse())));
  });

  it('skips and counts a stored event longer than any the recorder makes (one of an earlier version), never holding it', async () => {
    const skipped: number[] = [];
    const { deliver, query } = await backend.open((n) => skipped.push(n));
    const [a, big, b] = [
      makeEvent(),
      makeEvent({ userAgent: 'u'.repeat(16_000) }),
      makeEvent({ userAgent: 'é'.repeat(2100) }),
    ];
    await deliver([a, big, b], 'big');
    expect(ids(await query.recent())).toEqual([a.id]);
    expect(skipped).toEqual([2]);
    expect(ids(await query.recent({ project: a.project }))).toEqual([a.id]);
  });

  it("reads an event stored without aborted and truncated (an earlier version's) as not aborted, nothing truncated", async () => {
    const { deliver, query } = await backend.open();
    const old = { ...makeEvent(), aborted: undefined, truncated: undefined } as unknown as ActivityEvent;
    await deliver([old], 'old');
    expect(await query.recent()).toEqual([{ ...old, aborted: false, truncated: [] }]);
  });

  it('returns nothing from an empty log', async () => {
    const { query } = await backend.open();
    expect(await query.recent()).toEqual([]);
    expect(await query.recent({ project: 'web' })).toEqual([]);
  });

  it.each<[string, RecentFilter, (e: ActivityEvent) => boolean]>([
    ['project', { project: 'web' }, (e) => e.project === 'web'],
    ['ecosystem', { ecosystem: 'maven' }, (e) => e.ecosystem === 'maven'],
    ['tokenId', { tokenId: 'tok_b' }, (e) => e.tokenId === 'tok_b'],
    ['tokenName', { tokenName: 'ci-a' }, (e) => e.tokenName === 'ci-a'],
    [
      'project + ecosystem + token',
      { project: 'billing', ecosystem: 'pypi', tokenName: 'ci-b' },
      (e) => e.project === 'billing' && e.ecosystem === 'pypi' && e.tokenName === 'ci-b',
    ],
    [
      "repository (the CI identity's, exactly)",
      { repository: 'acme/web' },
      (e) => e.tokenId === 'tok_b' && e.project === 'web',
    ],
    [
      'repository + ecosystem',
      { repository: 'acme/billing-fork', ecosystem: 'npm' },
      (e) => e.ci?.repository === 'acme/billing-fork' && e.ecosystem === 'npm',
    ],
  ])('filters by %s', async (_, filter, predicate) => {
    const { query, events } = await filled();
    const expected = newestFirst(events.filter(predicate));
    expect(expected.length).toBeGreaterThan(0);
    expect(ids(await query.recent(filter))).toEqual(expected);
    expect(ids(await query.recent({ ...filter, limit: 2 }))).toEqual(expected.slice(0, 2));
  });

  it('does not list a retried batch twice', async () => {
    const { deliver, query } = await backend.open();
    const batch = [makeEvent(), makeEvent()];
    await deliver(batch, 'again');
    await deliver(batch, 'again');
    expect(ids(await query.recent())).toEqual(newestFirst(batch));
  });

  it.each<[string, RecentFilter, number]>([
    ['limit 0 as 1', { limit: 0 }, 1],
    ['a negative limit as 1', { limit: -5 }, 1],
    ['a fractional limit rounded down', { limit: 2.7 }, 2],
    ['NaN as the default 100', { limit: Number.NaN }, 100],
    ['a string limit as the default 100', { limit: '7' as unknown as number }, 100],
    ['a huge limit as 1000', { limit: 1e9 }, 1000],
    ['Infinity as 1000', { limit: Number.POSITIVE_INFINITY }, 1000],
  ])('takes %s', async (_, filter, expected) => {
    const { deliver, query } = await backend.open();
    const events = Array.from({ length: 1100 }, () => makeEvent());
    for (let i = 0; i < events.length; i += 500) await deliver(events.slice(i, i + 500), `many-${i}`);
    const got = await query.recent(filter);
    expect(ids(got)).toEqual(newestFirst(events).slice(0, expected));
  });

  it('matches nothing for an unknown ecosystem and ignores empty or non-string filters', async () => {
    const { query, events } = await filled();
    expect(await query.recent({ ecosystem: 'cobol' })).toEqual([]);
    expect(await query.recent({ project: "web' OR 1=1 --" })).toEqual([]);
    expect(ids(await query.recent({ project: '', tokenId: 42 as unknown as string }))).toEqual(newestFirst(events));
  });
});

describe('sqlite activity log', () => {
  let root = '';
  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'tollgate-recent-sqlite-'));
  });
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('is a Sink named recent in the token store file, beside the tokens', async () => {
    const dataDir = path.join(root, 'shared');
    const tokens = createSqliteTokenStore({ dataDir });
    const log = createSqliteActivityLog({ dataDir, maxRows: 100 });
    closers.push(
      () => log.close(),
      () => tokens.close(),
    );
    expect(log.name).toBe('recent');
    expect(log.file).toBe(path.join(dataDir, 'tollgate.db'));
    expect(log.file).toBe(tokens.file);
    const record = {
      id: generateTokenId(),
      name: 'ci',
      type: 'production' as const,
      hash: hashToken(generateToken('production')),
      createdAt: Date.now(),
      createdBy: 'alice',
      expiresAt: null,
    };
    await tokens.insert(record);
    const event = makeEvent({ tokenId: record.id, tokenName: 'ci' });
    await log.deliver([event], 'one');
    expect(await tokens.get('ci')).toMatchObject({ id: record.id });
    expect(await log.recent({ tokenId: record.id })).toEqual([event]);
  });

  it('creates tollgate.db and its -wal and -shm files 0600 when it opens the file first, in a world-writable data dir under umask 0', async () => {
    const dataDir = path.join(root, 'private');
    await inWorldWritableDir(dataDir, async () => {
      const log = createSqliteActivityLog({ dataDir, maxRows: 10 });
      closers.push(() => log.close());
      await log.deliver([makeEvent()], 'one');
      expect(sqliteModes(log.file)).toEqual({ db: '600', wal: '600', shm: '600' });
    });
  });

  it('keeps at most maxRows, the most recently recorded', async () => {
    const dataDir = path.join(root, 'bounded');
    const log = createSqliteActivityLog({ dataDir, maxRows: 10 });
    closers.push(() => log.close());
    const events = Array.from({ length: 25 }, () => makeEvent());
    for (let i = 0; i < events.length; i += 4) await log.deliver(events.slice(i, i + 4), `b-${i}`);
    expect(ids(await log.recent())).toEqual(newestFirst(events).slice(0, 10));
    const db = new Database(log.file, { readonly: true });
    try {
      expect(db.prepare('SELECT count(*) AS n FROM activity').get()).toEqual({ n: 10 });
    } finally {
      db.close();
    }
  });

  it('writes a batch larger than one INSERT statement once, even retried over rows it already holds', async () => {
    const log = createSqliteActivityLog({ dataDir: path.join(root, 'large'), maxRows: 1000 });
    closers.push(() => log.close());
    const events = Array.from({ length: 130 }, () => makeEvent());
    await log.deliver(events.slice(0, 75), 'part');
    await log.deliver(events, 'all');
    await log.deliver(events, 'all');
    expect(ids(await log.recent({ limit: 1000 }))).toEqual(newestFirst(events));
    const db = new Database(log.file, { readonly: true });
    try {
      expect(db.prepare('SELECT count(*) AS n FROM activity').get()).toEqual({ n: 130 });
    } finally {
      db.close();
    }
  });

  it('keeps exactly the newest maxRows rows when a batch is re-delivered over rows it already holds', async () => {
    // Reported: a multi-row INSERT OR IGNORE consumes a sequence number for every row it ignores,
    // and a trim by "seq <= last seq - maxRows" then left 55 rows of 100 here.
    const log = createSqliteActivityLog({ dataDir: path.join(root, 'redelivered'), maxRows: 100 });
    closers.push(() => log.close());
    const events = Array.from({ length: 130 }, () => makeEvent());
    await log.deliver(events.slice(0, 75), 'part');
    await log.deliver(events, 'all');
    expect(ids(await log.recent({ limit: 1000 }))).toEqual(newestFirst(events).slice(0, 100));
    await log.deliver(events.slice(30), 'again'); // the 100 rows it holds: every row ignored, none lost
    expect(ids(await log.recent({ limit: 1000 }))).toEqual(newestFirst(events).slice(0, 100));
    const db = new Database(log.file, { readonly: true });
    try {
      expect(db.prepare('SELECT count(*) AS n FROM activity').get()).toEqual({ n: 100 });
    } finally {
      db.close();
    }
  });

  it('shows a batch delivered late (from a disk buffer) at its own time', async () => {
    const log = createSqliteActivityLog({ dataDir: path.join(root, 'late'), maxRows: 100 });
    closers.push(() => log.close());
    const old = [makeEvent(), makeEvent()];
    const fresh = [makeEvent(), makeEvent()];
    await log.deliver(fresh, 'fresh');
    await log.deliver(old, 'old');
    expect(ids(await log.recent())).toEqual(newestFirst([...old, ...fresh]));
  });

  it('sees, from one process, what another process recorded in the same file', async () => {
    const dataDir = path.join(root, 'fleet');
    const worker1 = createSqliteActivityLog({ dataDir, maxRows: 100 });
    const worker2 = createSqliteActivityLog({ dataDir, maxRows: 100 });
    closers.push(
      () => worker1.close(),
      () => worker2.close(),
    );
    const a = makeEvent({ project: 'one' });
    const b = makeEvent({ project: 'two' });
    await Promise.all([worker1.deliver([a], 'a'), worker2.deliver([b], 'b')]);
    expect(ids(await worker1.recent())).toEqual([b.id, a.id]);
    expect(ids(await worker2.recent({ project: 'one' }))).toEqual([a.id]);
  });

  it('rejects a delivery after close, and a bad maxRows at creation', async () => {
    const log = createSqliteActivityLog({ dataDir: path.join(root, 'closed'), maxRows: 10 });
    await log.close();
    await expect(log.deliver([makeEvent()], 'x')).rejects.toThrow(/closed/);
    expect(() => createSqliteActivityLog({ dataDir: path.join(root, 'bad'), maxRows: 0 })).toThrow(/maxRows/);
  });
});

describe('redis activity query', () => {
  let server: RedisServer;
  let client: Redis;
  beforeAll(async () => {
    server = await startRedisServer();
    client = new Redis(server.url, { maxRetriesPerRequest: 0 });
  });
  afterAll(async () => {
    client.disconnect();
    await server.stop();
  });

  it('scans in pages for sparse matches, up to scanMax entries', async () => {
    const key = '{tollgate}:activity:sparse';
    const sink = createRedisStreamSink({ client, key, maxLen: 100_000 });
    const events = Array.from({ length: 2500 }, (_, i) => makeEvent({ project: i % 500 === 0 ? 'rare' : 'common' }));
    for (let i = 0; i < events.length; i += 500) await sink.deliver(events.slice(i, i + 500), `sparse-${i}`);
    const rare = newestFirst(events.filter((e) => e.project === 'rare'));
    expect(rare).toHaveLength(5);

    expect(ids(await createRedisActivityQuery({ client, key }).recent({ project: 'rare' }))).toEqual(rare);
    // Only the newest 1 200 entries are searched: the two rare events among them.
    const bounded = createRedisActivityQuery({ client, key, scanMax: 1200 });
    expect(ids(await bounded.recent({ project: 'rare' }))).toEqual(rare.slice(0, 2));
    // Without a filter it reads just `limit` entries.
    const before = await server.commandStats();
    expect(await bounded.recent({ limit: 5 })).toHaveLength(5);
    expect((await server.commandStats()).xrevrange! - before.xrevrange!).toBe(1);
  });

  it('skips entries it cannot read', async () => {
    const key = '{tollgate}:activity:odd';
    const good = makeEvent();
    await client.xadd(key, '*', 'event', JSON.stringify(good));
    await client.xadd(key, '*', 'event', '{not json');
    await client.xadd(key, '*', 'other', 'x');
    await client.xadd(key, '*', 'event', '42');
    expect(await createRedisActivityQuery({ client, key }).recent()).toEqual([good]);
  });

  it('returns nothing for a stream that does not exist', async () => {
    expect(await createRedisActivityQuery({ client, key: '{tollgate}:activity:none' }).recent()).toEqual([]);
  });

  it('rejects when Redis is unreachable', async () => {
    const own = await startRedisServer();
    const c = new Redis(own.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => {});
    await new Promise((resolve) => c.once('ready', resolve));
    const query = createRedisActivityQuery({ client: c, key: '{tollgate}:activity:x' });
    await own.stop();
    await expect(query.recent()).rejects.toThrow();
    c.disconnect();
  });
});

describe('parseRecentEvent', () => {
  it('reads a line written before aborted and truncated existed as not aborted, nothing truncated', () => {
    const { aborted: _a, truncated: _t, ...old } = makeEvent();
    const event = parseRecentEvent(JSON.stringify(old));
    expect(event).toEqual({ ...old, aborted: false, truncated: [] });
    expect(parseRecentEvent(JSON.stringify({ ...old, aborted: true, truncated: ['userAgent'] }))).toMatchObject({
      aborted: true,
      truncated: ['userAgent'],
    });
  });
});

describe('normalizeRecentFilter', () => {
  it('keeps only set string filters and clamps the limit', () => {
    expect(normalizeRecentFilter()).toEqual({ match: {}, limit: 100 });
    expect(normalizeRecentFilter({ project: 'p', ecosystem: '', limit: 5000 })).toEqual({
      match: { project: 'p' },
      limit: 1000,
    });
  });
});
