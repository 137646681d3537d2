/**
 * A real redis-server for tests: loopback only, a free port, no persistence, its own temp dir.
 * Tests that kill Redis on purpose start their own instance.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

const READY_TIMEOUT_MS = 10_000;

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Calls per command since start, from INFO commandstats: `{ hgetall: 3, 'client|setinfo': 2 }`. */
  commandStats(): Promise<Record<string, number>>;
  /** SIGTERM, wait for exit, remove the temp dir. */
  stop(): Promise<void>;
  /** SIGKILL, wait for exit. The data is lost (there is none on disk). */
  kill(): Promise<void>;
  /** Starts again on the same port (stopping first if still running), empty. */
  restart(): Promise<void>;
}

function assertRedisServerInstalled(): void {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  if (probe.error) {
    throw new Error('redis-server not found: install it with `apt-get install redis-server`', { cause: probe.error });
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Resolves once the server answers PING; rejects if the process exits first or it takes too long. */
async function waitUntilReady(child: ChildProcess, port: number, output: () => string): Promise<void> {
  const probe = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    enableReadyCheck: false,
    disableClientInfo: true,
    maxRetriesPerRequest: null,
    retryStrategy: () => 20,
  });
  probe.on('error', () => {});
  let onExit: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe
        .connect()
        .catch(() => {})
        .then(() => probe.ping()),
      new Promise<never>((_, reject) => {
        onExit = () => reject(new Error(`redis-server exited during start-up:\n${output()}`));
        child.once('exit', onExit);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`redis-server not ready after ${READY_TIMEOUT_MS} ms:\n${output()}`)),
          READY_TIMEOUT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onExit) child.off('exit', onExit);
    probe.disconnect();
  }
}

/** The flags of a throw-away redis-server on 127.0.0.1: no persistence, warnings only, in the foreground. */
export const redisServerArgs = (port: number, dir: string): string[] => [
  '--port',
  String(port),
  '--bind',
  '127.0.0.1',
  '--save',
  '',
  '--appendonly',
  'no',
  '--dir',
  dir,
  '--loglevel',
  'warning',
  '--daemonize',
  'no',
];

export async function startRedisServer(): Promise<RedisServer> {
  assertRedisServerInstalled();
  const dir = mkdtempSync(path.join(tmpdir(), 'tollgate-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    mkdirSync(dir, { recursive: true });
    let output = '';
    const proc = spawn('redis-server', redisServerArgs(port, dir), { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    proc.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child = proc;
    await waitUntilReady(proc, port, () => output);
  };

  // The free port can be taken between probing and binding: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      child?.kill('SIGKILL');
      if (child) await exited(child);
      if (attempt === 3) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  const terminate = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    await exited(proc);
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async commandStats() {
      const admin = new Redis({
        host: '127.0.0.1',
        port,
        enableReadyCheck: false,
        disableClientInfo: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      admin.on('error', () => {});
      try {
        const info = await admin.info('commandstats');
        const stats: Record<string, number> = {};
        for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
          stats[match[1]!] = Number(match[2]);
        }
        return stats;
      } finally {
        admin.disconnect();
      }
    },
    async stop() {
      await terminate('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
    async kill() {
      await terminate('SIGKILL');
    },
    async restart() {
      await terminate('SIGTERM');
      await launch();
    },
  };
}

/**
 * A TCP relay in front of a port, to cut the network between a client and Redis without
 * stopping Redis: `cut()` drops every connection and refuses new ones until `heal()`.
 */
export interface TcpRelay {
  readonly port: number;
  readonly url: string;
  cut(): Promise<void>;
  heal(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpRelay(targetPort: number): Promise<TcpRelay> {
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  };
  const server = net.createServer((incoming) => {
    const outgoing = net.connect(targetPort, '127.0.0.1');
    track(incoming);
    track(outgoing);
    incoming.pipe(outgoing).pipe(incoming);
    incoming.on('close', () => outgoing.destroy());
    outgoing.on('close', () => incoming.destroy());
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });

  await listen(0);
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    cut: stopListening,
    heal: () => listen(port),
    close: stopListening,
  };
}
