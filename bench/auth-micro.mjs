#!/usr/bin/env node
// @ts-check
// Micro-benchmark of the auth decision alone, in ns/op: header parse, checksum, SHA-256, cache
// lookup, as the proxy calls it (`authenticate(header, now)`), on the compiled code in dist/.
// No sockets, no store I/O: the store is an in-memory stub and every timed call is a cache hit
// (positive or negative), which is the path every request but the first per token takes.
//
// Usage: node bench/auth-micro.mjs [--quick] [--iterations=N] [--batches=N] [--no-write]
//        (npm run bench:auth; run `npm run build` first)
import { parseArgs } from 'node:util';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.join(BENCH_DIR, '..', 'dist');
if (!existsSync(path.join(DIST, 'auth', 'authenticate.js'))) {
  process.stderr.write('auth-micro: dist/ is missing; run `npm run build` first\n');
  process.exit(2);
}
/** The compiled module at dist/<rel>. @param {string} rel @returns {Promise<any>} */
const load = (rel) => import(pathToFileURL(path.join(DIST, rel)).href);
// Typed as the sources they are compiled from.
const { createAuthenticator, newCredentialMemo } = /** @type {typeof import('../src/auth/authenticate.js')} */ (
  await load('auth/authenticate.js')
);
const { extractCredential } = /** @type {typeof import('../src/auth/credentials.js')} */ (
  await load('auth/credentials.js')
);
const { createTokenCache } = /** @type {typeof import('../src/tokens/cache.js')} */ (await load('tokens/cache.js'));
const { generateToken, hashToken } = /** @type {typeof import('../src/tokens/format.js')} */ (
  await load('tokens/format.js')
);

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    iterations: { type: 'string' },
    batches: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
  strict: true,
});
const iterations = Number(values.iterations ?? (values.quick ? 50_000 : 300_000));
const batches = Number(values.batches ?? (values.quick ? 3 : 7));
if (!(iterations > 0) || !(batches > 0)) {
  process.stderr.write('auth-micro: --iterations and --batches must be positive numbers\n');
  process.exit(2);
}

// ── A store stub with one real token; the cache in front of it is the shipped one ─────────────
const token = generateToken('production');
const record = {
  id: 'tok_benchMicro000000',
  name: 'bench-micro',
  type: 'production',
  hash: hashToken(token),
  createdAt: Date.now(),
  createdBy: 'bench',
  expiresAt: null,
  revokedAt: null,
  revokedBy: null,
  lastUsedAt: null,
};
let storeReads = 0;
const store = {
  kind: 'sqlite',
  /** @param {string} hash */
  async findByHash(hash) {
    storeReads++;
    return hash === record.hash ? record : undefined;
  },
  async revision() {
    return 0;
  },
  async changesSince() {
    return { changes: [], revision: 0, complete: true };
  },
  onChange() {
    return () => {};
  },
  async recordLastUsed() {},
  async ping() {},
  async close() {},
};
// The stub is not a whole TokenStore (the cache reads only these methods), and no staleMaxMs is
// given: the cache then never counts itself out of sync with the store (every timed call is a hit).
const cache = createTokenCache(
  /** @type {import('../src/tokens/cache.js').TokenCacheOptions} */ ({
    store: /** @type {import('../src/tokens/store.js').TokenStore} */ (/** @type {unknown} */ (store)),
    ttlMs: 3_600_000,
    max: 50_000,
    negativeTtlMs: 3_600_000,
    negativeMax: 50_000,
    pollMs: 60_000,
    lastUsedFlushMs: 60_000,
  }),
);
await cache.start();
const authenticate = createAuthenticator(cache);

const unknown = generateToken('production'); // valid checksum, not in the store
const badChecksum = token.slice(0, -1) + (token.at(-1) === 'A' ? 'B' : 'A');
/** @param {string} s */
const b64 = (s) => Buffer.from(s).toString('base64');
const now = Date.now();

// Prime: the first lookup of each token reads the store (a promise); every timed call is a hit.
for (const header of [`Bearer ${token}`, `Bearer ${unknown}`]) {
  const outcome = authenticate(header, now);
  if (outcome instanceof Promise) await outcome;
}

const CASES = [
  { name: 'Bearer, cache hit', header: `Bearer ${token}`, expect: 'ok' },
  { name: 'Basic project:token, cache hit', header: `Basic ${b64(`my-project:${token}`)}`, expect: 'ok' },
  { name: 'Basic token:, cache hit', header: `Basic ${b64(`${token}:`)}`, expect: 'ok' },
  { name: 'malformed: bad checksum', header: `Bearer ${badChecksum}`, expect: 'malformed' },
  { name: 'malformed: not a token', header: 'Bearer not-a-tollgate-token', expect: 'malformed' },
  { name: 'valid checksum, unknown (negative hit)', header: `Bearer ${unknown}`, expect: 'invalid' },
  { name: 'no credential (challenge)', header: undefined, expect: 'missing' },
];

/** @param {{ name: string, header: string | undefined, expect: string }} c */
function check(c) {
  const outcome = authenticate(c.header, now);
  if (outcome instanceof Promise)
    throw new Error(`${c.name}: expected a synchronous decision (cache hit), got a promise`);
  const got = outcome.ok ? 'ok' : outcome.reason;
  if (got !== c.expect) throw new Error(`${c.name}: expected ${c.expect}, got ${got}`);
}

/**
 * ns/op of fn(arg) over `iterations` calls, median and best of `batches` batches.
 * @template A
 * @param {(arg: A) => unknown} fn
 * @param {A} [arg]
 * @returns {{ medianNs: number, bestNs: number }}
 */
function time(fn, arg) {
  let sink = 0;
  for (let i = 0; i < Math.min(iterations, 100_000); i++) sink += fn(/** @type {A} */ (arg)) ? 1 : 0; // warm-up
  const perBatch = [];
  for (let b = 0; b < batches; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink += fn(/** @type {A} */ (arg)) ? 1 : 0;
    perBatch.push(Number(process.hrtime.bigint() - t0) / iterations);
  }
  if (sink < 0) process.stdout.write(''); // keep `sink` alive
  perBatch.sort((a, b) => a - b);
  return {
    medianNs: perBatch[Math.floor(perBatch.length / 2)],
    bestNs: perBatch[0],
  };
}

const readsBefore = storeReads;
/** @type {{ name: string, what: string, outcome?: string, medianNs: number, bestNs: number }[]} */
const results = [];
for (const c of CASES) {
  check(c);
  results.push({
    name: c.name,
    what: 'authenticate(header, now)',
    outcome: c.expect,
    ...time((/** @type {string | undefined} */ h) => authenticate(h, now), c.header),
  });
}
// A kept-alive connection sending its header again: compared with the connection's memo, no
// parse or hash. Each request's header is a string of its own (the HTTP parser makes one), so the
// copies below are distinct strings with the same content, as the proxy compares them.
const copies = Array.from({ length: 64 }, () => Buffer.from(`Bearer ${token}`).toString('latin1'));
const memo = newCredentialMemo();
let next = 0;
check({ name: 'Bearer, cache hit, same connection', header: copies[0], expect: 'ok' });
results.push({
  name: 'Bearer, cache hit, same connection',
  what: 'authenticate(header, now, memo)',
  outcome: 'ok',
  ...time(() => authenticate(copies[next++ & 63], now, memo)),
});
// The parts, for reading the whole: what the hit costs in parsing, hashing and the lookup.
const hash = hashToken(token);
results.push({
  name: 'part: extractCredential (Bearer)',
  what: 'header parse + checksum',
  ...time(extractCredential, `Bearer ${token}`),
});
results.push({ name: 'part: hashToken (SHA-256 hex)', what: 'node:crypto hash', ...time(hashToken, token) });
results.push({
  name: 'part: cache.lookup (hit)',
  what: 'LRU get',
  ...time((/** @type {string} */ h) => cache.lookup(h), hash),
});
const storeReadsWhileTimed = storeReads - readsBefore;
await cache.stop();

const rows = results.map((r) => [r.name, r.medianNs.toFixed(0), r.bestNs.toFixed(0), r.outcome ?? '']);
const widths = [0, 1, 2, 3].map((i) =>
  Math.max(['case', 'ns/op (median)', 'ns/op (best)', 'outcome'][i].length, ...rows.map((r) => r[i].length)),
);
/** @param {string[]} cells */
const line = (cells) =>
  cells
    .map((c, i) => (i === 1 || i === 2 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
    .join('  ')
    .trimEnd();
const text = [
  `auth decision micro-benchmark  node ${process.version}  ${iterations.toLocaleString('en-US')} iterations × ${batches} batches`,
  '',
  line(['case', 'ns/op (median)', 'ns/op (best)', 'outcome']),
  widths.map((w) => '-'.repeat(w)).join('  '),
  ...rows.map(line),
  '',
  `store reads while timing: ${storeReadsWhileTimed} (every timed call is a cache hit, positive or negative)`,
].join('\n');
process.stdout.write(`${text}\n`);
if (storeReadsWhileTimed !== 0) {
  process.stderr.write('auth-micro: the store was read while timing: the numbers do not measure the cache-hit path\n');
  process.exitCode = 1;
}

if (!values['no-write']) {
  const dir = path.join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const startedAt = new Date().toISOString();
  const json = `${JSON.stringify({ meta: { startedAt, node: process.version, iterations, batches }, results, storeReadsWhileTimed, table: text }, null, 2)}\n`;
  writeFileSync(path.join(dir, `auth-micro-${startedAt.replace(/[:.]/g, '-')}.json`), json);
  writeFileSync(path.join(dir, 'auth-micro-latest.json'), json);
}
