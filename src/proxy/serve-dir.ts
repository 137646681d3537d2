import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ReadStream } from 'node:fs';
import send from 'send';
import type { RouteConfig } from '../config/index.js';
import type { Forwarder } from './forward/http.js';
import { sendError } from './respond.js';
import type { RequestState } from './state.js';

/**
 * Serves a local directory as a static artifact tree (the embedded default, and a handy upstream
 * for tests and air-gapped mirrors). `send` (pillarjs, the engine behind express.static) does
 * Range, HEAD, ETag, Last-Modified and conditional requests, refuses paths that leave the root,
 * and streams from disk with backpressure. `index.html` is served for a directory with a trailing
 * slash, so a PEP 503 tree (`/simple/<name>/index.html`) works as is.
 */
/** Served as text/html by send (a directory is served as its index.html). */
const HTML_FILE = /\.html?$/i;

export function createDirectoryServer(route: RouteConfig & { upstream: { kind: 'dir'; root: string } }): Forwarder {
  const { root } = route.upstream;
  function serveDir(incoming: IncomingMessage, outgoing: ServerResponse, rest: string, state: RequestState): void {
    const q = rest.indexOf('?');
    const pathname = `/${q < 0 ? rest : rest.slice(0, q)}`;
    outgoing.setHeader('cache-control', 'private');
    outgoing.setHeader('x-request-id', state.requestId);
    // As clientResponseHeaders does for an http upstream; decided on the path, so HEAD gets them too.
    outgoing.setHeader('x-content-type-options', 'nosniff');
    if (pathname.endsWith('/') || HTML_FILE.test(pathname)) outgoing.setHeader('content-security-policy', 'sandbox');
    send(incoming, pathname, {
      root,
      index: ['index.html'],
      dotfiles: 'deny',
      cacheControl: false,
      etag: true,
      lastModified: true,
      acceptRanges: true,
    })
      .on('error', (err: { status?: number; headers?: Record<string, string> }) => {
        outgoing.removeHeader('cache-control');
        for (const [name, value] of Object.entries(err.headers ?? {})) outgoing.setHeader(name, value);
        if (err.status === 404 || err.status === 403) sendError(outgoing, 'TOLLGATE_ERR_REQUEST_NO_ROUTE', state.requestId);
        else if (err.status === 400 || err.status === 412 || err.status === 416) {
          outgoing.statusCode = err.status;
          outgoing.end();
        } else sendError(outgoing, 'TOLLGATE_ERR_UPSTREAM_UNREACHABLE', state.requestId);
      })
      .on('directory', () => {
        // A directory without its trailing slash: redirect to the same gateway path with one.
        const original = incoming.url ?? '/';
        const oq = original.indexOf('?');
        // Leading slashes collapsed: "//evil.example/" would be a protocol-relative Location,
        // a redirect to another host (the open redirect serve-static fixed the same way).
        const location = (oq < 0 ? `${original}/` : `${original.slice(0, oq)}/${original.slice(oq)}`).replace(/^\/{2,}/, '/');
        outgoing.writeHead(301, { location, 'content-length': 0, 'cache-control': 'private' });
        outgoing.end();
      })
      .on('stream', (stream: ReadStream) => {
        stream.on('data', (chunk: Buffer | string) => {
          state.bytes += chunk.length;
        });
      })
      .pipe(outgoing);
  }
  return Object.assign(serveDir, { close() {} });
}
