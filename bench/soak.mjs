// @ts-check
// Soak: Tollgate as shipped (Redis store, Redis Stream activity sink) under mixed valid,
// invalid and challenge traffic for a bounded time, with a Redis restart in the middle.
// Reports errors by kind, RSS over time and Production events lost (must be 0).
//
//   npm run soak                 5 minutes
//   npm run soak -- --minutes=1  shorter
//
// Loopback only; every child process is stopped at the end, on error and on Ctrl-C.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { freePort, sleep } from './lib/procs.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { minutes: { type: 'string', default: '5' }, connections: { type: 'string', default: '20' } },
});
const minutes = Number(values.minutes);
const connections = Number(values.connections);
if (!(minutes > 0 && minutes <= 60)) throw new Error('--minutes must be in (0, 60]');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'tollgate-soak-'));
/** @type {import('node:child_process').ChildProcess[]} */
const children = [];
const stopAll = () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
};
process.on('exit', stopAll);
process.on('SIGINT', () => process.exit(130));

/** @param {string} name @param {string} cmd @param {readonly string[]} args */
function start(name, cmd, args, env = process.env) {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.on('data', (d) => process.stderr.write(`[${name}] ${d}`));
  children.push(child);
  return child;
}
/** @param {number | undefined} pid */
const vmRssMiB = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};

// Redis with AOF, so a restart keeps the tokens and the stream (as in production).
const redisPort = await freePort();
const redisDir = path.join(tmp, 'redis');
mkdirSync(redisDir);
const redisArgs = [
  '--port',
  String(redisPort),
  '--bind',
  '127.0.0.1',
  '--dir',
  redisDir,
  '--appendonly',
  'yes',
  '--appendfsync',
  'always',
  '--save',
  '',
];
let redis = start('redis', 'redis-server', redisArgs);
const redisUrl = `redis://127.0.0.1:${redisPort}`;
// Reconnects forever and queues commands meanwhile: it waits out the start and the restart.
const probe = new Redis(redisUrl, { maxRetriesPerRequest: null, retryStrategy: () => 100 });
probe.on('error', () => {});
await probe.ping();

const originPort = await freePort();
start('origin', process.execPath, [path.join(ROOT, 'bench/lib/origin.mjs'), String(originPort)]);

const port = await freePort();
const adminPort = await freePort();
const env = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TOLLGATE_'))),
  TOLLGATE_HOST: '127.0.0.1',
  TOLLGATE_PORT: String(port),
  TOLLGATE_ADMIN_PORT: String(adminPort),
  TOLLGATE_UPSTREAM: `http://127.0.0.1:${originPort}/`,
  TOLLGATE_DATA_DIR: path.join(tmp, 'data'),
  TOLLGATE_REDIS_URL: redisUrl,
  TOLLGATE_ACTIVITY_STREAM_MAXLEN: '10000000',
  TOLLGATE_LOG_LEVEL: 'warn',
  // Invalid tokens come "from" other addresses (X-Forwarded-For from a trusted proxy) so the
  // brute-force limit acts on them, as in production, and not on the valid traffic.
  TOLLGATE_TRUSTED_PROXIES: '127.0.0.1',
};
/** @param {string} name @param {string} type @returns {string} */
const create = (name, type) =>
  JSON.parse(
    /** @type {string} */ (
      /** @type {unknown} */ (
        execFileSync(
          process.execPath,
          [path.join(ROOT, 'bin/tollgate.js'), 'token', 'create', '--name', name, '--type', type, '--json'],
          { env },
        )
      )
    ),
  ).token;
const prod = create('soak-production', 'production');
const dev = create('soak-development', 'development');
const gateway = start('tollgate', process.execPath, [path.join(ROOT, 'dist/main.js')], env);
for (let i = 0; ; i++) {
  try {
    const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
    if (res.ok) break;
  } catch {
    /* not yet */
  }
  if (i > 100) throw new Error('gateway did not become ready');
  await sleep(100);
}

const url = `http://127.0.0.1:${port}/files/1k.bin`;
const fake = 'tgp_' + 'A'.repeat(30) + 'AAAAAA';
// The mix: [kind, share of the connections, headers]. Each kind is its own autocannon instance,
// so every response is counted by kind and status.
/** @type {[kind: string, share: number, headers: Record<string, string>][]} */
const mix = [
  ['production', 0.4, { authorization: `Bearer ${prod}`, 'x-forwarded-for': '10.0.0.1' }],
  ['development', 0.2, { authorization: `Bearer ${dev}`, 'x-forwarded-for': '10.0.0.2' }],
  ['challenge', 0.1, { 'x-forwarded-for': '10.0.0.3' }],
  ['bad-checksum', 0.15, { authorization: `Bearer ${fake}`, 'x-forwarded-for': '10.0.0.66' }],
  ['malformed', 0.15, { authorization: 'Basic !!!', 'x-forwarded-for': '10.0.0.67' }],
];
const durationS = Math.round(minutes * 60);
console.log(
  `soak: ${minutes} min, ${connections} connections, Redis restart at ${Math.round(durationS / 2)} s; temp ${tmp}`,
);
/** @type {{ t: number, rssMiB: number }[]} */
const rss = [];
const sampler = setInterval(() => {
  try {
    rss.push({ t: Math.round(process.uptime()), rssMiB: Math.round(vmRssMiB(gateway.pid)) });
  } catch {
    /* exited */
  }
}, 5000);

const restart = setTimeout(
  async () => {
    console.log('soak: restarting Redis (graceful shutdown, AOF kept)');
    const exited = new Promise((r) => redis.once('exit', r));
    redis.kill('SIGTERM'); // graceful: Redis flushes its AOF and exits
    await exited;
    await sleep(3000); // the gateway runs without Redis meanwhile
    redis = start('redis', 'redis-server', redisArgs);
    console.log('soak: Redis is back');
  },
  (durationS / 2) * 1000,
);

const runs = await Promise.all(
  mix.map(([kind, share, headers]) =>
    autocannon({ url, connections: Math.max(1, Math.round(connections * share)), duration: durationS, headers }).then(
      (r) => ({ kind, r }),
    ),
  ),
);
clearTimeout(restart);
clearInterval(sampler);
/** @type {Record<string, number>} */
const byKind = {};
let errors = 0;
let timeouts = 0;
let total = 0;
for (const { kind, r } of runs) {
  for (const [code, { count }] of Object.entries(r.statusCodeStats ?? {}))
    byKind[`${kind} ${code}`] = /** @type {number} */ (count);
  errors += r.errors;
  timeouts += r.timeouts;
  total += r.requests.total;
}
const prod200 = byKind['production 200'] ?? 0;
const result = { requests: { total }, errors, timeouts };

// Let the gateway deliver what it queued, then stop it (SIGTERM keeps any rest on disk).
let events = 0;
for (let i = 0; i < 60; i++) {
  events = Number(await probe.xlen('{tollgate}:activity:production').catch(() => events));
  if (events >= prod200) break;
  await sleep(1000);
}
const metrics = await fetch(`http://127.0.0.1:${adminPort}/metrics`)
  .then((r) => r.text())
  .catch(() => '');
const dropped = [
  ...metrics.matchAll(/^tollgate_activity_events_total\{sink="[^"]+",outcome="dropped"\} (\d+)/gm),
].reduce((a, m) => a + Number(m[1]), 0);
gateway.kill('SIGTERM');
await new Promise((r) => gateway.once('exit', r));
probe.disconnect();

const summary = {
  minutes,
  connections,
  requests: result.requests.total,
  errors: result.errors,
  timeouts: result.timeouts,
  byKindAndStatus: byKind,
  productionDownloads: prod200,
  productionEvents: events,
  eventsLost: Math.max(0, prod200 - events),
  eventsDroppedCounted: dropped,
  rssMiB: { first: rss[0]?.rssMiB, max: Math.max(...rss.map((r) => r.rssMiB)), last: rss.at(-1)?.rssMiB, samples: rss },
  fiveHundreds: Object.entries(byKind)
    .filter(([k]) => / 5\d\d$/.test(k))
    .reduce((a, [, n]) => a + n, 0),
};
console.log(JSON.stringify({ ...summary, rssMiB: { ...summary.rssMiB, samples: undefined } }, null, 2));
console.log('RSS over time (s: MiB):', rss.map((r) => `${r.t}:${r.rssMiB}`).join(' '));
const out = path.join(ROOT, 'bench/results', `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify(summary, null, 2));
console.log(`wrote ${path.relative(ROOT, out)}`);
rmSync(tmp, { recursive: true, force: true });
stopAll();
const ok = summary.eventsLost === 0 && result.errors === 0;
console.log(ok ? 'soak: PASS (no event lost, no client error)' : 'soak: FAIL');
process.exit(ok ? 0 : 1);
