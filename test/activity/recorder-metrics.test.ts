import { describe, expect, it } from 'vitest';
import { createActivityRecorder, type RequestActivity } from '../../src/activity/recorder.js';
import { parseArtifactPath } from '../../src/artifacts/parse-path/index.js';
import { tallyFor } from '../../src/metrics/tally.js';
import { createLabelLimiter, createMetrics, type Metrics } from '../../src/metrics/registry.js';

/**
 * The security counters are tallied in plain numbers and handed to prom-client when it collects.
 * Whatever the traffic and whenever the scrapes, /metrics must read exactly as it did when the
 * recorder called inc() on prom-client for every request: same series, same order, same values.
 */

const PRODUCTION_COUNTERS = [
  'tollgate_production_downloads_total',
  'tollgate_production_download_bytes_total',
  'tollgate_production_metadata_requests_total',
];

/** The three Production counters as /metrics shows them. */
async function exposition(metrics: Metrics): Promise<string> {
  const parts = await Promise.all(PRODUCTION_COUNTERS.map((name) => metrics.registry.getSingleMetricAsString(name)));
  return parts.join('\n');
}

/** What the recorder did before the tallies: inc() on prom-client at once, per request. */
function referenceRecorder(metrics: Metrics, projectLabel: (p: string) => string) {
  return (a: RequestActivity) => {
    if (a.principal.tokenType !== 'production' || a.status < 200 || a.status >= 300) return;
    const ref = parseArtifactPath(a.ecosystem, a.path);
    const project = projectLabel(a.principal.project);
    const tokenName = a.principal.tokenName;
    if (ref.kind === 'download') {
      metrics.productionDownloads.labels(ref.ecosystem, project, tokenName, String(ref.sealed)).inc();
      metrics.productionDownloadBytes.labels(ref.ecosystem, project, tokenName).inc(a.bytes);
    } else {
      metrics.productionMetadataRequests.labels(ref.ecosystem, project, tokenName).inc();
    }
  };
}

const PATHS: [RequestActivity['ecosystem'], string][] = [
  ['npm', '/lodash'], // metadata first: its label set must not show up under downloads until a download
  ['npm', '/lodash/-/lodash-4.17.21.tgz'],
  ['npm', '/lodash/-/lodash-4.17.21+sp1.tgz'],
  ['maven', '/com/acme/lib/1.0/lib-1.0.jar'],
  ['maven', '/com/acme/lib/1.0/lib-1.0.pom'],
  ['pypi', '/simple/requests/'],
  ['generic', '/tools/x/1.2.3/x-1.2.3.bin'],
];

function activity(i: number): RequestActivity {
  const [ecosystem, path] = PATHS[(i * 7 + (i >> 3)) % PATHS.length]!;
  return {
    requestId: `r-${i}`,
    principal: {
      tokenId: `tok_${i % 3}`,
      tokenName: `ci-${i % 3}`,
      tokenType: i % 11 === 5 ? 'development' : 'production',
      project: ['default', 'web', 'billing', 'mobile', 'data'][(i >> 1) % 5]!,
      restrictions: undefined,
      ci: undefined,
    },
    ecosystem,
    path,
    method: 'GET',
    status: i % 13 === 4 ? 404 : i % 17 === 3 ? 304 : 200,
    bytes: i % 9 === 0 ? 0 : 1000 + i,
    durationMs: 1.25,
    clientIp: '10.0.0.1',
    userAgent: 'npm/10',
    aborted: false,
    endedAt: 1_714_564_800_000 + i,
  };
}

describe('recorder security counters', () => {
  it('read on /metrics exactly as per-request inc() did, scrape after scrape', async () => {
    const tallied = createMetrics({ defaultMetrics: false });
    const direct = createMetrics({ defaultMetrics: false });
    // Two projects by name, then `other`: the limiter is called in the same order by both.
    const recorder = createActivityRecorder({
      production: [],
      development: [],
      metrics: tallied,
      projectLabel: createLabelLimiter(['web'], 2),
    });
    const reference = referenceRecorder(direct, createLabelLimiter(['web'], 2));

    expect(await exposition(tallied)).toBe(await exposition(direct));
    for (const [from, to] of [
      [0, 1],
      [1, 3],
      [3, 40],
      [40, 41],
      [41, 400],
      [400, 400],
      [400, 1000],
    ] as const) {
      for (let i = from; i < to; i++) {
        recorder.record(activity(i));
        reference(activity(i));
      }
      const text = await exposition(tallied);
      expect(text).toBe(await exposition(direct));
      expect(await exposition(tallied)).toBe(text); // a second read adds nothing
    }
    expect(await exposition(tallied)).toContain('project="other"');
    expect(await exposition(tallied)).toContain('sealed="true"');
  });

  it('shares one tally between recorders on the same metrics, and reads through get() too', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const a = tallyFor(metrics.productionDownloadBytes, 'npm', 'web', 'ci');
    const b = tallyFor(metrics.productionDownloadBytes, 'npm', 'web', 'ci');
    expect(b).toBe(a);
    a.inc(5);
    b.inc(0);
    expect((await metrics.productionDownloadBytes.get()).values).toEqual([
      { value: 5, labels: { ecosystem: 'npm', project: 'web', token_name: 'ci' } },
    ]);
    const zero = tallyFor(metrics.productionDownloadBytes, 'npm', 'web', 'other');
    zero.inc(0);
    expect((await metrics.productionDownloadBytes.get()).values.map((v) => v.value)).toEqual([5, 0]);
  });

  it('refuses a negative or infinite increment at once, as prom-client does', () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const tally = tallyFor(metrics.productionDownloadBytes, 'npm', 'web', 'ci');
    const child = metrics.productionDownloadBytes.labels('npm', 'web', 'ci');
    expect(() => tally.inc(-1)).toThrow(/decrease/);
    expect(() => child.inc(-1)).toThrow(/decrease/);
    expect(() => tally.inc(Number.POSITIVE_INFINITY)).toThrow(TypeError);
    expect(() => child.inc(Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });
});
