import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliArgs } from '../helpers/cli-args.js';
import type { LoadtestReport } from '../../src/loadtest/report.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { runLoadtestInProcess, expectNoSecret } from './harness.js';

/**
 * `tollgate loadtest` against a real gateway on loopback, in process: short runs (1-2 s), and
 * assertions on what the report says. Exit codes of the real command: test/e2e/loadtest.test.ts.
 */

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-loadtest-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function tokenFile(gw: TestGateway, name: string, count: number): Promise<{ file: string; tokens: string[] }> {
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) tokens.push((await gw.createToken({ name: `${name}-${i}` })).token);
  const file = path.join(dir, `${name}.txt`);
  writeFileSync(file, `${tokens.join('\n')}\n`);
  return { file, tokens };
}

/** A gateway for the suite (started before its tests, closed after) and a file of `count` of its tokens. */
function gatewayWithTokens(
  env: Record<string, string>,
  name: string,
  count: number,
): { gw: TestGateway; file: string; tokens: string[] } {
  const fixture = {} as { gw: TestGateway; file: string; tokens: string[] };
  beforeAll(async () => {
    fixture.gw = await startTestGateway({ TOLLGATE_LOG_LEVEL: 'warn', ...env });
    Object.assign(fixture, await tokenFile(fixture.gw, name, count));
  });
  afterAll(() => fixture.gw?.close());
  return fixture;
}

describe('a load test of one gateway', () => {
  // The failure limiter off: one load generator is one address, and this suite measures the 401s.
  const fixture = gatewayWithTokens({ TOLLGATE_AUTH_FAILURE_BURST: '0' }, 'one-gateway', 3);
  let gw: TestGateway;
  let file: string;
  let tokens: string[];
  beforeAll(() => ({ gw, file, tokens } = fixture));

  it('counts 401s for unknown tokens beside the 200s of the file, with --json alone on stdout', async () => {
    const r = await runLoadtestInProcess(
      cliArgs({ target: gw.url, 'token-file': file, duration: 1, connections: 4, 'invalid-share': 0.3, json: true }),
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as LoadtestReport; // the whole of stdout is the JSON report
    expect(report.statusCounts['200']).toBeGreaterThan(0);
    expect(report.statusCounts['401']).toBeGreaterThan(0);
    expect(report.statusCounts['429']).toBe(0);
    expect(report.statusCounts['200']! + report.statusCounts['401']!).toBe(report.requests);
    expect(report.sent.invalid / (report.sent.invalid + report.sent.warm)).toBeCloseTo(0.3, 1);
    expect(report.requestsPerSecond).toBeGreaterThan(0);
    expect(report.bytesPerSecond).toBeGreaterThan(0);
    const { p50, p90, p99, max } = report.latencyMs;
    expect(0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max, JSON.stringify(report.latencyMs)).toBe(true);
    expect(report.timeline.length).toBeGreaterThanOrEqual(1);
    expect(report.timeline.reduce((n, s) => n + s.requests, 0)).toBe(report.requests);
    expectNoSecret(tokens, r.stdout, r.stderr);
  });

  it('writes an HTML report that opens without a network and holds the charts and their data', async () => {
    const out = path.join(dir, 'report.html');
    const r = await runLoadtestInProcess(
      cliArgs({ target: gw.url, 'token-file': file, duration: 2, connections: 2, 'invalid-share': 0.2, out }),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`HTML report     ${out}`);
    const html = readFileSync(out, 'utf8');
    for (const chart of ['throughput-chart', 'p99-chart', 'status-chart']) expect(html).toContain(`<svg id="${chart}"`);
    // Self-contained: no asset from elsewhere, no script that runs.
    expect(html).not.toMatch(/\b(src|href)\s*=/i);
    expect(html).not.toMatch(/url\(|@import|<link|<script(?![^>]*type="application\/json")/i);
    expect(html).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/);
    const data = JSON.parse(
      /<script type="application\/json" id="loadtest-report">(.*?)<\/script>/s.exec(html)![1]!,
    ) as LoadtestReport;
    expect(data.timeline.length).toBeGreaterThanOrEqual(2);
    expect(data.statusCounts['401']).toBeGreaterThan(0);
    for (const second of data.timeline) expect(html).toContain(`<title>${second.t} s: ${second.p99Ms}</title>`);
    expectNoSecret(tokens, r.stdout, r.stderr, html);
  });

  it('prints a readable report, Basic PROJECT:token answered like Bearer', async () => {
    const r = await runLoadtestInProcess(
      cliArgs({ target: gw.url, 'token-file': file, duration: 1, connections: 2, basic: 'load-project' }),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^Tollgate load test: http:\/\/127\.0\.0\.1:\d+\/generic\/hello\/1\.0\.0\/hello-1\.0\.0\.txt\n/,
    );
    expect(r.stdout).toMatch(/, Basic\n/);
    expect(r.stdout).toMatch(/^requests +[\d,]+ \([\d,]+ req\/s\)/m);
    expect(r.stdout).toMatch(/^latency ms +p50 [\d.]+ +p90 [\d.]+ +p99 [\d.]+ +max [\d.]+$/m);
    expect(r.stdout).toMatch(/^status +200 [1-9][\d,]* · 401 0 · 403 0 · 429 0 · 5xx 0 · errors 0 · timeouts 0$/m);
    expectNoSecret(tokens, r.stdout, r.stderr);
  });

  it('uses each cold token once, so that every cold request reads the store', async () => {
    const cold = await tokenFile(gw, 'cold', 60); // 10 warm, 50 cold: --rate 20 over 1 s (+1) at 0.5 needs 20
    const readsBefore = gw.gateway.cache.stats.storeReads;
    const r = await runLoadtestInProcess(
      cliArgs({
        target: gw.url,
        'token-file': cold.file,
        duration: 1,
        connections: 2,
        rate: 20,
        'cold-share': 0.5,
        json: true,
      }),
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as LoadtestReport;
    expect(report.sent.cold).toBeGreaterThan(0);
    expect(report.cold).toEqual({ tokensUsed: report.sent.cold, tokensLeft: 50 - report.sent.cold });
    expect(report.statusCounts['200']).toBe(report.requests);
    // One store read per cold token at least (the 10 warm ones add theirs on first use).
    expect(gw.gateway.cache.stats.storeReads - readsBefore).toBeGreaterThanOrEqual(report.sent.cold);
    expectNoSecret(cold.tokens, r.stdout, r.stderr);
  });

  interface Refusal {
    what: string;
    name: string;
    count: number;
    options: Record<string, number>;
    message: (file: string) => string | RegExp;
  }
  it.each<Refusal>([
    {
      what: 'refuses a token file too small for --cold-share at the asked rate and length',
      name: 'small',
      count: 12,
      options: { duration: 5, rate: 100, 'cold-share': 0.5 },
      message: (file: string) =>
        `--cold-share 0.5 at this --rate and --duration needs up to 300 unused tokens beyond the first 10: ${file} holds 12`,
    },
    {
      what: 'stops with a clear error when the cold tokens run out at full speed',
      name: 'few',
      count: 15,
      options: { duration: 3, connections: 2, 'cold-share': 0.5 },
      message: () => /the token file ran out of unused tokens for --cold-share after [\d.]+ s \(5 cold requests/,
    },
  ])('$what', async ({ name, count, options, message }) => {
    const tokens = await tokenFile(gw, name, count);
    const r = await runLoadtestInProcess(cliArgs({ target: gw.url, 'token-file': tokens.file, ...options }));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message(tokens.file));
    expect(r.stdout).toBe('');
    expectNoSecret(tokens.tokens, r.stderr);
  });
});

describe('a load test of a gateway with a small failure limit', () => {
  const limited = gatewayWithTokens(
    { TOLLGATE_AUTH_FAILURE_BURST: '5', TOLLGATE_AUTH_FAILURE_REFILL_PER_MINUTE: '1' },
    'limited',
    2,
  );

  it('counts the 429s of the failure limit apart from the 401s', async () => {
    const { gw, file, tokens } = limited;
    const r = await runLoadtestInProcess(
      cliArgs({ target: gw.url, 'token-file': file, duration: 1, connections: 2, 'invalid-share': 0.5, json: true }),
    );
    expect(r.code, r.stderr).toBe(0);
    const { statusCounts } = JSON.parse(r.stdout) as LoadtestReport;
    // The burst's 401s, then 429s for any token the cache does not hold (known-unknown ones still get 401).
    expect(statusCounts['401']).toBeGreaterThanOrEqual(1);
    expect(statusCounts['429']).toBeGreaterThan(0);
    expect(statusCounts['200']).toBeGreaterThan(0); // cached tokens are never limited
    expectNoSecret(tokens, r.stdout, r.stderr);
  });
});
