/**
 * The webhook sink: POSTs each batch, signed, to the security team's receiver.
 *
 *   POST <url>
 *   Content-Type: application/jose
 *   Idempotency-Key: <batchId>                      (stable across retries of the batch)
 *
 *   <JWS compact serialization>                      protected header {alg: ES256, kid, typ: tollgate-activity+jws}
 *                                                    payload JSON {"batchId": "...", "events": [ActivityEvent, ...]}
 *
 * The receiver verifies the JWS against the JWKS the admin port publishes (by `kid`), and
 * deduplicates on Idempotency-Key (or on each event's `id`): a batch whose 2xx reply was lost is
 * sent again. Any 2xx accepts the batch; any other status (3xx included: redirects are not
 * followed), a timeout or a network error rejects it, and the runner retries.
 *
 * https is the production choice (config allows http on loopback only); the sink itself speaks
 * both.
 */
import type { EncodedActivityEvent, Sink } from '../event.js';
import type { Signer } from '../signing.js';
import { encodeActivityEvents } from '../event-codec.js';

export interface WebhookSinkOptions {
  /** http(s) URL of the receiver. */
  url: string;
  /** Signs each batch (loadSigningKeys().signer). */
  signer: Signer;
  /** A batch without a complete response after this long fails. */
  timeoutMs: number;
  /** Extra request headers (a receiver's own credential, say). Content-Type and Idempotency-Key are the sink's. */
  headers?: Record<string, string>;
}

/** The status when the receiver answered something other than 2xx. */
export class WebhookStatusError extends Error {
  readonly status: number;
  constructor(status: number) {
    super(`webhook receiver answered ${status}`);
    this.name = 'WebhookStatusError';
    this.status = status;
  }
}

const END = Buffer.from(']}');

/** `{"batchId": ..., "events": [<line>, ...]}` as UTF-8, copied from the events' JSON lines. */
function payloadBytes(events: readonly EncodedActivityEvent[], batchId: string): Buffer {
  const head = Buffer.from(`{"batchId":${JSON.stringify(batchId)},"events":[`);
  let size = head.length + END.length;
  for (const e of events) size += e.end - e.start; // each line's newline becomes its comma
  const out = Buffer.allocUnsafe(size);
  let at = head.copy(out, 0);
  events.forEach((e, i) => {
    if (i > 0) out[at++] = 0x2c; // ,
    at += e.bytes.copy(out, at, e.start, e.end - 1);
  });
  at += END.copy(out, at);
  return out.subarray(0, at);
}

export function createWebhookSink(options: WebhookSinkOptions): Sink {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new TypeError('createWebhookSink: url must be an http(s) URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError(`createWebhookSink: url must be an http(s) URL, got ${url.protocol}`);
  }
  if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
    throw new TypeError(`createWebhookSink: timeoutMs must be a positive number, got ${options.timeoutMs}`);
  }
  const { signer, timeoutMs } = options;
  const target = url.href;
  const baseHeaders: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    const lower = name.toLowerCase();
    if (lower !== 'content-type' && lower !== 'idempotency-key') baseHeaders[name] = value;
  }
  /** Aborts every request in flight on close. */
  const closing = new AbortController();

  async function deliverEncoded(events: readonly EncodedActivityEvent[], batchId: string): Promise<void> {
    if (closing.signal.aborted) throw new Error('webhook sink is closed');
    if (events.length === 0) return;
    const jws = await signer.sign(payloadBytes(events, batchId));
    const response = await fetch(target, {
      method: 'POST',
      headers: { ...baseHeaders, 'content-type': 'application/jose', 'idempotency-key': batchId },
      body: jws,
      redirect: 'manual',
      signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), closing.signal]),
    });
    // The reply body carries nothing the sink needs: discard it unread (its size is the receiver's choice).
    await response.body?.cancel().catch(() => {});
    if (response.status < 200 || response.status > 299) throw new WebhookStatusError(response.status);
  }

  return {
    name: 'webhook',
    deliver: async function deliver(events, batchId) {
      await deliverEncoded(encodeActivityEvents(events), batchId);
    },
    deliverEncoded,
    close: async function close() {
      closing.abort(new Error('webhook sink closed'));
    },
  };
}
