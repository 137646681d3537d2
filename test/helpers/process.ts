import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Runs the built Tollgate (`node dist/main.js`, `node bin/tollgate.js ...`) as real child
 * processes, the way an operator does: env in, JSON log lines and exit codes out.
 *
 * The repo's dist/ is rebuilt by every vitest run's global setup, and tsc rewrites files in
 * place, so a process spawned while someone else's run rebuilds can import a half-written
 * file. Each test file therefore runs a private snapshot of the build: dist/, bin/ and
 * package.json copied into a temp root, with examples/ and node_modules/ linked to the repo's
 * (so the shipped example tree is the one served). The snapshot is checked by running
 * `tollgate help`, which imports every module, before any test uses it.
 */

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

let snapshotRoot: string | undefined;
const SNAPSHOT_PREFIX = 'tollgate-build-';

/** Snapshots of test processes that are gone (a worker killed before its exit hook ran). */
function removeStaleSnapshots(): void {
  for (const name of readdirSync(os.tmpdir())) {
    const pid = Number(/^tollgate-build-(\d+)-/.exec(name)?.[1]);
    if (!pid) continue;
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH')
        rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
    }
  }
}

/** The root the child processes run from: a verified snapshot of the current build. */
export function buildRoot(): string {
  if (snapshotRoot) return snapshotRoot;
  removeStaleSnapshots();
  let lastError = '';
  for (let attempt = 0; attempt < 10; attempt++) {
    const root = mkdtempSync(path.join(os.tmpdir(), `${SNAPSHOT_PREFIX}${process.pid}-`));
    cpSync(path.join(REPO_ROOT, 'dist'), path.join(root, 'dist'), { recursive: true });
    cpSync(path.join(REPO_ROOT, 'bin'), path.join(root, 'bin'), { recursive: true });
    copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(root, 'package.json'));
    symlinkSync(path.join(REPO_ROOT, 'examples'), path.join(root, 'examples'));
    symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'));
    const check = spawnSync(process.execPath, [path.join(root, 'bin', 'tollgate.js'), 'help'], {
      cwd: root,
      env: cleanEnv({}),
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (check.status === 0) {
      snapshotRoot = root;
      process.once('exit', () => rmSync(root, { recursive: true, force: true }));
      return root;
    }
    lastError = `${check.stderr}`;
    rmSync(root, { recursive: true, force: true });
    spawnSync('sleep', ['0.5']);
  }
  throw new Error(`the build in ${REPO_ROOT}/dist does not load:\n${lastError}`);
}

/** The parent's environment without any TOLLGATE_* setting, plus the given ones. */
export function cleanEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TOLLGATE_')) out[k] = v;
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/** Every byte every child wrote (stdout and stderr), for whole-run checks such as "no token in the logs". */
const transcript: { what: string; stream: 'stdout' | 'stderr'; text: () => string }[] = [];

/** The output of every child spawned by this test file so far, with a header per process and stream. */
export function allOutput(filter?: (what: string, stream: 'stdout' | 'stderr') => boolean): string {
  return transcript
    .filter((t) => !filter || filter(t.what, t.stream))
    .map((t) => `--- ${t.what} ${t.stream}\n${t.text()}`)
    .join('\n');
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Child {
  child: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** stdout then stderr. */
  output(): string;
  exited: Promise<ExitStatus>;
  /** Resolves with the first stdout/stderr line matching; rejects on exit or after timeoutMs. */
  waitForLine(match: RegExp | string, timeoutMs?: number): Promise<string>;
  signal(sig: NodeJS.Signals): void;
}

function spawnNode(what: string, args: string[], env: Record<string, string | undefined>): Child {
  const root = buildRoot();
  const child = spawn(process.execPath, args, { cwd: root, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not spawn ${what}`);
  const out: string[] = [];
  const err: string[] = [];
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  const label = `${what} (pid ${child.pid})`;
  transcript.push({ what: label, stream: 'stdout', text: () => out.join('') });
  transcript.push({ what: label, stream: 'stderr', text: () => err.join('') });

  const waiters = new Set<{ match: RegExp | string; resolve: (line: string) => void }>();
  let partial = '';
  const scan = (text: string): void => {
    partial += text;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      for (const w of waiters) {
        if (typeof w.match === 'string' ? line.includes(w.match) : w.match.test(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  };
  child.stdout.on('data', (chunk: string) => {
    out.push(chunk);
    scan(chunk);
  });
  child.stderr.on('data', (chunk: string) => {
    err.push(chunk);
    scan(chunk);
  });

  const exited = new Promise<ExitStatus>((resolve) => {
    // 'close' (not 'exit'): every byte of stdout/stderr has been read by then.
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  let done = false;
  void exited.then(() => {
    done = true;
  });

  return {
    child,
    pid: child.pid,
    stdout: () => out.join(''),
    stderr: () => err.join(''),
    output: () => out.join('') + err.join(''),
    exited,
    waitForLine(match, timeoutMs = 15_000) {
      const seen = (out.join('') + err.join(''))
        .split('\n')
        .find((l) => (typeof match === 'string' ? l.includes(match) : match.test(l)));
      if (seen !== undefined) return Promise.resolve(seen);
      if (done)
        return Promise.reject(
          new Error(`${label} exited without printing ${String(match)}:\n${out.join('')}${err.join('')}`),
        );
      return new Promise<string>((resolve, reject) => {
        const waiter = {
          match,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(
            new Error(
              `${label} did not print ${String(match)} within ${timeoutMs} ms:\n${out.join('')}${err.join('')}`,
            ),
          );
        }, timeoutMs);
        waiters.add(waiter);
        void exited.then(() => {
          if (!waiters.has(waiter)) return;
          waiters.delete(waiter);
          clearTimeout(timer);
          reject(new Error(`${label} exited without printing ${String(match)}:\n${out.join('')}${err.join('')}`));
        });
      });
    },
    signal(sig) {
      if (!done) child.kill(sig);
    },
  };
}

/** Children still running when the test file ends are killed, so a failed test leaks nothing. */
const live = new Set<Child>();
process.once('exit', () => {
  for (const c of live) c.signal('SIGKILL');
});

function track(c: Child): Child {
  live.add(c);
  void c.exited.then(() => live.delete(c));
  return c;
}

export interface ProcStatus {
  /** Peak resident set size (VmHWM), KiB. */
  hwmKiB: number;
  /** Current resident set size (VmRSS), KiB. */
  rssKiB: number;
}

/** VmHWM and VmRSS from /proc/<pid>/status (Linux). */
export function procStatus(pid: number): ProcStatus {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!m) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(m[1]);
  };
  return { hwmKiB: field('VmHWM'), rssKiB: field('VmRSS') };
}

/** A port nobody listens on right now (the OS picks it; closed again before returning). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface GatewayProcess extends Child {
  /** http://127.0.0.1:<proxy port> */
  url: string;
  /** http://127.0.0.1:<admin port> */
  adminUrl: string;
  proxyPort: number;
  adminPort: number;
  /** The "tollgate listening" log record. */
  listening: Record<string, unknown>;
  memory(): ProcStatus;
  /** SIGTERM and wait for the exit (SIGKILL after timeoutMs). */
  stop(timeoutMs?: number): Promise<ExitStatus>;
}

/**
 * Starts `node [nodeFlags] dist/main.js` with the given env (no inherited TOLLGATE_* settings) and waits
 * for its "tollgate listening" line. Ports default to free ones picked here; the log line is
 * then read back for the ports the gateway really bound, so `TOLLGATE_PORT: '0'` works too.
 */
export async function startGatewayProcess(
  env: Record<string, string | undefined>,
  options: { startTimeoutMs?: number; nodeFlags?: readonly string[] } = {},
): Promise<GatewayProcess> {
  const fullEnv = {
    // Loopback unless the test sets TOLLGATE_HOST itself (to undefined for the default).
    ...('TOLLGATE_HOST' in env ? {} : { TOLLGATE_HOST: '127.0.0.1' }),
    ...env,
    TOLLGATE_PORT: env.TOLLGATE_PORT ?? String(await freePort()),
    TOLLGATE_ADMIN_PORT: env.TOLLGATE_ADMIN_PORT ?? String(await freePort()),
  };
  const c = track(spawnNode('gateway', [...(options.nodeFlags ?? []), 'dist/main.js'], fullEnv));
  let line: string;
  try {
    line = await c.waitForLine('"tollgate listening"', options.startTimeoutMs ?? 20_000);
  } catch (err) {
    c.signal('SIGKILL');
    throw err;
  }
  const listening = JSON.parse(line) as Record<string, unknown>;
  const proxyPort = Number(new URL(String(listening.proxy)).port);
  const adminPort = Number(new URL(String(listening.admin)).port);
  return {
    ...c,
    url: `http://127.0.0.1:${proxyPort}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    proxyPort,
    adminPort,
    listening,
    memory: () => procStatus(c.pid),
    async stop(timeoutMs = 30_000) {
      c.signal('SIGTERM');
      const timer = setTimeout(() => c.signal('SIGKILL'), timeoutMs);
      const status = await c.exited;
      clearTimeout(timer);
      return status;
    },
  };
}

/** Starts `node dist/main.js` without waiting for anything (for start-up failures). */
export function spawnGateway(env: Record<string, string | undefined>): Child {
  return track(spawnNode('gateway', ['dist/main.js'], env));
}

/** Starts `node bin/tollgate.js <args>` without waiting. */
export function spawnCli(args: string[], env: Record<string, string | undefined>): Child {
  return track(spawnNode(`tollgate ${args[0] ?? ''} ${args[1] ?? ''}`.trim(), ['bin/tollgate.js', ...args], env));
}

export interface CliResult extends ExitStatus {
  stdout: string;
  stderr: string;
}

/** Runs `node bin/tollgate.js <args>` to completion (SIGKILL after timeoutMs). */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined>,
  timeoutMs = 30_000,
): Promise<CliResult> {
  const c = spawnCli(args, env);
  const timer = setTimeout(() => c.signal('SIGKILL'), timeoutMs);
  const status = await c.exited;
  clearTimeout(timer);
  return { ...status, stdout: c.stdout(), stderr: c.stderr() };
}

export interface CreatedToken {
  id: string;
  name: string;
  type: 'production' | 'development';
  token: string;
  createdAt: string;
  expiresAt: string | null;
  /** `{routes, packages, networks, rate}` as given (only the kinds set), or null. */
  restrictions: { routes?: string[]; packages?: string[]; networks?: string[]; rate?: number } | null;
}

/** `tollgate token create --json`, failing the test with the CLI's stderr when it does not exit 0. */
export async function createTokenWithCli(
  env: Record<string, string | undefined>,
  name: string,
  type: 'production' | 'development' = 'production',
  extra: string[] = [],
): Promise<CreatedToken> {
  const r = await runCli(['token', 'create', '--name', name, '--type', type, '--json', ...extra], env);
  if (r.code !== 0) throw new Error(`token create ${name} exited ${r.code ?? r.signal}: ${r.stderr}`);
  return JSON.parse(r.stdout) as CreatedToken;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export interface Download {
  status: number;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  sha256: string;
  /** True when the body ended normally (false: the connection was cut). */
  complete: boolean;
  /** Short bodies (up to 64 KiB) as text, for error responses and small artifacts. */
  text: string;
}

export interface DownloadOptions {
  headers?: Record<string, string>;
  method?: string;
  /** Average read rate cap in bytes per second: reading pauses whenever the client is ahead. */
  bytesPerSecond?: number;
  /** Called with the running byte count after every chunk (for sampling, signalling mid-body). */
  onProgress?: (bytes: number) => void;
  /** Give up (destroy the request) after this long. Default 120 s. */
  timeoutMs?: number;
}

/**
 * One GET over a fresh connection (no keep-alive: the gateway's connection accounting is per
 * socket), hashing the body as it arrives instead of keeping it. With `bytesPerSecond` the
 * client reads like a slow link: it pauses the response stream whenever it is ahead of the
 * rate, so the kernel buffers fill and backpressure must reach the gateway.
 */
export function download(url: string, options: DownloadOptions = {}): Promise<Download> {
  return new Promise<Download>((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: options.method ?? 'GET',
        headers: options.headers,
        agent: false,
      },
      (res) => {
        const hash = createHash('sha256');
        const textChunks: Buffer[] = [];
        let bytes = 0;
        const started = Date.now();
        let settled = false;
        const finish = (complete: boolean): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            bytes,
            sha256: hash.digest('hex'),
            complete,
            text: Buffer.concat(textChunks).toString('utf8'),
          });
        };
        res.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          if (bytes < 65_536) textChunks.push(chunk.subarray(0, 65_536 - bytes));
          bytes += chunk.length;
          options.onProgress?.(bytes);
          const rate = options.bytesPerSecond;
          if (rate) {
            const aheadMs = (bytes / rate) * 1000 - (Date.now() - started);
            if (aheadMs > 5) {
              res.pause();
              setTimeout(() => res.resume(), aheadMs);
            }
          }
        });
        res.once('end', () => finish(res.complete));
        res.once('aborted', () => finish(false));
        res.once('error', () => finish(false));
        res.once('close', () => finish(res.complete));
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`download of ${url} took over ${options.timeoutMs ?? 120_000} ms`)),
      options.timeoutMs ?? 120_000,
    );
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}

/** Resolves true when a TCP connection to host:port is refused (nothing listens), false when it connects. */
export function connectionRefused(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') resolve(true);
      else reject(err);
    });
  });
}

export function tempDir(prefix = 'tollgate-e2e-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}
