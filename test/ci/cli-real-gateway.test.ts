import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestGateway } from '../helpers/gateway.js';
import { bearer } from '../helpers/authorization.js';
import { githubClaims, startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.js';
import { startOrigin, type Origin } from '../helpers/origin.js';
import { runExchangeCommand as tollgate } from './exchange-cli.js';
import { githubPolicy } from './ci-config.js';
import { productionEventOf, startCiGateway } from './ci-gateway.js';

/**
 * `tollgate token exchange` in a simulated GitHub Actions job against the REAL gateway endpoint
 * (cli-exchange.test.ts covers the answers only a stand-in can give: redirects, odd bodies). The
 * token it prints downloads, and its Production events name the job.
 */

const AUDIENCE = 'https://artifacts.example.com';
let issuer: OidcIssuer;
let origin: Origin;
let gw: TestGateway & { removeConfig(): void };
let run = 0;

beforeAll(async () => {
  [issuer, origin] = await Promise.all([startOidcIssuer(), startOrigin()]);
  await issuer.addKey();
  gw = await startCiGateway(origin.url, [githubPolicy(issuer.url)]);
});
afterAll(async () => {
  await gw?.close();
  gw?.removeConfig();
  await Promise.all([issuer?.close(), origin?.close()]);
});
beforeEach(() => {
  run++;
  issuer.actionsClaims = githubClaims({ run_id: String(7000 + run) });
});

const githubJob = (): Record<string, string> => ({
  GITHUB_ACTIONS: 'true',
  ACTIONS_ID_TOKEN_REQUEST_URL: issuer.actionsRequestUrl,
  ACTIONS_ID_TOKEN_REQUEST_TOKEN: issuer.actionsRequestToken,
});

describe('tollgate token exchange against the gateway', () => {
  it("prints a Production token for a main-branch job, masked, that downloads with the job's identity in its events", async () => {
    const r = await tollgate(['--gateway', gw.url, '--audience', AUDIENCE], githubJob());
    expect(r.code, r.stderr).toBe(0);
    const token = r.stdout.trim();
    expect(token).toMatch(/^tgp_/);
    expect(r.stderr.split('\n')[0]).toBe(`::add-mask::${token}`);
    const res = await fetch(`${gw.url}/npm/left-pad/-/left-pad-1.3.0.tgz`, {
      headers: { authorization: bearer(token) },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const event = await productionEventOf(gw, res.headers.get('x-request-id')!);
    expect(event.ci).toMatchObject({
      provider: 'github',
      repository: 'acme/app',
      ref: 'refs/heads/main',
      runId: String(7000 + run),
    });
    expect(gw.logs()).not.toContain(token);
  });

  it("prints the gateway's whole answer with --json: a Development token for a branch", async () => {
    issuer.actionsClaims = githubClaims({ ref: 'refs/heads/feature', run_id: String(7000 + run) });
    const r = await tollgate(['--gateway', gw.url, '--audience', AUDIENCE, '--json'], githubJob());
    expect(r.code, r.stderr).toBe(0);
    const answer = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(answer).toMatchObject({
      access_token: expect.stringMatching(/^tgd_/) as string,
      token_type: 'Bearer',
      expires_in: expect.any(Number) as number,
      tollgate_type: 'development',
      tollgate_provider: 'github',
      tollgate_project: 'acme/app',
      tollgate_name: `ci:github:acme/app#${7000 + run}`,
      tollgate_id: expect.stringMatching(/^tok_/) as string,
    });
    expect((await gw.store.get(answer.tollgate_id as string))?.type).toBe('development');
  });

  it("exits 1 with the gateway's refusal for a foreign owner, issuing nothing", async () => {
    const before = (await gw.store.list()).length;
    issuer.actionsClaims = githubClaims({ repository_owner_id: '666' });
    const r = await tollgate(['--gateway', gw.url, '--audience', AUDIENCE], githubJob());
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/\(HTTP 400\): invalid_request: the ID token was refused \(allow:repository_owner_id\)/);
    expect((await gw.store.list()).length).toBe(before);
  });
});
