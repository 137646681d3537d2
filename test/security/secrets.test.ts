import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../src/tokens/format.js';
import { closedPort, startFaultyOrigin } from '../helpers/faulty-origin.js';
import { basic, bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { openRawConnection, type RawResponse } from '../helpers/raw-http.js';
import { tempDir } from '../helpers/route-config.js';
import { closesAfterAll } from '../helpers/teardown.js';

/**
 * No secret leaves the gateway by a side door: a gateway at debug log level, with upstream
 * credentials of all three kinds and an admin token, serves downloads, refuses bad tokens,
 * meets upstream errors and answers the admin API and /metrics; then every log line, every
 * error body, the /metrics text and the activity events (NDJSON file sink) are searched for
 * every token, every Authorization header value, every upstream credential and the admin
 * credentials. test/auth/gateway-auth.test.ts already greps the log for tokens of successful
 * and failed requests and the data dir for plaintext tokens; this covers the other channels.
 *
 * Also: unknown, expired, revoked (and malformed) tokens get byte-identical answers on the wire.
 */

const ADMIN_TOKEN = 'admin-secret-Qx7Lw2Zp9Rt4Vb6Nm8Kc';
const WRONG_ADMIN_TOKEN = 'admin-guess-Hj3Fd5Sa7Gq9Wl2Ep4Yu';
const UPSTREAM_BEARER = 'upstream-bearer-secret-Tz8Mx1Cv3Bn5';
const UPSTREAM_USER = 'svc-pypi';
const UPSTREAM_PASSWORD = 'upstream-password-secret-Kd4Ls6Pf8';
const UPSTREAM_HEADER_VALUE = 'upstream-header-secret-Wq2Er4Ty6Ui8';

const closing = closesAfterAll();
let origin: Origin;
let gw: TestGateway;

/** Every secret used in this file, with what it is (for the failure message). */
const secrets = new Map<string, string>([
  [ADMIN_TOKEN, 'admin token'],
  [WRONG_ADMIN_TOKEN, 'a wrong admin token'],
  [UPSTREAM_BEARER, 'upstream bearer credential'],
  [UPSTREAM_PASSWORD, 'upstream basic password'],
  [Buffer.from(`${UPSTREAM_USER}:${UPSTREAM_PASSWORD}`).toString('base64'), 'upstream basic credential (base64)'],
  [UPSTREAM_HEADER_VALUE, 'upstream header credential'],
]);
/** Every response body and header block the clients got on the proxy and admin ports (the token-creation answer aside). */
const answers: string[] = [];

async function record(res: Response): Promise<Response> {
  const text = await res.clone().text();
  answers.push(`${res.status} ${JSON.stringify([...res.headers])}\n${text}`);
  return res;
}

function proxyGet(pathname: string, authorization?: string): Promise<Response> {
  if (authorization) secrets.set(authorization, 'an Authorization header value sent');
  return fetch(`${gw.url}${pathname}`, { headers: authorization ? { authorization } : {} }).then(record);
}

beforeAll(async () => {
  origin = closing(await startOrigin());
  const stalling = closing(await startFaultyOrigin(() => {})); // accepts, never answers
  const config = closing(tempDir('tollgate-security-secrets-')).configFile([
    { prefix: '/npm/', upstream: origin.url, upstreamAuth: { type: 'bearer', token: UPSTREAM_BEARER } },
    {
      prefix: '/pypi/',
      upstream: origin.url,
      upstreamAuth: { type: 'basic', username: UPSTREAM_USER, password: UPSTREAM_PASSWORD },
    },
    {
      prefix: '/maven/',
      upstream: origin.url,
      upstreamAuth: { type: 'header', name: 'X-JFrog-Art-Api', value: UPSTREAM_HEADER_VALUE },
    },
    {
      prefix: '/down/',
      upstream: `http://127.0.0.1:${await closedPort()}`,
      upstreamAuth: { type: 'bearer', token: UPSTREAM_BEARER },
    },
    {
      prefix: '/slow/',
      upstream: stalling.url,
      upstreamAuth: { type: 'basic', username: UPSTREAM_USER, password: UPSTREAM_PASSWORD },
    },
  ]);
  gw = closing(
    await startTestGateway({
      TOLLGATE_CONFIG: config,
      TOLLGATE_LOG_LEVEL: 'debug',
      TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN,
      TOLLGATE_UPSTREAM_TIMEOUT_MS: '300',
      TOLLGATE_ACTIVITY_FLUSH_MS: '50',
    }),
  );
});

function activityEvents(): string {
  const activityDir = path.join(gw.dataDir, 'activity');
  if (!existsSync(activityDir)) return '';
  return readdirSync(activityDir)
    .map((f) => readFileSync(path.join(activityDir, f), 'utf8'))
    .join('');
}

describe('secrets in logs, error bodies, /metrics and activity events', () => {
  it(
    'prevents secret leaks: no token, Authorization value, upstream credential or admin credential appears anywhere',
    { timeout: 30_000 },
    async () => {
      const prod = await gw.createToken({ type: 'production' });
      const dev = await gw.createToken({ type: 'development' });
      const revoked = await gw.createToken();
      const expiring = await gw.createToken({ expires: new Date(Date.now() + 4000).toISOString() });
      const unknown = generateToken('production');
      const badChecksum = prod.token.slice(0, -1) + (prod.token.endsWith('a') ? 'b' : 'a');
      for (const t of [prod.token, dev.token, revoked.token, expiring.token, unknown, badChecksum])
        secrets.set(t, 'a client token');

      // Successful downloads on every route, in every credential form.
      for (const route of ['/npm/left-pad', '/pypi/simple/requests/', '/maven/org/x/1.0/x-1.0.jar']) {
        for (const header of [
          bearer(prod.token),
          basic('web-shop', prod.token),
          basic(prod.token, ''),
          bearer(dev.token),
          basic('ci', dev.token),
        ]) {
          expect((await proxyGet(route, header)).status).toBe(200);
        }
      }
      // The upstream did get its credentials (so the secrets above were really in play)...
      expect(origin.seen.some((s) => s.headers.authorization === `Bearer ${UPSTREAM_BEARER}`)).toBe(true);
      expect(origin.seen.some((s) => s.headers['x-jfrog-art-api'] === UPSTREAM_HEADER_VALUE)).toBe(true);

      // Refusals: revoked and expired (both cached first), unknown, bad checksum, malformed, none.
      expect((await proxyGet('/npm/warm', bearer(revoked.token))).status).toBe(200);
      expect((await proxyGet('/npm/warm', bearer(expiring.token))).status).toBe(200);
      await gw.store.revoke(revoked.record.id, 'test');
      await expect
        .poll(async () => (await proxyGet('/npm/r', bearer(revoked.token))).status, { timeout: 3000, interval: 100 })
        .toBe(401);
      await expect
        .poll(async () => (await proxyGet('/npm/e', bearer(expiring.token))).status, { timeout: 8000, interval: 100 })
        .toBe(401);
      for (const header of [
        bearer(unknown),
        basic('p', unknown),
        bearer(badChecksum),
        `Bearer ${prod.token} ${dev.token}`,
        `Token ${prod.token}`,
        basic('a\nb', prod.token),
        bearer(ADMIN_TOKEN),
        bearer(UPSTREAM_BEARER),
      ]) {
        expect((await proxyGet('/npm/refused', header)).status).toBe(401);
      }
      expect((await proxyGet('/npm/none')).status).toBe(401);
      expect(
        (
          await fetch(`${gw.url}/npm/x`, {
            method: 'PUT',
            headers: { authorization: bearer(prod.token) },
            body: 'x',
          }).then(record)
        ).status,
      ).toBe(405);
      expect((await proxyGet('/nowhere/x', bearer(prod.token))).status).toBe(404);

      // Upstream errors with credentials configured: refused (502) and stalled (504).
      expect((await proxyGet('/down/pkg', bearer(prod.token))).status).toBe(502);
      expect((await proxyGet('/slow/pkg', basic('p', prod.token))).status).toBe(504);

      // Admin port: a wrong sign-in, a real one, a token created through the API and used once.
      const adminFetch = (p: string, init: RequestInit = {}) => fetch(`${gw.adminUrl}${p}`, init);
      expect(
        (
          await adminFetch('/api/v1/session', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ token: WRONG_ADMIN_TOKEN }),
          }).then(record)
        ).status,
      ).toBe(401);
      expect(
        (await adminFetch('/api/v1/tokens', { headers: { authorization: bearer(WRONG_ADMIN_TOKEN) } }).then(record))
          .status,
      ).toBe(401);
      const signIn = await adminFetch('/api/v1/session', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: ADMIN_TOKEN }),
      });
      expect(signIn.status).toBe(200);
      const cookie = signIn.headers.getSetCookie()[0]!.split(';')[0]!;
      const csrf = ((await signIn.json()) as { csrfToken: string }).csrfToken;
      secrets.set(cookie.slice(cookie.indexOf('=') + 1), 'admin session cookie');
      secrets.set(csrf, 'admin CSRF token');
      const created = await adminFetch('/api/v1/tokens', {
        method: 'POST',
        headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json', origin: gw.adminUrl },
        body: JSON.stringify({ name: 'made-by-api', type: 'production' }),
      });
      expect(created.status).toBe(201);
      const { token: apiToken, id: apiTokenId } = (await created.json()) as { token: string; id: string }; // shown once, to its creator: not searched
      secrets.set(apiToken, 'a token created through the admin API');
      expect((await proxyGet('/npm/api-made', bearer(apiToken))).status).toBe(200);
      expect(
        (await adminFetch('/api/v1/tokens', { headers: { authorization: bearer(ADMIN_TOKEN) } }).then(record)).status,
      ).toBe(200);
      expect(
        (await adminFetch('/api/v1/activity', { headers: { authorization: bearer(ADMIN_TOKEN) } }).then(record)).status,
      ).toBe(200);

      const metrics = await (await adminFetch('/metrics', { headers: { authorization: bearer(ADMIN_TOKEN) } })).text();
      expect(metrics).toContain('tollgate_');
      // Production downloads become activity events: wait for the file sink to have the last one.
      await expect.poll(() => activityEvents().includes(apiTokenId), { timeout: 5000, interval: 50 }).toBe(true);
      await expect
        .poll(() => gw.logRecords().filter((r) => r.path === '/npm/api-made').length, { timeout: 2000 })
        .toBe(1);

      const channels: Record<string, string> = {
        'the gateway log (debug)': gw.logs(),
        'error bodies and response headers': answers.join('\n'),
        '/metrics': metrics,
        'activity events (NDJSON file sink)': activityEvents(),
      };
      expect(channels['activity events (NDJSON file sink)']).toContain(prod.record.id);
      expect(gw.logRecords().filter((r) => r.msg === 'request').length).toBeGreaterThan(30); // the log did record all of it
      expect(secrets.size).toBeGreaterThan(30);
      const leaks: string[] = [];
      for (const [channel, text] of Object.entries(channels)) {
        for (const [secret, what] of secrets) {
          if (text.includes(secret)) leaks.push(`${what} (${secret.slice(0, 12)}…) in ${channel}`);
        }
        const shaped = text.match(/tg[pd]_[0-9A-Za-z]{30,}/g);
        if (shaped) leaks.push(`a token-shaped string (${shaped[0].slice(0, 12)}…) in ${channel}`);
      }
      expect(leaks).toEqual([]);
      // And the client's token never reached the upstream.
      const upstreamSaw = JSON.stringify(origin.seen);
      for (const t of [prod.token, dev.token, apiToken]) expect(upstreamSaw).not.toContain(t);
    },
  );
});

describe('a token in the Basic user field', () => {
  // Clients that insist on a non-empty user are often configured with the token as user AND
  // password (user:token is the documented form). The parser takes any user as the project,
  // so the token itself becomes the project: it is written to the request log, used as a
  // Prometheus label value and stored in every activity event.
  it(
    'prevents a token leak through the project name: Basic <token>:<token> leaves the token in no log, metric or event',
    { timeout: 20_000 },
    async () => {
      const { token, record } = await gw.createToken({ type: 'production' });
      const res = await fetch(`${gw.url}/npm/as-user`, { headers: { authorization: basic(token, token) } });
      expect(res.status).toBe(200);
      await expect.poll(() => activityEvents().includes(record.id), { timeout: 5000, interval: 50 }).toBe(true);
      const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
      expect({
        log: gw.logs().includes(token),
        metrics: metrics.includes(token),
        events: activityEvents().includes(token),
      }).toEqual({ log: false, metrics: false, events: false });
    },
  );
});

describe('refusals that reveal nothing', () => {
  /** The response as bytes, without the lines that differ per request by design (Date, X-Request-Id). */
  function comparable(r: RawResponse): string {
    const lines = r.head.split('\r\n').filter((l) => !/^(date|x-request-id):/i.test(l));
    return `${lines.join('\r\n')}\r\n\r\n${r.body.toString('latin1')}`;
  }

  it(
    'prevents token enumeration: unknown, expired, revoked, bad-checksum and malformed tokens get byte-identical answers on the wire',
    { timeout: 20_000 },
    async () => {
      const revoked = await gw.createToken();
      const expiring = await gw.createToken({ expires: new Date(Date.now() + 3000).toISOString() });
      const host = new URL(gw.url).host;
      const conn = await openRawConnection(gw.url);
      const ask = (authorization: string) =>
        conn.request(`GET /npm/same HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${authorization}\r\n\r\n`);
      // Both real tokens work (and are cached) first.
      expect((await ask(bearer(revoked.token))).status).toBe(200);
      expect((await ask(bearer(expiring.token))).status).toBe(200);
      await gw.store.revoke(revoked.record.id, 'test');
      await expect
        .poll(async () => (await ask(bearer(revoked.token))).status, { timeout: 3000, interval: 100 })
        .toBe(401);
      await expect
        .poll(async () => (await ask(bearer(expiring.token))).status, { timeout: 8000, interval: 100 })
        .toBe(401);

      const unknown = generateToken('production');
      const cases: [string, string][] = [
        ['unknown', bearer(unknown)],
        ['unknown, in Basic', basic('p', unknown)],
        ['expired', bearer(expiring.token)],
        ['expired, in Basic', basic('p', expiring.token)],
        ['revoked', bearer(revoked.token)],
        ['revoked, in Basic', basic('p', revoked.token)],
        ['bad checksum', bearer(unknown.slice(0, -1) + (unknown.endsWith('x') ? 'y' : 'x'))],
        ['malformed', 'Bearer not-a-token'],
      ];
      const answers = [];
      for (const [what, authorization] of cases) answers.push({ what, response: await ask(authorization) });
      conn.destroy();
      const reference = comparable(answers[0]!.response);
      expect(answers[0]!.response.status).toBe(401);
      expect(reference).toMatch(/www-authenticate: Basic realm="tollgate"/i);
      for (const a of answers) expect(comparable(a.response), a.what).toBe(reference);
      // The differing lines really are per-request only: the request id is fresh each time.
      expect(new Set(answers.map((a) => a.response.headers['x-request-id'])).size).toBe(answers.length);
    },
  );
});
