import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers/authorization.js';
import {
  allOutput,
  createTokenWithCli,
  runCli,
  startGatewayProcess,
  tempDir,
  type GatewayProcess,
} from '../helpers/process.js';

/**
 * TOLLGATE_WORKERS=2: two processes share the ports and the embedded store. Requests are served
 * by both, /metrics counts every worker's requests, a revocation (of a token, or of an admin
 * session by signing out) reaches both within a second, and SIGTERM stops the whole tree with
 * exit 0.
 */
describe('a gateway with two workers', () => {
  const dataDir = tempDir();
  const env = { TOLLGATE_DATA_DIR: dataDir, TOLLGATE_CACHE_TTL_MS: '600000' };
  let gw: GatewayProcess;

  beforeAll(async () => {
    gw = await startGatewayProcess({ ...env, TOLLGATE_WORKERS: '2' }, { startTimeoutMs: 40_000 });
    // Both workers are up once each has written its own listening line: wait for the other one's.
    await gw.waitForLine(
      new RegExp(`^(?!.*"pid":${String(gw.listening.pid)}[,}]).*"msg":"tollgate listening"`),
      30_000,
    );
  });
  afterAll(async () => {
    await gw?.stop();
  });

  const get = (token: string) =>
    fetch(`${gw.url}/generic/hello/1.0.0/hello-1.0.0.txt`, {
      headers: { authorization: bearer(token) },
      keepalive: false,
    });

  it('serves requests from both workers and sums their metrics', async () => {
    const { token } = await createTokenWithCli(env, 'workers-a');
    const N = 60;
    // New connections each time, so the kernel spreads them over both workers.
    for (let i = 0; i < N; i++) {
      const res = await fetch(`${gw.url}/generic/hello/1.0.0/hello-1.0.0.txt`, {
        headers: { authorization: bearer(token), connection: 'close' },
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    await expect.poll(() => new Set(requestPids(gw.stdout())).size, { timeout: 5000 }).toBe(2);

    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    const total = Number(
      /^tollgate_http_requests_total\{token_type="production",status_class="2xx"\} (\d+)/m.exec(metrics)?.[1],
    );
    expect(total).toBe(N);
    // A scrape for one family gets that family, summed over the workers, and no other.
    const one = await (await fetch(`${gw.adminUrl}/metrics?name=tollgate_http_requests_total`)).text();
    expect([...one.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1])).toEqual(['tollgate_http_requests_total']);
    expect(
      Number(/^tollgate_http_requests_total\{token_type="production",status_class="2xx"\} (\d+)/m.exec(one)?.[1]),
    ).toBe(N);
  });

  it('applies a revocation in every worker within one second', async () => {
    const { token, id } = await createTokenWithCli(env, 'workers-b');
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${gw.url}/generic/hello/1.0.0/hello-1.0.0.txt`, {
        headers: { authorization: bearer(token), connection: 'close' },
      });
      expect(res.status).toBe(200);
    }
    const revoked = await runCli(['token', 'revoke', id], env);
    expect(revoked.code).toBe(0);
    const at = Date.now();
    // Every worker refuses it: 20 fresh connections in a row all get 401.
    await expect
      .poll(
        async () => new Set(await Promise.all(Array.from({ length: 20 }, () => get(token).then((r) => r.status)))),
        { timeout: 1000, interval: 25 },
      )
      .toEqual(new Set([401]));
    expect(Date.now() - at).toBeLessThanOrEqual(1500);
  });

  it('prevents a signed-out admin session from working on the other worker: refused by every worker within one second', async () => {
    const adminToken = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    const signIn = await fetch(`${gw.adminUrl}/api/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: gw.adminUrl, connection: 'close' },
      body: JSON.stringify({ token: adminToken }),
    });
    expect(signIn.status).toBe(200);
    const { csrfToken } = (await signIn.json()) as { csrfToken: string };
    const cookie = signIn.headers.getSetCookie()[0]!.split(';')[0]!;
    // Fresh connections, so the kernel spreads them over both workers.
    const statuses = () =>
      Promise.all(
        Array.from({ length: 20 }, () =>
          fetch(`${gw.adminUrl}/api/v1/tokens`, {
            headers: { cookie, connection: 'close' },
          }).then(async (r) => {
            await r.arrayBuffer();
            return r.status;
          }),
        ),
      );
    expect(new Set(await statuses())).toEqual(new Set([200]));

    const out = await fetch(`${gw.adminUrl}/api/v1/session`, {
      method: 'DELETE',
      headers: { cookie, origin: gw.adminUrl, 'x-csrf-token': csrfToken, connection: 'close' },
    });
    expect(out.status).toBe(204);
    const at = Date.now();
    await expect.poll(async () => new Set(await statuses()), { timeout: 1000, interval: 25 }).toEqual(new Set([401]));
    expect(Date.now() - at).toBeLessThanOrEqual(1500);
    expect(gw.stdout()).not.toContain(adminToken);
  });

  it('stops the primary and both workers on SIGTERM, exit code 0', async () => {
    const status = await gw.stop();
    expect(status.code).toBe(0);
    expect(allOutput()).toContain('all workers stopped');
  });
});

function requestPids(stdout: string): number[] {
  return stdout
    .split('\n')
    .filter((l) => l.includes('"msg":"request"'))
    .map((l) => (JSON.parse(l) as { pid: number }).pid);
}
