#!/usr/bin/env node
// @ts-check
// Tollgate benchmark: `npm run bench` (see bench/README.md).
//
// Starts, in one process tree on loopback, a stub origin, a bare Node proxy, nginx, and Tollgate
// in four set-ups (as shipped; auth off; Redis store with every request a cache miss; a copy for
// invalid-token floods), then drives each with autocannon in alternating rounds and prints
// req/s, latency, MiB/s, the server's CPU µs per request and peak RSS, with every ratio to the
// baselines against the targets of issue 6. Results go to bench/results/<timestamp>.json and
// bench/results/latest.json.
import { parseArgs } from 'node:util';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import autocannon from 'autocannon';
import {
  createProcessGroup,
  freePort,
  waitReady,
  waitTollgateReady,
  httpGet,
  tcpProbe,
  childPids,
  cpuUs,
  sumCpuUs,
  sumCpuSplitUs,
  sumMem,
  sleep,
  pin,
  pinningUnavailable,
  allowedCpus,
} from './lib/procs.mjs';
import { nginxUnavailable, nginxVersion, writeNginxConfig, NGINX_BIN } from './lib/nginx.mjs';
import { SHIPPED_ENV, SHIPPED_NODE_FLAGS } from './lib/shipped.mjs';
import { startBenchIssuer } from './lib/ci-issuer.mjs';
import { scrapeMetrics, authCounters, diffCounters, redisPing, redisCommandCalls, originStats } from './lib/probes.mjs';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH_DIR, '..');
const DIST = path.join(ROOT, 'dist');
const RESULTS_DIR = path.join(BENCH_DIR, 'results');
const NODE = process.execPath;

// autocannon keeps every response body as a string (`body += chunk`, a UTF-8 decode per chunk):
// on 10 MiB artifacts that, not the server under test, capped MiB/s, and its memory grew with the
// artifact. The bench never reads bodies (no expectBody, verifyBody or onResponse), so drop them.
// Byte counts and latencies are recorded elsewhere and are unaffected.
const PipelinedRequestsQueue = createRequire(import.meta.url)('autocannon/lib/pipelinedRequestsQueue.js');
PipelinedRequestsQueue.prototype.addBody = function discardBody() {};

// ── Command line ─────────────────────────────────────────────────────────────────────────────
const USAGE = `Usage: node bench/run.mjs [options]     (npm run bench -- [options])

  --quick              short smoke run: 1 round, 1 s per run, fewer Redis tokens
  --only=a,b           run only these scenarios (names below); ratios needing others show n/a
  --routes=1k,100k,10m artifact sizes to run (default all three)
  --rounds=N           alternating rounds per route (default 2; --quick 1)
  --duration=S         seconds per run for 1 KiB and 100 KiB (default 5; --quick 1)
  --requests-large=N   requests per 10 MiB run (default 2 per connection; --quick 1 per connection)
  --max-large=S        stop a 10 MiB run after S seconds even if unfinished (default 60; --quick 20)
  --connections=N      concurrent connections (default 50)
  --miss-tokens=N      tokens cycled by redis-miss (default 2000; --quick 500)
  --workers=N          TOLLGATE_WORKERS for the Tollgate processes (default 1); CPU and RSS are
                       then summed over the primary and its workers. tollgate-noauth is a single
                       process and is skipped when N > 1.
  --no-write           do not write bench/results/*.json
  --keep-tmp           keep the temp dir (configs, logs, data dirs) for inspection
  --profile            run the Node servers with --cpu-prof; profiles (whole process lifetime,
                       warm-up included) go to bench/results/profiles/<timestamp>/
  --keepalive-connections=N
                       idle kept-alive connections of the keepalive scenario (default 10000;
                       --quick 2000); needs N + 512 open files (ulimit -n)
  --compare-flags="F"  also run tollgate-flags: Tollgate as shipped, but started with the node
                       flags in F instead of npm start's (F may have none), alternating with
                       tollgate in the same rounds; its ratios to tollgate are reported. NAME=value
                       words in F change npm start's environment settings for it (NAME= empties
                       one). For deciding on V8 flags and malloc settings: two runs of one build
                       differ by more than most of them change.
  --compare-build=DIR  run tollgate-flags from another build's dist/ (e.g. a worktree of the
                       previous commit after \`npm run build\`) instead, with npm start's flags
                       unless --compare-flags says otherwise: the paired rows then compare two
                       builds side by side, for a change to the request path.

Scenarios: SCENARIO_NAMES
Run \`npm run build\` first (npm run bench does).`;

/** @typedef {keyof typeof ROUTES} Route */
const ROUTES = {
  '1k': { path: '/files/1k.bin', bytes: 1024, label: '1 KiB' },
  '100k': { path: '/files/100k.bin', bytes: 100 * 1024, label: '100 KiB' },
  '10m': { path: '/files/10m.bin', bytes: 10 * 1024 * 1024, label: '10 MiB' },
};
const ALL_ROUTES = /** @type {Route[]} */ (Object.keys(ROUTES));

/**
 * @typedef {object} Scenario
 * @property {string} name
 * @property {string} target
 * @property {string} [pair]
 * @property {Route[]} routes
 * @property {number[]} expect
 * @property {'none' | 'hit' | 'restricted' | 'exchanged' | 'redis-hit' | 'redis-miss' | 'malformed' | 'random'} load
 * @property {string} what
 */

/**
 * In the order they run within a round (reversed every other round, so drift over a round
 * cancels too). `target` is the process measured; `load` says what the requests carry.
 * @type {Scenario[]}
 */
// prettier-ignore
const SCENARIOS = [
  { name: 'direct', target: 'origin', routes: ALL_ROUTES, expect: [200], load: 'none',
    what: 'straight to the stub origin, no proxy (CPU is the origin\'s)' },
  { name: 'bare-node', target: 'bare', routes: ALL_ROUTES, expect: [200], load: 'hit',
    what: 'baseline A: node:http proxy, Bearer → SHA-256 → Map, keep-alive agent, pipe' },
  { name: 'nginx', target: 'nginx', routes: ALL_ROUTES, expect: [200], load: 'hit',
    what: 'baseline B: nginx 1 worker, proxy_pass keep-alive upstream, token map' },
  { name: 'tollgate', target: 'tollgate', routes: ALL_ROUTES, expect: [200], load: 'hit',
    what: 'Tollgate as shipped (dist/main.js, SQLite store, Production token, cache hit)' },
  { name: 'tollgate-flags', target: 'flags', routes: ALL_ROUTES, expect: [200], load: 'hit',
    what: 'Tollgate as shipped but with the node flags of --compare-flags (runs only with that option)' },
  { name: 'restricted', target: 'tollgate', routes: ['1k'], expect: [200], load: 'restricted',
    what: 'the same Tollgate, a token restricted to its route, \'*\' packages, 127.0.0.0/8 and 1,000,000 requests a minute' },
  { name: 'tollgate-noauth', target: 'noauth', routes: ['1k'], expect: [200], load: 'hit',
    what: 'the same gateway with authenticate() replaced by a fixed Production principal' },
  // The same process as `tollgate` (given a CI trust policy when this scenario runs), alternating
  // with it in the rounds: only the token differs.
  { name: 'tollgate-exchanged', target: 'tollgate', routes: ['1k'], expect: [200], load: 'exchanged',
    what: 'tollgate, with a Production token exchanged for a CI job\'s OIDC ID token instead of a created one' },
  // Pairs: two loads at the same time, half the connections each, both servers pinned to one CPU
  // (the load generator and the origin to the others), so that both see the same machine. Runs
  // seconds apart on shared cores moved the auth on/off ratio by ±15% from round to round; a pair
  // of identical Tollgates measured this way (--compare-flags with npm start's flags) read 0.95-1.09
  // per round and 0.999 overall.
  { name: 'auth-on-paired', target: 'tollgate', pair: 'auth', routes: ['1k'], expect: [200], load: 'hit',
    what: 'tollgate, side by side with auth-off-paired (pinned to one CPU, half the connections each)' },
  { name: 'auth-off-paired', target: 'noauth', pair: 'auth', routes: ['1k'], expect: [200], load: 'hit',
    what: 'tollgate-noauth, side by side with auth-on-paired' },
  // 10 MiB side by side: alternating 10 MiB runs of two processes moved their MiB/s ratio from 0.67
  // to 1.07 between runs of one build (100 requests a run; whatever else the machine does lands on
  // few requests). The CPU each spends per download, measured over the same seconds, is the steady figure.
  // Its Tollgate is a process of its own: slowed to one CPU it holds more bytes in flight, and the
  // peak RSS check is about tollgate's ordinary runs.
  // 1 KiB side by side for the same reason: the bare proxy's own CPU per request moved from 75 to
  // 137 µs between alternating runs of one build (and the load generator's and the origin's with
  // it), so the ratio of two runs seconds apart measured the machine as much as the gateways.
  { name: 'stream-tollgate-paired', target: 'stream', pair: 'stream', routes: ['1k', '10m'], expect: [200], load: 'hit',
    what: 'a second Tollgate as shipped (tollgate\'s data), side by side with stream-bare-paired (pinned to one CPU, half the connections each)' },
  { name: 'stream-bare-paired', target: 'bare', pair: 'stream', routes: ['1k', '10m'], expect: [200], load: 'hit',
    what: 'bare-node, side by side with stream-tollgate-paired' },
  { name: 'shipped-paired', target: 'tollgate', pair: 'flags', routes: ['1k', '10m'], expect: [200], load: 'hit',
    what: 'tollgate, side by side with flags-paired (runs only with --compare-flags)' },
  { name: 'flags-paired', target: 'flags', pair: 'flags', routes: ['1k', '10m'], expect: [200], load: 'hit',
    what: 'tollgate-flags, side by side with shipped-paired (runs only with --compare-flags)' },
  { name: 'redis-hit', target: 'redis', routes: ['1k'], expect: [200], load: 'redis-hit',
    what: 'Tollgate on the Redis store, one token (cache hit)' },
  { name: 'redis-miss', target: 'redis', routes: ['1k'], expect: [200], load: 'redis-miss',
    what: 'same process, N tokens in rotation with TOLLGATE_CACHE_MAX=1: every request a Redis read' },
  // The flood process runs with the per-address failure limiter off: all bench traffic comes from
  // 127.0.0.1, and with the limiter on the flood would measure its 429s, not the credential
  // check. Off, it models a flood spread over many addresses, which a per-address limit does
  // not stop: the case where the checksum and the negative cache must hold. `flood-limited`
  // shows the shipped limiter on the same flood from one address.
  { name: 'flood-malformed', target: 'flood', routes: ['1k'], expect: [401], load: 'malformed',
    what: 'malformed credentials (bad checksum, prefix, scheme, base64, length): 401, no store read (limiter off: many addresses)' },
  { name: 'flood-random', target: 'flood', routes: ['1k'], expect: [401], load: 'random',
    what: 'a fresh random token with a valid checksum per request: 401 after one store read each (limiter off: many addresses)' },
  { name: 'challenge', target: 'flood', routes: ['1k'], expect: [401], load: 'none',
    what: '401-challenge storm: no credential at all' },
  { name: 'flood-limited', target: 'limited', routes: ['1k'], expect: [401, 429], load: 'malformed',
    what: 'the malformed flood from one address against Tollgate as shipped: the failure limiter answers 429' },
];
// `keepalive` is not an autocannon scenario: bench/keepalive.mjs opens N idle kept-alive connections
// to a fresh Tollgate and a fresh bare proxy and reads their RSS (bench/README.md).
const SCENARIO_NAMES = [...SCENARIOS.map((s) => s.name), 'keepalive'];

function parseCommandLine() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      routes: { type: 'string' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      'requests-large': { type: 'string' },
      'max-large': { type: 'string' },
      connections: { type: 'string' },
      'miss-tokens': { type: 'string' },
      workers: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      'keep-tmp': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'compare-flags': { type: 'string' },
      'compare-build': { type: 'string' },
      'keepalive-connections': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE.replace('SCENARIO_NAMES', SCENARIO_NAMES.join(', '))}\n`);
    process.exit(0);
  }
  /**
   * @template {number | undefined} F
   * @param {'rounds' | 'duration' | 'requests-large' | 'max-large' | 'connections' | 'miss-tokens' | 'workers' | 'keepalive-connections'} name
   * @param {F} fallback
   * @returns {number | F}
   */
  const num = (name, fallback, min = 1) => {
    if (values[name] === undefined) return fallback;
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n < min) usage(`--${name} must be a number ≥ ${min}, got "${values[name]}"`);
    return n;
  };
  /**
   * @template {string} T
   * @param {'only' | 'routes'} name
   * @param {T[]} allowed
   * @returns {T[]}
   */
  const list = (name, allowed) => {
    if (values[name] === undefined) return allowed;
    const items = values[name]
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = items.filter((i) => !(/** @type {string[]} */ (allowed).includes(i)));
    if (unknown.length > 0 || items.length === 0)
      usage(`--${name}: unknown ${unknown.join(', ') || '(empty)'}; choose from ${allowed.join(', ')}`);
    return allowed.filter((a) => items.includes(a));
  };
  const quick = values.quick;
  const compareWords =
    values['compare-flags'] === undefined ? undefined : values['compare-flags'].split(/\s+/).filter(Boolean);
  const isSetting = (/** @type {string} */ w) => /^[A-Z_][A-Z0-9_]*=/.test(w);
  if (compareWords?.some((w) => !w.startsWith('--') && !isSetting(w))) {
    usage(
      `--compare-flags takes node flags (--name or --name=value) and NAME=value settings, got "${values['compare-flags']}"`,
    );
  }
  const compareBuild = values['compare-build'] === undefined ? undefined : path.resolve(values['compare-build']);
  if (compareBuild !== undefined && !existsSync(path.join(compareBuild, 'main.js')))
    usage(`--compare-build: ${compareBuild} has no main.js (give a dist/ directory after \`npm run build\`)`);
  const compareFlags =
    compareWords?.filter((w) => w.startsWith('--')) ??
    (compareBuild === undefined ? undefined : [...SHIPPED_NODE_FLAGS]);
  const compareEnv =
    compareWords &&
    Object.fromEntries(
      compareWords.filter(isSetting).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
    );
  let only = list('only', SCENARIO_NAMES);
  if (compareFlags === undefined) {
    // tollgate-flags, and pairs with a tollgate-flags member
    const flagPairs = new Set(SCENARIOS.filter((s) => s.target === 'flags' && s.pair).map((s) => s.pair));
    const needFlags = SCENARIOS.filter((s) => s.target === 'flags' || flagPairs.has(s.pair)).map((s) => s.name);
    if (values.only !== undefined && only.some((n) => needFlags.includes(n)))
      usage(`${needFlags.join(', ')} run only with --compare-flags`);
    only = only.filter((n) => !needFlags.includes(n));
  }
  return {
    quick,
    only,
    compareFlags,
    compareEnv,
    compareBuild,
    routes: list('routes', ALL_ROUTES),
    rounds: Math.floor(num('rounds', quick ? 1 : 2)),
    durationS: num('duration', quick ? 1 : 5, 0.5),
    connections: Math.floor(num('connections', 50)),
    requestsLarge: values['requests-large'] === undefined ? undefined : Math.floor(num('requests-large', 0)),
    maxLargeS: num('max-large', quick ? 20 : 60, 1),
    missTokens: Math.floor(num('miss-tokens', quick ? 500 : 2000, 10)),
    workers: Math.floor(num('workers', 1)),
    keepaliveConnections: Math.floor(num('keepalive-connections', quick ? 2000 : 10_000)),
    // Warm-up per scenario: this many requests (JIT tiers, pools, caches), cut off after warmupS.
    warmupRequests: quick ? 1000 : 4000,
    warmupS: quick ? 2 : 6,
    write: !values['no-write'],
    keepTmp: values['keep-tmp'],
    profile: values.profile,
  };
}

/** @param {string} message @returns {never} */
function usage(message) {
  process.stderr.write(`bench: ${message}\n\n${USAGE.replace('SCENARIO_NAMES', SCENARIO_NAMES.join(', '))}\n`);
  process.exit(2);
}

// ── Set-up ───────────────────────────────────────────────────────────────────────────────────
// requestsLarge is a number from the next line on.
const opts = /** @type {ReturnType<typeof parseCommandLine> & { requestsLarge: number }} */ (parseCommandLine());
opts.requestsLarge ??= opts.connections * (opts.quick ? 1 : 2);
if (!existsSync(path.join(DIST, 'main.js'))) {
  process.stderr.write('bench: dist/main.js is missing; run `npm run build` first (npm run bench does)\n');
  process.exit(2);
}
/** The compiled module at dist/<rel>. @param {string} rel @returns {Promise<any>} */
const distImport = (rel) => import(pathToFileURL(path.join(DIST, rel)).href);
const { generateToken } = /** @type {typeof import('../src/tokens/format.js')} */ (
  await distImport('tokens/format.js')
);

const scenarios = SCENARIOS.filter((s) => opts.only.includes(s.name) && s.routes.some((r) => opts.routes.includes(r)));
const neededTargets = new Set(scenarios.map((s) => s.target));
/** @type {Map<string, string>} */
const skipped = new Map(); // scenario name -> reason

const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-bench-'));
// Hard deadline for everything this run starts: generous, but nothing outlives it.
const plannedS = estimateSeconds();
const deadlineMs = Date.now() + Math.max(10 * 60_000, plannedS * 3 * 1000);
const group = createProcessGroup({ tmpDir, deadlineMs, keepTmp: opts.keepTmp });
/** @type {autocannon.Instance | undefined} */
let currentLoad;
/** @type {Promise<void> | undefined} */
let cleaningUp;
/** @type {string | undefined} */
let interrupted;

async function cleanup() {
  cleaningUp ??= (async () => {
    currentLoad?.stop();
    await group.stopAll(profileDir ? 15_000 : 3000);
    if (profileDir) log(`CPU profiles: ${path.relative(ROOT, profileDir)}/ (open in Chrome DevTools or speedscope)`);
    if (!opts.keepTmp) rmSync(tmpDir, { recursive: true, force: true });
    else process.stderr.write(`bench: temp dir kept: ${tmpDir}\n`);
  })();
  return cleaningUp;
}
process.on('exit', () => group.killAllNow());
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
  process.once(signal, () => {
    interrupted = signal;
    process.stderr.write(`\nbench: ${signal}, stopping every child process\n`);
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}
process.on('uncaughtException', (err) => {
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  void cleanup().finally(() => process.exit(1));
});

const log = (/** @type {string} */ msg) => process.stderr.write(`${msg}\n`);
const profileDir = opts.profile
  ? path.join(RESULTS_DIR, 'profiles', new Date().toISOString().replace(/[:.]/g, '-'))
  : undefined;
if (profileDir) mkdirSync(profileDir, { recursive: true });
/** Node flags for a server child: --cpu-prof when profiling (written when it exits on SIGTERM). */
const nodeArgs = (/** @type {string} */ name) =>
  profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TOLLGATE_')));

function estimateSeconds() {
  let s = 15;
  for (const route of opts.routes) {
    // A 10 MiB run is bounded by a request count; guess 150 MiB/s for the estimate.
    const perRun = (route === '10m' ? Math.min(opts.maxLargeS, (opts.requestsLarge * 10) / 150) : opts.durationS) + 0.5;
    s += opts.rounds * perRun * SCENARIOS.filter((x) => opts.only.includes(x.name) && x.routes.includes(route)).length;
  }
  // keepalive: two fresh processes per round, ~20 s each for 10,000 connections
  const keepalive = opts.only.includes('keepalive') ? opts.rounds * 2 * (8 + opts.keepaliveConnections / 1000) : 0;
  return s + keepalive + scenarioCount() * (opts.warmupS / 2 + 0.5);
}

function scenarioCount() {
  return SCENARIOS.filter((x) => opts.only.includes(x.name) && x.routes.some((r) => opts.routes.includes(r))).length;
}

/**
 * Runs the CLI as an operator would; returns the plaintext Production token.
 * @param {NodeJS.ProcessEnv} env
 * @param {string} name
 * @param {string[]} [restrictions] token create's restriction flags
 * @returns {string}
 */
function cliCreateToken(env, name, restrictions = []) {
  const out = execFileSync(
    NODE,
    [
      path.join(ROOT, 'bin', 'tollgate.js'),
      'token',
      'create',
      '--name',
      name,
      '--type',
      'production',
      ...restrictions,
      '--json',
    ],
    {
      env,
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return JSON.parse(out).token;
}

/**
 * @param {{ port: number, adminPort: number, dataDir: string, redisUrl?: string, extra?: Record<string, string> }} options
 * @returns {Record<string, string | undefined>}
 */
function tollgateEnv({ port, adminPort, dataDir, redisUrl, extra = {} }) {
  return {
    ...baseEnv,
    TOLLGATE_HOST: '127.0.0.1',
    TOLLGATE_PORT: String(port),
    TOLLGATE_ADMIN_HOST: '127.0.0.1',
    TOLLGATE_ADMIN_PORT: String(adminPort),
    TOLLGATE_UPSTREAM: `http://127.0.0.1:${targets.origin.port}/`,
    TOLLGATE_DATA_DIR: dataDir,
    TOLLGATE_LOG_LEVEL: 'info',
    TOLLGATE_SHUTDOWN_GRACE_MS: '1000',
    TOLLGATE_WORKERS: String(opts.workers),
    ...(redisUrl ? { TOLLGATE_REDIS_URL: redisUrl } : {}),
    ...extra,
  };
}

/**
 * A process the bench measures (or Redis, which has no pids()).
 * @typedef {object} Target
 * @property {number} port
 * @property {import('./lib/procs.mjs').Child} entry
 * @property {() => (number | undefined)[]} [pids] The processes whose CPU counts.
 * @property {number} [adminPort]
 * @property {Record<string, string | undefined>} [env]
 * @property {string} [dataDir]
 * @property {string} [url]
 */

/** name -> { port, pids(), entry, adminPort?, ... } @type {Record<string, Target>} */
const targets = {};
/** @type {{ hit: string | undefined, restricted: string | undefined, exchanged: string | undefined, floodHit: string | undefined, redisHit: string | undefined, redisMiss: string[] }} */
const tokens = {
  hit: undefined,
  restricted: undefined,
  exchanged: undefined,
  floodHit: undefined,
  redisHit: undefined,
  redisMiss: [],
};

async function startOrigin() {
  const port = await freePort();
  const entry = group.start('origin', NODE, [
    ...nodeArgs('origin'),
    path.join(BENCH_DIR, 'lib', 'origin.mjs'),
    String(port),
  ]);
  await waitReady(entry, () => httpGet(`http://127.0.0.1:${port}/__stats`), { group });
  targets.origin = { port, entry, pids: () => [entry.pid] };
}

/**
 * @param {string} name
 * @param {{ script?: string, redisUrl?: string, extra?: Record<string, string>, tokenNames?: string[],
 *   nodeFlags?: readonly string[], settings?: Record<string, string>, dataDir?: string }} [options]
 */
async function startTollgate(
  name,
  {
    script = path.join(DIST, 'main.js'),
    redisUrl,
    extra,
    tokenNames = [],
    nodeFlags = SHIPPED_NODE_FLAGS,
    settings = {},
    dataDir = path.join(tmpDir, `${name}-data`),
  } = {},
) {
  const port = await freePort();
  const adminPort = await freePort();
  mkdirSync(dataDir, { recursive: true });
  const env = { ...tollgateEnv({ port, adminPort, dataDir, redisUrl, extra }), ...SHIPPED_ENV, ...settings };
  const created = tokenNames.map((tokenName) => cliCreateToken(env, tokenName));
  const entry = group.start(name, NODE, [...nodeArgs(name), ...nodeFlags, script], { env, cwd: ROOT });
  await waitTollgateReady(entry, { port, adminPort }, group);
  // With TOLLGATE_WORKERS > 1 the work happens in the primary's children: count them all.
  targets[name] = { port, adminPort, entry, env, dataDir, pids: () => [entry.pid, ...childPids(entry.pid)] };
  return created;
}

async function startRedis() {
  const port = await freePort();
  const dir = path.join(tmpDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const entry = group.start(
    'redis-server',
    'redis-server',
    [
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
      '--daemonize',
      'no',
      '--loglevel',
      'warning',
      '--protected-mode',
      'yes',
    ],
    { stdout: 'log' },
  );
  await waitReady(entry, () => redisPing(port), { group, what: 'redis-server' });
  return { port, entry, url: `redis://127.0.0.1:${port}` };
}

async function startAll() {
  await startOrigin();
  /** @type {Promise<unknown>[]} */
  const tasks = [];
  const needsHitToken = ['bare', 'nginx', 'tollgate', 'flags', 'noauth', 'stream'].some((t) => neededTargets.has(t));
  if (needsHitToken || neededTargets.has('tollgate')) {
    // tollgate-exchanged: a trust policy for a bench issuer, and one token exchanged at the real endpoint.
    const issuer = scenarios.some((s) => s.load === 'exchanged') ? await startBenchIssuer() : undefined;
    const configFile = path.join(tmpDir, 'tollgate-ci.json');
    if (issuer) writeFileSync(configFile, JSON.stringify({ ciProviders: [issuer.policy] }));
    [tokens.hit] = await startTollgate('tollgate', {
      tokenNames: ['bench-hit'],
      ...(issuer ? { extra: { TOLLGATE_CONFIG: configFile } } : {}),
    });
    if (issuer) {
      try {
        tokens.exchanged = await issuer.exchange(`http://127.0.0.1:${targets.tollgate.port}`);
      } finally {
        await issuer.close();
      }
    }
    if (scenarios.some((s) => s.load === 'restricted')) {
      // Every kind of restriction, each one that lets the bench's requests through: the cost of
      // checking them, not of refusing. (The bench's paths name no package, so the package
      // pattern is looked at but has nothing to match.)
      const flags = ['--route', '/', '--package', '*', '--allow-ip', '127.0.0.0/8', '--rate', '1000000/min'];
      tokens.restricted = cliCreateToken(
        /** @type {NodeJS.ProcessEnv} */ (targets.tollgate.env),
        'bench-restricted',
        flags,
      );
    }
  }
  if (neededTargets.has('stream')) tasks.push(startTollgate('stream', { dataDir: targets.tollgate.dataDir }));
  if (neededTargets.has('flags')) {
    // The same data dir (and so the same token) as tollgate: the two differ in their node flags
    // and settings only.
    tasks.push(
      startTollgate('flags', {
        script: opts.compareBuild === undefined ? undefined : path.join(opts.compareBuild, 'main.js'),
        nodeFlags: opts.compareFlags,
        settings: opts.compareEnv,
        dataDir: targets.tollgate.dataDir,
      }),
    );
  }
  if (neededTargets.has('noauth') && opts.workers > 1) {
    for (const scenario of scenarios) {
      if (scenario.target === 'noauth')
        skipped.set(scenario.name, `the auth-off server is one process; not comparable with --workers=${opts.workers}`);
    }
  } else if (neededTargets.has('noauth')) {
    tasks.push(startTollgate('noauth', { script: path.join(BENCH_DIR, 'lib', 'tollgate-noauth.mjs') }));
  }
  if (neededTargets.has('flood')) {
    tasks.push(
      startTollgate('flood', {
        tokenNames: ['bench-flood-real'],
        extra: { TOLLGATE_AUTH_FAILURE_BURST: '0' }, // limiter off: see the flood scenarios
      }).then(([t]) => {
        tokens.floodHit = t;
      }),
    );
  }
  if (neededTargets.has('limited')) tasks.push(startTollgate('limited'));
  if (neededTargets.has('bare')) {
    tasks.push(
      (async () => {
        const port = await freePort();
        const entry = group.start(
          'bare-node',
          NODE,
          [
            ...nodeArgs('bare-node'),
            path.join(BENCH_DIR, 'lib', 'bare-proxy.mjs'),
            String(port),
            String(targets.origin.port),
          ],
          {
            env: { ...baseEnv, BENCH_TOKENS: tokens.hit }, // not on the command line, where ps shows it
          },
        );
        await waitReady(entry, () => tcpProbe(port), { group });
        targets.bare = { port, entry, pids: () => [entry.pid] };
      })(),
    );
  }
  if (neededTargets.has('nginx')) {
    const reason = nginxUnavailable();
    if (reason) {
      for (const s of scenarios) if (s.target === 'nginx') skipped.set(s.name, reason);
    } else {
      tasks.push(
        (async () => {
          const port = await freePort();
          const dir = path.join(tmpDir, 'nginx');
          const { args, errorLog } = writeNginxConfig({
            dir,
            port,
            originPort: targets.origin.port,
            tokens: [/** @type {string} */ (tokens.hit)],
          });
          const entry = group.start('nginx', NGINX_BIN, args, { stdout: 'log' });
          try {
            await waitReady(entry, () => tcpProbe(port), { group });
          } catch (err) {
            const errors = existsSync(errorLog)
              ? readFileSync(errorLog, 'utf8').trim().split('\n').slice(-10).join('\n')
              : '';
            throw new Error(`nginx is installed but did not start: ${/** @type {Error} */ (err).message}\n${errors}`, {
              cause: err,
            });
          }
          targets.nginx = { port, entry, pids: () => [entry.pid, ...childPids(entry.pid)] };
        })(),
      );
    }
  }
  if (neededTargets.has('redis')) {
    tasks.push(
      (async () => {
        const redis = await startRedis();
        targets.redisServer = redis;
        // The real tokens of the miss scenario, created through the same store code as the CLI.
        const env = tollgateEnv({
          port: 1,
          adminPort: 1,
          dataDir: path.join(tmpDir, 'redis-data'),
          redisUrl: redis.url,
        });
        const { loadConfig } = /** @type {typeof import('../src/config/index.js')} */ (
          await distImport('config/index.js')
        );
        const { openTokenStore } = /** @type {typeof import('../src/tokens/index.js')} */ (
          await distImport('tokens/index.js')
        );
        const { createToken } = /** @type {typeof import('../src/tokens/service.js')} */ (
          await distImport('tokens/service.js')
        );
        const loaded = loadConfig(env, ROOT);
        if (!loaded.ok) throw new Error(`bench Redis config rejected:\n${loaded.problems.join('\n')}`);
        const store = await openTokenStore(loaded.config);
        try {
          for (let i = 0; i < opts.missTokens; i++) {
            const { token } = await createToken(store, {
              name: `bench-miss-${i}`,
              type: 'production',
              expires: 'never',
              createdBy: 'bench',
            });
            tokens.redisMiss.push(`Bearer ${token}`);
          }
        } finally {
          await store.close();
        }
        // Every request a miss: the positive cache holds one entry and the requests cycle through
        // N tokens, so each finds another token there. The miss path itself is the shipped one.
        [tokens.redisHit] = await startTollgate('redis', {
          redisUrl: redis.url,
          extra: { TOLLGATE_CACHE_MAX: '1' },
          tokenNames: ['bench-redis-hit'],
        });
      })(),
    );
  }
  await Promise.all(tasks);
}

// ── Load ─────────────────────────────────────────────────────────────────────────────────────
function malformedHeaders() {
  const valid = generateToken('production');
  const flip = (/** @type {string} */ s, /** @type {number} */ i) =>
    s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  return [
    `Bearer ${flip(valid, valid.length - 1)}`, // checksum does not match
    `Bearer ${flip(valid, 10)}`, // body changed, checksum stale
    `Bearer tgx_${valid.slice(4)}`, // unknown prefix
    `Bearer ${valid.slice(0, -1)}`, // one character short
    'Bearer not-a-tollgate-token',
    `Basic ${Buffer.from(`project:${flip(valid, 20)}`).toString('base64')}`, // Basic, bad checksum
    'Basic %%%not-base64%%%',
    `Token ${valid}`, // unknown scheme
    `Bearer ${'x'.repeat(1100)}`, // longer than any credential
  ];
}

/**
 * autocannon options for one run of a scenario on a route. `bound` is { durationS } or
 * { amount } (10 MiB: a request count, so no run ends with a wave of half-sent artifacts).
 * @typedef {{ durationS?: number, amount?: number, maxS?: number }} Bound
 * @param {Scenario} scenario
 * @param {Route} route
 * @param {Bound} bound
 * @returns {autocannon.Options}
 */
function loadOptions(scenario, route, bound, connections = opts.connections) {
  const target = targets[scenario.target];
  const base = {
    url: `http://127.0.0.1:${target.port}${ROUTES[route].path}`,
    connections,
    pipelining: 1,
    ...(bound.amount ? { amount: bound.amount } : { duration: bound.durationS }),
    timeout: 30,
  };
  switch (scenario.load) {
    case 'none':
      return base;
    case 'hit':
      return { ...base, headers: { authorization: `Bearer ${tokens.hit}` } };
    case 'restricted':
      return { ...base, headers: { authorization: `Bearer ${tokens.restricted}` } };
    case 'exchanged':
      return { ...base, headers: { authorization: `Bearer ${tokens.exchanged}` } };
    case 'redis-hit':
      return { ...base, headers: { authorization: `Bearer ${tokens.redisHit}` } };
    case 'redis-miss': {
      // One counter shared by every connection: consecutive requests never share a token.
      let i = 0;
      const list = tokens.redisMiss;
      return {
        ...base,
        requests: [
          {
            method: 'GET',
            setupRequest: (req) => ({ ...req, headers: { ...req.headers, authorization: list[i++ % list.length] } }),
          },
        ],
      };
    }
    case 'malformed':
      return {
        ...base,
        requests: malformedHeaders().map((authorization) => ({ method: 'GET', headers: { authorization } })),
      };
    case 'random':
      return {
        ...base,
        requests: [
          {
            method: 'GET',
            setupRequest: (req) => ({
              ...req,
              headers: { ...req.headers, authorization: `Bearer ${generateToken('production')}` },
            }),
          },
        ],
      };
    default:
      throw new Error(`unknown load ${String(scenario.load)}`);
  }
}

/**
 * One autocannon run; a count-bounded run is stopped after maxS seconds all the same.
 *
 * Resolves with autocannon's result and `elapsedS`, the run's length. autocannon notices that a
 * count-bounded run is done only at its next one-second sample, so its `duration` is rounded up
 * to whole seconds: a 10 MiB run that took 2.05 s read as 3 s, and its MiB/s as 331 against the
 * 497 of a run that took 1.95 s. For such a run `elapsedS` ends at the last response instead.
 * @typedef {autocannon.Result & { elapsedS: number }} RunResult
 * @param {autocannon.Options} options
 * @param {number | undefined} maxS
 * @returns {Promise<RunResult>}
 */
function runAutocannon(options, maxS, quiet = false) {
  return new Promise((resolve, reject) => {
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    const startedAt = performance.now();
    let lastResponseAt = startedAt;
    currentLoad = autocannon(options, (/** @type {Error | null} */ err, result) => {
      clearTimeout(timer);
      currentLoad = undefined;
      if (err) reject(err);
      else resolve({ ...result, elapsedS: options.amount ? (lastResponseAt - startedAt) / 1000 : result.duration });
    });
    if (options.amount)
      currentLoad.on('response', () => {
        lastResponseAt = performance.now();
      });
    if (maxS) {
      timer = setTimeout(() => {
        if (!quiet) log(`    (run stopped after ${maxS} s, before its ${options.amount} requests completed)`);
        currentLoad?.stop();
      }, maxS * 1000);
    }
  });
}

/** @type {Record<string, boolean>} */
const metricsAvailable = {}; // target name -> boolean

/** @param {string} targetName */
async function targetCounters(targetName) {
  const target = targets[targetName];
  if (!target?.adminPort) return null;
  const counters = authCounters(await scrapeMetrics(target.adminPort));
  metricsAvailable[targetName] = counters !== null;
  return counters;
}

/**
 * One measured run: CPU and counters around an autocannon run.
 * @param {Scenario} scenario
 * @param {Route} route
 * @param {number} round
 * @param {{ bound: Bound, record?: boolean }} options
 */
async function measure(scenario, route, round, { bound, record = true } = /** @type {{ bound: Bound }} */ ({})) {
  const runs = await measureTogether([scenario], route, round, { bound, record });
  return runs?.[0];
}

/**
 * Runs the scenarios' loads at the same time (the connections shared out among them) and
 * measures each target's CPU over the same seconds. With one scenario, a plain run.
 * @param {Scenario[]} list
 * @param {Route} route
 * @param {number} round
 * @param {{ bound: Bound, record?: boolean }} options
 */
async function measureTogether(list, route, round, { bound, record = true } = /** @type {{ bound: Bound }} */ ({})) {
  /** @type {Probe[]} */
  const before = [];
  for (const scenario of list) before.push(await probe(scenario));
  const originBefore = await originStats(targets.origin.port);
  const selfBefore = process.cpuUsage();
  const connections = Math.max(1, Math.floor(opts.connections / list.length));
  const maxS = bound.amount ? (bound.maxS ?? opts.maxLargeS) : undefined;
  const pinned = list.length > 1 && !pinning ? pinTogether(before.flatMap((b) => b.pids)) : undefined;
  const results = await Promise.all(
    list.map((scenario) => runAutocannon(loadOptions(scenario, route, bound, connections), maxS, !record)),
  );
  pinned?.undo();
  const selfCpu = process.cpuUsage(selfBefore);
  /** @type {Probe[]} */
  const after = [];
  for (const [i, scenario] of list.entries()) after.push(await probe(scenario, before[i].pids));
  const originAfter = await originStats(targets.origin.port);
  if (!record) return undefined;
  return list.map((scenario, i) =>
    runRecord(
      scenario,
      route,
      round,
      results[i],
      /** @type {Reading} */ (before[i]),
      /** @type {Reading} */ (after[i]),
      {
        // The origin's counts and the load generator's CPU are shared by loads run together.
        selfCpu,
        originBefore,
        originAfter,
        together: list.length,
      },
    ),
  );
}

/** Why loads run together are not pinned apart (see the pairs in SCENARIOS), or undefined. */
const pinning = pinningUnavailable();

/**
 * Pins `pids` (the servers of a pair) to the last CPU and the load generator, the origin and
 * Redis to the others, until undo().
 * @param {(number | undefined)[]} pids
 */
function pinTogether(pids) {
  const cpus = allowedCpus();
  const others = [process.pid, targets.origin.entry.pid, targets.redisServer?.entry.pid].filter(Boolean);
  pin(pids, String(cpus.at(-1)));
  pin(others, cpus.slice(0, -1).join(','));
  return { undo: () => pin([...pids, ...others], cpus.join(',')) };
}

/**
 * @typedef {Awaited<ReturnType<typeof probe>>} Probe
 * @typedef {object} Reading A probe's reading as runRecord uses it (NaN where a process had gone).
 * @property {(number | undefined)[]} pids
 * @property {import('./lib/probes.mjs').Counters | null} counters
 * @property {Calls} redisCalls
 * @property {{ user: number, sys: number }} split
 * @property {number} cpu
 * @property {number} origin
 * @property {number} redis
 * @property {Mem} mem
 * @typedef {ReturnType<typeof sumMem>} Mem
 * @typedef {Record<string, number>} Calls Redis commands by name, and how often each ran.
 */

/**
 * CPU, memory and counters of a scenario's target (and Redis), before or after a run.
 * @param {Scenario} scenario
 * @param {(number | undefined)[]} [pids]
 */
async function probe(scenario, pids) {
  const target = targets[scenario.target];
  const redis = scenario.target === 'redis' ? targets.redisServer : undefined;
  if (!pids) {
    const counters = await targetCounters(scenario.target);
    const redisCalls = redis ? await redisCommandCalls(redis.port) : undefined;
    if (target.entry?.exited) {
      throw new Error(
        `${target.entry.name} (pid ${target.entry.pid}) has exited (code ${target.entry.exited.code}, signal ${target.entry.exited.signal}) ` +
          `before ${scenario.name}:\n${group.logTail(target.entry, 20)}`,
      );
    }
    const now = /** @type {NonNullable<Target['pids']>} */ (target.pids)();
    return {
      pids: now,
      counters,
      redisCalls,
      split: sumCpuSplitUs(now),
      cpu: sumCpuUs(now),
      origin: cpuUs(targets.origin.entry.pid),
      redis: redis ? cpuUs(redis.entry.pid) : 0,
    };
  }
  const cpu = sumCpuUs(pids);
  const origin = cpuUs(targets.origin.entry.pid);
  const redisCpu = redis ? cpuUs(redis.entry.pid) : 0;
  const split = sumCpuSplitUs(pids);
  const mem = sumMem(/** @type {NonNullable<Target['pids']>} */ (target.pids)());
  const redisCalls = redis ? await redisCommandCalls(redis.port) : undefined;
  const counters = await targetCounters(scenario.target);
  return { pids, counters, redisCalls, split, cpu, origin, redis: redisCpu, mem };
}

/**
 * @param {Scenario} scenario
 * @param {Route} route
 * @param {number} round
 * @param {RunResult} result
 * @param {Reading} before
 * @param {Reading} after
 * @param {{ selfCpu: NodeJS.CpuUsage, originBefore: Record<string, number>, originAfter: Record<string, number>, together: number }} shared
 */
function runRecord(scenario, route, round, result, before, after, { selfCpu, originBefore, originAfter, together }) {
  const redis = scenario.target === 'redis';
  const requests = result.requests.total;
  const status = Object.fromEntries(
    Object.entries(result.statusCodeStats ?? {}).map(([k, v]) => [k, /** @type {number} */ (v.count)]),
  );
  const expected = expectedStatuses(scenario).reduce((n, code) => n + (status[String(code)] ?? 0), 0);
  const responses = Object.values(status).reduce((a, b) => a + b, 0);
  const perReq = (/** @type {number} */ us) => (requests > 0 ? us / requests : NaN);
  return {
    scenario: scenario.name,
    route,
    round,
    durationS: result.elapsedS,
    requests,
    requestsSent: result.requests.sent,
    bytes: result.throughput.total,
    reqPerSec: requests / result.elapsedS,
    mibPerSec: result.throughput.total / result.elapsedS / 1048576,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    status,
    expectedStatus: expectedStatuses(scenario),
    unexpected: responses - expected,
    errors: result.errors,
    timeouts: result.timeouts,
    cpuUs: after.cpu - before.cpu,
    cpuUsPerReq: perReq(after.cpu - before.cpu),
    // The same, split: a run whose server spends more in the kernel for the same calls shows here.
    cpuUserUsPerReq: perReq(after.split.user - before.split.user),
    cpuSysUsPerReq: perReq(after.split.sys - before.split.sys),
    originCpuUsPerReq: perReq((after.origin - before.origin) / together),
    redisCpuUsPerReq: redis ? perReq(after.redis - before.redis) : undefined,
    loadGenCpuUsPerReq: perReq((selfCpu.user + selfCpu.system) / together),
    peakRssMiB: after.mem.maxHwmMiB,
    peakRssSumMiB: after.mem.hwmMiB,
    rssMiB: after.mem.rssMiB,
    processes: before.pids.length,
    // Loads run together share the origin: these count all of them (the checks on them hold
    // for the sum as for one run).
    originRequests: originAfter.requests - originBefore.requests,
    originSawAuthorization: originAfter.withAuthorization - originBefore.withAuthorization,
    // The stats probe itself opens one connection per reading.
    originConnections: originAfter.connections - originBefore.connections - 1,
    redisHgetall: redis ? (after.redisCalls.hgetall ?? 0) - (before.redisCalls.hgetall ?? 0) : undefined,
    redisCommands: redis ? sumValues(after.redisCalls) - sumValues(before.redisCalls) : undefined,
    auth: diffCounters(before.counters, after.counters),
  };
}

/** @typedef {ReturnType<typeof runRecord>} Run */
const expectedStatuses = (/** @type {Scenario} */ scenario) => [scenario.expect].flat();
const sumValues = (/** @type {Record<string, number>} */ o) =>
  Object.entries(o)
    .filter(([k]) => k !== 'info')
    .reduce((a, [, v]) => a + v, 0);

/** Aborts the bench when a run that should have been clean was not. @param {Run} run @param {Scenario} scenario */
function assertClean(run, scenario) {
  if (run.unexpected === 0 && run.errors === 0 && run.requests > 0) return;
  const target = targets[scenario.target];
  const tail = target?.entry ? group.logTail(target.entry, 20) : '';
  const exited = target?.entry?.exited;
  const died = exited
    ? `\n${target.entry.name} (pid ${target.entry.pid}) EXITED during the run: code ${exited.code}, signal ${exited.signal}`
    : '';
  throw new Error(
    `${scenario.name} ${run.route} round ${run.round}: expected only ${expectedStatuses(scenario).join(' or ')}, got status ${JSON.stringify(run.status)}, ` +
      `${run.errors} socket errors, ${run.timeouts} timeouts, ${run.requests} requests.${died}\n--- ${target?.entry?.name} stderr (tail) ---\n${tail}`,
  );
}

// ── Preflight: each target answers correctly before anything is measured ─────────────────────
async function preflight() {
  /** @type {Record<string, Buffer>} */
  const originBodies = {};
  for (const route of opts.routes) {
    const res = await httpGet(`http://127.0.0.1:${targets.origin.port}${ROUTES[route].path}`);
    if (res.status !== 200 || res.body.length !== ROUTES[route].bytes)
      throw new Error(`origin ${route}: ${res.status}, ${res.body.length} bytes`);
    originBodies[route] = res.body;
  }
  /** @param {string} name @param {Record<string, string | undefined>} headers @param {Route} route @param {number} status */
  const check = async (name, headers, route, status) => {
    const target = targets[name];
    const res = await httpGet(`http://127.0.0.1:${target.port}${ROUTES[route].path}`, headers, { timeoutMs: 15_000 });
    if (res.status !== status)
      throw new Error(
        `preflight ${name} ${route}: expected ${status}, got ${res.status} ${res.body.toString('utf8', 0, 200)}`,
      );
    if (status === 200 && !res.body.equals(originBodies[route]))
      throw new Error(`preflight ${name} ${route}: body differs from the origin's (${res.body.length} bytes)`);
    if (status === 401 && !res.headers['www-authenticate'] && name !== 'bare') {
      throw new Error(`preflight ${name}: 401 without WWW-Authenticate`);
    }
  };
  const bearer = (/** @type {string | undefined} */ t) => ({ authorization: `Bearer ${t}` });
  for (const name of ['bare', 'nginx', 'tollgate', 'flags', 'noauth']) {
    if (!targets[name]) continue;
    for (const route of opts.routes) await check(name, bearer(tokens.hit), route, 200);
    if (name !== 'noauth') await check(name, {}, '1k', 401);
  }
  if (tokens.exchanged) await check('tollgate', bearer(tokens.exchanged), '1k', 200);
  if (targets.flood) {
    await check('flood', bearer(tokens.floodHit), '1k', 200);
    await check('flood', {}, '1k', 401);
    for (const authorization of malformedHeaders()) await check('flood', { authorization }, '1k', 401);
    await check('flood', bearer(generateToken('production')), '1k', 401);
  }
  if (targets.limited) {
    await check('limited', {}, '1k', 401);
    await check('limited', { authorization: malformedHeaders()[0] }, '1k', 401);
  }
  if (targets.redis) {
    await check('redis', bearer(tokens.redisHit), '1k', 200);
    await check('redis', { authorization: tokens.redisMiss[0] }, '1k', 200);
    await check('redis', {}, '1k', 401);
  }
}

// ── Rounds ───────────────────────────────────────────────────────────────────────────────────
async function runAll() {
  /** @type {Run[]} */
  const runs = [];
  /** @type {EvictionCheck[]} */
  const evictionChecks = [];
  const active = scenarios.filter((s) => !skipped.has(s.name));

  // Warm-up (JIT, connection pools, caches): each scenario once, briefly, unrecorded.
  if (active.some((s) => s.pair)) {
    log(
      pinning
        ? `pairs run side by side NOT pinned (${pinning}): their ratios are as noisy as alternating runs`
        : `pairs run side by side with both servers pinned to CPU ${allowedCpus().at(-1)}, everything else to the other CPUs`,
    );
  }
  log(`warm-up: ${active.length} scenario(s) × ${opts.warmupRequests} requests (at most ${opts.warmupS} s each)`);
  for (const scenario of active) {
    const route =
      scenario.routes.includes('1k') && opts.routes.includes('1k')
        ? '1k'
        : scenario.routes.find((r) => opts.routes.includes(r));
    await measure(scenario, /** @type {Route} */ (route), 0, {
      bound: { amount: opts.warmupRequests, maxS: opts.warmupS },
      record: false,
    });
    await sleep(200);
  }

  for (const route of opts.routes) {
    const inRoute = active.filter((s) => s.routes.includes(route));
    if (inRoute.length === 0) continue;
    const bound = route === '10m' ? { amount: opts.requestsLarge } : { durationS: opts.durationS };
    for (let round = 1; round <= opts.rounds; round++) {
      const order = round % 2 === 1 ? inRoute : [...inRoute].reverse();
      const done = new Set();
      for (const scenario of order) {
        if (done.has(scenario)) continue;
        // A pair's members run together, when the first of them comes up.
        const together = scenario.pair ? order.filter((s) => s.pair === scenario.pair) : [scenario];
        if (scenario.name === 'flood-random') await evictionProbe('before');
        const measured = /** @type {Run[]} */ (await measureTogether(together, route, round, { bound }));
        for (const [i, run] of measured.entries()) {
          log(
            `  ${route.padEnd(4)} r${round} ${together[i].name.padEnd(16)} ${fmt(run.reqPerSec, 0).padStart(7)} req/s  p99 ${fmt(run.p99Ms, 1).padStart(6)} ms  ` +
              `${fmt(run.cpuUsPerReq, 0).padStart(6)} µs/req  ${fmt(run.mibPerSec, 1).padStart(7)} MiB/s`,
          );
          runs.push(run);
          assertClean(run, together[i]);
          done.add(together[i]);
        }
        if (scenario.name === 'flood-random')
          evictionChecks.push(/** @type {EvictionCheck} */ (await evictionProbe('after')));
        await sleep(300);
      }
    }
  }
  return { runs, evictionChecks };
}

/**
 * A flood of random tokens must not evict the real ones: the real token is used right before the
 * flood (so it is cached) and right after it; after the flood it must still be a cache hit.
 * @typedef {{ status: number | undefined, cacheHit: boolean | undefined }} EvictionCheck
 * @param {'before' | 'after'} phase
 * @returns {Promise<EvictionCheck | undefined>}
 */
async function evictionProbe(phase) {
  const url = `http://127.0.0.1:${targets.flood.port}${ROUTES['1k'].path}`;
  const headers = { authorization: `Bearer ${tokens.floodHit}` };
  if (phase === 'before') {
    await httpGet(url, headers);
    return undefined;
  }
  const before = await targetCounters('flood');
  const res = await httpGet(url, headers);
  const after = await targetCounters('flood');
  const d = diffCounters(before, after);
  return {
    status: res.status,
    cacheHit: d && d.cacheHits !== undefined ? d.cacheHits >= 1 && (d.cacheMisses ?? 0) === 0 : undefined,
  };
}

// ── Summary, ratios, checks ──────────────────────────────────────────────────────────────────
/** @param {number[]} xs */
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const sum = (/** @type {number[]} */ xs) => xs.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);

/** @typedef {ReturnType<typeof summarise>[number]} Summary */

/** @param {Run[]} runs */
function summarise(runs) {
  const out = [];
  for (const scenario of SCENARIOS) {
    for (const route of ALL_ROUTES) {
      const rs = runs.filter((r) => r.scenario === scenario.name && r.route === route);
      if (rs.length === 0) continue;
      const requests = sum(rs.map((r) => r.requests));
      const seconds = sum(rs.map((r) => r.durationS));
      const authSum = (/** @type {string} */ key) =>
        rs.every((r) => r.auth && r.auth[key] !== undefined)
          ? sum(rs.map((r) => /** @type {number} */ (/** @type {import('./lib/probes.mjs').Counters} */ (r.auth)[key])))
          : undefined;
      out.push({
        scenario: scenario.name,
        route,
        rounds: rs.length,
        requests,
        reqPerSec: requests / seconds,
        mibPerSec: sum(rs.map((r) => r.bytes)) / seconds / 1048576,
        p50Ms: median(rs.map((r) => r.p50Ms)),
        p99Ms: median(rs.map((r) => r.p99Ms)),
        cpuUsPerReq: sum(rs.map((r) => r.cpuUs)) / requests,
        originCpuUsPerReq: sum(rs.map((r) => r.originCpuUsPerReq * r.requests)) / requests,
        redisCpuUsPerReq:
          rs[0].redisCpuUsPerReq === undefined
            ? undefined
            : sum(rs.map((r) => /** @type {number} */ (r.redisCpuUsPerReq) * r.requests)) / requests,
        loadGenCpuUsPerReq: sum(rs.map((r) => r.loadGenCpuUsPerReq * r.requests)) / requests,
        peakRssMiB: Math.max(...rs.map((r) => r.peakRssMiB)),
        status: rs.reduce((acc, r) => {
          for (const [k, v] of Object.entries(r.status)) acc[k] = (acc[k] ?? 0) + v;
          return acc;
        }, /** @type {Record<string, number>} */ ({})),
        unexpected: sum(rs.map((r) => r.unexpected + r.errors)),
        originSawAuthorization: sum(rs.map((r) => r.originSawAuthorization)),
        originConnections: sum(rs.map((r) => r.originConnections)),
        maxOriginConnections: Math.max(...rs.map((r) => r.originConnections)),
        redisHgetallPerReq:
          rs[0].redisHgetall === undefined
            ? undefined
            : sum(rs.map((r) => /** @type {number} */ (r.redisHgetall))) / requests,
        storeReads: authSum('storeReads'),
        requestsSent: sum(rs.map((r) => r.requestsSent)),
        perRound: rs.map((r) => ({
          round: r.round,
          reqPerSec: r.reqPerSec,
          cpuUsPerReq: r.cpuUsPerReq,
          p99Ms: r.p99Ms,
          mibPerSec: r.mibPerSec,
        })),
      });
    }
  }
  return out;
}

/**
 * @typedef {{ id: string, num: [string, Route], den: [string, Route], field: 'reqPerSec' | 'cpuUsPerReq' | 'p99Ms' | 'mibPerSec',
 *   op?: '>=' | '<=', target?: number, aim?: number, note?: string, perRoundMedian?: boolean }} RatioDef
 * @typedef {{ id: string, value: number | null, target: string, result: string, why?: string, cpuNum: number | undefined,
 *   cpuDen: number | undefined, totals?: number, perRound?: number[], numerator?: string, denominator?: string, field?: string,
 *   aggregate?: string }} Ratio
 */

/** @type {RatioDef[]} */
// prettier-ignore
const RATIOS = [
  { id: 'tollgate/bare req/s 1k', num: ['tollgate', '1k'], den: ['bare-node', '1k'], field: 'reqPerSec', op: '>=', target: 0.9, aim: 0.95 },
  { id: 'tollgate/bare CPU/req 1k', num: ['tollgate', '1k'], den: ['bare-node', '1k'], field: 'cpuUsPerReq', op: '<=', target: 1.11, aim: 1.05 },
  { id: 'tollgate/bare p99 1k', num: ['tollgate', '1k'], den: ['bare-node', '1k'], field: 'p99Ms', op: '<=', target: 1.3 },
  { id: 'tollgate/nginx req/s 1k', num: ['tollgate', '1k'], den: ['nginx', '1k'], field: 'reqPerSec', note: 'nginx is the ceiling' },
  { id: 'tollgate/nginx CPU/req 1k', num: ['tollgate', '1k'], den: ['nginx', '1k'], field: 'cpuUsPerReq', note: 'nginx is the ceiling' },
  { id: 'bare/nginx req/s 1k', num: ['bare-node', '1k'], den: ['nginx', '1k'], field: 'reqPerSec', note: '≈0.3 under wrk (issue 6)' },
  { id: 'tollgate/bare req/s 100k', num: ['tollgate', '100k'], den: ['bare-node', '100k'], field: 'reqPerSec' },
  { id: 'tollgate/bare CPU/req 100k', num: ['tollgate', '100k'], den: ['bare-node', '100k'], field: 'cpuUsPerReq' },
  { id: 'tollgate/bare MiB/s 10m', num: ['tollgate', '10m'], den: ['bare-node', '10m'], field: 'mibPerSec', op: '>=', target: 0.9 },
  { id: 'tollgate/bare CPU/req 10m', num: ['tollgate', '10m'], den: ['bare-node', '10m'], field: 'cpuUsPerReq' },
  { id: 'tollgate/bare CPU/req 1k paired', num: ['stream-tollgate-paired', '1k'], den: ['stream-bare-paired', '1k'], field: 'cpuUsPerReq', op: '<=', target: 1.0, perRoundMedian: true },
  { id: 'tollgate/bare req/s 1k paired', num: ['stream-tollgate-paired', '1k'], den: ['stream-bare-paired', '1k'], field: 'reqPerSec', op: '>=', target: 1.0, perRoundMedian: true },
  { id: 'tollgate/bare CPU/req 10m paired', num: ['stream-tollgate-paired', '10m'], den: ['stream-bare-paired', '10m'], field: 'cpuUsPerReq', op: '<=', target: 1.0, perRoundMedian: true },
  { id: 'tollgate/nginx MiB/s 10m', num: ['tollgate', '10m'], den: ['nginx', '10m'], field: 'mibPerSec' },
  ...ALL_ROUTES.flatMap((route) => /** @type {RatioDef[]} */ ([
    { id: `flags/shipped CPU/req ${route}`, num: ['tollgate-flags', route], den: ['tollgate', route], field: 'cpuUsPerReq', note: '--compare-flags' },
    { id: `flags/shipped req/s ${route}`, num: ['tollgate-flags', route], den: ['tollgate', route], field: 'reqPerSec', note: '--compare-flags' },
  ])),
  ...(/** @type {Route[]} */ (['1k', '10m'])).map((route) => /** @type {RatioDef} */ (
    { id: `flags/shipped CPU/req ${route} paired`, num: ['flags-paired', route], den: ['shipped-paired', route], field: 'cpuUsPerReq', note: '--compare-flags', perRoundMedian: true }
  )),
  // The target is taken side by side (see the pairs in SCENARIOS); the alternating runs' ratio is
  // reported beside it.
  { id: 'auth on/off CPU/req 1k paired', num: ['auth-on-paired', '1k'], den: ['auth-off-paired', '1k'], field: 'cpuUsPerReq', op: '<=', target: 1.05, perRoundMedian: true },
  { id: 'auth on/off CPU/req 1k', num: ['tollgate', '1k'], den: ['tollgate-noauth', '1k'], field: 'cpuUsPerReq', note: 'alternating runs' },
  { id: 'auth on/off req/s 1k', num: ['tollgate', '1k'], den: ['tollgate-noauth', '1k'], field: 'reqPerSec' },
  // Restrictions are checked on the cached record: a restricted token costs what an unrestricted one does.
  { id: 'restricted/unrestricted req/s 1k', num: ['restricted', '1k'], den: ['tollgate', '1k'], field: 'reqPerSec', note: 'same process, alternating runs' },
  { id: 'restricted/unrestricted CPU/req 1k', num: ['restricted', '1k'], den: ['tollgate', '1k'], field: 'cpuUsPerReq', note: 'same process, alternating runs' },
  // An exchanged token is an ordinary token on the request path (a cache hit, no JWT).
  { id: 'exchanged/created CPU/req 1k', num: ['tollgate-exchanged', '1k'], den: ['tollgate', '1k'], field: 'cpuUsPerReq', op: '<=', target: 1.05 },
  { id: 'exchanged/created req/s 1k', num: ['tollgate-exchanged', '1k'], den: ['tollgate', '1k'], field: 'reqPerSec', op: '>=', target: 0.95 },
  { id: 'redis miss/hit req/s 1k', num: ['redis-miss', '1k'], den: ['redis-hit', '1k'], field: 'reqPerSec', op: '>=', target: 0.5 },
  { id: 'redis miss/sqlite hit req/s', num: ['redis-miss', '1k'], den: ['tollgate', '1k'], field: 'reqPerSec' },
  { id: 'malformed flood/hit req/s', num: ['flood-malformed', '1k'], den: ['tollgate', '1k'], field: 'reqPerSec', op: '>=', target: 1.0 },
  { id: 'malformed flood/hit CPU/req', num: ['flood-malformed', '1k'], den: ['tollgate', '1k'], field: 'cpuUsPerReq' },
  { id: 'random flood/hit req/s', num: ['flood-random', '1k'], den: ['tollgate', '1k'], field: 'reqPerSec' },
  { id: 'challenge/hit req/s', num: ['challenge', '1k'], den: ['tollgate', '1k'], field: 'reqPerSec' },
  { id: 'limited flood/hit req/s', num: ['flood-limited', '1k'], den: ['tollgate', '1k'], field: 'reqPerSec', note: 'shipped limiter, one address' },
];

/** @param {Summary[]} summary @returns {Ratio[]} */
function computeRatios(summary) {
  const find = (/** @type {[string, Route]} */ [scenario, route]) =>
    summary.find((s) => s.scenario === scenario && s.route === route);
  return /** @type {Ratio[]} */ (
    RATIOS.map((def) => {
      const a = find(def.num);
      const b = find(def.den);
      const targetText = def.op
        ? `${def.op === '>=' ? '≥' : '≤'} ${/** @type {number} */ (def.target).toFixed(2)}${def.aim ? ` (aim ${def.aim.toFixed(2)})` : ''}`
        : (def.note ?? 'report');
      if (!a || !b) {
        const missing = [def.num, def.den].filter((x) => !find(x)).map(([s]) => s);
        // Not selected (--only, --routes): leave the row out. Skipped (nginx missing): say so.
        if (!missing.some((s) => skipped.has(s))) return undefined;
        const why = missing.map((s) => (skipped.has(s) ? `${s} skipped` : `${s} not run`)).join(', ');
        return {
          id: def.id,
          value: null,
          target: targetText,
          result: 'n/a',
          why,
          cpuNum: a?.cpuUsPerReq,
          cpuDen: b?.cpuUsPerReq,
        };
      }
      // The same ratio within each round: how far the machine's drift moved it.
      const perRound = a.perRound.map((ra) => {
        const rb = b.perRound.find((x) => x.round === ra.round);
        return rb ? ra[def.field] / rb[def.field] : NaN;
      });
      const totals = a[def.field] / b[def.field];
      // A pair's rounds are measurements of the same thing under the same conditions: their median.
      // Totals weight each round by its CPU time, so one round that a disturbance hit on one side
      // moves them most (1.02, 1.04, 1.04 and 1.21 made 1.10).
      const value = def.perRoundMedian ? median(perRound) : totals;
      let result = 'info';
      if (def.op === '>=') result = value >= /** @type {number} */ (def.target) ? 'PASS' : 'MISS';
      if (def.op === '<=') result = value <= /** @type {number} */ (def.target) ? 'PASS' : 'MISS';
      if (result === 'PASS' && def.aim !== undefined && !(def.op === '>=' ? value >= def.aim : value <= def.aim))
        result = 'PASS (short of aim)';
      return {
        id: def.id,
        value,
        totals,
        perRound,
        target: targetText,
        result,
        cpuNum: a.cpuUsPerReq,
        cpuDen: b.cpuUsPerReq,
        numerator: def.num.join(' '),
        denominator: def.den.join(' '),
        field: def.field,
        ...(def.perRoundMedian ? { aggregate: 'median of rounds' } : {}),
      };
    }).filter(Boolean)
  );
}

/**
 * @param {Summary[]} summary
 * @param {Awaited<ReturnType<typeof runAll>>['evictionChecks']} evictionChecks
 */
function computeChecks(summary, evictionChecks) {
  /** @type {{ id: string, value: string, result: string, note?: string }[]} */
  const checks = [];
  // Peak RSS per Tollgate process (VmHWM is per process, so take the last reading of any of its scenarios).
  const processes = {
    tollgate: 'Tollgate (SQLite)',
    flags: 'Tollgate (--compare-flags)',
    noauth: 'Tollgate (auth off)',
    redis: 'Tollgate (Redis)',
    flood: 'Tollgate (floods)',
    limited: 'Tollgate (limited flood)',
  };
  for (const [target, label] of Object.entries(processes)) {
    const names = SCENARIOS.filter((x) => x.target === target).map((x) => x.name);
    const rows = summary.filter((r) => names.includes(r.scenario));
    if (rows.length === 0) continue;
    const peak = Math.max(...rows.map((r) => r.peakRssMiB));
    checks.push({
      id: `${label} peak RSS < 150 MiB`,
      value: `${fmt(peak, 1)} MiB`,
      result: peak < 150 ? 'PASS' : 'MISS',
      note: `VmHWM, lifetime peak over ${names.filter((n) => rows.some((r) => r.scenario === n)).join(', ')}`,
    });
  }
  const proxied = summary.filter((s) => s.scenario !== 'direct');
  if (proxied.length > 0) {
    const leaked = sum(proxied.map((s) => s.originSawAuthorization));
    checks.push({
      id: 'Authorization never reaches the origin',
      value: String(leaked),
      result: leaked === 0 ? 'PASS' : 'MISS',
    });
  }
  const forwarded = summary.filter((s) => s.scenario !== 'direct' && (s.status['200'] ?? 0) > 0);
  if (forwarded.length > 0) {
    // A proxy that reuses upstream connections opens about one per client connection in a run
    // (the pool grows to the concurrency it sees); one that does not opens one per request.
    // Tollgate's undici pool opens up to ~1.6x: it reuses a connection only one event-loop turn
    // after its response ended, and a request arriving in that turn gets another connection.
    // Its pooled connections also close 2 s before the origin's announced Keep-Alive timeout
    // (5 s), so each run opens them again.
    const bound = 2 * opts.connections;
    const worst = forwarded.reduce((w, s) => (s.maxOriginConnections > w.maxOriginConnections ? s : w));
    checks.push({
      id: 'upstream connections reused (keep-alive)',
      value: `≤ ${worst.maxOriginConnections} new per run`,
      result: worst.maxOriginConnections <= bound ? 'PASS' : 'MISS',
      note: `new origin connections in one run, at most ${bound} (2 per client connection; without reuse: one per request); worst: ${worst.scenario} ${ROUTES[worst.route].label}`,
    });
  }
  const malformed = summary.find((s) => s.scenario === 'flood-malformed');
  if (malformed) {
    checks.push(
      malformed.storeReads === undefined
        ? {
            id: 'malformed flood: no store read',
            value: 'n/a',
            result: 'n/a',
            note: 'gateway serves no /metrics with store reads yet',
          }
        : {
            id: 'malformed flood: no store read',
            value: String(malformed.storeReads),
            result: malformed.storeReads === 0 ? 'PASS' : 'MISS',
          },
    );
  }
  const random = summary.find((s) => s.scenario === 'flood-random');
  if (random) {
    checks.push(
      random.storeReads === undefined
        ? {
            id: 'random flood: ≤ 1 store read per token',
            value: 'n/a',
            result: 'n/a',
            note: 'gateway serves no /metrics with store reads yet',
          }
        : {
            id: 'random flood: ≤ 1 store read per token',
            value: `${random.storeReads} reads / ${random.requestsSent} tokens`,
            result: random.storeReads <= random.requestsSent ? 'PASS' : 'MISS',
          },
    );
  }
  if (evictionChecks.length > 0) {
    const allOk = evictionChecks.every((c) => c.status === 200);
    const hitKnown = evictionChecks.every((c) => c.cacheHit !== undefined);
    const allHit = evictionChecks.every((c) => c.cacheHit === true);
    checks.push({
      id: 'random flood does not evict the real token',
      value: hitKnown
        ? `${evictionChecks.filter((c) => c.cacheHit).length}/${evictionChecks.length} still cache hits`
        : `${evictionChecks.filter((c) => c.status === 200).length}/${evictionChecks.length} answered 200`,
      result: !allOk ? 'MISS' : hitKnown ? (allHit ? 'PASS' : 'MISS') : 'n/a',
      note: hitKnown ? undefined : 'cache hit not observable without /metrics; status only',
    });
  }
  const miss = summary.find((s) => s.scenario === 'redis-miss');
  if (miss) {
    checks.push({
      id: 'redis-miss: every request a store read',
      value: `${fmt(miss.redisHgetallPerReq, 3)} HGETALL/req`,
      result: /** @type {number} */ (miss.redisHgetallPerReq) >= 0.95 ? 'PASS' : 'MISS',
      note: 'counted by Redis itself (INFO commandstats); < 1 would mean the scenario measures hits',
    });
  }
  const hit = summary.find((s) => s.scenario === 'redis-hit');
  if (hit) {
    checks.push({
      id: 'redis-hit: no store read per request',
      value: `${fmt(hit.redisHgetallPerReq, 4)} HGETALL/req`,
      result: /** @type {number} */ (hit.redisHgetallPerReq) < 0.01 ? 'PASS' : 'MISS',
    });
  }
  return checks;
}

// ── Output ───────────────────────────────────────────────────────────────────────────────────
/** @param {number | null | undefined} n */
function fmt(n, digits = 0) {
  if (n === undefined || n === null || !Number.isFinite(n)) return '-';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** @param {string[]} headers @param {unknown[][]} rows @param {('l' | 'r')[]} align */
function table(headers, rows, align) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (/** @type {unknown[]} */ cells) =>
    cells
      .map((c, i) => (align[i] === 'r' ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * @param {Meta} meta
 * @param {Summary[]} summary
 * @param {ReturnType<typeof computeRatios>} ratios
 * @param {ReturnType<typeof computeChecks>} checks
 */
function render(meta, summary, ratios, checks) {
  const parts = [];
  parts.push(
    `Tollgate bench ${meta.startedAt}  node ${meta.node}  ${meta.cpus}×${meta.cpuModel}  load avg at start ${meta.loadAvgAtStart.map((l) => l.toFixed(2)).join(' ')}`,
  );
  parts.push(
    `${meta.rounds} round(s) per route, ${meta.connections} connections, TOLLGATE_WORKERS=${meta.workers}, ${meta.durationS} s per run (10 MiB: ${meta.requestsLarge} requests per run); commit ${meta.commit ?? '?'}${meta.dirty ? ' (dirty)' : ''}`,
  );
  parts.push(
    `${Object.entries(meta.shippedEnv ?? {})
      .map(([k, v]) => `${k}=${v} `)
      .join(
        '',
      )}node flags: ${meta.shippedNodeFlags.join(' ')} (npm start)${meta.compareFlags ? `; tollgate-flags: ${[...Object.entries(meta.compareEnv ?? {}).map(([k, v]) => `${k}=${v}`), ...meta.compareFlags].join(' ') || '(none)'}${meta.compareBuild ? ', another build (--compare-build)' : ''}` : ''}`,
  );
  parts.push('');
  const rows = summary.map((s) => [
    s.scenario,
    ROUTES[s.route].label,
    fmt(s.reqPerSec),
    fmt(s.p50Ms, 1),
    fmt(s.p99Ms, 1),
    fmt(s.mibPerSec, 1),
    fmt(s.cpuUsPerReq, 1),
    fmt(s.peakRssMiB, 1),
    Object.entries(s.status)
      .map(([k, v]) => `${k}×${v}`)
      .join(' '),
    String(s.unexpected),
  ]);
  for (const [name, reason] of skipped) rows.push([name, '-', 'skipped', '', '', '', '', '', reason, '']);
  parts.push(
    table(
      ['scenario', 'artifact', 'req/s', 'p50 ms', 'p99 ms', 'MiB/s', 'CPU µs/req', 'peak RSS MiB', 'status', 'bad'],
      rows,
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'r'],
    ),
  );
  parts.push('');
  parts.push(
    table(
      ['ratio', 'value', 'target (issue 6)', 'result', 'CPU µs/req (num / den)', 'per round'],
      ratios.map((r) => [
        r.id,
        r.value === null ? '-' : fmt(r.value, 3),
        r.target,
        r.result === 'n/a' ? `n/a: ${r.why}` : r.result,
        `${fmt(r.cpuNum, 1)} / ${fmt(r.cpuDen, 1)}`,
        (r.perRound ?? []).map((v) => fmt(v, 2)).join(' '),
      ]),
      ['l', 'r', 'l', 'l', 'r', 'l'],
    ),
  );
  parts.push('');
  parts.push(
    table(
      ['check', 'value', 'result', 'note'],
      checks.map((c) => [c.id, c.value, c.result, c.note ?? '']),
      ['l', 'r', 'l', 'l'],
    ),
  );
  parts.push('');
  parts.push(
    'CPU µs/req: utime+stime of the server process(es) over the run (nginx: master + worker), divided by completed requests.',
  );
  parts.push(
    'per round: the ratio within each round (its two runs a few seconds apart); the value is over all rounds (totals),',
  );
  parts.push(
    'except for the "paired" rows (two servers loaded at the same time): the median of their rounds, with the totals in the JSON.',
  );
  parts.push(
    'peak RSS: VmHWM, the lifetime peak of the largest process (nginx: of master and worker; with TOLLGATE_WORKERS > 1, of primary and workers),',
  );
  parts.push('so a later row includes earlier runs. The JSON also has the sum over the processes (peakRssSumMiB).');
  return parts.join('\n');
}

function gitInfo() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: undefined, dirty: undefined };
  }
}

// ── Main ─────────────────────────────────────────────────────────────────────────────────────
/**
 * @typedef {object} Meta What the results say about the run itself.
 * @property {string} startedAt
 * @property {string} node
 * @property {string | undefined} nginx
 * @property {number} cpus
 * @property {string} cpuModel
 * @property {number[]} loadAvgAtStart
 * @property {string | undefined} commit
 * @property {boolean | undefined} dirty
 * @property {boolean} quick
 * @property {number} rounds
 * @property {number} connections
 * @property {number} workers
 * @property {number} durationS
 * @property {number | undefined} requestsLarge
 * @property {number} maxLargeS
 * @property {number} missTokens
 * @property {Record<string, string>} shippedEnv
 * @property {string[]} shippedNodeFlags
 * @property {string} pairsPinned
 * @property {string[] | undefined} compareFlags
 * @property {Record<string, string> | undefined} compareEnv
 * @property {boolean | undefined} compareBuild  tollgate-flags ran another build (--compare-build)
 * @property {{ name: string, what: string, routes: Route[] }[]} scenarios
 * @property {string} [finishedAt]
 * @property {Record<string, boolean>} [metricsEndpoint]
 */

async function main() {
  const startedAt = new Date();
  /** @type {Meta} */
  const meta = {
    startedAt: startedAt.toISOString(),
    node: process.version,
    nginx: nginxUnavailable() ? undefined : nginxVersion(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model?.trim() ?? '?',
    loadAvgAtStart: os.loadavg(),
    ...gitInfo(),
    quick: opts.quick,
    rounds: opts.rounds,
    connections: opts.connections,
    workers: opts.workers,
    durationS: opts.durationS,
    requestsLarge: opts.requestsLarge,
    maxLargeS: opts.maxLargeS,
    missTokens: opts.missTokens,
    shippedEnv: SHIPPED_ENV,
    shippedNodeFlags: SHIPPED_NODE_FLAGS,
    pairsPinned: pinning ? `no: ${pinning}` : 'yes',
    compareFlags: opts.compareFlags,
    compareEnv: opts.compareEnv,
    compareBuild: opts.compareBuild !== undefined,
    scenarios: scenarios.map((s) => ({
      name: s.name,
      what: s.what,
      routes: s.routes.filter((r) => opts.routes.includes(r)),
    })),
  };
  log(`bench: about ${Math.round(plannedS)} s; temp dir ${tmpDir}`);
  // First, on a quiet machine: its own fresh processes, started and stopped by bench/keepalive.mjs.
  const keepalive = opts.only.includes('keepalive') ? await runKeepalive() : undefined;
  /** @type {any} */
  let summary = {};
  /** @type {any[]} */
  let ratios = [];
  /** @type {any[]} */
  let checks = [];
  /** @type {any[]} */
  let runs = [];
  let text = '';
  if (scenarios.length > 0) {
    log('starting origin, baselines and gateways ...');
    await startAll();
    await preflight();
    log("preflight ok: every target answers 200 with the origin's bytes, and 401 without a token");
    const all = await runAll();
    runs = all.runs;
    summary = summarise(runs);
    ratios = computeRatios(summary);
    checks = computeChecks(summary, all.evictionChecks);
    meta.metricsEndpoint = metricsAvailable;
    text = render(meta, summary, ratios, checks);
  }
  meta.finishedAt = new Date().toISOString();
  if (keepalive) text = text ? `${text}\n\n${keepalive.table}` : keepalive.table;
  process.stdout.write(`\n${text}\n`);

  if (opts.write) {
    mkdirSync(RESULTS_DIR, { recursive: true });
    const json = JSON.stringify(
      { meta, skipped: Object.fromEntries(skipped), summary, ratios, checks, runs, keepalive, table: text },
      null,
      2,
    );
    const file = path.join(RESULTS_DIR, `${meta.startedAt.replace(/[:.]/g, '-')}${opts.quick ? '-quick' : ''}.json`);
    writeFileSync(file, `${json}\n`);
    writeFileSync(path.join(RESULTS_DIR, 'latest.json'), `${json}\n`);
    log(`\nwrote ${path.relative(ROOT, file)} and bench/results/latest.json`);
  }
}

/**
 * The keepalive scenario, in its own process (it raises its open-files limit by re-running itself
 * under `ulimit -n`): its JSON result.
 * @returns {Promise<any>}
 */
async function runKeepalive() {
  const out = path.join(tmpDir, 'keepalive.json');
  const args = [
    path.join(BENCH_DIR, 'keepalive.mjs'),
    `--connections=${opts.keepaliveConnections}`,
    `--rounds=${opts.rounds}`,
    `--json=${out}`,
  ];
  const child = group.start('keepalive', NODE, args, { env: process.env, cwd: ROOT });
  // Its progress lines go to its log; show them when it is done.
  const exit = await child.exitedPromise;
  log(group.logTail(child, 200));
  if (exit?.code !== 0) throw new Error(`bench/keepalive.mjs failed (${JSON.stringify(exit)})`);
  return JSON.parse(readFileSync(out, 'utf8'));
}

try {
  await main();
  await cleanup();
} catch (err) {
  // After Ctrl-C the children die under the runs; the signal handler reports and exits.
  if (!interrupted) {
    process.stderr.write(
      `\nbench FAILED: ${/** @type {Error} */ (err).stack ?? /** @type {Error} */ (err).message ?? err}\n`,
    );
    await cleanup();
    process.exit(1);
  }
}
