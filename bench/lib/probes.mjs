// @ts-check
// Side channels the bench reads around a run: the gateway's /metrics (when it serves one) and
// Redis's own command counters (independent of the gateway's instrumentation).
import net from 'node:net';
import { httpGet } from './procs.mjs';

/**
 * The families authCounters() reads. The bench asks for these alone (`?name=`): a full scrape
 * also collects the Production token gauges, which read every token from the store. With the
 * Redis scenarios' 2,000 tokens that was ~40 ms and several MB promoted per scrape, two
 * scrapes per run, and it set the Redis gateway's peak RSS (150-167 MiB with full scrapes,
 * 119.5 without, in the same build).
 */
const COUNTER_FAMILIES = ['tollgate_token_cache_lookups_total', 'tollgate_token_store_duration_seconds'];

/**
 * @typedef {Map<string, { labels: Record<string, string>, value: number }[]>} Metrics
 */

/**
 * Parsed Prometheus text: name -> [{ labels, value }]. Null when /metrics is absent.
 * @param {number} adminPort
 * @returns {Promise<Metrics | null>}
 */
export async function scrapeMetrics(adminPort) {
  let res;
  try {
    res = await httpGet(`http://127.0.0.1:${adminPort}/metrics?${COUNTER_FAMILIES.map((n) => `name=${n}`).join('&')}`);
  } catch {
    return null;
  }
  if (res.status !== 200) return null;
  /** @type {Metrics} */
  const out = new Map();
  for (const line of res.body.toString('utf8').split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    /** @type {Record<string, string>} */
    const labels = {};
    if (m[2]) for (const lm of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    const list = out.get(m[1]) ?? [];
    list.push({ labels, value: Number(m[3]) });
    out.set(m[1], list);
  }
  return out;
}

/**
 * Sum of a metric's samples whose labels match `where`; undefined when the metric is absent.
 * @param {Metrics | null | undefined} metrics
 * @param {string} name
 * @param {Record<string, string>} [where]
 */
export function metricSum(metrics, name, where = {}) {
  const list = metrics?.get(name);
  if (!list) return undefined;
  let sum = 0;
  for (const { labels, value } of list) {
    if (Object.entries(where).every(([k, v]) => labels[k] === v)) sum += value;
  }
  return sum;
}

/**
 * @typedef {Record<string, number | undefined>} Counters
 */

/**
 * What the bench wants from /metrics: cache lookups by result and store reads.
 * @param {Metrics | null} metrics
 * @returns {Counters | null}
 */
export function authCounters(metrics) {
  if (!metrics) return null;
  return {
    cacheHits: metricSum(metrics, 'tollgate_token_cache_lookups_total', { result: 'hit' }),
    cacheNegativeHits: metricSum(metrics, 'tollgate_token_cache_lookups_total', { result: 'negative_hit' }),
    cacheMisses: metricSum(metrics, 'tollgate_token_cache_lookups_total', { result: 'miss' }),
    storeReads: metricSum(metrics, 'tollgate_token_store_duration_seconds_count'),
  };
}

/**
 * @param {Counters | null | undefined} before
 * @param {Counters | null | undefined} after
 * @returns {Counters | null}
 */
export function diffCounters(before, after) {
  if (!before || !after) return null;
  /** @type {Counters} */
  const out = {};
  for (const key of Object.keys(after)) {
    out[key] = after[key] === undefined || before[key] === undefined ? undefined : after[key] - before[key];
  }
  return out;
}

/**
 * One Redis command over a raw socket (RESP), returning the bulk string reply.
 * @param {number} port
 * @param {readonly string[]} args
 * @returns {Promise<string>}
 */
function redisCommand(port, args) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    socket.setTimeout(3000, () => socket.destroy(new Error('redis timeout')));
    socket.on('connect', () => {
      socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf('\r\n');
      if (nl < 0) return;
      const head = buf.subarray(0, nl).toString();
      if (head[0] === '-') {
        socket.destroy();
        reject(new Error(head.slice(1)));
      } else if (head[0] === '+' || head[0] === ':') {
        socket.destroy();
        resolve(head.slice(1));
      } else if (head[0] === '$') {
        const len = Number(head.slice(1));
        if (buf.length >= nl + 2 + len) {
          socket.destroy();
          resolve(buf.subarray(nl + 2, nl + 2 + len).toString());
        }
      }
    });
    socket.on('error', reject);
  });
}

/** @param {number} port */
export const redisPing = (port) => redisCommand(port, ['PING']);

/** Redis `INFO commandstats` as { hgetall: calls, ... }. @param {number} port */
export async function redisCommandCalls(port) {
  const text = await redisCommand(port, ['INFO', 'commandstats']);
  /** @type {Record<string, number>} */
  const calls = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]] = Number(m[2]);
  return calls;
}

/**
 * Origin's own counters (requests, requests that still carried an Authorization header).
 * @param {number} originPort
 * @returns {Promise<Record<string, number>>}
 */
export async function originStats(originPort) {
  const res = await httpGet(`http://127.0.0.1:${originPort}/__stats`);
  return JSON.parse(res.body.toString('utf8'));
}
