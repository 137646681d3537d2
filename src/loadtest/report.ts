import { REVOCATION_PROMISE_MS, type LoadtestOptions } from './options.js';
import type { LoadResult } from './run.js';
import { round, STATUS_KEYS, type RunStats, type Second } from './stats.js';
import type { RequestKind } from './tokens.js';

/** The load generator is the bottleneck past this share of one core: the figures are a floor. */
const SATURATED_CPU_SHARE = 0.9;

export interface RevocationResult {
  tokenId: string;
  tokenName: string;
  /** When the revoke call answered, seconds since the start; null when the run ended before. */
  revokedAtS: number | null;
  /** Send time of the last request that got 200 minus the moment the revoke call answered (≥ 0). */
  revocationMs: number | null;
  promiseMs: number;
  /** 200s for requests sent after the revoke call answered. */
  okAfterRevoke: number;
  /** Refusals (401, 429) of requests sent after the last 200: the gateways did stop accepting the token. */
  landed: boolean;
}

export interface LoadtestReport {
  startedAt: string;
  target: string;
  path: string;
  connections: number;
  durationS: number;
  /** Requested rate (req/s over all connections); null: as fast as it goes. */
  rate: number | null;
  auth: 'bearer' | 'basic';
  shares: { invalid: number; cold: number };
  requests: number;
  requestsPerSecond: number;
  bytesPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  statusCounts: Record<string, number>;
  serverErrors: Record<string, number>;
  /** Requests sent by kind of token: warm (cached after first use), invalid (unknown), cold (first use in this run). */
  sent: Record<RequestKind, number>;
  cold?: { tokensUsed: number; tokensLeft: number };
  generator: { cpuShare: number; saturated: boolean };
  revocationMs?: number | null;
  revocation?: RevocationResult;
  interrupted: boolean;
  timeline: Second[];
}

export function buildReport(
  options: LoadtestOptions,
  startedAt: Date,
  load: LoadResult,
  extra: {
    sent: Record<RequestKind, number>;
    coldLeft: number;
    revocation?: RevocationResult;
    interrupted: boolean;
  },
): LoadtestReport {
  const { stats, elapsedS } = load;
  const report: LoadtestReport = {
    startedAt: startedAt.toISOString(),
    target: options.target.origin,
    path: options.path,
    connections: options.connections,
    durationS: round(elapsedS),
    rate: options.rate ?? null,
    auth: options.basicProject === undefined ? 'bearer' : 'basic',
    shares: { invalid: options.invalidShare, cold: options.coldShare },
    requests: stats.responses,
    requestsPerSecond: round(stats.responses / elapsedS, 1),
    bytesPerSecond: Math.round(stats.bytes / elapsedS),
    latencyMs: latencyOf(stats),
    statusCounts: stats.statusCounts,
    serverErrors: stats.serverErrors,
    sent: { ...extra.sent },
    generator: { cpuShare: round(load.generatorCpuShare), saturated: load.generatorCpuShare >= SATURATED_CPU_SHARE },
    interrupted: extra.interrupted,
    timeline: stats.timeline,
  };
  if (options.coldShare > 0) report.cold = { tokensUsed: extra.sent.cold, tokensLeft: extra.coldLeft };
  if (extra.revocation) {
    report.revocationMs = extra.revocation.revocationMs;
    report.revocation = extra.revocation;
  }
  return report;
}

function latencyOf(stats: RunStats): LoadtestReport['latencyMs'] {
  const h = stats.latency;
  return {
    p50: round(h.quantileMs(0.5)),
    p90: round(h.quantileMs(0.9)),
    p99: round(h.quantileMs(0.99)),
    max: round(h.maxUs / 1000),
  };
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');

/** `200 40,608 · 401 4,512 · ...`: the fixed keys first, then any other status seen. */
export function formatStatusCounts(counts: Record<string, number>): string {
  const keys = [
    ...STATUS_KEYS,
    ...Object.keys(counts)
      .filter((k) => !(STATUS_KEYS as readonly string[]).includes(k))
      .sort(),
  ];
  return keys.map((k) => `${k} ${int(counts[k] ?? 0)}`).join(' · ');
}

export function formatBytes(perSecond: number): string {
  if (perSecond >= 1 << 20) return `${(perSecond / (1 << 20)).toFixed(1)} MiB/s`;
  if (perSecond >= 1 << 10) return `${(perSecond / (1 << 10)).toFixed(1)} KiB/s`;
  return `${int(perSecond)} B/s`;
}

/** One line a second on stderr (a TTY only). */
export function progressLine(second: Second, stats: RunStats, durationS: number): string {
  return (
    `[${second.t.toFixed(0).padStart(String(durationS).length)}/${durationS} s] ${int(second.requests)} req/s  p99 ${second.p99Ms} ms  ` +
    formatStatusCounts(stats.statusCounts)
  );
}

/** The human report (stdout without --json). */
export function formatReport(r: LoadtestReport, htmlFile: string | undefined): string {
  const mix = [
    r.rate === null ? 'as fast as it goes' : `${int(r.rate)} req/s asked`,
    r.auth === 'basic' ? 'Basic' : 'Bearer',
    ...(r.shares.invalid > 0 ? [`${round(r.shares.invalid * 100, 1)}% unknown tokens`] : []),
    ...(r.shares.cold > 0 ? [`${round(r.shares.cold * 100, 1)}% cold tokens`] : []),
  ].join(', ');
  const lines = [
    `Tollgate load test: ${r.target}${r.path}${r.interrupted ? '  (interrupted)' : ''}`,
    `${r.durationS} s, ${r.connections} connections, ${mix}`,
    `requests        ${int(r.requests)} (${int(r.requestsPerSecond)} req/s), ${formatBytes(r.bytesPerSecond)}`,
    `latency ms      p50 ${r.latencyMs.p50}  p90 ${r.latencyMs.p90}  p99 ${r.latencyMs.p99}  max ${r.latencyMs.max}`,
    `status          ${formatStatusCounts(r.statusCounts)}`,
  ];
  if (Object.keys(r.serverErrors).length > 0) {
    lines.push(
      `5xx             ${Object.entries(r.serverErrors)
        .map(([k, v]) => `${k} ${int(v)}`)
        .join(' · ')}`,
    );
  }
  if (r.cold)
    lines.push(`cold tokens     ${int(r.cold.tokensUsed)} used once each, ${int(r.cold.tokensLeft)} left unused`);
  if (r.revocation) lines.push(`revocation      ${revocationLine(r.revocation)}`);
  lines.push(
    `load generator  ${Math.round(r.generator.cpuShare * 100)}% of one core${
      r.generator.saturated
        ? ': saturated, the gateway may take more (run several load generators and add their figures)'
        : ''
    }`,
  );
  if (htmlFile) lines.push(`HTML report     ${htmlFile}`);
  return `${lines.join('\n')}\n`;
}

export function revocationLine(rev: RevocationResult): string {
  if (rev.revokedAtS === null || rev.revocationMs === null)
    return `not measured (the run ended before the revoke answered); token ${rev.tokenName} (${rev.tokenId})`;
  const verdict = !rev.landed
    ? 'NOT landed: 200s until the end of the run'
    : rev.revocationMs <= rev.promiseMs
      ? `within the ${rev.promiseMs} ms promise`
      : `OVER the ${rev.promiseMs} ms promise`;
  const last =
    rev.okAfterRevoke === 0
      ? 'no request sent after the revoke answered got 200'
      : `the last request to get 200 was sent ${int(rev.revocationMs)} ms after it`;
  return `${int(rev.revocationMs)} ms, ${verdict} (revoke answered at ${rev.revokedAtS} s; ${last}); token ${rev.tokenName} (${rev.tokenId}) revoked`;
}

/** The promise broken: revocation measured over a second, or never landed. */
export function revocationBroken(rev: RevocationResult | undefined): boolean {
  return rev !== undefined && rev.revocationMs !== null && (!rev.landed || rev.revocationMs > REVOCATION_PROMISE_MS);
}
