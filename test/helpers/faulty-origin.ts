import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface FaultyOrigin {
  url: string;
  /** Request heads received, as text. */
  requests: string[];
  /** Connections open right now (a gateway that leaks upstream sockets shows here). */
  open(): number;
  close(): Promise<void>;
}

/** The request target of a request head (`GET /a/b HTTP/1.1` -> `/a/b`). */
export function targetOf(head: string): string {
  return head.split(' ')[1] ?? '/';
}

/**
 * An upstream that misbehaves on purpose: a bare TCP server that reads request heads and hands
 * the socket to `respond` for each, which writes whatever bytes (or nothing) the test scripts.
 */
export async function startFaultyOrigin(respond: (socket: net.Socket, head: string) => void): Promise<FaultyOrigin> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    // Requests without bodies only; a kept-alive connection may carry several, one after another.
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        requests.push(head);
        respond(socket, head);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    open: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port nothing listens on (bound by the OS, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
