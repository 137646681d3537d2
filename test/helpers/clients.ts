import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  constants,
  createReadStream,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { generateToken } from '../../src/tokens/format.js';
import { selfSignedCert } from './certs.js';
import { createTokenWithCli, REPO_ROOT, startGatewayProcess, tempDir, type GatewayProcess } from './process.js';
import { rawRequest } from './raw-http.js';
import type { RouteEntry } from './route-config.js';

/**
 * Real package-manager clients against a real gateway: each client runs in a fresh HOME with
 * an environment built from scratch (no npm_config_*, PIP_*, CARGO_* or proxy settings leak in
 * from the test runner), so what it does is what its configuration files in that HOME say.
 * A client missing from the machine fails the test with the command that installs it; it is
 * never skipped.
 */

// ---------------------------------------------------------------------------------------------
// Finding clients

/** The first executable among `candidates` (absolute paths, or names looked up on PATH). */
function findExecutable(candidates: readonly string[]): string | undefined {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const candidate of candidates) {
    const options = path.isAbsolute(candidate) ? [candidate] : dirs.map((d) => path.join(d, candidate));
    for (const file of options) {
      try {
        accessSync(file, constants.X_OK);
        if (statSync(file).isFile()) return file;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/**
 * The absolute path of a client, or an error that fails the test:
 * `<client> not found: install it with <command>`.
 */
export function requireClient(client: string, install: string, candidates: readonly string[] = [client]): string {
  const found = findExecutable(candidates);
  if (!found) throw new Error(`${client} not found: install it with ${install}`);
  return found;
}

/** The project's own copy of an npm-registry client (devDependencies), as `node_modules/.bin/<name>`. */
export function requireDevClient(name: string): string {
  return requireClient(name, 'npm ci (it is a devDependency)', [path.join(REPO_ROOT, 'node_modules', '.bin', name)]);
}

/**
 * The real python3 interpreter (not a pyenv shim: a shim looks for its versions under $HOME,
 * and each client run gets a fresh HOME).
 */
export function requirePython(): string {
  const shim = requireClient('python3', 'apt-get install python3 python3-pip', ['python3']);
  const r = spawnSync(shim, ['-c', 'import sys, pip; print(sys.executable)'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pip not found: install it with apt-get install python3-pip\n${r.stderr}`);
  return realpathSync(r.stdout.trim());
}

/** rustup's home (the cargo shims need it when HOME is somewhere else), if rustup is in use. */
export function rustupHome(): string | undefined {
  const home = process.env.RUSTUP_HOME ?? path.join(os.homedir(), '.rustup');
  return existsSync(home) ? home : undefined;
}

// ---------------------------------------------------------------------------------------------
// Fresh homes and running commands

export interface Home {
  /** The HOME directory (empty at first). */
  path: string;
  /** Writes a file under HOME (creating directories) and returns its absolute path. */
  write(relative: string, content: string | Buffer): string;
  /** A new empty directory under HOME. */
  dir(relative: string): string;
}

const homes: string[] = [];
process.once('exit', () => {
  for (const h of homes) rmSync(h, { recursive: true, force: true });
});

/** A scratch directory (an upstream's tree, a fixture's sources), removed when the test file's process ends. */
export function scratchDir(label: string): string {
  const dir = tempDir(`tollgate-${label.replace(/[^a-z0-9]+/gi, '-')}-`);
  homes.push(dir);
  return dir;
}

/** A new empty HOME for one client run, removed when the test file's process ends. */
export function freshHome(label: string): Home {
  const home = scratchDir(label);
  return {
    path: home,
    write(relative, content) {
      const file = path.join(home, relative);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, content);
      return file;
    },
    dir(relative) {
      const d = path.join(home, relative);
      mkdirSync(d, { recursive: true });
      return d;
    },
  };
}

/**
 * An environment built from scratch for a client: PATH, a UTF-8 locale, HOME and the XDG
 * directories inside the fresh home, and whatever the test adds. Nothing else from the runner's
 * environment (npm sets dozens of npm_config_* variables for the scripts it runs).
 */
export function clientEnv(home: Home, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    LANG: 'C.UTF-8',
    HOME: home.path,
    XDG_CONFIG_HOME: path.join(home.path, '.config'),
    XDG_CACHE_HOME: path.join(home.path, '.cache'),
    XDG_DATA_HOME: path.join(home.path, '.local', 'share'),
    XDG_STATE_HOME: path.join(home.path, '.local', 'state'),
    TMPDIR: home.dir('tmp'),
    CI: 'true',
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

export interface RunResult {
  command: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout then stderr, for assertion messages. */
  output: string;
  durationMs: number;
}

export interface RunOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** SIGKILL after this long (default 120 s); the result then has signal SIGKILL. */
  timeoutMs?: number;
}

/** Runs a command to completion, capturing its output; never throws for a non-zero exit. */
export function run(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({
        command: [command, ...args].join(' '),
        code,
        signal,
        stdout,
        stderr,
        output: `$ ${[command, ...args].join(' ')}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`,
        durationMs: Date.now() - started,
      });
    });
  });
}

/** Runs a command and throws (with its output) unless it exits 0: for fixture-building steps. */
export async function runOk(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const r = await run(command, args, options);
  if (r.code !== 0) throw new Error(`exit ${r.code ?? r.signal}\n${r.output}`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Upstreams

export interface SeenUpstreamRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

export interface TreeServer {
  /** http://127.0.0.1:<port>/ */
  url: string;
  port: number;
  seen: SeenUpstreamRequest[];
  close(): Promise<void>;
}

export interface TreeServerOptions {
  /** Directories searched in order for each path. */
  roots: readonly string[];
  /** Answer `<file>.sha1` from the file itself when the trees hold no such file (a Maven 2 repository). */
  sha1?: boolean;
  /** Content type by file name; default by extension. */
  contentType?: (file: string) => string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.xml': 'text/xml',
  '.pom': 'text/xml',
  '.sha1': 'text/plain',
  '.md5': 'text/plain',
};

/**
 * A plain static artifact server on a loopback port: the "remote" registry behind the gateway.
 * GET and HEAD; `index.html` for a path ending in `/`; 404 for anything else. Every request is
 * recorded, so a test can check that each one came through the gateway (it adds X-Request-Id).
 */
export async function startTreeServer(options: TreeServerOptions): Promise<TreeServer> {
  const seen: SeenUpstreamRequest[] = [];
  const roots = options.roots.map((r) => path.resolve(r));
  const typeOf = options.contentType ?? ((file: string) => TYPES[path.extname(file)] ?? 'application/octet-stream');

  function locate(relative: string): string | undefined {
    for (const root of roots) {
      const file = path.join(root, relative);
      if (file !== root && !file.startsWith(root + path.sep)) return undefined;
      try {
        const st = statSync(file);
        if (st.isFile()) return file;
        if (st.isDirectory() && statSync(path.join(file, 'index.html')).isFile()) return path.join(file, 'index.html');
      } catch {
        // not in this root
      }
    }
    return undefined;
  }

  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    let relative: string;
    try {
      relative = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    const file = locate(relative);
    if (file) {
      const size = statSync(file).size;
      res.writeHead(200, { 'content-type': typeOf(file), 'content-length': size });
      if (req.method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
      return;
    }
    if (options.sha1 && relative.endsWith('.sha1')) {
      const target = locate(relative.slice(0, -'.sha1'.length));
      if (target) {
        const body = createHash('sha1').update(readFileSync(target)).digest('hex');
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.keepAliveTimeout = 30_000;
  return listenOnLoopback(server, seen);
}

/** Listens on a free loopback port; `close` drops every connection (and the agent, if any) and stops listening. */
async function listenOnLoopback(
  server: http.Server,
  seen: SeenUpstreamRequest[],
  agent?: http.Agent,
): Promise<TreeServer> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        agent?.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A pass-through in front of a real registry program on `targetPort` that records every request
 * (headers included) before piping it on unchanged, Host too, so the registry describes itself
 * by the recorder's origin: the upstream URL the gateway is configured with.
 */
export async function startRecordingProxy(targetPort: number): Promise<TreeServer> {
  const seen: SeenUpstreamRequest[] = [];
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const upstream = http.request(
      {
        host: '127.0.0.1',
        port: targetPort,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    upstream.once('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(upstream);
  });
  return listenOnLoopback(server, seen, agent);
}

/** Requests an upstream saw that did not come through the gateway (which sends X-Request-Id). */
export function requestsAroundGateway(seen: readonly SeenUpstreamRequest[]): string[] {
  return seen.filter((r) => r.headers['x-request-id'] === undefined).map((r) => `${r.method} ${r.url}`);
}

// ---------------------------------------------------------------------------------------------
// The gateway

export interface LoggedRequest {
  method: string;
  path: string;
  status: number;
  tokenId?: string;
  project?: string;
  authFailure?: string;
  refusedBy?: string;
}

/** The gateway's per-request log lines (JSON, msg "request"), oldest first. */
export function requestLog(gateway: GatewayProcess): LoggedRequest[] {
  const out: LoggedRequest[] = [];
  for (const line of gateway.stdout().split('\n')) {
    if (!line.includes('"msg":"request"')) continue;
    try {
      out.push(JSON.parse(line) as LoggedRequest);
    } catch {
      // a partial line at the end
    }
  }
  return out;
}

/** Requests the tests send to mark a point in the request log; never forwarded (no route, no credential: a 401). */
const LOG_MARK_PATH = '/-tollgate-test-log-mark/';
let logMarks = 0;

export interface ClientGateway {
  gateway: GatewayProcess;
  /** http://127.0.0.1:<port>, https:// with `tls` (no trailing slash). */
  url: string;
  /** host:port, as clients' configuration files name it. */
  hostPort: string;
  /** With `tls`: the self-signed certificate (PEM file) clients must trust, e.g. through SSL_CERT_FILE. */
  caFile: string | undefined;
  /** A live Production token. */
  token: string;
  tokenId: string;
  /** Well-formed, checksum-valid, but unknown to the store: "a wrong token". */
  wrongToken: string;
  /**
   * A mark in the request log, for `requestsSince`. Both send a request of their own and wait for
   * its log line: a client can exit before the gateway's last log lines have crossed the pipe to
   * the test, and those lines belong before the mark, not after it. The marks' own lines are left
   * out of what `requestsSince` returns.
   */
  mark(): Promise<number>;
  /** The request log lines written since `mark`. */
  requestsSince(mark: number): Promise<LoggedRequest[]>;
  /** The admin port's /metrics text. */
  metrics(): Promise<string>;
  /** Another token, made with `tollgate token create` and these extra arguments (restrictions). */
  createToken(
    name: string,
    type: 'production' | 'development',
    extra?: string[],
  ): Promise<{ token: string; id: string }>;
  stop(): Promise<void>;
}

/**
 * Starts the built gateway with a config file listing these routes (and `config`'s other
 * top-level fields, such as ciProviders), serving TLS with a self-signed certificate when `tls`
 * is set, and creates a Production token.
 */
export async function startClientGateway(
  label: string,
  routes: RouteEntry[],
  options: { tls?: boolean; config?: Record<string, unknown> } = {},
): Promise<ClientGateway> {
  const dir = scratchDir(`${label}-gw`);
  const configFile = path.join(dir, 'tollgate.json');
  writeFileSync(configFile, JSON.stringify({ routes, ...options.config }, null, 2));
  const cert = options.tls ? selfSignedCert(scratchDir(`${label}-tls`)) : undefined;
  const env = {
    TOLLGATE_DATA_DIR: path.join(dir, 'data'),
    TOLLGATE_CONFIG: configFile,
    TOLLGATE_LOG_LEVEL: 'info',
    ...(cert ? { TOLLGATE_TLS_CERT: cert.certFile, TOLLGATE_TLS_KEY: cert.keyFile } : {}),
  };
  const created = await createTokenWithCli(env, `${label}-ci`, 'production');
  const gateway = await startGatewayProcess(env);
  const url = cert ? gateway.url.replace(/^http:/, 'https:') : gateway.url;
  /** The whole request log, up to and including a mark of its own. */
  const logThroughMark = async (): Promise<LoggedRequest[]> => {
    const markPath = `${LOG_MARK_PATH}${++logMarks}`;
    const logged = gateway.waitForLine(`"path":"${markPath}"`);
    await rawRequest(url, { path: markPath, ca: cert?.cert });
    await logged;
    return requestLog(gateway);
  };
  return {
    gateway,
    url,
    hostPort: `127.0.0.1:${gateway.proxyPort}`,
    caFile: cert?.certFile,
    token: created.token,
    tokenId: created.id,
    wrongToken: generateToken('production'),
    mark: async () => (await logThroughMark()).length,
    requestsSince: async (mark) =>
      (await logThroughMark()).slice(mark).filter((l) => !l.path.startsWith(LOG_MARK_PATH)),
    async metrics() {
      const res = await fetch(`${gateway.adminUrl}/metrics`);
      return res.text();
    },
    createToken: (name, type, extra = []) => createTokenWithCli(env, name, type, extra),
    async stop() {
      await gateway.stop();
    },
  };
}

/** The value of one Prometheus sample (`name{labels}` as printed), summed over label sets when `name` has none. */
export function metricValue(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    if (name.includes('{') ? `${m[1]}${m[2] ?? ''}` === name : m[1] === name) sum += Number(m[3]);
  }
  return sum;
}

/** Every absolute http(s) URL in a text (a lockfile, a log). */
export function urlsIn(text: string): string[] {
  return [...text.matchAll(/https?:\/\/[^\s"'#,)}\]]+/g)].map((m) => m[0]);
}
