import http from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../src/tokens/format.js';
import { bearer } from '../helpers/authorization.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startOrigin, type Origin } from '../helpers/origin.js';

/**
 * The rate limit and the logs use the real client address: X-Forwarded-For is believed only
 * from TOLLGATE_TRUSTED_PROXIES. A client that is not a trusted proxy cannot dodge the
 * brute-force limit by rotating X-Forwarded-For; behind a trusted proxy, each forwarded client
 * has its own allowance. (The limit itself, 100 then 429, is test/auth/rate-limit.test.ts; the
 * headers the upstream gets are test/proxy/forwarding.test.ts.)
 */

const BURST = 100; // the default TOLLGATE_AUTH_FAILURE_BURST
const GUESSES = 150;
/** Seeded random IPv4 addresses (documentation and private ranges mixed with anything). */
const randomAddresses = fc.sample(fc.ipV4(), { seed: 8_2026, numRuns: GUESSES });

let origin: Origin;
beforeAll(async () => {
  origin = await startOrigin();
});
afterAll(async () => {
  await origin?.close();
});

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
afterAll(() => agent.destroy());

function guess(gw: TestGateway, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(
        `${gw.url}/pkg/x`,
        { agent, headers: { authorization: bearer(generateToken('production')), ...headers } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      )
      .on('error', reject);
  });
}

/** clientIp of the request log lines for /pkg/x, in order. */
async function loggedClientIps(gw: TestGateway, n: number): Promise<string[]> {
  await expect
    .poll(() => gw.logRecords().filter((r) => r.path === '/pkg/x').length, { timeout: 3000 })
    .toBeGreaterThanOrEqual(n);
  return gw
    .logRecords()
    .filter((r) => r.path === '/pkg/x')
    .map((r) => String(r.clientIp));
}

describe.each([
  ['no trusted proxies', {}],
  ['trusted proxies that do not include the peer', { TOLLGATE_TRUSTED_PROXIES: '10.0.0.0/8, 192.168.0.1' }],
])('with %s', (_what, env) => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ TOLLGATE_UPSTREAM: origin.url, ...env });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('prevents dodging the brute-force limit: 150 wrong tokens with a new X-Forwarded-For (and X-Real-IP, Forwarded) each are limited after 100', async () => {
    const statuses: number[] = [];
    const started = Date.now();
    for (const address of randomAddresses) {
      statuses.push(await guess(gw, { 'x-forwarded-for': address, 'x-real-ip': address, forwarded: `for=${address}` }));
    }
    const elapsedS = (Date.now() - started) / 1000;
    expect(statuses.slice(0, BURST).every((s) => s === 401)).toBe(true);
    // Past the burst only what the bucket refilled meanwhile (one a second) gets through, however slow the machine.
    expect(statuses.slice(BURST).filter((s) => s !== 429).length).toBeLessThanOrEqual(Math.ceil(elapsedS) + 1);
    // The log names the socket's address, never the claimed ones.
    expect(new Set(await loggedClientIps(gw, GUESSES))).toEqual(new Set(['127.0.0.1']));
  });
});

describe('with the peer as a trusted proxy (TOLLGATE_TRUSTED_PROXIES=127.0.0.1)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ TOLLGATE_UPSTREAM: origin.url, TOLLGATE_TRUSTED_PROXIES: '127.0.0.1' });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('uses the forwarded address: 150 clients behind the proxy, one wrong token each, are all answered 401 and logged by their own address', async () => {
    const statuses: number[] = [];
    for (const address of randomAddresses) statuses.push(await guess(gw, { 'x-forwarded-for': address }));
    expect(statuses.every((s) => s === 401)).toBe(true);
    const logged = await loggedClientIps(gw, GUESSES);
    expect(logged.slice(-GUESSES)).toEqual(randomAddresses);
  });

  it('prevents spoofing through the proxy: a client that prepends fake X-Forwarded-For entries is known by the address the proxy appended, and limited', async () => {
    const real = '198.51.100.7';
    const statuses: number[] = [];
    const started = Date.now();
    for (const fake of randomAddresses) statuses.push(await guess(gw, { 'x-forwarded-for': `${fake}, ${real}` }));
    const elapsedS = (Date.now() - started) / 1000;
    expect(statuses.slice(0, BURST).every((s) => s === 401)).toBe(true);
    // Past the burst, 429, but for what the bucket refilled meanwhile (one a second; a slow machine
    // takes seconds over the loop): never more, and never anything but a 401 for those.
    const past = statuses.slice(BURST);
    expect(past.filter((s) => s !== 429 && s !== 401)).toEqual([]);
    expect(past.filter((s) => s === 401).length).toBeLessThanOrEqual(Math.ceil(elapsedS) + 1);
    expect(past.filter((s) => s === 429).length).toBeGreaterThan(past.length - Math.ceil(elapsedS) - 2);
    const logged = await loggedClientIps(gw, 2 * GUESSES);
    expect(new Set(logged.slice(-GUESSES))).toEqual(new Set([real]));
    // Another client behind the same proxy is not affected.
    expect(await guess(gw, { 'x-forwarded-for': '198.51.100.8' })).toBe(401);
  });
});
