import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Config } from '../config/index.js';
import { createParkingServer, type ParkingServer } from './parking.js';

type Listener = (incoming: IncomingMessage, outgoing: ServerResponse) => void;

/**
 * The proxy port's server: node:http around the request listener, behind a listener that parks
 * idle kept-alive connections off it and terminates TLS (parking.ts), with the bounds on slow
 * clients: headers must arrive within headersTimeoutMs (checked every second, not Node's default
 * 30 s), and a connection with no traffic either way for clientIdleTimeoutMs (a reader that
 * stopped reading) is closed. Requests HTTP itself cannot parse get 400 (431 for oversized
 * headers) and the connection is closed.
 */
export function createProxyServer(
  config: Pick<Config, 'tls' | 'headersTimeoutMs' | 'clientIdleTimeoutMs'>,
  listener: Listener,
): ParkingServer {
  const serverOptions = {
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.headersTimeoutMs + 60_000,
    keepAliveTimeout: 30_000,
    connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
  };
  const server: Server = createHttpServer(serverOptions, listener);
  server.headersTimeout = config.headersTimeoutMs;
  server.requestTimeout = serverOptions.requestTimeout;
  server.keepAliveTimeout = serverOptions.keepAliveTimeout;
  server.timeout = config.clientIdleTimeoutMs;

  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (socket.writable && !socket.destroyed) {
      socket.end(
        err.code === 'HPE_HEADER_OVERFLOW'
          ? 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'
          : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
      );
    } else {
      socket.destroy();
    }
  });
  return createParkingServer(server, {
    tls: config.tls && { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) },
  });
}
