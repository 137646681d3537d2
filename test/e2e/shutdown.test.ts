import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patternBytes, startOrigin, type Origin } from '../helpers/origin.js';
import { bearer } from '../helpers/authorization.js';
import {
  connectionRefused,
  createTokenWithCli,
  download,
  startGatewayProcess,
  tempDir,
  type GatewayProcess,
} from '../helpers/process.js';

const MiB = 1024 * 1024;
const ARTIFACT_BYTES = 32 * MiB;
const body = patternBytes(ARTIFACT_BYTES);
const bodySha256 = createHash('sha256').update(body).digest('hex');

let origin: Origin;

beforeAll(async () => {
  origin = await startOrigin((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': ARTIFACT_BYTES });
    res.end(body);
  });
});

afterAll(async () => {
  await origin?.close();
});

async function gatewayWithToken(
  extraEnv: Record<string, string>,
): Promise<{ gw: GatewayProcess; token: string; dataDir: string }> {
  const dataDir = tempDir();
  const env = { TOLLGATE_DATA_DIR: dataDir, TOLLGATE_UPSTREAM: origin.url, ...extraEnv };
  const { token } = await createTokenWithCli(env, 'shutdown');
  const gw = await startGatewayProcess(env);
  return { gw, token, dataDir };
}

describe('SIGTERM', () => {
  it('finishes an in-flight slow download in full, refuses new connections, and exits 0', async () => {
    const { gw, token, dataDir } = await gatewayWithToken({ TOLLGATE_SHUTDOWN_GRACE_MS: '60000' });
    try {
      let signalled: (() => void) | undefined;
      const firstBytes = new Promise<void>((resolve) => {
        signalled = resolve;
      });
      // ~8 s at 4 MiB/s: the signal arrives with most of the body still to come.
      const inFlight = download(`${gw.url}/big.bin`, {
        headers: { authorization: bearer(token) },
        bytesPerSecond: 4 * MiB,
        onProgress: (bytes) => {
          if (bytes >= MiB) signalled?.();
        },
      });
      await firstBytes;
      const exited = gw.exited.then((status) => ({ ...status, at: Date.now() }));
      gw.signal('SIGTERM');
      await gw.waitForLine('shutting down');

      // New connections are refused while the download drains; the admin port says "not ready".
      // (Polled briefly: the log line and the listener closing are one tick apart in another process.)
      await expect.poll(() => connectionRefused(gw.proxyPort), { timeout: 2000 }).toBe(true);
      await expect.poll(async () => (await download(`${gw.adminUrl}/readyz`)).status, { timeout: 2000 }).toBe(503);

      // (The process may exit a little before the client has read everything: its last bytes
      // can sit in the kernel's socket buffers. What matters is that none of them is lost.)
      const result = await inFlight;
      const doneAt = Date.now();
      expect(result.status).toBe(200);
      expect(result.complete).toBe(true);
      expect(result.bytes).toBe(ARTIFACT_BYTES);
      expect(result.sha256).toBe(bodySha256);

      const status = await exited;
      expect(status).toMatchObject({ code: 0, signal: null });
      // It exits once the download is done, not at the end of the 60 s grace period.
      expect(status.at - doneAt).toBeLessThan(10_000);
      expect(gw.stdout()).toContain('"msg":"stopped"');
    } finally {
      gw.signal('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('gives up on a download that does not finish within TOLLGATE_SHUTDOWN_GRACE_MS and still exits 0', async () => {
    const graceMs = 1500;
    const { gw, token, dataDir } = await gatewayWithToken({ TOLLGATE_SHUTDOWN_GRACE_MS: String(graceMs) });
    try {
      let signalled: (() => void) | undefined;
      const firstBytes = new Promise<void>((resolve) => {
        signalled = resolve;
      });
      // A client that would need ~64 s: far longer than the grace period.
      const stuck = download(`${gw.url}/big.bin`, {
        headers: { authorization: bearer(token) },
        bytesPerSecond: 0.5 * MiB,
        onProgress: (bytes) => {
          if (bytes > 0) signalled?.();
        },
      });
      await firstBytes;
      const signalledAt = Date.now();
      gw.signal('SIGTERM');
      const status = await gw.exited;
      const exitedAfterMs = Date.now() - signalledAt;
      expect(status).toMatchObject({ code: 0, signal: null });
      expect(exitedAfterMs).toBeGreaterThanOrEqual(graceMs - 100);
      // Bounded: the grace period plus start-up slack, not the 64 s the client wanted.
      expect(exitedAfterMs).toBeLessThan(graceMs + 15_000);
      const result = await stuck;
      expect(result.complete).toBe(false);
      expect(result.bytes).toBeLessThan(ARTIFACT_BYTES);
    } finally {
      gw.signal('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
