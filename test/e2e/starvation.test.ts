import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers/authorization.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { createTokenWithCli, startGatewayProcess, tempDir, type GatewayProcess } from '../helpers/process.js';

const SLOW = 1_500;
const BODY = Buffer.alloc(8 * 1024 * 1024, 'x');

/**
 * The attack as it was found: one token, from one address, opens 1,500 downloads and reads none
 * of them, against a gateway with two workers and its default settings. Another token from
 * another address must still be answered normally, within seconds.
 */
describe('1,500 slow downloads with one token, two workers', () => {
  const dataDir = tempDir();
  let origin: Origin;
  let gw: GatewayProcess;
  const sockets: net.Socket[] = [];

  beforeAll(async () => {
    origin = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY.length });
      res.end(BODY);
    });
    gw = await startGatewayProcess(
      {
        TOLLGATE_DATA_DIR: dataDir,
        TOLLGATE_UPSTREAM: origin.url,
        TOLLGATE_WORKERS: '2',
        TOLLGATE_TRUSTED_PROXIES: '127.0.0.1',
      },
      { startTimeoutMs: 40_000 },
    );
  }, 60_000);
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await gw?.stop();
    await origin?.close();
  });

  /** Sends one GET and never reads past the response head. Resolves with the status. */
  function openSlow(token: string): Promise<number> {
    return new Promise((resolve) => {
      const socket = net.connect(gw.proxyPort, '127.0.0.1', () => {
        socket.write(
          `GET /artifact.bin HTTP/1.1\r\nHost: gw\r\nAuthorization: ${bearer(token)}\r\nX-Forwarded-For: 198.51.100.66\r\n\r\n`,
        );
      });
      sockets.push(socket);
      socket.once('data', (chunk: Buffer) => {
        socket.pause();
        resolve(Number(chunk.toString('latin1', 9, 12)));
      });
      socket.on('error', () => resolve(0));
    });
  }

  it(
    'prevents starvation: another token from another address gets 200 within seconds',
    { timeout: 120_000 },
    async () => {
      const env = { TOLLGATE_DATA_DIR: dataDir };
      const { token: hog } = await createTokenWithCli(env, 'hog');
      const { token: other } = await createTokenWithCli(env, 'other');
      const statuses: number[] = [];
      for (let i = 0; i < SLOW; i += 100) {
        statuses.push(...(await Promise.all(Array.from({ length: Math.min(100, SLOW - i) }, () => openSlow(hog)))));
      }
      // Each worker lets the hog hold its share (128 slow downloads) and refuses the rest with 429.
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
      expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
      for (let i = 0; i < 10; i++) {
        const started = Date.now();
        const res = await fetch(`${gw.url}/artifact.bin`, {
          headers: { authorization: bearer(other), 'x-forwarded-for': '203.0.113.10', connection: 'close' },
        });
        expect(res.status).toBe(200);
        expect((await res.arrayBuffer()).byteLength).toBe(BODY.length);
        expect(Date.now() - started).toBeLessThan(5_000);
      }
    },
  );
});
