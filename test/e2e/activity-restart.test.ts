import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/activity/event.js';
import { patternBytes, startOrigin, type Origin } from '../helpers/origin.js';
import { createReceiver } from '../helpers/webhook-receiver.js';
import { basic } from '../helpers/authorization.js';
import {
  createTokenWithCli,
  download,
  freePort,
  startGatewayProcess,
  tempDir,
  type GatewayProcess,
} from '../helpers/process.js';

/**
 * The webhook's disk buffer across a gateway restart, with the real binary: the receiver is
 * down while N Production downloads happen; SIGTERM keeps every undelivered event on disk under
 * the data dir; a new gateway on the same data dir, with the receiver back on the same port,
 * delivers all N exactly once, in order, signed with the key the data dir holds.
 */

const N = 10;
const TARBALL_BYTES = 2_048;

let origin: Origin;
let dataDir: string;

beforeAll(async () => {
  origin = await startOrigin((_req, res) => {
    const body = patternBytes(TARBALL_BYTES);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  });
  dataDir = tempDir('tollgate-activity-restart-');
});

afterAll(async () => {
  await origin?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** Every event in the webhook's disk buffer, in the order the files sort (pid folder, segment). */
function spooled(): ActivityEvent[] {
  const root = path.join(dataDir, 'spool', 'webhook');
  if (!existsSync(root)) return [];
  const events: ActivityEvent[] = [];
  for (const pid of readdirSync(root).sort()) {
    for (const file of readdirSync(path.join(root, pid)).sort()) {
      for (const line of readFileSync(path.join(root, pid, file), 'utf8').split('\n')) {
        if (line) events.push(JSON.parse(line) as ActivityEvent);
      }
    }
  }
  return events;
}

async function metricValue(gw: GatewayProcess, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => pattern.test(l))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

describe('the webhook disk buffer across a restart', () => {
  it('keeps undelivered events on disk through SIGTERM and delivers all of them once, in order, after the restart', async () => {
    const port = await freePort();
    let gw: GatewayProcess | undefined;
    const receiver = await createReceiver(() => `${gw!.adminUrl}/.well-known/jwks.json`, port);
    const routes = path.join(dataDir, 'routes.json');
    writeFileSync(
      routes,
      JSON.stringify({ routes: [{ prefix: '/npm/', upstream: `${origin.url}/`, ecosystem: 'npm' }] }),
    );
    const env = {
      TOLLGATE_DATA_DIR: dataDir,
      TOLLGATE_CONFIG: routes,
      TOLLGATE_ACTIVITY_SINKS: 'webhook',
      TOLLGATE_ACTIVITY_WEBHOOK_URL: receiver.url,
      TOLLGATE_ACTIVITY_MEMORY_EVENTS: '4', // part of the outage in memory, part on disk
      TOLLGATE_ACTIVITY_BATCH_SIZE: '3',
      TOLLGATE_ACTIVITY_FLUSH_MS: '10',
      TOLLGATE_ACTIVITY_RETRY_MAX_MS: '200',
    };
    const { token } = await createTokenWithCli(env, 'restart-ci', 'production');

    try {
      // First life: the receiver is down.
      gw = await startGatewayProcess(env);
      const requestIds: string[] = [];
      for (let i = 0; i < N; i++) {
        const res = await download(`${gw.url}/npm/lodash/-/lodash-4.17.${i}.tgz`, {
          headers: { authorization: basic('web-shop', token) },
        });
        expect(res.status).toBe(200);
        expect(res.bytes).toBe(TARBALL_BYTES);
        requestIds.push(String(res.headers['x-request-id']));
      }
      // Every event is queued (memory + disk) and the sink has failed at least once.
      await expect
        .poll(() => metricValue(gw!, /^tollgate_activity_queue_depth\{sink="webhook"/), { timeout: 10_000 })
        .toBe(N);
      await expect
        .poll(() => metricValue(gw!, /^tollgate_activity_events_total\{sink="webhook",outcome="retried"/), {
          timeout: 10_000,
        })
        .toBeGreaterThan(0);

      const firstPid = gw.pid;
      const status = await gw.stop();
      expect(status).toEqual({ code: 0, signal: null });
      // Kept on disk under the data dir, in request order, nothing delivered.
      const kept = spooled();
      expect(kept.map((e) => e.requestId)).toEqual(requestIds);
      expect(readdirSync(path.join(dataDir, 'spool', 'webhook'))).toEqual([String(firstPid)]);
      expect(receiver.events).toEqual([]);

      // Second life: the receiver is back on the same port.
      await receiver.listen();
      gw = await startGatewayProcess(env);
      await expect.poll(() => receiver.events.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(N);
      // Give a duplicate every chance to show up: wait until the queue is empty and nothing is in flight.
      await expect
        .poll(() => metricValue(gw!, /^tollgate_activity_queue_depth\{sink="webhook"/), { timeout: 10_000 })
        .toBe(0);

      expect(receiver.rejected).toEqual([]);
      const got = receiver.events;
      expect(got).toHaveLength(N);
      expect(new Set(got.map((e) => e.id)).size).toBe(N);
      expect(got.map((e) => e.requestId)).toEqual(requestIds);
      expect(got.map((e) => e.version)).toEqual(Array.from({ length: N }, (_, i) => `4.17.${i}`));
      expect(got.map((e) => e.id)).toEqual(got.map((e) => e.id).sort());
      expect(got.every((e) => e.tokenName === 'restart-ci' && e.project === 'web-shop' && e.ecosystem === 'npm')).toBe(
        true,
      );
      expect(await metricValue(gw, /^tollgate_activity_events_total\{sink="webhook",outcome="delivered"/)).toBe(N);
      // The dead process's buffer was adopted and emptied.
      expect(spooled()).toEqual([]);
      expect(readdirSync(path.join(dataDir, 'spool', 'webhook'))).toEqual([String(gw.pid)]);
      expect(gw.output()).not.toContain(token);
    } finally {
      await gw?.stop();
      await receiver.close();
    }
  });
});
