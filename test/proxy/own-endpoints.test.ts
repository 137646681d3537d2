import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { rawRequest } from '../helpers/raw-http.js';

/** `/-/tollgate/` on the proxy port is Tollgate's own: never forwarded, whatever the routes say. */
describe('the /-/tollgate/ namespace on the proxy port', () => {
  let origin: Origin;
  let gw: TestGateway;
  beforeAll(async () => {
    origin = await startOrigin();
    gw = await startTestGateway({ TOLLGATE_UPSTREAM: origin.url });
  });
  afterAll(async () => {
    await gw?.close();
    await origin?.close();
  });

  it.each([
    ['GET', '/-/tollgate/unknown'],
    ['POST', '/-/tollgate/unknown'],
    ['HEAD', '/-/tollgate/x/y'],
    ['DELETE', '/-/tollgate/'],
    ['GET', '/-/tollgate'],
    ['GET', '/-/tollgate?x=1'],
    ['GET', '/-/./tollgate/unknown'],
    ['GET', '/-/tollgate/./unknown'],
  ])('answers %s %s itself (404), without a credential, and never forwards it', async (method, path) => {
    const before = origin.seen.length;
    const res = await rawRequest(gw.url, { method, path, headers: method === 'POST' ? { 'Content-Length': '0' } : {} });
    expect(res.status).toBe(404);
    if (method !== 'HEAD')
      expect(JSON.parse(res.body.toString())).toMatchObject({ code: 'TOLLGATE_ERR_REQUEST_NO_ROUTE' });
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(origin.seen.length).toBe(before);
  });

  it('forwards what only looks like the namespace', async () => {
    const res = await rawRequest(gw.url, { path: '/-/tollgate-x/file', headers: {} });
    expect(res.status).toBe(401); // an ordinary artifact path: a credential is needed
  });

  it.each(['/-/tollgate/', '/-/tollgate', '/-/tollgate/npm/'])(
    'refuses a route whose prefix is %s, saying why',
    (prefix) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-own-'));
      writeFileSync(
        path.join(dir, 'config.json'),
        JSON.stringify({ routes: [{ prefix, upstream: 'http://127.0.0.1:1/' }] }),
      );
      const result = loadConfig({ TOLLGATE_CONFIG: path.join(dir, 'config.json') }, dir);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.problems.join('\n')).toContain("Tollgate's own endpoints");
    },
  );
});
