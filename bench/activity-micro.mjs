#!/usr/bin/env node
// @ts-check
// Micro-benchmark of the Production activity pipeline, in CPU µs per event: what one
// `activity.recorder.record(...)` costs the gateway, from building the event to the NDJSON line
// on disk, on the compiled code in dist/.
//
// The pipeline is the shipped one (`createActivityPipeline`) with the default configuration
// (loadConfig with nothing set about activity: the file sink, which the recent-activity view
// reads, batches of 500, flush 200 ms), a real metrics registry and a silent logger, in a temp
// data dir removed at the end. Events are recorded in chunks per setImmediate, so the delivery
// loop interleaves as it does under load; the producer pauses while a sink has two batches
// waiting (the sinks keep up, nothing spills to disk), and can be paced to a rate. CPU is
// process.cpuUsage() (user + system, every thread: file writes and fdatasync run on the libuv
// pool) from the first record() until every runner has drained.
//
// Phases, each over the same events:
//   harness      the pacing loop and the RequestActivity objects alone (record() is a no-op)
//   full         record() into the live pipeline, until drained
//   record-only  record() with the runners stopped (enqueue returns at once): event + metrics
//
// Usage: node bench/activity-micro.mjs [--quick] [--events=N] [--chunk=N] [--rate=N] [--rounds=N] [--no-write]
//        (npm run bench:activity builds dist/ first)
import { parseArgs } from 'node:util';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.join(BENCH_DIR, '..', 'dist');
if (!existsSync(path.join(DIST, 'activity', 'index.js'))) {
  process.stderr.write('activity-micro: dist/ is missing; run `npm run build` first\n');
  process.exit(2);
}
/** The compiled module at dist/<rel>. @param {string} rel @returns {Promise<any>} */
const load = (rel) => import(pathToFileURL(path.join(DIST, rel)).href);
// Typed as the sources they are compiled from.
const { createActivityPipeline } = /** @type {typeof import('../src/activity/index.js')} */ (
  await load('activity/index.js')
);
const { loadConfig } = /** @type {typeof import('../src/config/index.js')} */ (await load('config/index.js'));
const { createMetrics } = /** @type {typeof import('../src/metrics/registry.js')} */ (
  await load('metrics/registry.js')
);
const { createLogger } = /** @type {typeof import('../src/logging/logger.js')} */ (await load('logging/logger.js'));

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    events: { type: 'string' },
    chunk: { type: 'string', default: '50' },
    rate: { type: 'string', default: '0' },
    rounds: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
  strict: true,
});
const events = Number(values.events ?? (values.quick ? 40_000 : 200_000));
const chunk = Number(values.chunk);
/** Events per second; 0: one chunk per setImmediate, as fast as that goes. */
const rate = Number(values.rate);
const rounds = Number(values.rounds ?? (values.quick ? 1 : 3));
if (!(events > 0) || !(chunk > 0) || !(rate >= 0) || !(rounds > 0)) {
  process.stderr.write('activity-micro: --events, --chunk and --rounds must be positive, --rate at least 0\n');
  process.exit(2);
}

const dataDir = mkdtempSync(path.join(tmpdir(), 'tollgate-activity-micro-'));
process.on('exit', () => rmSync(dataDir, { recursive: true, force: true }));

// The upstream is only there to make a valid config: the pipeline reads the activity, metrics and data dir parts.
const loaded = loadConfig({ TOLLGATE_DATA_DIR: dataDir, TOLLGATE_UPSTREAM: dataDir }, dataDir);
if (!loaded.ok) throw new Error(`activity-micro: config: ${loaded.problems.join('; ')}`);
const config = loaded.config;
const metrics = createMetrics();
const logger = createLogger('silent');
const pipeline = await createActivityPipeline(config, { metrics, logger });
const { recorder, runners } = pipeline;

// ── Realistic requests: npm tarballs mostly, some packuments, a few 304s and 404s ─────────────
const PACKAGES = [
  'left-pad',
  'lodash',
  'react',
  'express',
  'chalk',
  '@types/node',
  '@babel/core',
  'typescript',
  'debug',
  'ms',
  'semver',
  'commander',
  'uuid',
  'tslib',
  'axios',
  'zod',
  'vite',
  'esbuild',
  '@scope/pkg',
  'yargs',
];
const TOKENS = Array.from({ length: 8 }, (_, i) => ({
  tokenId: `tok_bench${String(i).padStart(11, '0')}`,
  tokenName: `ci-${i}`,
  tokenType: /** @type {const} */ ('production'),
  project: ['default', 'web', 'billing'][i % 3],
  restrictions: undefined,
  ci: undefined,
}));
const UA = 'npm/10.8.1 node/v20.15.0 linux x64 workspaces/false';
/**
 * @typedef {{ principal: typeof TOKENS[number], path: string, status: number, bytes: number, download: boolean }} Template
 * @type {Template[]}
 */
const templates = [];
for (let i = 0; i < 1000; i++) {
  const name = PACKAGES[i % PACKAGES.length];
  const bare = name.split('/').pop();
  const version = `${1 + (i % 7)}.${i % 13}.${i % 5}${i % 97 === 0 ? '-sp1' : ''}`;
  const tarball = i % 10 !== 0;
  const path = tarball ? `/${name.replace('/', '%2f')}/-/${bare}-${version}.tgz` : `/${name.replace('/', '%2f')}`;
  const status = i % 50 === 1 ? 304 : i % 50 === 2 ? 404 : 200;
  templates.push({
    principal: TOKENS[i % TOKENS.length],
    path,
    status,
    bytes: tarball ? 20_000 + i * 37 : 4_000 + i,
    download: tarball && status === 200,
  });
}
/** What tollgate_production_downloads_total must gain for activity(0 .. n-1). */
const downloadsIn = (/** @type {number} */ n) => {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += templates[i % templates.length].download ? 1 : 0;
  return sum;
};

let counter = 0;
/** A fresh RequestActivity, as the gateway builds one per finished request. */
/** @param {number} i @returns {import('../src/activity/recorder.js').RequestActivity} */
function activity(i) {
  const t = templates[i % templates.length];
  return {
    requestId: `bench-${(++counter).toString(36)}`,
    principal: t.principal,
    ecosystem: 'npm',
    path: t.path,
    method: 'GET',
    status: t.status,
    bytes: t.bytes,
    durationMs: 0.4 + (i % 100) * 0.0137,
    clientIp: '10.0.0.7',
    userAgent: UA,
    aborted: false,
    endedAt: Date.now(),
  };
}

/** Events waiting in a runner's queue before the producer pauses: two batches, a gateway whose sinks keep up. */
const highWater = 2 * config.activity.batchSize;
const backedUp = () =>
  runners.some((r) => {
    const d = r.depth();
    return d.memory + d.disk >= highWater;
  });

/**
 * Calls record(activity(i)) for `n` events, `chunk` per setImmediate, paced to `rate` when set.
 * It also waits (a 1 ms timer) while a sink's queue holds highWater events: the sinks keep up, as
 * they do in a gateway (whose own work per request leaves them the time), and nothing spills to
 * disk (another path, reported as a problem when it happens).
 * @param {number} n
 * @param {(a: import('../src/activity/recorder.js').RequestActivity) => void} record
 * @returns {Promise<void>}
 */
function produce(n, record) {
  return new Promise((resolve) => {
    let done = 0;
    const t0 = performance.now();
    const tick = () => {
      if (backedUp()) return void setTimeout(tick, 1);
      let due = Math.min(n, done + chunk);
      if (rate > 0) due = Math.min(due, Math.ceil(((performance.now() - t0) / 1000) * rate));
      const caughtUp = done + chunk > due && due < n;
      for (; done < due; done++) record(activity(done));
      if (done >= n) resolve();
      else if (rate > 0 && caughtUp) setTimeout(tick, 1);
      else setImmediate(tick);
    };
    setImmediate(tick);
  });
}

async function drainAll() {
  const ok = await Promise.all(runners.map((r) => r.drain(120_000)));
  if (!ok.every(Boolean)) throw new Error('activity-micro: a runner did not drain within 120 s');
}

/**
 * @typedef {{ cpuUsPerEvent: number, userUsPerEvent: number, systemUsPerEvent: number, wallMs: number }} Sample
 */

/**
 * CPU µs/event and wall ms of produce(+ drain) over `n` events.
 * @param {number} n
 * @param {(a: import('../src/activity/recorder.js').RequestActivity) => void} record
 * @param {boolean} drain
 * @returns {Promise<Sample>}
 */
async function measure(n, record, drain) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await produce(n, record);
  if (drain) await drainAll();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    cpuUsPerEvent: (cpu.user + cpu.system) / n,
    userUsPerEvent: cpu.user / n,
    systemUsPerEvent: cpu.system / n,
    wallMs,
  };
}

const noop = () => {};
const live = (/** @type {import('../src/activity/recorder.js').RequestActivity} */ a) => recorder.record(a);
const median = (/** @type {number[]} */ xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
let maxDepth = 0;
let maxDisk = 0;
const depthProbe = setInterval(() => {
  for (const r of runners) {
    const d = r.depth();
    maxDepth = Math.max(maxDepth, d.memory + d.disk);
    maxDisk = Math.max(maxDisk, d.disk);
  }
}, 20);

// Warm-up: JIT, the day's NDJSON file.
await measure(Math.min(events, 20_000), live, true);
await measure(Math.min(events, 20_000), noop, false);

/** @type {{ harness: Sample[], full: Sample[], recordOnly: Sample[] }} */
const samples = { harness: [], full: [], recordOnly: [] };
let recorded = Math.min(events, 20_000);
let expectedDownloads = downloadsIn(recorded);
for (let r = 0; r < rounds; r++) {
  samples.harness.push(await measure(events, noop, false));
  samples.full.push(await measure(events, live, true));
  recorded += events;
  expectedDownloads += downloadsIn(events);
}
clearInterval(depthProbe);

// What the sinks got, and the counters: the run must have measured the shipped path (no spill, no drop).
/** @type {Record<string, number>} */
const counts = {};
for (const m of (await metrics.activityEvents.get()).values) counts[`${m.labels.sink}/${m.labels.outcome}`] = m.value;
const downloads = (await metrics.productionDownloads.get()).values.reduce((s, v) => s + v.value, 0);
const rssMiB = process.memoryUsage().rss / 2 ** 20;
const maxRssMiB = process.resourceUsage().maxRSS / 1024;
const activityDir = path.join(dataDir, 'activity');
let ndjsonLines = 0;
for (const f of readdirSync(activityDir)) {
  for await (const block of createReadStream(path.join(activityDir, f))) {
    for (let i = block.indexOf(10); i >= 0; i = block.indexOf(10, i + 1)) ndjsonLines++;
  }
}

await pipeline.stop();
for (let r = 0; r < rounds; r++) samples.recordOnly.push(await measure(events, live, false));

const summary = (/** @type {Sample[]} */ list) => ({
  cpuUsPerEvent: median(list.map((s) => s.cpuUsPerEvent)),
  bestCpuUsPerEvent: Math.min(...list.map((s) => s.cpuUsPerEvent)),
  userUsPerEvent: median(list.map((s) => s.userUsPerEvent)),
  systemUsPerEvent: median(list.map((s) => s.systemUsPerEvent)),
  wallMs: median(list.map((s) => s.wallMs)),
});
const results = {
  harness: summary(samples.harness),
  full: summary(samples.full),
  recordOnly: summary(samples.recordOnly),
};
const net = (/** @type {number} */ x) => x - results.harness.cpuUsPerEvent;
const rows = /** @type {[string, ReturnType<typeof summary>][]} */ ([
  ['harness (no-op record)', results.harness],
  ['full pipeline, drained', results.full],
  ['record() only, runners stopped', results.recordOnly],
]).map(([name, s]) => [
  name,
  s.cpuUsPerEvent.toFixed(2),
  s.bestCpuUsPerEvent.toFixed(2),
  s.userUsPerEvent.toFixed(2),
  s.systemUsPerEvent.toFixed(2),
  s.wallMs.toFixed(0),
]);
const head = ['phase', 'CPU µs/event (median)', 'best', 'user', 'system', 'wall ms'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (/** @type {string[]} */ cells) =>
  cells
    .map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
    .join('  ')
    .trimEnd();
const text = [
  `activity pipeline micro-benchmark  node ${process.version}  ${events.toLocaleString('en-US')} events × ${rounds} rounds, ` +
    `${chunk} per setImmediate${rate > 0 ? `, ${rate}/s` : ''}, sinks ${runners.map((r) => r.name).join(' + ')}`,
  '',
  line(head),
  widths.map((w) => '-'.repeat(w)).join('  '),
  ...rows.map(line),
  '',
  `pipeline, net of the harness:  ${net(results.full.cpuUsPerEvent).toFixed(2)} µs/event  ` +
    `(record() ${net(results.recordOnly.cpuUsPerEvent).toFixed(2)}, queue + sinks ${(results.full.cpuUsPerEvent - results.recordOnly.cpuUsPerEvent).toFixed(2)})`,
  `RSS after the full runs ${rssMiB.toFixed(0)} MiB, peak ${maxRssMiB.toFixed(0)} MiB; deepest queue ${maxDepth} events (pauses at ${highWater})`,
  `sinks: ${Object.entries(counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}; NDJSON lines ${ndjsonLines}; recorded ${recorded}; ` +
    `downloads counter ${downloads} (expected ${expectedDownloads})`,
].join('\n');
process.stdout.write(`${text}\n`);

/** @type {string[]} */
const problems = [];
for (const r of runners) {
  if (counts[`${r.name}/delivered`] !== recorded)
    problems.push(`${r.name} delivered ${counts[`${r.name}/delivered`]} of ${recorded}`);
  if (counts[`${r.name}/dropped`]) problems.push(`${r.name} dropped ${counts[`${r.name}/dropped`]}`);
}
if (maxDisk > 0)
  problems.push(`events went to the disk buffer (up to ${maxDisk}): the run did not measure the in-memory path`);
if (downloads !== expectedDownloads)
  problems.push(`the downloads counter reads ${downloads}, expected ${expectedDownloads}`);
if (ndjsonLines !== recorded) problems.push(`the NDJSON files hold ${ndjsonLines} lines, expected ${recorded}`);
for (const p of problems) process.stderr.write(`activity-micro: ${p}\n`);
if (problems.length > 0) process.exitCode = 1;

if (!values['no-write']) {
  const dir = path.join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const startedAt = new Date().toISOString();
  const json = `${JSON.stringify({ meta: { startedAt, node: process.version, events, rounds, chunk, rate, highWater }, results, rssMiB, maxRssMiB, maxDepth, maxDisk, counts, table: text }, null, 2)}\n`;
  writeFileSync(path.join(dir, `activity-micro-${startedAt.replace(/[:.]/g, '-')}.json`), json);
  writeFileSync(path.join(dir, 'activity-micro-latest.json'), json);
}
