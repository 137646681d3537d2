import http from 'node:http';
import { compactVerify, createRemoteJWKSet } from 'jose';
import type { ActivityEvent } from '../../src/activity/event.js';
import { ACTIVITY_JWS_TYP } from '../../src/activity/signing.js';
import { freePort } from './redis-server.js';

// A webhook receiver that verifies every batch: the security team's end of the signed webhook.

export interface Receiver {
  port: number;
  url: string;
  /** Verified batches, in arrival order. */
  batches: { batchId: string; idempotencyKey: string | undefined; kid: string | undefined; events: ActivityEvent[] }[];
  /** Every verified event, in arrival order (duplicates included, if any ever came). */
  events: ActivityEvent[];
  /** Raw request bodies (the JWS strings). */
  bodies: string[];
  /** Why a request was refused (bad signature, wrong typ, ...): must stay empty. */
  rejected: string[];
  listen(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A receiver on `port` (a free one by default), not listening until listen(). It fetches the
 * JWKS from the gateway's admin port (createRemoteJWKSet) and verifies each JWS before it
 * accepts the batch.
 */
export async function createReceiver(jwksUrl: () => string, port?: number): Promise<Receiver> {
  const chosen = port ?? (await freePort());
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  const receiver: Receiver = {
    port: chosen,
    url: `http://127.0.0.1:${chosen}/activity`,
    batches: [],
    events: [],
    bodies: [],
    rejected: [],
    listen: () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(chosen, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        receiver.bodies.push(body);
        try {
          if (req.method !== 'POST' || req.url !== '/activity') throw new Error(`unexpected ${req.method} ${req.url}`);
          if (req.headers['content-type'] !== 'application/jose')
            throw new Error(`content-type ${req.headers['content-type']}`);
          jwks ??= createRemoteJWKSet(new URL(jwksUrl()));
          const { payload, protectedHeader } = await compactVerify(body, jwks, { algorithms: ['ES256'] });
          if (protectedHeader.typ !== ACTIVITY_JWS_TYP) throw new Error(`typ ${protectedHeader.typ}`);
          const batch = JSON.parse(new TextDecoder().decode(payload)) as { batchId: string; events: ActivityEvent[] };
          const idempotencyKey = req.headers['idempotency-key'] as string | undefined;
          if (idempotencyKey !== batch.batchId) throw new Error('Idempotency-Key does not match the signed batchId');
          receiver.batches.push({
            batchId: batch.batchId,
            idempotencyKey,
            kid: protectedHeader.kid,
            events: batch.events,
          });
          receiver.events.push(...batch.events);
          res.writeHead(204).end();
        } catch (err) {
          receiver.rejected.push((err as Error).message);
          res.writeHead(400).end();
        }
      })();
    });
  });
  return receiver;
}
