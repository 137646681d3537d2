import { readFileSync } from 'node:fs';
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

/**
 * A loopback port nothing listens on, and nothing will while the test runs. An ephemeral port
 * the OS handed out and took back can be handed to the next test file's server a moment later
 * (files run in parallel): that server then answered the "closed" port. So the port is taken
 * below the ephemeral range (every test server listens on port 0, within that range), and
 * checked free by binding it once.
 */
export async function closedPort(): Promise<number> {
  const low = ephemeralLow();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free loopback port between 10000 and ${low}`);
}

/** The lowest port the OS hands out for port 0 (Linux; 32768 elsewhere, its default). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 11_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function canListen(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
