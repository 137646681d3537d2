import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/activity/event.js';
import { generateToken, generateTokenId, hashToken } from '../../src/tokens/format.js';
import { basic, bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { patternBytes, startOrigin, type Origin } from '../helpers/origin.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { tempDir, type TempDir } from '../helpers/route-config.js';
import { sleep, until } from '../helpers/wait.js';
import { createReceiver, type Receiver } from '../helpers/webhook-receiver.js';

/**
 * The Production activity pipeline end to end, in-process over real sockets: a real origin, a
 * real redis-server, and a real webhook receiver on loopback that verifies every JWS against the
 * JWKS the gateway publishes on its admin port. One request → one event in every sink; the
 * security metrics move for Production only; Development stays out of Production's sinks and
 * numbers; the webhook survives an outage in order, exactly once; the queue bound holds.
 */

const TARBALL_BYTES = 3_000;
const JAR_BYTES = 5_000;
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const TOKEN_SHAPE = /tg[pd]_[0-9A-Za-z]{30,}/;
const UA = 'npm/10.8.1 node/v20.15.0 linux x64 workspaces/false';

let origin: Origin;
let redis: RedisServer;
let scratch: TempDir;
let routesFile: string;
/** Every plaintext token this file created: none may ever show up anywhere. */
const tokens: string[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  origin = await startOrigin((req, res) => {
    const url = req.url ?? '/';
    if (url.endsWith('.tgz') || url.endsWith('.jar')) {
      const body = patternBytes(url.endsWith('.tgz') ? TARBALL_BYTES : JAR_BYTES);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
      res.end(body);
      return;
    }
    // Anything else is metadata: a packument.
    const body = JSON.stringify({ name: url.split('/').pop(), versions: {} });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  scratch = tempDir('tollgate-pipeline-');
  routesFile = scratch.configFile([
    { prefix: '/npm/', upstream: `${origin.url}/npm/`, ecosystem: 'npm' },
    { prefix: '/maven/', upstream: `${origin.url}/maven/`, ecosystem: 'maven' },
  ]);
});

afterAll(async () => {
  await origin?.close();
  await redis?.stop();
  scratch?.remove();
});

// ── Helpers ──────────────────────────────────────────────────────────────────────────────────

/** Prometheus text → series key (name{sorted labels}) → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, k, v]) => `${k}="${v}"`)
      .sort();
    out.set(`${m[1]}{${labels.join(',')}}`, Number(m[3]));
  }
  return out;
}

function seriesKey(name: string, labels: Record<string, string> = {}): string {
  return `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',')}}`;
}

const valueOf = (metrics: Map<string, number>, name: string, labels: Record<string, string> = {}) =>
  metrics.get(seriesKey(name, labels)) ?? 0;

/** Sum of every series of a metric. */
const total = (metrics: Map<string, number>, name: string) =>
  [...metrics].filter(([k]) => k.startsWith(`${name}{`)).reduce((sum, [, v]) => sum + v, 0);

async function scrape(gw: TestGateway): Promise<{ text: string; series: Map<string, number> }> {
  const res = await fetch(`${gw.adminUrl}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return { text, series: parseMetrics(text) };
}

/** Requests the gateway has finished observing (the observer and the recorder run together). */
async function observed(gw: TestGateway): Promise<number> {
  const { values } = await gw.gateway.metrics.requests.get();
  return values.reduce((sum, v) => sum + v.value, 0);
}

/**
 * Waits until the gateway observed `count` more requests than `before` (their events are then
 * enqueued), then until every sink runner delivered everything.
 */
async function settle(gw: TestGateway, before: number, count: number): Promise<void> {
  await until(async () => (await observed(gw)) >= before + count, 10_000, `${count} requests observed`);
  for (const runner of gw.gateway.activity.runners) {
    expect(await runner.drain(10_000), `sink ${runner.name} drained`).toBe(true);
  }
}

interface Got {
  status: number;
  bytes: number;
  requestId: string | null;
}

async function get(gw: TestGateway, urlPath: string, authorization?: string, userAgent = UA): Promise<Got> {
  const res = await fetch(`${gw.url}${urlPath}`, {
    headers: { 'user-agent': userAgent, ...(authorization ? { authorization } : {}) },
  });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, bytes: body.length, requestId: res.headers.get('x-request-id') };
}

/** Every event in the NDJSON files of one stream under the data dir. */
function fileEvents(dataDir: string, stream: 'production' | 'development'): ActivityEvent[] {
  const dir = path.join(dataDir, 'activity');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.startsWith(`${stream}-`) && f.endsWith('.ndjson'))
    .sort()
    .flatMap((f) =>
      readFileSync(path.join(dir, f), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as ActivityEvent),
    );
}

/** Every file under a folder, as text (sink files, spool segments). */
function allFilesText(dir: string): string {
  if (!existsSync(dir)) return '';
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => readFileSync(path.join(d.parentPath, d.name), 'utf8'))
    .join('\n');
}

async function streamEvents(client: Redis, key: string): Promise<ActivityEvent[]> {
  const entries = await client.xrange(key, '-', '+');
  return entries.map(([, fields]) => {
    const i = fields.indexOf('event');
    return JSON.parse(fields[i + 1]!) as ActivityEvent;
  });
}

const byId = (a: ActivityEvent, b: ActivityEvent) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const ids = (events: readonly ActivityEvent[]) => events.map((e) => e.id);

async function newToken(
  gw: TestGateway,
  opts: { name?: string; type?: 'production' | 'development'; expires?: string } = {},
) {
  const created = await gw.createToken(opts);
  tokens.push(created.token);
  return created;
}

function expectNoToken(where: string, text: string): void {
  for (const token of tokens) expect(text.includes(token), `${where} contains a token`).toBe(false);
  expect(text, where).not.toMatch(TOKEN_SHAPE);
}

/**
 * A gateway whose webhook sink posts to a receiver of its own (listening from the start, or down
 * until the test calls `listen()`), with `env()` (read when it starts) beside the routes: both
 * started before the suite, closed after it.
 */
function webhookGateway(
  env: () => Record<string, string>,
  listening: boolean,
): { gw: TestGateway; receiver: Receiver } {
  const suite = {} as { gw: TestGateway; receiver: Receiver };
  beforeAll(async () => {
    suite.receiver = await createReceiver(() => `${suite.gw.adminUrl}/.well-known/jwks.json`);
    if (listening) await suite.receiver.listen();
    suite.gw = await startTestGateway({
      TOLLGATE_CONFIG: routesFile,
      TOLLGATE_ACTIVITY_WEBHOOK_URL: suite.receiver.url,
      TOLLGATE_ACTIVITY_FLUSH_MS: '10',
      ...env(),
    });
  });
  afterAll(async () => {
    await suite.gw?.close();
    await suite.receiver?.close();
  });
  return suite;
}

// ── Production to every sink at once ─────────────────────────────────────────────────────────

describe('with the file, Redis Stream and webhook sinks at once', () => {
  let gw: TestGateway;
  let receiver: Receiver;
  let client: Redis;
  const prefix = `{tg-pipe-${Math.random().toString(36).slice(2, 8)}}:`;
  let prod: { token: string; record: { id: string; name: string } };
  let dev: { token: string; record: { id: string; name: string } };

  const suite = webhookGateway(
    () => ({
      TOLLGATE_REDIS_URL: redis.url,
      TOLLGATE_REDIS_PREFIX: prefix,
      TOLLGATE_ACTIVITY_SINKS: 'file,redis,webhook',
      TOLLGATE_ACTIVITY_RETRY_MAX_MS: '200',
      TOLLGATE_LAST_USED_FLUSH_MS: '100',
    }),
    true,
  );

  beforeAll(async () => {
    ({ gw, receiver } = suite);
    client = new Redis(redis.url);
    prod = await newToken(gw, { name: 'ci-release', type: 'production' });
    dev = await newToken(gw, { name: 'laptop-dev', type: 'development' });
  });

  afterAll(() => client?.disconnect());

  const productionKey = () => `${prefix}activity:production`;

  /** The Production events in every sink, each sorted by id. */
  async function sinks() {
    return {
      file: fileEvents(gw.dataDir, 'production').sort(byId),
      redis: (await streamEvents(client, productionKey())).sort(byId),
      webhook: [...receiver.events].sort(byId),
      recent: (await gw.gateway.activity.query.recent({ limit: 1000 })).sort(byId),
    };
  }

  it('turns each Production download into exactly one event with the right fields, in every sink at once', async () => {
    expect(gw.gateway.activity.runners.map((r) => r.name).sort()).toEqual(['file', 'redis', 'webhook']);
    const before = await observed(gw);
    const startedAt = Date.now();
    const npm = await get(gw, '/npm/@acme/widgets/-/widgets-1.4.2.tgz', basic('web-shop', prod.token));
    const maven = await get(
      gw,
      '/maven/com/acme/acme-lib/1.4.2/acme-lib-1.4.2.jar',
      bearer(prod.token),
      'Apache-Maven/3.9.6 (Java 21.0.2; Linux 6.1)',
    );
    const sealed = await get(gw, '/npm/lodash/-/lodash-4.17.21+sp1.tgz', basic('', prod.token));
    for (const r of [npm, maven, sealed]) expect(r.status).toBe(200);
    await settle(gw, before, 3);
    const endedAt = Date.now();

    const { file, redis: stream, webhook, recent } = await sinks();
    // Exactly one event per request, the same one everywhere.
    expect(file).toHaveLength(3);
    expect(stream).toEqual(file);
    expect(webhook).toEqual(file);
    expect(recent).toEqual(file);
    expect(new Set(file.map((e) => e.requestId))).toEqual(new Set([npm.requestId, maven.requestId, sealed.requestId]));
    expect(receiver.rejected).toEqual([]);
    expect(receiver.batches.every((b) => b.kid !== undefined && b.idempotencyKey === b.batchId)).toBe(true);

    const of = (r: Got) => file.find((e) => e.requestId === r.requestId)!;
    const common = {
      tokenId: prod.record.id,
      tokenName: 'ci-release',
      tokenType: 'production',
      method: 'GET',
      status: 200,
      clientIp: '127.0.0.1',
      kind: 'download',
    };
    expect(of(npm)).toMatchObject({
      ...common,
      project: 'web-shop',
      ecosystem: 'npm',
      package: '@acme/widgets',
      version: '1.4.2',
      file: 'widgets-1.4.2.tgz',
      bytes: TARBALL_BYTES,
      userAgent: UA,
      sealed: false,
    });
    expect(of(maven)).toMatchObject({
      ...common,
      project: 'default',
      ecosystem: 'maven',
      package: 'com.acme:acme-lib',
      version: '1.4.2',
      file: 'acme-lib-1.4.2.jar',
      bytes: JAR_BYTES,
      userAgent: 'Apache-Maven/3.9.6 (Java 21.0.2; Linux 6.1)',
      sealed: false,
    });
    expect(of(sealed)).toMatchObject({
      ...common,
      project: 'default',
      ecosystem: 'npm',
      package: 'lodash',
      version: '4.17.21+sp1',
      file: 'lodash-4.17.21+sp1.tgz',
      bytes: TARBALL_BYTES,
      sealed: true,
    });
    expect(npm.bytes).toBe(TARBALL_BYTES);
    expect(maven.bytes).toBe(JAR_BYTES);
    for (const e of file) {
      expect(e.id).toMatch(ULID);
      const t = Date.parse(e.time);
      expect(e.time).toBe(new Date(t).toISOString());
      expect(t).toBeGreaterThanOrEqual(startedAt - 1);
      expect(t).toBeLessThanOrEqual(endedAt + 1);
      expect(typeof e.durationMs).toBe('number');
      expect(e.durationMs).toBeGreaterThanOrEqual(0);
      // Exactly the documented fields, nothing else.
      expect(Object.keys(e).sort()).toEqual([
        'aborted',
        'bytes',
        'ci',
        'clientIp',
        'durationMs',
        'ecosystem',
        'file',
        'id',
        'kind',
        'leak',
        'method',
        'package',
        'project',
        'requestId',
        'sealed',
        'status',
        'time',
        'tokenId',
        'tokenName',
        'tokenType',
        'truncated',
        'userAgent',
        'version',
      ]);
      expect(e).toMatchObject({ aborted: false, truncated: [], ci: null, leak: null });
    }
    // Request order = id order (ULIDs are time-ordered).
    expect(ids(file)).toEqual([npm, maven, sealed].map((r) => of(r).id));
  });

  it('moves the security metrics for a Production download: downloads by ecosystem/project/token/sealed, and bytes', async () => {
    const { series: before } = await scrape(gw);
    const seen = await observed(gw);
    await get(gw, '/npm/@acme/widgets/-/widgets-2.0.0.tgz', basic('web-shop', prod.token));
    await get(gw, '/npm/@acme/widgets/-/widgets-2.0.0+sp1.tgz', basic('web-shop', prod.token));
    await settle(gw, seen, 2);
    const { series: after } = await scrape(gw);

    const labels = { ecosystem: 'npm', project: 'web-shop', token_name: 'ci-release' };
    const downloads = 'tollgate_production_downloads_total';
    expect(
      valueOf(after, downloads, { ...labels, sealed: 'false' }) -
        valueOf(before, downloads, { ...labels, sealed: 'false' }),
    ).toBe(1);
    expect(
      valueOf(after, downloads, { ...labels, sealed: 'true' }) -
        valueOf(before, downloads, { ...labels, sealed: 'true' }),
    ).toBe(1);
    const bytes = 'tollgate_production_download_bytes_total';
    expect(valueOf(after, bytes, labels) - valueOf(before, bytes, labels)).toBe(2 * TARBALL_BYTES);
    // The first test's downloads are there too, under their own labels.
    expect(
      valueOf(after, downloads, { ecosystem: 'maven', project: 'default', token_name: 'ci-release', sealed: 'false' }),
    ).toBe(1);
    expect(
      valueOf(after, downloads, { ecosystem: 'npm', project: 'default', token_name: 'ci-release', sealed: 'true' }),
    ).toBe(1);
    // The operations side saw them too, without a token label.
    expect(
      valueOf(after, 'tollgate_http_requests_total', { token_type: 'production', status_class: '2xx' }) -
        valueOf(before, 'tollgate_http_requests_total', { token_type: 'production', status_class: '2xx' }),
    ).toBe(2);
    expect(
      valueOf(after, 'tollgate_activity_events_total', { sink: 'webhook', outcome: 'delivered' }),
    ).toBeGreaterThanOrEqual(5);
  });

  it('records a Development download in no sink and moves no tollgate_production_* series', async () => {
    // One more Production download, then wait until its last-used time is in the store: nothing
    // Production-related is left to move on its own while the Development requests run.
    await sleep(5);
    const lastProductionUse = Date.now();
    const seen0 = await observed(gw);
    expect((await get(gw, '/npm/@acme/widgets/-/widgets-1.4.2.tgz', basic('web-shop', prod.token))).status).toBe(200);
    await settle(gw, seen0, 1);
    await until(
      async () => ((await gw.store.get(prod.record.id))?.lastUsedAt ?? 0) >= lastProductionUse,
      10_000,
      'last use stored',
    );
    const productionOnly = (s: Map<string, number>) =>
      new Map([...s].filter(([k]) => k.startsWith('tollgate_production_')));
    const { series: before } = await scrape(gw);
    // The last-used gauge shows the store's value on this very scrape (not the previous one's).
    const stored = (await gw.store.get(prod.record.id))!.lastUsedAt!;
    expect(
      valueOf(before, 'tollgate_production_token_last_used_timestamp_seconds', {
        token_id: prod.record.id,
        token_name: 'ci-release',
      }),
    ).toBe(stored / 1000);
    const sinksBefore = await sinks();
    const bodiesBefore = receiver.bodies.length;
    const seen = await observed(gw);

    const r = await get(gw, '/npm/@acme/widgets/-/widgets-1.4.2.tgz', basic('web-shop', dev.token));
    const m = await get(gw, '/npm/@acme%2fwidgets', bearer(dev.token));
    expect([r.status, m.status]).toEqual([200, 200]);
    await settle(gw, seen, 2);
    await until(async () => ((await gw.store.get(dev.record.id))?.lastUsedAt ?? 0) > 0, 10_000, 'dev last use stored');
    const { series: after } = await scrape(gw);

    expect(productionOnly(after)).toEqual(productionOnly(before));
    // Not vacuous: the gateway did see the requests, as Development.
    expect(
      valueOf(after, 'tollgate_http_requests_total', { token_type: 'development', status_class: '2xx' }) -
        valueOf(before, 'tollgate_http_requests_total', { token_type: 'development', status_class: '2xx' }),
    ).toBe(2);
    expect([...after.keys()].some((k) => k.includes(dev.record.id) || k.includes('laptop-dev'))).toBe(false);
    // No event anywhere, not even later.
    expect(await sinks()).toEqual(sinksBefore);
    expect(receiver.bodies.length).toBe(bodiesBefore);
    expect(fileEvents(gw.dataDir, 'development')).toEqual([]);
    expect(await client.exists(`${prefix}activity:development`)).toBe(0);
  });

  it('records a metadata request (an npm packument) as an event of kind metadata, counted apart from downloads', async () => {
    const { series: before } = await scrape(gw);
    const seen = await observed(gw);
    const packument = await get(gw, '/npm/@acme%2fwidgets', basic('web-shop', prod.token));
    expect(packument.status).toBe(200);
    await settle(gw, seen, 1);
    const { series: after } = await scrape(gw);

    const event = fileEvents(gw.dataDir, 'production').find((e) => e.requestId === packument.requestId);
    expect(event).toMatchObject({
      kind: 'metadata',
      ecosystem: 'npm',
      package: '@acme/widgets',
      version: null,
      project: 'web-shop',
    });
    expect(
      (await streamEvents(client, productionKey())).filter((e) => e.requestId === packument.requestId),
    ).toHaveLength(1);
    expect(receiver.events.filter((e) => e.requestId === packument.requestId)).toHaveLength(1);

    const labels = { ecosystem: 'npm', project: 'web-shop', token_name: 'ci-release' };
    expect(
      valueOf(after, 'tollgate_production_metadata_requests_total', labels) -
        valueOf(before, 'tollgate_production_metadata_requests_total', labels),
    ).toBe(1);
    expect(total(after, 'tollgate_production_downloads_total')).toBe(
      total(before, 'tollgate_production_downloads_total'),
    );
    expect(total(after, 'tollgate_production_download_bytes_total')).toBe(
      total(before, 'tollgate_production_download_bytes_total'),
    );
  });

  it('counts bad, expired and revoked tokens as auth failures by reason, and a request without credentials as a challenge only', async () => {
    const expiredToken = generateToken('production');
    tokens.push(expiredToken);
    await gw.store.insert({
      id: generateTokenId(),
      name: 'expired-ci',
      type: 'production',
      hash: hashToken(expiredToken),
      createdAt: Date.now() - 120_000,
      createdBy: 'test',
      expiresAt: Date.now() - 60_000,
    });
    const revoked = await newToken(gw, { name: 'revoked-ci' });
    await gw.store.revoke(revoked.record.id, 'test');
    const unknown = generateToken('production');
    tokens.push(unknown);

    const { series: before } = await scrape(gw);
    const seen = await observed(gw);
    const statuses = [
      (await get(gw, '/npm/lodash/-/lodash-4.17.21.tgz', bearer(unknown))).status,
      (await get(gw, '/npm/lodash/-/lodash-4.17.21.tgz', bearer('tgp_short'))).status,
      (await get(gw, '/npm/lodash/-/lodash-4.17.21.tgz', basic('web-shop', expiredToken))).status,
      (await get(gw, '/npm/lodash/-/lodash-4.17.21.tgz', bearer(revoked.token))).status,
    ];
    expect(statuses).toEqual([401, 401, 401, 401]);
    await settle(gw, seen, 4);
    const { series: middle } = await scrape(gw);
    const failures = (s: Map<string, number>, reason: string) => valueOf(s, 'tollgate_auth_failures_total', { reason });
    expect(failures(middle, 'invalid') - failures(before, 'invalid')).toBe(1);
    expect(failures(middle, 'malformed') - failures(before, 'malformed')).toBe(1);
    expect(failures(middle, 'expired') - failures(before, 'expired')).toBe(1);
    expect(failures(middle, 'revoked') - failures(before, 'revoked')).toBe(1);
    expect(total(middle, 'tollgate_auth_challenges_total')).toBe(total(before, 'tollgate_auth_challenges_total'));

    const challenged = await get(gw, '/maven/com/acme/acme-lib/1.4.2/acme-lib-1.4.2.jar');
    expect(challenged.status).toBe(401);
    await settle(gw, seen + 4, 1);
    const { series: after } = await scrape(gw);
    expect(total(after, 'tollgate_auth_challenges_total') - total(middle, 'tollgate_auth_challenges_total')).toBe(1);
    expect(total(after, 'tollgate_auth_failures_total')).toBe(total(middle, 'tollgate_auth_failures_total'));
    expect(after.has(seriesKey('tollgate_auth_failures_total', { reason: 'missing' }))).toBe(false);
    // None of them is anybody's activity.
    const all = fileEvents(gw.dataDir, 'production');
    expect(all.some((e) => e.status === 401)).toBe(false);
    expect(all.some((e) => e.tokenName === 'revoked-ci' || e.tokenName === 'expired-ci')).toBe(false);
  });

  it('never writes a token into an event, a sink file, the Redis stream, a webhook body, /metrics or the log', async () => {
    expect(tokens.length).toBeGreaterThanOrEqual(4);
    const { text } = await scrape(gw);
    expectNoToken('/metrics', text);
    expectNoToken('the log', gw.logs());
    expectNoToken('the data dir activity files', allFilesText(path.join(gw.dataDir, 'activity')));
    expectNoToken('the spool', allFilesText(path.join(gw.dataDir, 'spool')));
    expectNoToken('the Redis stream', JSON.stringify(await client.xrange(productionKey(), '-', '+')));
    const payloads = receiver.bodies.map((jws) => Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8'));
    expect(payloads.length).toBeGreaterThan(0);
    expectNoToken('the webhook bodies', receiver.bodies.join('\n') + payloads.join('\n'));
    expectNoToken('the recent query', JSON.stringify(await gw.gateway.activity.query.recent({ limit: 1000 })));
  });
});

// ── Without Redis: recent activity read from the NDJSON files ───────────────────────────────

describe('without Redis', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({ TOLLGATE_CONFIG: routesFile, TOLLGATE_ACTIVITY_FLUSH_MS: '10' });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('writes the NDJSON file, and the recent query reads it by project, ecosystem and token, newest first', async () => {
    // No second copy: the file sink is the only sink, and the query reads its files.
    expect(gw.gateway.activity.runners.map((r) => r.name)).toEqual(['file']);
    const prod = await newToken(gw, { name: 'ci-embedded' });
    const seen = await observed(gw);
    const a = await get(gw, '/npm/lodash/-/lodash-4.17.21.tgz', basic('shop', prod.token));
    const b = await get(gw, '/maven/com/acme/acme-lib/1.4.2/acme-lib-1.4.2.jar', basic('billing', prod.token));
    await settle(gw, seen, 2);
    const file = fileEvents(gw.dataDir, 'production');
    expect(file.map((e) => e.requestId)).toEqual([a.requestId, b.requestId]);
    expect(await gw.gateway.activity.query.recent()).toEqual([...file].reverse());
    expect((await gw.gateway.activity.query.recent({ project: 'billing' })).map((e) => e.requestId)).toEqual([
      b.requestId,
    ]);
    expect((await gw.gateway.activity.query.recent({ ecosystem: 'npm' })).map((e) => e.requestId)).toEqual([
      a.requestId,
    ]);
    expect((await gw.gateway.activity.query.recent({ tokenId: prod.record.id })).length).toBe(2);
  });
});

// ── A separate Development stream ────────────────────────────────────────────────────────────

describe('with TOLLGATE_ACTIVITY_DEVELOPMENT=separate', () => {
  let gw: TestGateway;
  let receiver: Receiver;
  let client: Redis;
  const prefix = `{tg-dev-${Math.random().toString(36).slice(2, 8)}}:`;

  const suite = webhookGateway(
    () => ({
      TOLLGATE_REDIS_URL: redis.url,
      TOLLGATE_REDIS_PREFIX: prefix,
      TOLLGATE_ACTIVITY_SINKS: 'file,redis,webhook',
      TOLLGATE_ACTIVITY_DEVELOPMENT: 'separate',
    }),
    true,
  );
  beforeAll(() => {
    ({ gw, receiver } = suite);
    client = new Redis(redis.url);
  });
  afterAll(() => client?.disconnect());

  it('sends Development events to the development stream and file only, never to the webhook or the Production stream', async () => {
    expect(gw.gateway.activity.runners.map((r) => r.name).sort()).toEqual([
      'file',
      'file-development',
      'redis',
      'redis-development',
      'webhook',
    ]);
    const dev = await newToken(gw, { name: 'feature-ci', type: 'development' });
    const prod = await newToken(gw, { name: 'release-ci', type: 'production' });
    const { series: before } = await scrape(gw);
    const seen = await observed(gw);
    const d = await get(gw, '/npm/lodash/-/lodash-4.17.21.tgz', basic('web-shop', dev.token));
    await settle(gw, seen, 1);
    const { series: after } = await scrape(gw);

    const devFile = fileEvents(gw.dataDir, 'development');
    const devStream = await streamEvents(client, `${prefix}activity:development`);
    expect(devFile).toHaveLength(1);
    expect(devFile[0]).toMatchObject({
      requestId: d.requestId,
      tokenType: 'development',
      tokenName: 'feature-ci',
      package: 'lodash',
    });
    expect(devStream).toEqual(devFile);
    expect(fileEvents(gw.dataDir, 'production')).toEqual([]);
    expect(await client.exists(`${prefix}activity:production`)).toBe(0);
    expect(receiver.bodies).toEqual([]);
    expect(await gw.gateway.activity.query.recent()).toEqual([]);
    const productionOnly = (s: Map<string, number>) =>
      [...s].filter(([k]) => k.startsWith('tollgate_production_') && !k.includes('_token_'));
    expect(productionOnly(after)).toEqual(productionOnly(before));

    // And Production goes to Production's sinks only.
    const seen2 = await observed(gw);
    const p = await get(gw, '/npm/lodash/-/lodash-4.17.22.tgz', basic('web-shop', prod.token));
    await settle(gw, seen2, 1);
    expect(fileEvents(gw.dataDir, 'production').map((e) => e.requestId)).toEqual([p.requestId]);
    expect((await streamEvents(client, `${prefix}activity:production`)).map((e) => e.requestId)).toEqual([p.requestId]);
    expect(receiver.events.map((e) => e.requestId)).toEqual([p.requestId]);
    expect(fileEvents(gw.dataDir, 'development').map((e) => e.requestId)).toEqual([d.requestId]);
    expect((await streamEvents(client, `${prefix}activity:development`)).map((e) => e.requestId)).toEqual([
      d.requestId,
    ]);
    expect(receiver.rejected).toEqual([]);
  });
});

// ── The webhook down for a while, then up ────────────────────────────────────────────────────

describe('when the webhook receiver is down for a while', () => {
  let gw: TestGateway;
  let receiver: Receiver;

  const suite = webhookGateway(
    () => ({
      TOLLGATE_ACTIVITY_SINKS: 'webhook',
      TOLLGATE_ACTIVITY_BATCH_SIZE: '3',
      TOLLGATE_ACTIVITY_MEMORY_EVENTS: '4', // most of the outage goes to the disk buffer
      TOLLGATE_ACTIVITY_RETRY_MAX_MS: '100',
    }),
    false,
  );
  beforeAll(() => ({ gw, receiver } = suite));

  it('keeps serving downloads, then delivers every event exactly once and in order when the receiver comes back on the same port', async () => {
    const prod = await newToken(gw, { name: 'outage-ci' });
    const seen = await observed(gw);
    const results: Got[] = [];
    for (let i = 0; i < 12; i++) {
      results.push(await get(gw, `/npm/lodash/-/lodash-4.17.${i}.tgz`, basic('web-shop', prod.token)));
    }
    // Downloads are not held up by the dead sink.
    expect(results.map((r) => r.status)).toEqual(Array(12).fill(200));
    await until(async () => (await observed(gw)) >= seen + 12, 10_000, 'requests observed');
    const retried = async () =>
      valueOf((await scrape(gw)).series, 'tollgate_activity_events_total', { sink: 'webhook', outcome: 'retried' });
    await until(async () => (await retried()) > 0, 10_000, 'a retried delivery');
    expect(receiver.bodies).toEqual([]);
    const depth = gw.gateway.activity.runners[0]!.depth();
    expect(depth.memory + depth.disk).toBe(12);
    expect(depth.disk).toBeGreaterThan(0);
    expect(gw.logs()).toContain('activity sink failed, will retry');

    await receiver.listen();
    expect(await gw.gateway.activity.runners[0]!.drain(15_000)).toBe(true);

    const got = receiver.events;
    expect(receiver.rejected).toEqual([]);
    // Exactly once: no id twice, none missing.
    expect(new Set(ids(got)).size).toBe(got.length);
    expect(got.map((e) => e.requestId)).toEqual(results.map((r) => r.requestId));
    // In order: request order, and ascending ULIDs.
    expect(got.map((e) => e.version)).toEqual(results.map((_, i) => `4.17.${i}`));
    expect(ids(got)).toEqual([...ids(got)].sort());
    expect(await retried()).toBeGreaterThan(0);
    const { series } = await scrape(gw);
    expect(valueOf(series, 'tollgate_activity_events_total', { sink: 'webhook', outcome: 'delivered' })).toBe(12);
    expect(valueOf(series, 'tollgate_activity_events_total', { sink: 'webhook', outcome: 'dropped' })).toBe(0);
    expect(valueOf(series, 'tollgate_activity_queue_depth', { sink: 'webhook', where: 'disk' })).toBe(0);
    expect(valueOf(series, 'tollgate_activity_queue_depth', { sink: 'webhook', where: 'memory' })).toBe(0);
  });
});

// ── The queue bound ──────────────────────────────────────────────────────────────────────────

describe('with tiny queue bounds and the webhook down', () => {
  const SPOOL_MAX_BYTES = 2_000; // a few events' worth
  let gw: TestGateway;
  let receiver: Receiver;

  const suite = webhookGateway(
    () => ({
      TOLLGATE_ACTIVITY_SINKS: 'webhook',
      TOLLGATE_ACTIVITY_MEMORY_EVENTS: '5',
      TOLLGATE_ACTIVITY_SPOOL_MAX_BYTES: String(SPOOL_MAX_BYTES),
      TOLLGATE_ACTIVITY_RETRY_MAX_MS: '100',
    }),
    false,
  );
  beforeAll(() => ({ gw, receiver } = suite));

  it('drops what does not fit, counts and logs it, keeps the disk buffer within its bound, and delivers the rest in order', async () => {
    const prod = await newToken(gw, { name: 'bound-ci' });
    const seen = await observed(gw);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        get(gw, `/npm/lodash/-/lodash-4.18.${i}.tgz`, basic('web-shop', prod.token)),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    await until(async () => (await observed(gw)) >= seen + 20, 10_000, 'requests observed');

    const runner = gw.gateway.activity.runners[0]!;
    const dropped = async () =>
      valueOf((await scrape(gw)).series, 'tollgate_activity_events_total', { sink: 'webhook', outcome: 'dropped' });
    await until(
      async () => (await dropped()) + runner.depth().memory + runner.depth().disk === 20,
      10_000,
      'every event kept or dropped',
    );
    const spoolDir = path.join(gw.dataDir, 'spool', 'webhook');
    const onDisk = readdirSync(spoolDir, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile())
      .reduce((sum, d) => sum + statSync(path.join(d.parentPath, d.name)).size, 0);
    expect(onDisk).toBeLessThanOrEqual(SPOOL_MAX_BYTES);
    expect(runner.depth().memory).toBe(5);
    const droppedCount = await dropped();
    expect(droppedCount).toBeGreaterThan(0);
    expect(droppedCount).toBe(20 - 5 - runner.depth().disk);
    // (The embedded recent-activity table has a runner with the same tiny bounds: only the webhook's lines count here.)
    const dropLines = gw
      .logRecords()
      .filter((r) => r.msg === 'activity events dropped: buffer bounds reached' && r.sink === 'webhook');
    expect(dropLines.length).toBeGreaterThan(0);
    expect(dropLines[0]).toMatchObject({ level: 'error', reason: 'disk-full' });
    expect(dropLines.reduce((sum, r) => sum + Number(r.events), 0)).toBe(droppedCount);

    // What was kept arrives once the receiver is back: the oldest events, each once, in order.
    await receiver.listen();
    expect(await runner.drain(15_000)).toBe(true);
    expect(receiver.rejected).toEqual([]);
    const got = receiver.events;
    expect(got).toHaveLength(20 - droppedCount);
    expect(new Set(ids(got)).size).toBe(got.length);
    expect(ids(got)).toEqual([...ids(got)].sort());
  });
});
