import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ID_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../../src/ci/index.js';
import { TOKEN_PATTERN } from '../../src/tokens/format.js';
import { githubClaims, startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.js';
import { freePort } from '../helpers/process.js';
import { closesAfterAll } from '../helpers/teardown.js';
import { ciConfig, githubPolicy } from './ci-config.js';
import { runExchangeCommand as run } from './exchange-cli.js';
import { startExchangeGateway, type ExchangeGateway } from './exchange-gateway.js';

/**
 * `tollgate token exchange` in a simulated GitHub Actions job (the issuer's request endpoint in
 * ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN) and a GitLab-style one (--id-token-env), against a
 * stand-in for the gateway's exchange endpoint built from src/ci.
 */

const closing = closesAfterAll();
const AUDIENCE = 'https://artifacts.example.com';
const NO_STACK = '    at ';
let issuer: OidcIssuer;
let gateway: ExchangeGateway;

beforeAll(async () => {
  issuer = closing(await startOidcIssuer());
  await issuer.addKey();
  gateway = closing(await startExchangeGateway(ciConfig([githubPolicy(issuer.url)]).ciProviders));
});
beforeEach(() => {
  issuer.actionsClaims = githubClaims();
  gateway.override = undefined;
});

function githubJob(extra: Record<string, string> = {}): Record<string, string> {
  return {
    GITHUB_ACTIONS: 'true',
    ACTIONS_ID_TOKEN_REQUEST_URL: issuer.actionsRequestUrl,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: issuer.actionsRequestToken,
    ...extra,
  };
}

/** The ID tokens the gateway was sent: none may appear in the command's output. */
const sentIdTokens = () => gateway.forms.map((f) => f.get('subject_token') ?? '').filter(Boolean);

describe('tollgate token exchange in GitHub Actions', () => {
  it('prints the token alone on stdout, announced first with ::add-mask:: on stderr, never the ID token', async () => {
    const r = await run(['--gateway', gateway.url, '--audience', AUDIENCE], githubJob());
    expect(r.code, r.stderr).toBe(0);
    const token = gateway.issued.at(-1)!;
    expect(token).toMatch(TOKEN_PATTERN);
    expect(token.startsWith('tgp_')).toBe(true); // main branch: Production
    expect(r.stdout).toBe(`${token}\n`);
    expect(r.stderr.split('\n')[0]).toBe(`::add-mask::${token}`);
    expect(issuer.actionsAudiences.at(-1)).toBe(AUDIENCE);
    const form = gateway.forms.at(-1)!;
    expect(form.get('grant_type')).toBe(TOKEN_EXCHANGE_GRANT);
    expect(form.get('subject_token_type')).toBe(ID_TOKEN_TYPE);
    for (const idToken of sentIdTokens()) expect(r.all).not.toContain(idToken);
    expect(r.all).not.toContain(issuer.actionsRequestToken);
  });

  it('prints every field of the answer with --json, and no add-mask line outside GitHub Actions', async () => {
    issuer.actionsClaims = githubClaims({ ref: 'refs/heads/feature' });
    const r = await run(
      ['--gateway', `${gateway.url}/`, '--audience', AUDIENCE, '--json'],
      githubJob({ GITHUB_ACTIONS: 'false' }),
    );
    expect(r.code, r.stderr).toBe(0);
    const answer = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(answer).toEqual({
      access_token: gateway.issued.at(-1),
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      expires_in: 3600,
      tollgate_type: 'development',
    });
    expect(r.stderr).not.toContain('::add-mask::');
  });

  it('exits 1 with the RFC 8693 error when the exchange is refused, without a stack or the ID token', async () => {
    issuer.actionsClaims = githubClaims({ repository_owner_id: '666' });
    const r = await run(['--gateway', gateway.url, '--audience', AUDIENCE], githubJob());
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^tollgate: the gateway refused the exchange \(HTTP 400\): invalid_request: the ID token was refused \(allow:repository_owner_id\)/,
    );
    expect(r.stderr).not.toContain(NO_STACK);
    for (const idToken of sentIdTokens()) expect(r.all).not.toContain(idToken);
  });

  it("exits 1 when the ID token has GitHub's default audience, which the policy does not accept", async () => {
    const r = await run(['--gateway', gateway.url], githubJob());
    expect(r.code).toBe(1);
    expect(issuer.actionsAudiences.at(-1)).toBe('');
    expect(r.stderr).toContain('(audience)');
  });

  it('exits 2 when the job may not request an ID token (no id-token: write)', async () => {
    const r = await run(['--gateway', gateway.url, '--audience', AUDIENCE], { GITHUB_ACTIONS: 'true' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^tollgate: ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set: give the job `permissions: id-token: write`/,
    );
  });

  it("exits 1 when GitHub's endpoint refuses the request token, without printing it", async () => {
    const r = await run(
      ['--gateway', gateway.url, '--audience', AUDIENCE],
      githubJob({ ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'wrong-request-token' }),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("tollgate: GitHub's ID-token endpoint answered HTTP 401\n");
  });
});

describe('tollgate token exchange with --id-token-env (GitLab CI and others)', () => {
  it('sends the ID token the variable holds', async () => {
    const idToken = await issuer.mint(githubClaims({ aud: AUDIENCE }));
    const r = await run(['--gateway', gateway.url, '--id-token-env', 'TOLLGATE_ID_TOKEN'], {
      TOLLGATE_ID_TOKEN: idToken,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(gateway.forms.at(-1)!.get('subject_token')).toBe(idToken);
    expect(r.stdout).toBe(`${gateway.issued.at(-1)}\n`);
    expect(r.all).not.toContain(idToken);
  });

  it('exits 2 when the variable is unset, or --audience is given with it', async () => {
    const unset = await run(['--gateway', gateway.url, '--id-token-env', 'NOPE'], {});
    expect(unset.code).toBe(2);
    expect(unset.stderr).toMatch(/^tollgate: the variable NOPE is not set or empty/);
    const both = await run(['--gateway', gateway.url, '--id-token-env', 'X', '--audience', AUDIENCE], { X: 'y' });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--audience applies to GitHub Actions');
  });
});

describe('tollgate token exchange, bad usage and failures', () => {
  it.each([
    [[], /needs --gateway URL/],
    [['--gateway', 'http://artifacts.example.com'], /--gateway must be an https URL \(http only on loopback\)/],
    [['--gateway', 'https://artifacts.example.com/?x=1'], /must not carry a query/],
    [['--gateway', 'https://artifacts.example.com', '--colour'], /Unknown option '--colour'/],
    [
      ['--gateway', 'https://artifacts.example.com', '--id-token-env', 'A-B'],
      /--id-token-env must name an environment variable/,
    ],
    [
      ['--gateway', 'https://artifacts.example.com'],
      /no ID token: in GitHub Actions give the job `permissions: id-token: write`; elsewhere .*--id-token-env/,
    ],
  ])('exits 2 for %j, with the usage', async (args, message) => {
    const r = await run(args, {});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('Usage:\n  tollgate token exchange');
    expect(r.stderr).not.toContain(NO_STACK);
  });

  it('prints its usage with --help', async () => {
    const r = await run(['--help'], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--id-token-env NAME');
  });

  it('exits 1 when the gateway cannot be reached or its keys are unavailable', async () => {
    const port = await freePort();
    const gone = await run(['--gateway', `http://127.0.0.1:${port}`, '--audience', AUDIENCE], githubJob());
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe(
      `tollgate: cannot reach the gateway at http://127.0.0.1:${port}/-/tollgate/token-exchange: ECONNREFUSED\n`,
    );
    // The stand-in's verifier has the keys cached by now: a fresh one meets the issuer down.
    const fresh = closing(await startExchangeGateway(ciConfig([githubPolicy(issuer.url)]).ciProviders));
    issuer.down = true;
    try {
      const down = await run(['--gateway', fresh.url, '--id-token-env', 'T'], { T: await issuer.mint(githubClaims()) });
      expect(down.code).toBe(1);
      expect(down.stderr).toMatch(/\(HTTP 503\): temporarily_unavailable: .*retry later/);
    } finally {
      issuer.down = false;
    }
  });

  it('prevents the ID token from following a redirect to another place', async () => {
    const seenElsewhere: string[] = [];
    const elsewhere = closing(await startExchangeGateway([]));
    elsewhere.override = (req, res) => {
      seenElsewhere.push(req.url ?? '');
      res.writeHead(200).end('{}');
    };
    gateway.override = (_req, res) => res.writeHead(307, { location: `${elsewhere.url}/steal` }).end();
    const r = await run(['--gateway', gateway.url, '--id-token-env', 'T'], { T: await issuer.mint(githubClaims()) });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tollgate: cannot reach the gateway/);
    expect(seenElsewhere).toEqual([]);
  });

  it("prints a gateway's description on one line of printable text, so it cannot start a workflow command", async () => {
    gateway.override = (_req, res) =>
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'invalid_request', error_description: 'bad\n::set-env name=X::y\u001b[31m' }));
    const r = await run(['--gateway', gateway.url, '--id-token-env', 'T'], { T: 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln' });
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n').filter(Boolean)).toEqual([
      'tollgate: the gateway refused the exchange (HTTP 400): invalid_request: bad?::set-env name=X::y?[31m',
    ]);
    gateway.override = (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: 'two\nlines' }));
    const odd = await run(['--gateway', gateway.url, '--id-token-env', 'T'], { T: 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln' });
    expect(odd).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'tollgate: unexpected answer from the gateway (HTTP 200)\n',
    });
  });
});
