// @ts-check
// Child processes of the benchmark: start, wait until ready, measure (/proc), stop.
import { spawn, execFileSync } from 'node:child_process';
import { openSync, closeSync, readFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLOCK_TICKS_PER_S = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** A free TCP port on loopback (closed again before use: good enough on a quiet loopback). */
/** Ports handed out in this run: the kernel may offer a closed port again, to a second caller. */
/** @type {Set<number>} */
const handedOut = new Set();

/** A free loopback port, never one already handed out in this run (several servers start at once). */
export async function freePort() {
  for (;;) {
    /** @type {number} */
    const port = await new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port: p } = /** @type {net.AddressInfo} */ (server.address());
        server.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** @param {number} ms @returns {Promise<void>} */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * @typedef {{ code: number | null, signal: NodeJS.Signals | null, error?: Error }} Exit
 * @typedef {object} Child A child process of the group.
 * @property {string} name
 * @property {import('node:child_process').ChildProcess} child
 * @property {Exit | undefined} exited How it ended, once it has.
 * @property {string} logFile
 * @property {number | undefined} pid
 * @property {Promise<Exit>} [exitedPromise]
 * @typedef {ReturnType<typeof createProcessGroup>} ProcessGroup
 */

/**
 * Owns every child process of a bench run. Each child is registered with a reaper process, which
 * kills it if this process dies without cleaning up (crash, SIGKILL) or the deadline passes.
 * @param {{ tmpDir: string, deadlineMs: number, keepTmp?: boolean }} options
 */
export function createProcessGroup({ tmpDir, deadlineMs, keepTmp = false }) {
  /** @type {Map<number, Child>} */
  const children = new Map(); // pid -> { name, child, exited, logFile }
  const reaper = spawn(
    process.execPath,
    [path.join(HERE, 'reaper.mjs'), String(process.pid), String(deadlineMs), keepTmp ? '' : tmpDir],
    {
      stdio: ['pipe', 'ignore', 'inherit'],
    },
  );
  reaper.stdin.on('error', () => {});

  /**
   * Starts a child. stdout goes to /dev/null unless `stdout: 'log'`; stderr always to
   * <tmpDir>/<name>.log, shown when the child fails.
   * @param {string} name
   * @param {string} command
   * @param {readonly string[]} args
   * @param {{ env?: NodeJS.ProcessEnv, cwd?: string, stdout?: 'null' | 'log' }} [options]
   * @returns {Child}
   */
  function start(name, command, args, { env, cwd, stdout = 'null' } = {}) {
    const logFile = path.join(tmpDir, `${name}.log`);
    const errFd = openSync(logFile, 'a');
    const outFd = stdout === 'log' ? errFd : openSync('/dev/null', 'w');
    const child = spawn(command, args, { env, cwd, stdio: ['ignore', outFd, errFd] });
    closeSync(errFd);
    if (outFd !== errFd) closeSync(outFd);
    /** @type {Child} */
    const entry = { name, child, exited: undefined, logFile, pid: child.pid };
    /** @type {Promise<Exit>} */
    const exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        entry.exited = { code, signal };
        children.delete(/** @type {number} */ (child.pid));
        if (reaper.stdin.writable) reaper.stdin.write(`-${child.pid}\n`);
        resolve(entry.exited);
      });
      child.once('error', (err) => {
        entry.exited = { code: null, signal: null, error: err };
        children.delete(/** @type {number} */ (child.pid));
        resolve(entry.exited);
      });
    });
    entry.exitedPromise = exited;
    if (child.pid) {
      children.set(child.pid, entry);
      reaper.stdin.write(`+${child.pid}\n`);
    }
    return entry;
  }

  /** Last lines of a child's log, for error messages. @param {Child} entry */
  function logTail(entry, lines = 30) {
    try {
      return readFileSync(entry.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** @param {Child} entry */
  async function stop(entry, graceMs = 3000) {
    if (entry.exited) return;
    try {
      entry.child.kill('SIGTERM');
    } catch {
      /* gone */
    }
    const timer = setTimeout(() => {
      try {
        entry.child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }, graceMs);
    await entry.exitedPromise;
    clearTimeout(timer);
  }

  /** @param {number} [graceMs] */
  async function stopAll(graceMs) {
    await Promise.all([...children.values()].map((entry) => stop(entry, graceMs)));
    if (reaper.stdin.writable) reaper.stdin.end();
  }

  /** Synchronous last resort for process.on('exit'). */
  function killAllNow() {
    for (const entry of children.values()) {
      try {
        entry.child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  return { start, stop, stopAll, killAllNow, logTail, children };
}

/**
 * Resolves once `probe()` resolves; fails when the child exits or the time is up.
 * @template T
 * @param {Child} entry
 * @param {() => Promise<T>} probe
 * @param {{ timeoutMs?: number, what?: string, group?: ProcessGroup }} [options]
 * @returns {Promise<T>}
 */
export async function waitReady(entry, probe, { timeoutMs = 20_000, what = entry.name, group } = {}) {
  const until = Date.now() + timeoutMs;
  /** @type {any} */
  let lastError;
  while (Date.now() < until) {
    if (entry.exited) {
      throw new Error(
        `${what} exited during start-up (${JSON.stringify(entry.exited)}):\n${group ? group.logTail(entry) : ''}`,
      );
    }
    try {
      return await probe();
    } catch (err) {
      lastError = err;
    }
    await sleep(100);
  }
  throw new Error(
    `${what} not ready after ${timeoutMs} ms (${lastError?.message ?? 'no answer'}):\n${group ? group.logTail(entry) : ''}`,
  );
}

/**
 * @typedef {{ status: number | undefined, headers: http.IncomingHttpHeaders, body: Buffer }} HttpResponse
 */

/**
 * Resolves once a Tollgate child answers its admin /healthz with 200 and accepts on its proxy port.
 * @param {Child} entry
 * @param {{ port: number, adminPort: number }} ports
 * @param {ProcessGroup} group
 */
export function waitTollgateReady(entry, { port, adminPort }, group) {
  return waitReady(
    entry,
    async () => {
      const res = await httpGet(`http://127.0.0.1:${adminPort}/healthz`);
      if (res.status !== 200) throw new Error(`healthz ${res.status}`);
      await tcpProbe(port);
    },
    { group },
  );
}

/**
 * One HTTP request, body collected: for readiness probes and preflight checks (not the load).
 * @param {string | URL} url
 * @param {http.OutgoingHttpHeaders} [headers]
 * @param {{ timeoutMs?: number }} [options]
 * @returns {Promise<HttpResponse>}
 */
export function httpGet(url, headers = {}, { timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false, timeout: timeoutMs }, (res) => {
      /** @type {Buffer[]} */
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Resolves when something accepts TCP connections on the port. @param {number} port */
export function tcpProbe(port) {
  return /** @type {Promise<void>} */ (
    new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', reject);
    })
  );
}

/** Threads' children of a process (nginx master → worker). @param {number | undefined} pid @returns {number[]} */
export function childPids(pid) {
  const file = `/proc/${pid}/task/${pid}/children`;
  if (existsSync(file)) {
    try {
      return readFileSync(file, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      /* fall through */
    }
  }
  return [];
}

/** utime+stime of a process (all its threads), in µs. Undefined when it is gone. @param {number | undefined} pid */
export function cpuUs(pid) {
  const split = cpuSplitUs(pid);
  return split && split.user + split.sys;
}

/** User and system CPU of a process so far, µs (utime and stime from /proc). @param {number | undefined} pid */
export function cpuSplitUs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    return {
      user: (Number(fields[11]) / CLOCK_TICKS_PER_S) * 1e6,
      sys: (Number(fields[12]) / CLOCK_TICKS_PER_S) * 1e6,
    };
  } catch {
    return undefined;
  }
}

/** User and system CPU summed over processes, µs. @param {Iterable<number | undefined>} pids */
export function sumCpuSplitUs(pids) {
  const total = { user: 0, sys: 0 };
  for (const pid of pids) {
    const split = cpuSplitUs(pid);
    if (split) {
      total.user += split.user;
      total.sys += split.sys;
    }
  }
  return total;
}

/** VmHWM (lifetime peak resident set) and VmRSS of a process, in KiB. @param {number | undefined} pid */
export function memKiB(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    /** @param {string} key */
    const pick = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { hwm: pick('VmHWM'), rss: pick('VmRSS') };
  } catch {
    return { hwm: NaN, rss: NaN };
  }
}

/** CPU µs summed over a set of pids (nginx: master + worker). @param {Iterable<number | undefined>} pids */
export function sumCpuUs(pids) {
  let total = 0;
  for (const pid of pids) total += cpuUs(pid) ?? 0;
  return total;
}

/**
 * Memory of a set of pids, in MiB: the largest single process's peak (VmHWM), the sum of the
 * peaks (an upper bound: each is a lifetime peak, reached at different times) and current RSS.
 * @param {Iterable<number | undefined>} pids
 */
export function sumMem(pids) {
  let hwm = 0;
  let maxHwm = 0;
  let rss = 0;
  for (const pid of pids) {
    const m = memKiB(pid);
    hwm += m.hwm;
    maxHwm = Math.max(maxHwm, m.hwm);
    rss += m.rss;
  }
  return { hwmMiB: hwm / 1024, maxHwmMiB: maxHwm / 1024, rssMiB: rss / 1024 };
}

export { CLOCK_TICKS_PER_S };

/**
 * CPU pinning for loads run side by side (bench/run.mjs pairs): `pin(pids, cpus)` sets the
 * affinity of every thread of each process with taskset (util-linux). Returns why it cannot when
 * taskset is missing or the machine has one CPU, else undefined.
 */
export function pinningUnavailable() {
  if (allowedCpus().length < 2) return 'one CPU: nothing to pin apart';
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'taskset is missing (apt-get install util-linux)';
  }
}

/** The CPUs this process may run on (its affinity, e.g. a container's cpuset), ascending. */
export function allowedCpus() {
  try {
    const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (list) {
      return list.split(',').flatMap((part) => {
        const [from, to = from] = /** @type {[number, number?]} */ (part.split('-').map(Number));
        return Array.from({ length: to - from + 1 }, (_, i) => from + i);
      });
    }
  } catch {
    /* not Linux: fall through */
  }
  return os.cpus().map((_, i) => i);
}

/**
 * Sets the CPU affinity (a taskset list such as "1" or "0,2-3") of every thread of each process.
 * @param {Iterable<number | undefined>} pids
 * @param {string} cpus
 */
export function pin(pids, cpus) {
  for (const pid of pids) {
    try {
      execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', cpus, String(pid)], { stdio: 'ignore' });
    } catch {
      // the process has exited: its run fails on its own
    }
  }
}
