// @ts-check
// Stub origin for the benchmark: three artifacts held in memory, keep-alive, nothing else.
//   GET /files/1k.bin  (1 KiB)   /files/100k.bin  (100 KiB)   /files/10m.bin  (10 MiB)
//   GET /__stats       {"requests": n, "withAuthorization": n, "connections": n}
//                      (a proxy that forwards the client's Authorization header shows up in
//                      withAuthorization; one that does not reuse upstream connections, in connections)
// Usage: node bench/lib/origin.mjs <port>
import http from 'node:http';
import { randomFillSync } from 'node:crypto';

const port = Number(process.argv[2]);
export const ARTIFACTS = { '1k': 1024, '100k': 100 * 1024, '10m': 10 * 1024 * 1024 };

const files = new Map();
for (const [name, size] of Object.entries(ARTIFACTS)) {
  const body = randomFillSync(Buffer.allocUnsafe(size));
  files.set(`/files/${name}.bin`, {
    body,
    headers: {
      'content-type': 'application/octet-stream',
      'content-length': String(size),
      'cache-control': 'public, max-age=300',
      etag: `"${name}-${size}"`,
    },
  });
}

let requests = 0;
let withAuthorization = 0;
let connections = 0;

const server = http.createServer({ keepAliveTimeout: 60_000 }, function serveArtifact(req, res) {
  if (req.url === '/__stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ requests, withAuthorization, connections }));
    return;
  }
  requests++;
  if (req.headers.authorization !== undefined) withAuthorization++;
  const file = files.get(req.url);
  if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '10' });
    res.end('not found\n');
    return;
  }
  res.writeHead(200, file.headers);
  if (req.method === 'HEAD') res.end();
  else res.end(file.body);
});
server.on('connection', () => {
  connections++;
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.listen(port, '127.0.0.1');

const stop = () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
