#!/usr/bin/env node
// @ts-check
// The `keepalive` scenario of `npm run bench` (bench/README.md, "Ten thousand kept-alive
// connections"): how much resident memory one idle kept-alive client connection costs.
//
// For each round and each server (Tollgate as shipped, the bare Node proxy with npm start's V8
// flags and malloc settings too), a FRESH process:
// one request to load the request path, RSS read; then N connections opened, each sends one
// authenticated GET of the 1 KiB artifact, reads the whole response and stays open, idle; after a
// settle time RSS is read again; the growth divided by N is the figure. Then a new connection's
// request beside the N idle ones is timed. The server is then stopped. Loopback only.
//
// Usage: node bench/keepalive.mjs [--connections=N] [--rounds=R] [--settle-ms=MS] [--json=FILE]
//        [--flags="node flags"]   (Tollgate's node flags instead of npm start's, for comparisons)
//        [--only=tollgate,bare-node]
//        [--snapshot-dir=DIR]   also write a V8 heap snapshot of each server before and after the
//                               connections opened (for where the memory goes; perturbs the RSS)
// run.mjs starts it for `npm run bench -- --only=keepalive` (and in a full run).
import { parseArgs } from 'node:util';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createProcessGroup,
  freePort,
  waitReady,
  waitTollgateReady,
  httpGet,
  tcpProbe,
  memKiB,
  sleep,
} from './lib/procs.mjs';
import { SHIPPED_ENV, SHIPPED_NODE_FLAGS } from './lib/shipped.mjs';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH_DIR, '..');
const NODE = process.execPath;
const ARTIFACT = '/files/1k.bin';
/** Connections opening at once. */
const OPEN_CONCURRENCY = 100;
/** Tollgate closes a kept-alive connection idle this long (src/proxy/http-server.ts keepAliveTimeout). */
const KEEP_ALIVE_S = 30;

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '2' },
    'settle-ms': { type: 'string', default: '3000' },
    json: { type: 'string' },
    flags: { type: 'string' },
    only: { type: 'string', default: 'tollgate,bare-node' },
    'snapshot-dir': { type: 'string' },
    'fd-raised': { type: 'boolean', default: false },
  },
  strict: true,
});
const connections = Number(values.connections);
const rounds = Number(values.rounds);
const settleMs = Number(values['settle-ms']);
if (
  !(Number.isInteger(connections) && connections >= 1) ||
  !(Number.isInteger(rounds) && rounds >= 1) ||
  !(settleMs >= 0)
) {
  fail('--connections and --rounds must be whole numbers ≥ 1, --settle-ms a number ≥ 0', 2);
}
const servers = values.only.split(',').filter(Boolean);
for (const s of servers)
  if (s !== 'tollgate' && s !== 'bare-node') fail(`--only: unknown server "${s}" (tollgate, bare-node)`, 2);
const tollgateFlags = values.flags === undefined ? SHIPPED_NODE_FLAGS : values.flags.split(/\s+/).filter(Boolean);

/** @param {string} message @param {number} [code] @returns {never} */
function fail(message, code = 1) {
  process.stderr.write(`bench keepalive: ${message}\n`);
  process.exit(code);
}

// ── File descriptors: this process holds N client sockets and each server N accepted ones ─────
/** @returns {{ soft: number, hard: number }} */
function openFilesLimit() {
  const line = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const n = (/** @type {string | undefined} */ v) => (v === undefined || v === 'unlimited' ? Infinity : Number(v));
  return { soft: n(line?.[1]), hard: n(line?.[2]) };
}
const neededFds = connections + 512;
const limit = openFilesLimit();
if (limit.soft < neededFds) {
  if (limit.hard < neededFds || values['fd-raised']) {
    fail(
      `${connections} connections need ${neededFds} open files in this process and in each server, ` +
        `but the limit is ${limit.soft} (hard limit ${limit.hard}). Raise it before running, e.g. ` +
        `\`ulimit -n ${neededFds}\` (as root, or after raising the hard limit in /etc/security/limits.conf ` +
        `or LimitNOFILE= for a systemd unit), or pass --connections=${Math.max(1, limit.soft - 512)}.`,
    );
  }
  // The soft limit can be raised up to the hard one without privileges: re-run under a shell that
  // does (Node has no setrlimit); the servers started from here inherit it.
  const args = process.argv.slice(1);
  const r = spawnSync('/bin/sh', ['-c', `ulimit -n ${neededFds} && exec "$0" "$@" --fd-raised`, NODE, ...args], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
}

// ── Processes ─────────────────────────────────────────────────────────────────────────────
const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-keepalive-'));
const group = createProcessGroup({ tmpDir, deadlineMs: Date.now() + 10 * 60_000 + rounds * 120_000 });
const cleanup = async () => {
  await group.stopAll();
  rmSync(tmpDir, { recursive: true, force: true });
};
process.on('exit', () => group.killAllNow());
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
  process.once(signal, () => void cleanup().finally(() => process.exit(130)));
}
const log = (/** @type {string} */ msg) => process.stderr.write(`${msg}\n`);
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TOLLGATE_')));

const originPort = await freePort();
const origin = group.start('origin', NODE, [path.join(BENCH_DIR, 'lib', 'origin.mjs'), String(originPort)]);
await waitReady(origin, () => httpGet(`http://127.0.0.1:${originPort}/__stats`), { group });

// One data dir and token for every Tollgate process (the store is a file; each process is fresh).
const dataDir = path.join(tmpDir, 'tollgate-data');
mkdirSync(dataDir, { recursive: true });
/** @param {number} port @param {number} adminPort */
const tollgateEnv = (port, adminPort) => ({
  ...baseEnv,
  TOLLGATE_HOST: '127.0.0.1',
  TOLLGATE_PORT: String(port),
  TOLLGATE_ADMIN_HOST: '127.0.0.1',
  TOLLGATE_ADMIN_PORT: String(adminPort),
  TOLLGATE_UPSTREAM: `http://127.0.0.1:${originPort}/`,
  TOLLGATE_DATA_DIR: dataDir,
  TOLLGATE_LOG_LEVEL: 'info',
  TOLLGATE_SHUTDOWN_GRACE_MS: '1000',
  ...SHIPPED_ENV,
});
const token = JSON.parse(
  execFileSync(
    NODE,
    [path.join(ROOT, 'bin', 'tollgate.js'), 'token', 'create', '--name', 'keepalive', '--type', 'production', '--json'],
    { env: tollgateEnv(0, 0), cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  ),
).token;

const snapshotDir = values['snapshot-dir'] && path.resolve(values['snapshot-dir']);
if (snapshotDir) mkdirSync(snapshotDir, { recursive: true });
const snapshotFlags = snapshotDir ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapshotDir}`] : [];

/**
 * A heap snapshot of the server, named <name>-<round>-<label>.heapsnapshot in --snapshot-dir.
 * @param {import('./lib/procs.mjs').Child} entry @param {string} label
 */
async function snapshot(entry, label) {
  if (!snapshotDir) return;
  const { readdirSync, renameSync, statSync } = await import('node:fs');
  const known = new Set(readdirSync(snapshotDir));
  entry.child.kill('SIGUSR2');
  for (let i = 0; i < 600; i++) {
    await sleep(200);
    const fresh = readdirSync(snapshotDir).find((f) => !known.has(f) && f.endsWith('.heapsnapshot'));
    if (fresh) {
      // Written once its size stops changing.
      let size = -1;
      while (statSync(path.join(snapshotDir, fresh)).size !== size) {
        size = statSync(path.join(snapshotDir, fresh)).size;
        await sleep(500);
      }
      renameSync(path.join(snapshotDir, fresh), path.join(snapshotDir, `${entry.name}-${label}.heapsnapshot`));
      return;
    }
  }
  throw new Error(`${entry.name}: no heap snapshot within 120 s`);
}

/** @param {'tollgate' | 'bare-node'} name @param {number} round */
async function startServer(name, round) {
  const port = await freePort();
  if (name === 'bare-node') {
    const entry = group.start(
      `bare-node-${round}`,
      NODE,
      [
        ...SHIPPED_NODE_FLAGS,
        ...snapshotFlags,
        path.join(BENCH_DIR, 'lib', 'bare-proxy.mjs'),
        String(port),
        String(originPort),
      ],
      {
        // npm start's V8 flags and malloc settings, as Tollgate: the same heap configuration
        // (with Node's defaults its young generation alone grows by up to 24 MiB more here).
        env: { ...baseEnv, ...SHIPPED_ENV, BENCH_TOKENS: token },
      },
    );
    await waitReady(entry, () => tcpProbe(port), { group });
    return { entry, port };
  }
  const adminPort = await freePort();
  const entry = group.start(
    `tollgate-${round}`,
    NODE,
    [...tollgateFlags, ...snapshotFlags, path.join(ROOT, 'dist', 'main.js')],
    {
      env: tollgateEnv(port, adminPort),
      cwd: ROOT,
    },
  );
  await waitTollgateReady(entry, { port, adminPort }, group);
  return { entry, port };
}

// ── The client: raw sockets, one request each, kept open ────────────────────────────────────
/**
 * Opens a connection, sends one GET, reads the response to its end, and resolves with the socket
 * (still open) and the time from connect to the last byte.
 * @param {number} port
 * @returns {Promise<{ socket: net.Socket, ms: number, status: number }>}
 */
function oneRequest(port) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const socket = net.connect(port, '127.0.0.1');
    /** @type {Buffer} */
    let pending = Buffer.alloc(0);
    let status = 0;
    let remaining = -1; // body bytes still to come once the head is read
    const timer = setTimeout(() => done(new Error('no complete response within 10 s')), 10_000);
    /** @param {Error} [err] */
    function done(err) {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      if (err) {
        socket.destroy();
        reject(err);
        return;
      }
      resolve({ socket, ms: Number(process.hrtime.bigint() - started) / 1e6, status });
    }
    socket.on('error', (err) => done(err));
    socket.on('data', (chunk) => {
      if (remaining < 0) {
        pending = Buffer.concat([pending, chunk]);
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = pending.subarray(0, end).toString('latin1');
        status = Number(head.slice(9, 12));
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (!length) return done(new Error(`response without content-length (status ${status})`));
        remaining = Number(length[1]) - (pending.length - end - 4);
      } else {
        remaining -= chunk.length;
      }
      if (remaining <= 0) done();
    });
    socket.write(`GET ${ARTIFACT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`);
  });
}
let closedEarly = 0;

/** Opens n kept-alive connections, OPEN_CONCURRENCY at a time. @param {number} port @param {number} n */
async function openMany(port, n) {
  /** @type {net.Socket[]} */
  const sockets = [];
  /** @type {Record<number, number>} */
  const statuses = {};
  let next = 0;
  async function worker() {
    while (next < n) {
      next++;
      const r = await oneRequest(port);
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      r.socket.on('close', () => closedEarly++);
      sockets.push(r.socket);
    }
  }
  await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, n) }, worker));
  return { sockets, statuses };
}

/**
 * Resident KiB by kind of mapping (/proc/<pid>/smaps): malloc's heap ([heap]), anonymous
 * mappings of 256 KiB multiples (V8's heap pages, malloc's large blocks), other anonymous
 * mappings, and files (the binary, libraries).
 * @param {number | undefined} pid
 */
function residentByKind(pid) {
  /** @type {Record<string, number>} */
  const kinds = { heap: 0, anon256k: 0, anonOther: 0, file: 0 };
  let kind = 'file';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (range) {
      const size = parseInt(range[2], 16) - parseInt(range[1], 16);
      const name = range[3];
      kind = name === '[heap]' ? 'heap' : name === '' ? (size % (256 * 1024) === 0 ? 'anon256k' : 'anonOther') : 'file';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) kinds[kind] += Number(rss[1]);
  }
  return kinds;
}

const rssMiB = (/** @type {number | undefined} */ pid) => memKiB(pid).rss / 1024;
const median = (/** @type {number[]} */ xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** One fresh process, measured. @param {'tollgate' | 'bare-node'} name @param {number} round */
async function measure(name, round) {
  const server = await startServer(name, round);
  const pid = server.entry.pid;
  // One request loads the request path (lazy modules, the upstream pool); its connection closes.
  const first = await oneRequest(server.port);
  first.socket.destroy();
  if (first.status !== 200) throw new Error(`${name}: first request answered ${first.status}`);
  await sleep(1000);
  const before = rssMiB(pid);
  const kindsBefore = residentByKind(pid);
  await snapshot(server.entry, 'before');
  closedEarly = 0;
  const openedAt = Date.now();
  const { sockets, statuses } = await openMany(server.port, connections);
  const openS = (Date.now() - openedAt) / 1000;
  if (statuses[200] !== connections)
    throw new Error(`${name}: statuses ${JSON.stringify(statuses)}, expected 200 only`);
  await sleep(settleMs);
  const after = rssMiB(pid);
  const kindsAfter = residentByKind(pid);
  const closedByServer = closedEarly;
  await snapshot(server.entry, 'after');
  const hwm = memKiB(pid).hwm / 1024;
  // New requests beside the idle ones, each on a new connection, one after the other.
  const latencies = [];
  for (let i = 0; i < 5; i++) {
    const r = await oneRequest(server.port);
    r.socket.destroy();
    if (r.status !== 200) throw new Error(`${name}: a request beside the idle connections answered ${r.status}`);
    latencies.push(r.ms);
  }
  const stillOpen = connections - closedByServer;
  for (const s of sockets) s.destroy();
  await group.stop(server.entry);
  if (openS + settleMs / 1000 > KEEP_ALIVE_S - 2 || closedByServer > 0) {
    log(
      `  warning: ${closedByServer} connection(s) closed by the server before the reading (opening took ${openS.toFixed(1)} s)`,
    );
  }
  const growth = after - before;
  return {
    server: name,
    round,
    rssBeforeMiB: before,
    rssAfterMiB: after,
    growthMiB: growth,
    perConnectionKiB: (growth * 1024) / connections,
    peakRssMiB: hwm,
    /** RSS growth by kind of mapping, MiB (residentByKind) */
    growthByKindMiB: Object.fromEntries(Object.entries(kindsAfter).map(([k, v]) => [k, (v - kindsBefore[k]) / 1024])),
    stillOpen,
    openS,
    newRequestMs: { median: median(latencies), max: Math.max(...latencies) },
  };
}

const fmt = (/** @type {number} */ n, d = 1) => n.toFixed(d);
async function main() {
  log(
    `keepalive: ${connections} kept-alive connections, ${rounds} round(s), a fresh process per measurement; ` +
      `Tollgate flags: ${tollgateFlags.join(' ') || '(none)'}`,
  );
  /** @type {Awaited<ReturnType<typeof measure>>[]} */
  const results = [];
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 ? servers : [...servers].reverse();
    for (const name of order) {
      const r = await measure(/** @type {'tollgate' | 'bare-node'} */ (name), round);
      log(
        `  round ${round} ${name.padEnd(9)} RSS ${fmt(r.rssBeforeMiB)} → ${fmt(r.rssAfterMiB)} MiB: +${fmt(r.growthMiB)} MiB, ` +
          `${fmt(r.perConnectionKiB, 2)} KiB/conn (${Object.entries(r.growthByKindMiB)
            .map(([k, v]) => `${k} ${fmt(v)}`)
            .join(
              ', ',
            )}); opened in ${fmt(r.openS)} s; new request ${fmt(r.newRequestMs.median)} ms (max ${fmt(r.newRequestMs.max)})`,
      );
      results.push(r);
    }
  }
  const summary = servers.map((name) => {
    const mine = results.filter((r) => r.server === name);
    return {
      server: name,
      growthMiB: median(mine.map((r) => r.growthMiB)),
      perConnectionKiB: median(mine.map((r) => r.perConnectionKiB)),
      growthRangeMiB: [Math.min(...mine.map((r) => r.growthMiB)), Math.max(...mine.map((r) => r.growthMiB))],
      newRequestMaxMs: Math.max(...mine.map((r) => r.newRequestMs.max)),
    };
  });
  const lines = [
    `keepalive: ${connections} idle kept-alive connections (one 1 KiB request each), fresh process per measurement, median of ${rounds} round(s)`,
    'server     RSS growth MiB  (range)          KiB/conn  new request max ms',
    ...summary.map(
      (s) =>
        `${s.server.padEnd(9)}  ${fmt(s.growthMiB).padStart(14)}  (${fmt(s.growthRangeMiB[0])}-${fmt(s.growthRangeMiB[1])})`.padEnd(
          44,
        ) + `${fmt(s.perConnectionKiB, 2).padStart(8)}  ${fmt(s.newRequestMaxMs).padStart(18)}`,
    ),
  ];
  const tg = summary.find((s) => s.server === 'tollgate');
  if (tg) {
    const target = (48 * connections) / 10_000;
    lines.push(
      `check: Tollgate RSS growth ≤ ${fmt(target)} MiB (issue 23: +48 MiB for 10,000): ${tg.growthMiB <= target ? 'PASS' : 'MISS'}; ` +
        `new request < 1000 ms: ${tg.newRequestMaxMs < 1000 ? 'PASS' : 'MISS'}`,
    );
  }
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  if (values.json) {
    writeFileSync(
      values.json,
      `${JSON.stringify({ connections, rounds, settleMs, tollgateFlags, shippedEnv: SHIPPED_ENV, results, summary, table: text }, null, 2)}\n`,
    );
  }
}

try {
  await main();
  await cleanup();
} catch (err) {
  log(`bench keepalive FAILED: ${/** @type {Error} */ (err).stack ?? String(err)}`);
  await cleanup();
  process.exit(1);
}
