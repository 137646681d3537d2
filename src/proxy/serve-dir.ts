import type { IncomingMessage, ServerResponse } from 'node:http';
import { realpath, realpathSync, type ReadStream } from 'node:fs';
import path from 'node:path';
import send from 'send';
import type { RouteConfig } from '../config/index.js';
import type { Forwarder } from './forward/http.js';
import { ARTIFACT_CSP } from './headers.js';
import { sendError } from './respond.js';
import type { RequestState } from './state.js';

/**
 * Serves a local directory as a static artifact tree (the embedded default, and a handy upstream
 * for tests and air-gapped mirrors). `send` (pillarjs, the engine behind express.static) does
 * Range, HEAD, ETag, Last-Modified and conditional requests, refuses paths that leave the root,
 * and streams from disk with backpressure. `index.html` is served for a directory with a trailing
 * slash, so a PEP 503 tree (`/simple/<name>/index.html`) works as is.
 *
 * Never anything outside the root, symbolic links included: each file's real path (every link
 * resolved) must lie inside the root's real path, else 404. The root itself may be a link
 * (resolved once, at start); links that stay inside the root keep working.
 */
export function createDirectoryServer(route: RouteConfig & { upstream: { kind: 'dir'; root: string } }): Forwarder {
  const { root } = route.upstream;
  const realRoot = realpathSync(root);
  const inside = (real: string) => real === realRoot || real.startsWith(realRoot + path.sep);

  /**
   * Calls `serve` when the file a path names (and, for a directory, its index.html) resolves
   * inside the root; answers 404 when a link leads out. A path that does not exist is left to
   * send, which answers 404 too.
   */
  function withinRoot(pathname: string, outgoing: ServerResponse, state: RequestState, serve: () => void): void {
    let relative: string;
    try {
      relative = decodeURIComponent(pathname);
    } catch {
      serve(); // send answers a malformed path with 400
      return;
    }
    const file = path.join(root, relative);
    realpath(file, (err, real) => {
      if (err) {
        serve();
      } else if (!inside(real)) {
        sendError(outgoing, 'TOLLGATE_ERR_REQUEST_NO_ROUTE', state.requestId);
      } else if (relative.endsWith('/')) {
        realpath(path.join(file, 'index.html'), (indexErr, index) => {
          if (!indexErr && !inside(index)) sendError(outgoing, 'TOLLGATE_ERR_REQUEST_NO_ROUTE', state.requestId);
          else serve();
        });
      } else {
        serve();
      }
    });
  }

  function serveDir(incoming: IncomingMessage, outgoing: ServerResponse, rest: string, state: RequestState): void {
    const q = rest.indexOf('?');
    const pathname = `/${q < 0 ? rest : rest.slice(0, q)}`;
    withinRoot(pathname, outgoing, state, () => {
      if (!outgoing.destroyed) sendFile(incoming, outgoing, pathname, state);
    });
  }

  function sendFile(incoming: IncomingMessage, outgoing: ServerResponse, pathname: string, state: RequestState): void {
    outgoing.setHeader('cache-control', 'private');
    outgoing.setHeader('x-request-id', state.requestId);
    // As clientResponseHeaders does for an http upstream, on every file (HEAD included).
    outgoing.setHeader('x-content-type-options', 'nosniff');
    outgoing.setHeader('content-security-policy', ARTIFACT_CSP);
    send(incoming, pathname, {
      root: realRoot,
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
        if (err.status === 404 || err.status === 403)
          sendError(outgoing, 'TOLLGATE_ERR_REQUEST_NO_ROUTE', state.requestId);
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
        const location = (oq < 0 ? `${original}/` : `${original.slice(0, oq)}/${original.slice(oq)}`).replace(
          /^\/{2,}/,
          '/',
        );
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
