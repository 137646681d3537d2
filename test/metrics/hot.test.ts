import { describe, expect, it } from 'vitest';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from '../../src/metrics/hot.js';

const BUCKETS = [0.001, 0.005, 0.01, 0.1, 1, 10];
const LABELS = ['token_type', 'status_class'] as const;
const SETS: [string, string][] = [
  ['production', '2xx'],
  ['development', '2xx'],
  ['none', '4xx'],
  ['production', '5xx'],
];

function observations(n: number): { set: [string, string]; value: number }[] {
  const out = [];
  let x = 7;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    // Values on, below, between and above the bounds (0.1 exactly lands in its own bucket).
    const value = [0, 0.001, 0.0042, 0.1, 0.73, 12, 1e-6, 10][x % 8]! * (1 + (x % 3) / 1000);
    out.push({ set: SETS[x % SETS.length]!, value: x % 5 === 0 ? BUCKETS[x % BUCKETS.length]! : value });
  }
  return out;
}

describe('HotHistogram and HotCounter', () => {
  it("export exactly what prom-client's Histogram and Counter export for the same observations", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const hotHistogram = new HotHistogram({
      name: 'x_duration_seconds',
      help: 'h',
      labelNames: LABELS,
      buckets: BUCKETS,
      registers: [ours],
    });
    const hotCounter = new HotCounter({ name: 'x_requests_total', help: 'c', labelNames: LABELS, registers: [ours] });
    const histogram = new Histogram({
      name: 'x_duration_seconds',
      help: 'h',
      labelNames: LABELS,
      buckets: BUCKETS,
      registers: [theirs],
    });
    const counter = new Counter({ name: 'x_requests_total', help: 'c', labelNames: LABELS, registers: [theirs] });
    for (const { set, value } of observations(5_000)) {
      hotHistogram.labels(...set).observe(value);
      hotCounter.labels(...set).inc();
      histogram.labels(...set).observe(value);
      counter.labels(...set).inc();
    }
    hotCounter.labels('production', '2xx').inc(3);
    counter.labels('production', '2xx').inc(3);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // The JSON the cluster primary aggregates: the same, but for prom-client's empty exemplar fields.
    const withoutExemplars: unknown = JSON.parse(
      JSON.stringify(await theirs.getMetricsAsJSON(), (k, v: unknown) => (k === 'exemplar' ? undefined : v)),
    );
    expect(JSON.parse(JSON.stringify(await ours.getMetricsAsJSON()))).toEqual(withoutExemplars);
  });

  it("sums across cluster workers as prom-client's own metrics do", async () => {
    const workers = [0, 1].map(() => {
      const registry = new Registry();
      const h = new HotHistogram({
        name: 'x_duration_seconds',
        help: 'h',
        labelNames: LABELS,
        buckets: BUCKETS,
        registers: [registry],
      });
      const c = new HotCounter({ name: 'x_requests_total', help: 'c', labelNames: LABELS, registers: [registry] });
      return { registry, h, c };
    });
    workers[0]!.h.labels('production', '2xx').observe(0.002);
    workers[1]!.h.labels('production', '2xx').observe(0.5);
    workers[0]!.c.labels('production', '2xx').inc();
    workers[1]!.c.labels('production', '2xx').inc(2);
    const merged = AggregatorRegistry.aggregate(await Promise.all(workers.map((w) => w.registry.getMetricsAsJSON())));
    const text = await merged.metrics();
    expect(text).toContain('x_requests_total{token_type="production",status_class="2xx"} 3');
    expect(text).toContain('x_duration_seconds_count{token_type="production",status_class="2xx"} 2');
    expect(text).toContain('x_duration_seconds_bucket{le="0.005",token_type="production",status_class="2xx"} 1');
    expect(text).toContain('x_duration_seconds_bucket{le="1",token_type="production",status_class="2xx"} 2');
    expect(text).toContain('x_duration_seconds_sum{token_type="production",status_class="2xx"} 0.502');
  });

  it('refuses a wrong number of label values and a value that is not a number, and resets', async () => {
    const registry = new Registry();
    const h = new HotHistogram({
      name: 'x_seconds',
      help: 'h',
      labelNames: LABELS,
      buckets: BUCKETS,
      registers: [registry],
    });
    expect(() => h.labels('production')).toThrow(/expected 2 label values/);
    expect(() => h.labels('production', '2xx').observe(Number.NaN)).toThrow(/not a valid number/);
    h.labels('production', '2xx').observe(1);
    expect((await h.get()).values.length).toBe(BUCKETS.length + 3);
    registry.resetMetrics();
    expect((await h.get()).values).toEqual([]);
  });
});
