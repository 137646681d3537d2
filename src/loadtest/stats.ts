/**
 * What a run measured, from autocannon's per-response events: latency percentiles (a log-linear
 * histogram: bounded memory whatever the run's length, values within 1.6%), counts per status,
 * bytes, and a per-second timeline for the charts.
 */

/** Values below this many µs are kept exactly; above, in 64 steps per power of two. */
const EXACT_US = 128;
const STEPS = 64;
/** Up to 2^27 µs (134 s); longer responses count in the last bucket. */
const BUCKETS = EXACT_US + 20 * STEPS;

export class LatencyHistogram {
  private readonly counts = new Uint32Array(BUCKETS);
  count = 0;
  maxUs = 0;

  record(ms: number): void {
    const us = Math.max(0, Math.round(ms * 1000));
    this.counts[bucketOf(us)]!++;
    this.count++;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** The value (ms) at or below which `q` (0..1) of the recorded values lie; 0 when empty. */
  quantileMs(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(upperUs(i), this.maxUs) / 1000;
    }
    return this.maxUs / 1000;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.maxUs = 0;
  }
}

function bucketOf(us: number): number {
  if (us < EXACT_US) return us;
  const exponent = Math.floor(Math.log2(us)) - 6; // ≥ 1: us >> exponent lies in [64, 128)
  const index = EXACT_US + (exponent - 1) * STEPS + ((us >>> exponent) - STEPS);
  return Math.min(index, BUCKETS - 1);
}

function upperUs(index: number): number {
  if (index < EXACT_US) return index;
  const exponent = Math.floor((index - EXACT_US) / STEPS) + 1;
  const mantissa = ((index - EXACT_US) % STEPS) + STEPS;
  return ((mantissa + 1) << exponent) - 1;
}

/** The keys of `statusCounts` always present; other statuses are added by their code as they appear. */
export const STATUS_KEYS = ['200', '401', '403', '429', '5xx', 'errors', 'timeouts'] as const;

/** The status key a response counts under: its code, or `5xx` for any server error. */
export function statusKey(status: number): string {
  return status >= 500 && status <= 599 ? '5xx' : String(status);
}

export function emptyStatusCounts(): Record<string, number> {
  return Object.fromEntries(STATUS_KEYS.map((k) => [k, 0]));
}

export interface Second {
  /** Seconds since the start, at the end of this interval. */
  t: number;
  requests: number;
  bytes: number;
  p99Ms: number;
  /** Only the keys seen in this second. */
  statusCounts: Record<string, number>;
}

export interface RunStats {
  latency: LatencyHistogram;
  statusCounts: Record<string, number>;
  /** Server errors by exact code (the `5xx` count split). */
  serverErrors: Record<string, number>;
  responses: number;
  bytes: number;
  timeline: Second[];
  onResponse(status: number, bytes: number, latencyMs: number): void;
  onError(kind: 'errors' | 'timeouts'): void;
  /** Closes the current second (call once a second and at the end). */
  tick(t: number): Second;
  /** True when something was counted since the last tick. */
  secondPending(): boolean;
}

export function createRunStats(): RunStats {
  const latency = new LatencyHistogram();
  const secondLatency = new LatencyHistogram();
  const statusCounts = emptyStatusCounts();
  const serverErrors: Record<string, number> = {};
  let second = { requests: 0, bytes: 0, statusCounts: {} as Record<string, number> };
  const stats: RunStats = {
    latency,
    statusCounts,
    serverErrors,
    responses: 0,
    bytes: 0,
    timeline: [],
    onResponse: function onResponse(status, bytes, latencyMs) {
      const key = statusKey(status);
      statusCounts[key] = (statusCounts[key] ?? 0) + 1;
      if (key === '5xx') serverErrors[status] = (serverErrors[status] ?? 0) + 1;
      second.statusCounts[key] = (second.statusCounts[key] ?? 0) + 1;
      stats.responses++;
      stats.bytes += bytes;
      second.requests++;
      second.bytes += bytes;
      latency.record(latencyMs);
      secondLatency.record(latencyMs);
    },
    onError: function onError(kind) {
      statusCounts[kind]!++;
      second.statusCounts[kind] = (second.statusCounts[kind] ?? 0) + 1;
    },
    tick(t) {
      const closed: Second = { t, ...second, p99Ms: round(secondLatency.quantileMs(0.99)) };
      stats.timeline.push(closed);
      second = { requests: 0, bytes: 0, statusCounts: {} };
      secondLatency.reset();
      return closed;
    },
    secondPending: () => second.requests > 0 || Object.keys(second.statusCounts).length > 0,
  };
  return stats;
}

/** Two decimals: the histogram's precision does not carry more. */
export function round(n: number, decimals = 2): number {
  const f = 10 ** decimals;
  return Math.round(n * f) / f;
}
