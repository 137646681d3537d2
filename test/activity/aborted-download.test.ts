import http from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN_FILE_NAME } from '../../src/admin/credential.js';
import type { ActivityEvent } from '../../src/activity/event.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { patternBytes, startOrigin, type Origin } from '../helpers/origin.js';
import { tempDir, type TempDir } from '../helpers/route-config.js';

/**
 * Issue 20: a download the client abandoned was recorded as a completed `200`, in the activity
 * event and in tollgate_production_downloads_total, although the proxy knew (its log line said
 * `"aborted":true`). It is recorded as what it was: aborted, with the bytes actually sent, counted
 * in tollgate_production_downloads_aborted_total and not as a download.
 */

const FULL_BYTES = 4 * 1024 * 1024;
/** What the origin sends of a slow artifact before it waits (for a client that never stays). */
const FIRST_BYTES = 256 * 1024;
/** What the client reads before it gives up. */
const READ_BYTES = 64 * 1024;

let origin: Origin;
let scratch: TempDir;
let gw: TestGateway;
let token: string;

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': FULL_BYTES });
    if ((req.url ?? '').includes('/slow/')) {
      // A large artifact served slowly: the first part now, the rest never (the gateway ends it when its client leaves).
      res.write(patternBytes(FIRST_BYTES));
      return;
    }
    res.end(patternBytes(FULL_BYTES));
  });
  scratch = tempDir('tollgate-aborted-');
  gw = await startTestGateway({
    TOLLGATE_CONFIG: scratch.configFile([{ prefix: '/npm/', upstream: `${origin.url}/`, ecosystem: 'npm' }]),
    TOLLGATE_ACTIVITY_FLUSH_MS: '10',
  });
  ({ token } = await gw.createToken({ name: 'ci-release', type: 'production' }));
});

afterAll(async () => {
  await gw?.close();
  await origin?.close();
  scratch?.remove();
});

/** A GET through the gateway whose client reads READ_BYTES of the body, then closes the connection. */
function abandonMidBody(urlPath: string): Promise<{ status: number; requestId: string; received: number }> {
  return new Promise((resolve, reject) => {
    let done = false;
    const req = http.get(`${gw.url}${urlPath}`, { headers: { authorization: bearer(token) }, agent: false }, (res) => {
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (done || received < READ_BYTES) return;
        done = true;
        req.destroy();
        resolve({ status: res.statusCode ?? 0, requestId: String(res.headers['x-request-id']), received });
      });
      res.on('end', () => {
        if (!done) reject(new Error('the whole body arrived: nothing was abandoned'));
      });
    });
    req.on('error', (err) => {
      if (!done) reject(err);
    });
  });
}

/** The Production event of a request, once the file sink has it. */
async function eventOf(requestId: string): Promise<ActivityEvent> {
  const dir = path.join(gw.dataDir, 'activity');
  const find = () => {
    let files: string[];
    try {
      files = readdirSync(dir).filter((f) => f.startsWith('production-'));
    } catch {
      return undefined;
    }
    const lines = files.flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean));
    return lines.map((l) => JSON.parse(l) as ActivityEvent).find((e) => e.requestId === requestId);
  };
  await expect.poll(find, { timeout: 10_000 }).toBeDefined();
  return find()!;
}

/** The sum of every series of a Production counter. */
async function counted(
  name: 'productionDownloads' | 'productionDownloadsAborted' | 'productionDownloadBytes',
): Promise<number> {
  return (await gw.gateway.metrics[name].get()).values.reduce((sum, v) => sum + v.value, 0);
}

async function counters() {
  return {
    downloads: await counted('productionDownloads'),
    aborted: await counted('productionDownloadsAborted'),
    bytes: await counted('productionDownloadBytes'),
  };
}

describe('a Production download the client abandons', () => {
  it('is recorded as aborted with the bytes sent, counted as aborted and not as a download', async () => {
    const before = await counters();
    const got = await abandonMidBody('/npm/slow/-/slow-1.0.0.tgz');
    expect(got.status).toBe(200);

    const event = await eventOf(got.requestId);
    expect(event).toMatchObject({ kind: 'download', status: 200, aborted: true, tokenName: 'ci-release' });
    expect(event.bytes).toBeGreaterThanOrEqual(got.received);
    expect(event.bytes).toBeLessThan(FULL_BYTES);
    // The request log line says the same.
    expect(gw.logRecords().find((r) => r.requestId === got.requestId)).toMatchObject({
      aborted: true,
      bytes: event.bytes,
    });

    const after = await counters();
    expect(after.downloads).toBe(before.downloads);
    expect(after.aborted).toBe(before.aborted + 1);
    expect(after.bytes).toBe(before.bytes + event.bytes);
    expect((await gw.gateway.metrics.productionDownloadsAborted.get()).values).toContainEqual({
      value: 1,
      labels: { ecosystem: 'npm', project: 'default', token_name: 'ci-release', sealed: 'false' },
    });
  });

  it('is told apart from a completed download, which is not aborted and is counted', async () => {
    const before = await counters();
    const res = await fetch(`${gw.url}/npm/whole/-/whole-1.0.0.tgz`, { headers: { authorization: bearer(token) } });
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(FULL_BYTES);

    const event = await eventOf(res.headers.get('x-request-id')!);
    expect(event).toMatchObject({ kind: 'download', status: 200, aborted: false, bytes: FULL_BYTES });
    await expect
      .poll(counters)
      .toEqual({ downloads: before.downloads + 1, aborted: before.aborted, bytes: before.bytes + FULL_BYTES });
  });

  it('shows as aborted, with the bytes sent, in the admin Activity view; a completed one does not', async () => {
    const aborted = await abandonMidBody('/npm/slow/-/slow-2.0.0.tgz');
    const sent = (await eventOf(aborted.requestId)).bytes;
    const whole = await fetch(`${gw.url}/npm/whole/-/whole-2.0.0.tgz`, { headers: { authorization: bearer(token) } });
    await whole.arrayBuffer();
    await eventOf(whole.headers.get('x-request-id')!);

    const adminToken = readFileSync(path.join(gw.dataDir, ADMIN_TOKEN_FILE_NAME), 'utf8').trim();
    const res = await fetch(`${gw.adminUrl}/api/v1/activity?token=ci-release`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(res.status).toBe(200);
    const { events } = (await res.json()) as { events: { version: string; aborted: boolean; bytes: number }[] };
    expect(events.find((e) => e.version === '2.0.0' && e.aborted)).toMatchObject({ bytes: sent });
    expect(events.filter((e) => e.version === '2.0.0').map((e) => [e.aborted, e.bytes])).toEqual([
      [false, FULL_BYTES],
      [true, sent],
    ]);
  });
});
