import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

export interface Origin {
  url: string;
  port: number;
  seen: SeenRequest[];
  close(): Promise<void>;
}

export type OriginHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * A stub artifact server on a real loopback socket. It records every request it sees and, unless
 * a handler says otherwise, answers with a small body naming the path.
 *   /bytes/<n>        n bytes of a repeating pattern, with Content-Length
 *   /status/<code>    that status
 *   anything else     200 text "origin:<path>"
 */
export async function startOrigin(handler?: OriginHandler): Promise<Origin> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (handler) return handler(req, res);
    defaultHandler(req, res);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function patternBytes(n: number, offset = 0): Buffer {
  const buf = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) buf[i] = (i + offset) % 251;
  return buf;
}

export function defaultHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  const bytes = /^\/bytes\/(\d+)/.exec(url);
  if (bytes) {
    const body = patternBytes(Number(bytes[1]));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  const status = /^\/status\/(\d{3})/.exec(url);
  if (status) {
    res.writeHead(Number(status[1]), { 'content-type': 'text/plain' });
    res.end(`status ${status[1]}\n`);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=300' });
  res.end(`origin:${url}`);
}

/** The `dist.tarball` URL of `version` in an npm packument (its JSON text), as an npm client reads it. */
export function npmTarballUrl(packument: string, version: string): string | undefined {
  const doc = JSON.parse(packument) as { versions: Record<string, { dist: { tarball: string } } | undefined> };
  return doc.versions[version]?.dist.tarball;
}
