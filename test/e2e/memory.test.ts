import { createHash } from 'node:crypto';
import { closeSync, openSync, rmSync, writeSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patternBytes, startOrigin, type Origin } from '../helpers/origin.js';
import { bearer } from '../helpers/authorization.js';
import { createTokenWithCli, download, startGatewayProcess, tempDir, type GatewayProcess } from '../helpers/process.js';

const MiB = 1024 * 1024;
const ARTIFACT_BYTES = 200 * MiB;
const BLOCK = 64 * 1024;
/** The gateway's own peak RSS must stay under this while it streams the artifact. */
const HWM_LIMIT_KIB = 150 * 1024;
/** The slow client: tens of MiB/s on average, pausing whenever it is ahead. */
const SLOW_READ_BYTES_PER_SECOND = 40 * MiB;

/**
 * The artifact as a sequence of 64 KiB blocks, each numbered, so a dropped, repeated or
 * reordered block changes the hash. Generated on the fly: never 200 MiB in one buffer.
 */
const base = patternBytes(BLOCK);
function block(i: number): Buffer {
  const b = Buffer.from(base);
  b.writeUInt32BE(i, 0);
  return b;
}
const BLOCKS = ARTIFACT_BYTES / BLOCK;

function expectedSha256(): string {
  const hash = createHash('sha256');
  for (let i = 0; i < BLOCKS; i++) hash.update(block(i));
  return hash.digest('hex');
}

let origin: Origin;
let dir: string;
let sha256: string;

beforeAll(async () => {
  sha256 = expectedSha256();
  // The stub origin streams the blocks with backpressure: it writes only as fast as the
  // gateway reads, so the gateway cannot blame the origin for anything it holds in memory.
  origin = await startOrigin((req, res) => {
    if (req.url !== '/artifacts/big.bin') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': ARTIFACT_BYTES });
    let i = 0;
    const pump = (): void => {
      while (i < BLOCKS) {
        if (!res.write(block(i++))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  // The same 200 MiB as a real file in a directory upstream.
  dir = tempDir('tollgate-e2e-artifacts-');
  const fd = openSync(path.join(dir, 'big.bin'), 'w');
  for (let i = 0; i < BLOCKS; i++) writeSync(fd, block(i));
  closeSync(fd);
});

afterAll(async () => {
  await origin?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('memory while streaming a 200 MiB artifact to a slow client', () => {
  const figures: string[] = [];
  afterAll(() => {
    // The figures for the record (the assertion is the bound, not these numbers).
    console.log(
      `gateway memory, 200 MiB to a client reading at <= ${SLOW_READ_BYTES_PER_SECOND / MiB} MiB/s:\n${figures.join('\n')}`,
    );
  });

  it.each([
    { upstream: 'the stub origin (http)', kind: 'http' as const },
    { upstream: 'a directory upstream (200 MiB file)', kind: 'dir' as const },
  ])("keeps the gateway's VmHWM under 150 MiB when the artifact comes from $upstream", async ({ kind }) => {
    const dataDir = tempDir();
    const configFile = path.join(dataDir, 'routes.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        routes: [
          { prefix: '/files/', upstream: kind === 'http' ? `${origin.url}/artifacts/` : dir, ecosystem: 'generic' },
        ],
      }),
    );
    // The gateway as `tollgate serve` and the image run it: the promise is about what ships.
    const { SERVE_ENV, SERVE_NODE_FLAGS } = await import('../../bin/serve-runtime.js');
    const env = { TOLLGATE_DATA_DIR: dataDir, TOLLGATE_CONFIG: configFile, ...SERVE_ENV };
    let gw: GatewayProcess | undefined;
    try {
      const { token } = await createTokenWithCli(env, 'memory');
      gw = await startGatewayProcess(env, { nodeFlags: SERVE_NODE_FLAGS });
      const atStart = gw.memory();
      let peakRssKiB = atStart.rssKiB;
      const g = gw;
      const sampler = setInterval(() => {
        peakRssKiB = Math.max(peakRssKiB, g.memory().rssKiB);
      }, 100);
      const started = Date.now();
      let result;
      try {
        result = await download(`${gw.url}/files/big.bin`, {
          headers: { authorization: bearer(token) },
          bytesPerSecond: SLOW_READ_BYTES_PER_SECOND,
          timeoutMs: 100_000,
        });
      } finally {
        clearInterval(sampler);
      }
      const seconds = (Date.now() - started) / 1000;
      const after = gw.memory();

      expect(result.status).toBe(200);
      expect(result.complete).toBe(true);
      expect(result.bytes).toBe(ARTIFACT_BYTES);
      expect(result.sha256).toBe(sha256);
      figures.push(
        `  ${kind}: VmHWM ${(after.hwmKiB / 1024).toFixed(1)} MiB (at start ${(atStart.hwmKiB / 1024).toFixed(1)} MiB), ` +
          `sampled peak VmRSS ${(peakRssKiB / 1024).toFixed(1)} MiB, download ${seconds.toFixed(1)} s`,
      );
      expect(after.hwmKiB).toBeLessThan(HWM_LIMIT_KIB);

      expect((await gw.stop()).code).toBe(0);
    } finally {
      gw?.signal('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
