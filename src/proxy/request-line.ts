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
    `,"durationMs":${state.durationMs},"clientIp":${JSON.stringify(state.clientIp)}`;
  if (p)
    line += `,"tokenId":${JSON.stringify(p.tokenId)},"tokenType":"${p.tokenType}","project":${JSON.stringify(p.project)}`;
  if (state.authFailure) line += `,"authFailure":"${state.authFailure}"`;
  if (state.refusedBy) line += `,"refusedBy":"${state.refusedBy}"`;
  if (state.upstreamError) line += `,"upstreamError":${JSON.stringify(state.upstreamError)}`;
  if (!outgoing.writableFinished) line += ',"aborted":true';
  return line;
}

function pathOnly(url: string | undefined): string {
  if (!url) return '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
