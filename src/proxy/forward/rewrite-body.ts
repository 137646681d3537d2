import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import zlib from 'node:zlib';
import { createRewriteStream, replacementsFor } from '../rewrite.js';
import type { RequestState } from '../state.js';

export interface BodyRewrite {
  incoming: IncomingMessage;
  outgoing: ServerResponse;
  state: RequestState;
  /** The upstream base URLs to replace, and the gateway's base for the route that replaces them. */
  rewriteBases: readonly string[];
  publicBase: string;
  /** Stops the upstream transfer when a stage fails. */
  abortUpstream: () => void;
}

/**
 * A metadata body with upstream URLs replaced: decompressed if needed, rewritten as it streams,
 * re-compressed with gzip when the client accepts it. Sent chunked (the length changes) with a
 * weak ETag (the bytes differ from the upstream's, the meaning does not). Adjusts the response
 * `headers` and returns the stage the upstream's chunks are written to (the client's response
 * itself for a content coding it does not know); the last stage is relayed to the client.
 */
export function createBodyRewrite(
  upstreamHeaders: Record<string, string | string[] | undefined>,
  headers: OutgoingHttpHeaders,
  r: BodyRewrite,
): Writable {
  const { incoming, outgoing, state } = r;
  const stages: NodeJS.ReadWriteStream[] = [];
  const encoding = String(upstreamHeaders['content-encoding'] ?? '').toLowerCase();
  if (encoding === 'gzip' || encoding === 'x-gzip') stages.push(zlib.createGunzip());
  else if (encoding === 'deflate') stages.push(zlib.createInflate());
  else if (encoding === 'br') stages.push(zlib.createBrotliDecompress());
  else if (encoding !== '' && encoding !== 'identity') return outgoing; // unknown coding: pass as is
  stages.push(createRewriteStream(replacementsFor(r.rewriteBases, r.publicBase)));
  delete headers['content-length'];
  delete headers['content-encoding'];
  const acceptsGzip = /\bgzip\b/i.test(String(incoming.headers['accept-encoding'] ?? ''));
  if (acceptsGzip) {
    stages.push(zlib.createGzip({ level: 6 }));
    headers['content-encoding'] = 'gzip';
  }
  const etag = headers.etag;
  if (typeof etag === 'string' && !etag.startsWith('W/')) headers.etag = `W/${etag}`;
  headers.vary = headers.vary ? `${String(headers.vary)}, Accept-Encoding` : 'Accept-Encoding';

  const fail = (): void => {
    for (const stage of stages) (stage as unknown as Readable).destroy();
    state.upstreamError ??= 'rewrite';
    r.abortUpstream();
    outgoing.destroy();
  };
  let stream = stages[0]! as unknown as Readable;
  stream.on('error', fail);
  for (const stage of stages.slice(1)) {
    stream = stream.pipe(stage) as unknown as Readable;
    stream.on('error', fail);
  }
  stream.on('data', (chunk: Buffer) => {
    state.bytes += chunk.length;
    if (!outgoing.write(chunk)) {
      stream.pause();
      outgoing.once('drain', () => stream.resume());
    }
  });
  stream.once('end', () => outgoing.end());
  return stages[0]! as unknown as Writable;
}
