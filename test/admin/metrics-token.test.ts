import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const METRICS_TOKEN = 'metrics-secret-0123456789';

describe('/metrics behind its own bearer credential', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ TOLLGATE_METRICS_TOKEN: METRICS_TOKEN });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('refuses a scrape without the metrics token, or with another credential', async () => {
    expect((await fetch(`${gw.adminUrl}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${gw.adminUrl}/metrics`, {
      headers: { authorization: 'Bearer metrics-secret-0123456788' },
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).not.toContain(METRICS_TOKEN);
  });

  it('serves the metrics to a scrape with the token', async () => {
    const res = await fetch(`${gw.adminUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('tollgate_http_requests_total');
  });

  it('keeps health checks open for load balancers', async () => {
    expect((await fetch(`${gw.adminUrl}/healthz`)).status).toBe(200);
  });
});

describe('an admin listener beyond loopback', () => {
  it.each(['0.0.0.0', '::', '10.1.2.3'])('requires TOLLGATE_METRICS_TOKEN when bound to %s', (host) => {
    const result = loadConfig({ TOLLGATE_ADMIN_HOST: host });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems.join('\n')).toMatch(/TOLLGATE_METRICS_TOKEN must be set/);
  });

  it.each(['127.0.0.1', '127.0.0.2', '::1', 'localhost'])('does not require it on loopback (%s)', (host) => {
    expect(loadConfig({ TOLLGATE_ADMIN_HOST: host }).ok).toBe(true);
  });

  it('accepts a non-loopback admin listener with a metrics token', () => {
    expect(loadConfig({ TOLLGATE_ADMIN_HOST: '0.0.0.0', TOLLGATE_METRICS_TOKEN: METRICS_TOKEN }).ok).toBe(true);
  });
});
