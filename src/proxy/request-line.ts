import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestState } from './state.js';

/**
 * The request log line's fields, as JSON members: an allow-list (never a header, a query string
 * or a credential). Strings from the client (path, project, forwarded address) go through
 * JSON.stringify; absent fields are left out. Written by logging/info-line.ts's writer.
 */
export function requestLineMembers(state: RequestState, incoming: IncomingMessage, outgoing: ServerResponse): string {
  const p = state.principal;
  let line =
    `,"requestId":"${state.requestId}","method":${JSON.stringify(incoming.method ?? '')}` +
    `,"path":${JSON.stringify(pathOnly(incoming.url))},"status":${outgoing.statusCode},"bytes":${state.bytes}` +
    `,"durationMs":${durationText(state.durationMs)},"clientIp":${JSON.stringify(state.clientIp)}`;
  if (p)
    line += `,"tokenId":${JSON.stringify(p.tokenId)},"tokenType":"${p.tokenType}","project":${JSON.stringify(p.project)}`;
  if (state.authFailure) line += `,"authFailure":"${state.authFailure}"`;
  if (state.refusedBy) line += `,"refusedBy":"${state.refusedBy}"`;
  if (state.upstreamError) line += `,"upstreamError":${JSON.stringify(state.upstreamError)}`;
  if (!outgoing.writableFinished) line += ',"aborted":true';
  return line;
}

/**
 * The duration to the microsecond, as a JSON number. Not `${ms}`: V8 turns a fractional number
 * into text through its number-string cache, which keeps each new text alive in the old
 * generation until a major GC; one per request made those texts the largest share of what the
 * gateway promoted under load, and each major GC it brought on threw away the optimised code of
 * the request path (bench/README.md, "Number texts and major GCs"). toFixed bypasses the cache.
 */
function durationText(ms: number): string {
  return Number.isFinite(ms) ? ms.toFixed(3) : '0';
}

function pathOnly(url: string | undefined): string {
  if (!url) return '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
