// @ts-check
// Baseline A: the floor any Node gateway pays. A bare node:http reverse proxy with the same token
// check as Tollgate's cache hit (parse "Bearer <token>", SHA-256 it, look the hash up in a Map),
// a keep-alive agent to the origin, bodies piped both ways, Authorization not forwarded.
// No logging, no metrics, no activity events, no header hygiene beyond that.
// Usage: BENCH_TOKENS=<token>[,<token>...] node bench/lib/bare-proxy.mjs <port> <originPort>
import http from 'node:http';
import { createHash } from 'node:crypto';

const [port, originPort] = process.argv.slice(2, 4).map(Number);
const tokens = new Map();
for (const token of (process.env.BENCH_TOKENS ?? '').split(',').filter(Boolean)) {
  tokens.set(createHash('sha256').update(token).digest('hex'), { tokenId: 'bench' });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256, scheduling: 'lifo' });
const CHALLENGE = { 'www-authenticate': 'Bearer realm="bench"', 'content-type': 'text/plain', 'content-length': '13' };

/** @param {string | undefined} header */
function authorised(header) {
  if (header === undefined || !header.startsWith('Bearer ')) return undefined;
  return tokens.get(createHash('sha256').update(header.slice(7)).digest('hex'));
}

const server = http.createServer(function bareProxy(req, res) {
  if (authorised(req.headers.authorization) === undefined) {
    res.writeHead(401, CHALLENGE);
    res.end('unauthorized\n');
    return;
  }
  const headers = { ...req.headers };
  delete headers.authorization;
  delete headers.connection;
  const upstream = http.request(
    {
      agent,
      hostname: '127.0.0.1',
      port: originPort,
      method: req.method,
      path: req.url,
      headers,
    },
    (upstreamRes) => {
      const out = { ...upstreamRes.headers };
      delete out.connection;
      delete out['keep-alive'];
      res.writeHead(upstreamRes.statusCode ?? 502, out);
      upstreamRes.pipe(res);
    },
  );
  upstream.on('error', () => {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-length': '0' });
      res.end();
    } else {
      res.destroy();
    }
  });
  req.pipe(upstream);
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.listen(port, '127.0.0.1');

const stop = () => {
  server.close();
  server.closeAllConnections();
  agent.destroy();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
