import net, { type AddressInfo } from 'node:net';

/**
 * A round-robin TCP load balancer on loopback, as an L4 balancer in front of a fleet: each new
 * connection goes to the next backend and stays there (keep-alive requests follow their
 * connection). Counts the connections each backend was given.
 */
export interface Balancer {
  url: string;
  /** Connections handed to each backend, in the order of `ports`. */
  connections: number[];
  close(): Promise<void>;
}

export async function startBalancer(ports: number[]): Promise<Balancer> {
  const connections = ports.map(() => 0);
  const open = new Set<net.Socket>();
  let next = 0;
  const server = net.createServer((client) => {
    const i = next++ % ports.length;
    connections[i]!++;
    const backend = net.connect(ports[i]!, '127.0.0.1');
    for (const [from, to] of [
      [client, backend],
      [backend, client],
    ] as const) {
      open.add(from);
      from.on('error', () => to.destroy());
      from.on('close', () => {
        open.delete(from);
        to.destroy();
      });
      from.pipe(to);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
