import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectMetrics } from '../../src/metrics/select.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const families = (text: string): string[] => [...text.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1]!);

describe('/metrics?name=: only the named metric families', () => {
  let gw: TestGateway;
  let listCalls = 0;
  beforeAll(async () => {
    gw = await startTestGateway();
    const { token } = await gw.createToken({ name: 'ci-prod', type: 'production' });
    await fetch(`${gw.url}/anything`, { headers: { authorization: `Bearer ${token}` } }); // a cache miss: one store read
    const list = gw.store.list.bind(gw.store);
    gw.store.list = () => {
      listCalls++;
      return list();
    };
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('serves the named families, in the order asked, and collects nothing else', async () => {
    const before = listCalls;
    const res = await fetch(
      `${gw.adminUrl}/metrics?name=tollgate_token_store_duration_seconds&name=tollgate_token_cache_lookups_total`,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(families(text)).toEqual(['tollgate_token_store_duration_seconds', 'tollgate_token_cache_lookups_total']);
    expect(text).toMatch(/^tollgate_token_cache_lookups_total\{result="hit"\} \d+$/m);
    expect(text).toMatch(/^tollgate_token_store_duration_seconds_count\{outcome="ok"\} \d+$/m);
    // The Production token gauges read every token from the store; a filtered scrape skips them.
    expect(listCalls).toBe(before);
    const full = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(listCalls).toBeGreaterThan(before);
    expect(families(full)).toEqual(
      expect.arrayContaining(['tollgate_token_cache_lookups_total', 'tollgate_http_requests_total']),
    );
  });

  it('gives each family once, and nothing for a name it does not have', async () => {
    const twice = await (
      await fetch(`${gw.adminUrl}/metrics?name=tollgate_http_requests_total&name=tollgate_http_requests_total`)
    ).text();
    expect(families(twice)).toEqual(['tollgate_http_requests_total']);
    const unknown = await fetch(`${gw.adminUrl}/metrics?name=no_such_metric_total`);
    expect(unknown.status).toBe(200);
    expect(await unknown.text()).toBe('');
  });

  it('refuses what is not a metric name, and too many names, with 400 and a clear error', async () => {
    for (const bad of ['', '1abc', 'a-b', 'a b', 'a{b="c"}']) {
      const res = await fetch(`${gw.adminUrl}/metrics?name=${encodeURIComponent(bad)}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/not a metric name/);
    }
    const many = Array.from({ length: 65 }, (_, i) => `name=m_${i}`).join('&');
    const res = await fetch(`${gw.adminUrl}/metrics?${many}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/at most 64 names/);
  });
});

describe('/metrics?name= behind the metrics token', () => {
  it('needs the token as a full scrape does', async () => {
    const gw = await startTestGateway({ TOLLGATE_METRICS_TOKEN: 'metrics-secret-0123456789' });
    try {
      expect((await fetch(`${gw.adminUrl}/metrics?name=tollgate_http_requests_total`)).status).toBe(401);
      const ok = await fetch(`${gw.adminUrl}/metrics?name=tollgate_http_requests_total`, {
        headers: { authorization: 'Bearer metrics-secret-0123456789' },
      });
      expect(families(await ok.text())).toEqual(['tollgate_http_requests_total']);
    } finally {
      await gw.close();
    }
  });
});

describe('selectMetrics on the cluster source (text only)', () => {
  it('picks the same families out of the whole exposition as the registry gives', async () => {
    const registry = new Registry();
    new Counter({ name: 'a_total', help: 'a', labelNames: ['k'], registers: [registry] }).inc({ k: 'x' }, 2);
    new Histogram({ name: 'b_seconds', help: 'b', buckets: [0.1, 1], registers: [registry] }).observe(0.5);
    new Gauge({ name: 'c', help: 'c with\nnewline', registers: [registry] }).set(3);
    const textOnly = { contentType: registry.contentType, metrics: () => registry.metrics() };
    for (const names of [['b_seconds'], ['c', 'a_total'], ['a_total', 'b_seconds', 'c'], ['nope'], []]) {
      const fromText = await selectMetrics(textOnly, names);
      expect(fromText).toBe(await selectMetrics(registry, names));
      expect(families(fromText)).toEqual(names.filter((n) => n !== 'nope'));
    }
  });
});
