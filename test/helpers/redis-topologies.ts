/**
 * Redis topologies for fleet tests, on loopback, started and stopped by the tests:
 *
 *   startSentinelSetup()  a master, replicas (`--replicaof`) and sentinels (`redis-server <conf> --sentinel`)
 *   startRedisCluster()   N masters with `--cluster-enabled yes`, joined by `redis-cli --cluster create`
 *
 * Every process is tracked: `stopAllTopologies()` (call it in afterAll) kills whatever is left and
 * removes the temp dirs, and a process exit hook SIGKILLs stragglers even when a hook never ran.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { expect, vi } from 'vitest';
import { freePort, redisServerArgs } from './redis-server.js';

const READY_TIMEOUT_MS = 10_000;

export interface RedisNode {
  readonly port: number;
  readonly role: 'master' | 'replica' | 'sentinel' | 'cluster';
  /** A short-lived raw client (no retries); the caller disconnects it. */
  client(): Redis;
  /** Runs one command on a fresh connection and disconnects. */
  command(name: string, ...args: (string | number)[]): Promise<unknown>;
  /** SIGKILL, wait for exit. */
  kill(): Promise<void>;
  /** SIGTERM, wait for exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
  readonly running: boolean;
  output(): string;
}

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function rawClient(port: number): Redis {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: false,
    enableReadyCheck: false,
    disableClientInfo: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2000,
    commandTimeout: 5000,
  });
  client.on('error', () => {});
  return client;
}

async function rawCommand(port: number, name: string, args: (string | number)[]): Promise<unknown> {
  const client = rawClient(port);
  try {
    return await client.call(name, ...args);
  } finally {
    client.disconnect();
  }
}

function assertInstalled(): void {
  for (const bin of ['redis-server', 'redis-cli']) {
    const probe = spawnSync(bin, ['--version'], { stdio: 'ignore' });
    if (probe.error)
      throw new Error(`${bin} not found: install it with \`apt-get install redis-server\``, { cause: probe.error });
  }
}

/** Spawns redis-server with these args, waits until it answers PING. */
async function spawnRedis(role: RedisNode['role'], port: number, args: string[]): Promise<RedisNode> {
  let out = '';
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const node: RedisNode = {
    port,
    role,
    client: () => rawClient(port),
    command: (name, ...a) => rawCommand(port, name, a),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited(child);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited(child);
      clearTimeout(timer);
    },
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
    output: () => out,
  };
  try {
    await vi.waitFor(
      async () => {
        if (!node.running) throw new Error(`redis-server exited during start-up:\n${out}`);
        expect(await node.command('PING'), `${role} on port ${port} answers PING`).toBe('PONG');
      },
      { timeout: READY_TIMEOUT_MS },
    );
  } catch (err) {
    await node.kill();
    throw new Error(`${String(err)}\n${out}`, { cause: err });
  }
  return node;
}

/** Starts a node on a free port, retrying with another port if it was taken meanwhile. */
async function startNode(
  role: RedisNode['role'],
  argsFor: (port: number) => Promise<string[]> | string[],
): Promise<RedisNode> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      return await spawnRedis(role, port, await argsFor(port));
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

/** A topology's temp dir and its nodes (pushed as they start); `stop` kills them all and removes the dir. */
function topology(prefix: string): { dir: string; nodes: RedisNode[]; stop: () => Promise<void> } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.add(dir);
  const nodes: RedisNode[] = [];
  return {
    dir,
    nodes,
    stop: async () => {
      await Promise.all(nodes.map((n) => n.kill()));
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
}

function parseInfo(info: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of info.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) out[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return out;
}

/** INFO <section> of a node, as key → value. */
export async function nodeInfo(node: RedisNode, section: string): Promise<Record<string, string>> {
  return parseInfo(String(await node.command('INFO', section)));
}

// ─── Sentinel ────────────────────────────────────────────────────────────────────────────────

export interface SentinelSetup {
  readonly masterName: string;
  /** The master started first (it may have been killed and replaced since). */
  readonly master: RedisNode;
  readonly replicas: RedisNode[];
  readonly sentinels: RedisNode[];
  /** redis-sentinel://127.0.0.1:s1,127.0.0.1:s2,.../<masterName> */
  readonly url: string;
  /** The master's port as the first sentinel that answers sees it. */
  masterPort(): Promise<number>;
  /** Every data node (master and replicas), whichever is the master now. */
  dataNodes(): RedisNode[];
  /** Waits until every running sentinel names a master other than `oldPort`, and that node says it is a master. */
  waitForFailover(oldPort: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

export interface SentinelOptions {
  masterName?: string;
  replicas?: number;
  sentinels?: number;
  quorum?: number;
  downAfterMs?: number;
  failoverTimeoutMs?: number;
}

export async function startSentinelSetup(options: SentinelOptions = {}): Promise<SentinelSetup> {
  assertInstalled();
  const masterName = options.masterName ?? 'mymaster';
  const replicaCount = options.replicas ?? 1;
  const sentinelCount = options.sentinels ?? 3;
  const quorum = options.quorum ?? 2;
  const { dir, nodes, stop } = topology('tollgate-sentinel-');
  try {
    const master = await startNode('master', (port) => {
      const d = path.join(dir, `m-${port}`);
      mkdirSync(d, { recursive: true });
      return redisServerArgs(port, d);
    });
    nodes.push(master);
    const replicas: RedisNode[] = [];
    for (let i = 0; i < replicaCount; i++) {
      const replica = await startNode('replica', (port) => {
        const d = path.join(dir, `r-${port}`);
        mkdirSync(d, { recursive: true });
        return [...redisServerArgs(port, d), '--replicaof', '127.0.0.1', String(master.port)];
      });
      nodes.push(replica);
      replicas.push(replica);
    }
    await vi.waitFor(
      async () => {
        for (const r of replicas)
          expect(
            (await nodeInfo(r, 'replication')).master_link_status,
            `replica ${r.port} in sync with the master`,
          ).toBe('up');
      },
      { timeout: READY_TIMEOUT_MS },
    );

    const sentinels: RedisNode[] = [];
    for (let i = 0; i < sentinelCount; i++) {
      const sentinel = await startNode('sentinel', (port) => {
        const conf = path.join(dir, `sentinel-${port}.conf`);
        // Sentinel rewrites its config file: it must be writable, one per sentinel.
        writeFileSync(
          conf,
          [
            `port ${port}`,
            'bind 127.0.0.1',
            'daemonize no',
            `dir ${dir}`,
            'loglevel warning',
            `sentinel monitor ${masterName} 127.0.0.1 ${master.port} ${quorum}`,
            `sentinel down-after-milliseconds ${masterName} ${options.downAfterMs ?? 1000}`,
            `sentinel failover-timeout ${masterName} ${options.failoverTimeoutMs ?? 3000}`,
            `sentinel parallel-syncs ${masterName} 1`,
            '',
          ].join('\n'),
        );
        return [conf, '--sentinel'];
      });
      nodes.push(sentinel);
      sentinels.push(sentinel);
    }
    // A failover needs the sentinels to know each other (hello messages every 2 s) and the replicas.
    await vi.waitFor(
      async () => {
        for (const s of sentinels) {
          const flat = (await s.command('SENTINEL', 'MASTER', masterName)) as string[];
          const fields: Record<string, string> = {};
          for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
          expect(
            { sentinels: Number(fields['num-other-sentinels']), replicas: Number(fields['num-slaves']) },
            `sentinel ${s.port} sees the other sentinels and the replicas`,
          ).toEqual({ sentinels: sentinelCount - 1, replicas: replicaCount });
        }
      },
      { timeout: 20_000 },
    );

    const askSentinels = async (): Promise<number[]> => {
      const ports: number[] = [];
      for (const s of sentinels) {
        if (!s.running) continue;
        try {
          const addr = (await s.command('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)) as [string, string] | null;
          if (addr) ports.push(Number(addr[1]));
        } catch {
          // a sentinel that does not answer has no say
        }
      }
      return ports;
    };

    return {
      masterName,
      master,
      replicas,
      sentinels,
      url: `redis-sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${masterName}`,
      async masterPort() {
        const [port] = await askSentinels();
        if (port === undefined) throw new Error('no sentinel names a master');
        return port;
      },
      dataNodes: () => [master, ...replicas],
      waitForFailover(oldPort, timeoutMs = 30_000) {
        return vi.waitFor(
          async () => {
            const ports = await askSentinels();
            const agreed = ports.length > 0 && ports.every((p) => p !== oldPort && p === ports[0]);
            expect(
              agreed,
              `sentinels name one new master instead of ${oldPort} (they name ${ports.join(', ') || 'none'})`,
            ).toBe(true);
            const node = [master, ...replicas].find((n) => n.port === ports[0]);
            expect(node?.running, `the new master ${ports[0]} runs`).toBe(true);
            expect((await nodeInfo(node!, 'replication')).role, `${ports[0]} says it is a master`).toBe('master');
            return ports[0]!;
          },
          { timeout: timeoutMs },
        );
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

// ─── Cluster ─────────────────────────────────────────────────────────────────────────────────

export interface RedisCluster {
  readonly nodes: RedisNode[];
  /** redis-cluster://127.0.0.1:p1,127.0.0.1:p2 (two seed nodes, as an operator would list) */
  readonly url: string;
  /** The node that owns the slot of this key. */
  nodeForKey(key: string): Promise<RedisNode>;
  stop(): Promise<void>;
}

export async function startRedisCluster(options: { masters?: number } = {}): Promise<RedisCluster> {
  assertInstalled();
  const count = options.masters ?? 3;
  const { dir, nodes, stop } = topology('tollgate-cluster-');
  try {
    for (let i = 0; i < count; i++) {
      nodes.push(
        await startNode('cluster', async (port) => {
          const d = path.join(dir, `n-${port}`);
          mkdirSync(d, { recursive: true });
          // The bus port defaults to port + 10000, which can be past 65535 for an ephemeral port.
          const busPort = await freePort();
          return [
            ...redisServerArgs(port, d),
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            path.join(d, 'nodes.conf'),
            '--cluster-port',
            String(busPort),
            '--cluster-node-timeout',
            '2000',
          ];
        }),
      );
    }
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (create.status !== 0)
      throw new Error(
        `redis-cli --cluster create failed (${create.status ?? create.signal}):\n${create.stdout}\n${create.stderr}`,
      );
    await vi.waitFor(
      async () => {
        for (const n of nodes) {
          const info = parseInfo(String(await n.command('CLUSTER', 'INFO')));
          expect(
            { state: info.cluster_state, known: Number(info.cluster_known_nodes) },
            `CLUSTER INFO of ${n.port}`,
          ).toEqual({ state: 'ok', known: count });
        }
      },
      { timeout: 20_000 },
    );
    return {
      nodes,
      url: `redis-cluster://${nodes
        .slice(0, 2)
        .map((n) => `127.0.0.1:${n.port}`)
        .join(',')}`,
      async nodeForKey(key) {
        const slot = Number(await nodes[0]!.command('CLUSTER', 'KEYSLOT', key));
        const ranges = (await nodes[0]!.command('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
        const owner = ranges.find(([lo, hi]) => slot >= lo && slot <= hi);
        const node = nodes.find((n) => n.port === Number(owner?.[2][1]));
        if (!node) throw new Error(`no node owns slot ${slot}`);
        return node;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Kills every node any topology of this file started and removes the temp dirs. */
export async function stopAllTopologies(): Promise<void> {
  await Promise.all(
    [...live].map(async (child) => {
      child.kill('SIGKILL');
      await exited(child);
    }),
  );
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}
