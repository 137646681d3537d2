import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliArgs } from '../helpers/cli-args.js';
import type { LoadtestReport } from '../../src/loadtest/report.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startBalancer, type Balancer } from './balancer.js';
import { expectNoSecret, runLoadtestInProcess, type InProcessResult } from './harness.js';

/**
 * `tollgate loadtest --revocation` against a fleet: two gateways sharing one Redis, behind a
 * round-robin TCP balancer, the admin API of one of them. The token the command creates is
 * cached on both, revoked through one, and must stop working on both within a second.
 */

const ADMIN_TOKEN = 'loadtest-admin-token-0123456789';

let dir: string;
let redis: RedisServer;
let fleet: TestGateway[];
let balancer: Balancer;
let adminTokenFile: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-loadtest-rev-'));
  adminTokenFile = path.join(dir, 'admin-token');
  writeFileSync(adminTokenFile, `${ADMIN_TOKEN}\n`);
  redis = await startRedisServer();
  // The failure limit off: after a revocation run, the revoked token's failures leave the loopback
  // address limited (429 for any token not cached), and the next run's new token would get 429.
  const env = {
    TOLLGATE_REDIS_URL: redis.url,
    TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN,
    TOLLGATE_LOG_LEVEL: 'warn',
    TOLLGATE_AUTH_FAILURE_BURST: '0',
  };
  fleet = [await startTestGateway(env), await startTestGateway(env)];
  balancer = await startBalancer(fleet.map((gw) => gw.gateway.proxyPort));
});
afterAll(async () => {
  await balancer?.close();
  for (const gw of fleet ?? []) await gw.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const loadTokens = async () => (await fleet[0]!.store.list()).filter((r) => r.name.startsWith('loadtest-'));

describe('tollgate loadtest --revocation on a fleet of two behind a load balancer', () => {
  it('reports revocationMs within a second, the token cached on every gateway before, revoked after', async () => {
    const before = await loadTokens();
    const hits = fleet.map((gw) => gw.gateway.cache.stats.hits);
    const connections = [...balancer.connections];
    const r = await runLoadtestInProcess(
      cliArgs({
        target: balancer.url,
        revocation: true,
        'admin-url': fleet[0]!.adminUrl,
        'admin-token-file': adminTokenFile,
        duration: 2,
        connections: 4,
        json: true,
      }),
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as LoadtestReport;

    expect(report.revocationMs).toBeTypeOf('number');
    expect(report.revocationMs).toBeLessThanOrEqual(1000);
    expect(report.revocation).toMatchObject({ landed: true, promiseMs: 1000 });
    expect(report.revocation!.revokedAtS).toBeGreaterThan(0.5);
    expect(report.statusCounts['200']).toBeGreaterThan(0);
    expect(report.statusCounts['401']! + report.statusCounts['429']!).toBeGreaterThan(0);
    // Both gateways carried the load and served the token from their cache.
    expect(
      balancer.connections.map((n, i) => n - connections[i]!).every((n) => n >= 2),
      String(balancer.connections),
    ).toBe(true);
    fleet.forEach((gw, i) =>
      expect(gw.gateway.cache.stats.hits, `cache hits on gateway ${i}`).toBeGreaterThan(hits[i]!),
    );

    const created = (await loadTokens()).filter((t) => !before.some((b) => b.id === t.id));
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({
      id: report.revocation!.tokenId,
      name: report.revocation!.tokenName,
      type: 'production',
    });
    expect(created[0]!.name).toMatch(/^loadtest-\d{8}T\d{6}Z-[0-9a-f]{4}$/);
    expect(created[0]!.revokedAt).not.toBeNull();
    expectNoSecret([ADMIN_TOKEN], r.stdout, r.stderr);
    expect(r.stdout + r.stderr).not.toMatch(/tg[pd]_[0-9A-Za-z]{36}/);
  });

  it('revokes the token it created when interrupted, and reports what ran', async () => {
    const before = await loadTokens();
    const hits = fleet.map((gw) => gw.gateway.cache.stats.hits);
    const interrupt = new AbortController();
    let ended: Promise<InProcessResult> | undefined;
    const running = runLoadtestInProcess(
      cliArgs({
        target: balancer.url,
        revocation: true,
        'admin-url': fleet[0]!.adminUrl,
        'admin-token-file': adminTokenFile,
        duration: 60,
        connections: 2,
        json: true,
      }),
      interrupt.signal,
    ).finally(() => {
      ended = running;
    });
    // The load is on (the new token served from a cache), long before the halfway revoke at 30 s.
    await expect
      .poll(
        async () => {
          if (ended) throw new Error(`the run ended before the interruption: ${(await ended).stderr}`);
          return fleet.some((gw, i) => gw.gateway.cache.stats.hits > hits[i]! + 10);
        },
        { timeout: 10_000 },
      )
      .toBe(true);
    interrupt.abort();
    const r = await running;
    expect(r.code).toBe(130);
    const report = JSON.parse(r.stdout) as LoadtestReport;
    expect(report.interrupted).toBe(true);
    expect(report.revocationMs).toBeNull();
    expect(report.statusCounts['200']).toBeGreaterThan(0);
    const created = (await loadTokens()).filter((t) => !before.some((b) => b.id === t.id));
    expect(created).toHaveLength(1);
    expect(created[0]!.revokedAt).not.toBeNull();
  });
});
