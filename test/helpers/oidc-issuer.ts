import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';

/**
 * A CI provider's OIDC issuer on loopback, as the gateway and a CI job see one:
 *   GET /.well-known/openid-configuration   discovery ({issuer, jwks_uri}), overridable
 *   GET /jwks                               the published keys
 *   GET /actions/id-token?audience=AUD      GitHub Actions' ID-token request endpoint
 *                                           (ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN semantics: a
 *                                           bearer request token, the JSON's `value`)
 * It mints ID tokens with chosen claims and headers, rotates keys (add one, retire one), counts
 * the fetches of each document, and can be taken down (every answer 503).
 */

export interface MintOptions {
  /** Sign with this key (default: the first key added). */
  kid?: string;
  /** Header fields over the default `{alg, kid, typ: 'JWT'}`. */
  header?: Record<string, unknown>;
  /** Lifetime in seconds from `iat` (default 300); null leaves `exp` out. */
  ttlS?: number | null;
  /** `iat` in epoch seconds (default now). */
  iatS?: number;
}

export interface OidcIssuer {
  /** The issuer URL (`iss`), http://127.0.0.1:<port>. */
  readonly url: string;
  readonly jwksUrl: string;
  /** The ACTIONS_ID_TOKEN_REQUEST_URL a job would get (it already has a query: append `&audience=`). */
  readonly actionsRequestUrl: string;
  /** The ACTIONS_ID_TOKEN_REQUEST_TOKEN that endpoint wants as its bearer. */
  readonly actionsRequestToken: string;
  /** Fetches of each document so far. */
  readonly fetches: { discovery: number; jwks: number; actions: number };
  /** Audiences the Actions endpoint was asked for, in order ('' when none). */
  readonly actionsAudiences: string[];
  /** Generates a key pair and publishes its public key (unless `publish: false`); returns its kid. */
  addKey(options?: { alg?: string; publish?: boolean }): Promise<string>;
  /** Stops publishing a key (tokens can still be signed with it). */
  retireKey(kid: string): void;
  /** A public key as SPKI PEM (the "secret" of an HS256 forgery). */
  publicPem(kid: string): Promise<string>;
  /** Signs an ID token: iss, aud, sub, iat, exp and jti filled in unless `claims` sets them (undefined removes one). */
  mint(claims: Record<string, unknown>, options?: MintOptions): Promise<string>;
  /** The claims the Actions endpoint mints with (besides aud, from its query). */
  actionsClaims: Record<string, unknown>;
  /** Fields of the discovery document over the defaults. */
  discovery: Record<string, unknown>;
  /** Every answer is 503 while down. */
  down: boolean;
  close(): Promise<void>;
}

interface Key {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  published: boolean;
}

export const DEFAULT_AUDIENCE = 'https://artifacts.example.com';

export async function startOidcIssuer(): Promise<OidcIssuer> {
  const keys: Key[] = [];
  const fetches = { discovery: 0, jwks: 0, actions: 0 };
  const actionsAudiences: string[] = [];
  const actionsRequestToken = `req-${randomUUID()}`;
  let url = '';

  const server = http.createServer((req, res) => {
    void handle(req, res).catch(() => {
      res.writeHead(500).end();
    });
  });

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const target = new URL(req.url ?? '/', url);
    if (issuer.down) return json(res, 503, { message: 'down' });
    switch (target.pathname) {
      case '/.well-known/openid-configuration':
        fetches.discovery++;
        return json(res, 200, {
          issuer: url,
          jwks_uri: `${url}/jwks`,
          id_token_signing_alg_values_supported: ['RS256'],
          ...issuer.discovery,
        });
      case '/jwks': {
        fetches.jwks++;
        const published = await Promise.all(
          keys
            .filter((k) => k.published)
            .map(async (k) => ({ ...(await exportJWK(k.publicKey)), kid: k.kid, alg: k.alg, use: 'sig' })),
        );
        return json(res, 200, { keys: published });
      }
      case '/actions/id-token': {
        fetches.actions++;
        if (req.headers.authorization !== `bearer ${actionsRequestToken}`)
          return json(res, 401, { message: 'bad request token' });
        const audience = target.searchParams.get('audience') ?? '';
        actionsAudiences.push(audience);
        return json(res, 200, {
          value: await issuer.mint({ ...issuer.actionsClaims, aud: audience || 'https://github.com/acme' }),
        });
      }
      default:
        return json(res, 404, { message: 'not found' });
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const keyOf = (kid?: string): Key => {
    const key = kid === undefined ? keys[0] : keys.find((k) => k.kid === kid);
    if (!key) throw new Error(`no key ${kid ?? '(none added)'}`);
    return key;
  };

  const issuer: OidcIssuer = {
    url,
    jwksUrl: `${url}/jwks`,
    actionsRequestUrl: `${url}/actions/id-token?api-version=2.0`,
    actionsRequestToken,
    fetches,
    actionsAudiences,
    actionsClaims: {},
    discovery: {},
    down: false,
    async addKey({ alg = 'RS256', publish = true } = {}) {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
      const kid = `k-${randomUUID().slice(0, 8)}`;
      keys.push({ kid, alg, privateKey, publicKey, published: publish });
      return kid;
    },
    retireKey(kid) {
      keyOf(kid).published = false;
    },
    publicPem: (kid) => exportSPKI(keyOf(kid).publicKey),
    async mint(claims, options = {}) {
      const key = keyOf(options.kid);
      const iat = options.iatS ?? Math.floor(Date.now() / 1000);
      const ttl = options.ttlS === undefined ? 300 : options.ttlS;
      const payload: JWTPayload = {
        iss: url,
        aud: DEFAULT_AUDIENCE,
        sub: 'repo:acme/app:ref:refs/heads/main',
        iat,
        jti: randomUUID(),
        ...(ttl === null ? {} : { exp: iat + ttl }),
        ...claims,
      };
      for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
      return new SignJWT(payload)
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...options.header })
        .sign(key.privateKey);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return issuer;
}

/** The claims of a GitHub Actions job (names and shapes as GitHub's ID tokens carry them). */
export function githubClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const ref = (overrides.ref as string | undefined) ?? 'refs/heads/main';
  return {
    sub: `repo:acme/app:ref:${ref}`,
    repository: 'acme/app',
    repository_id: '690001',
    repository_owner: 'acme',
    repository_owner_id: '4200',
    repository_visibility: 'private',
    ref,
    ref_type: 'branch',
    sha: '0123456789abcdef0123456789abcdef01234567',
    workflow: 'build',
    workflow_ref: `acme/app/.github/workflows/build.yml@${ref}`,
    job_workflow_ref: `acme/app/.github/workflows/build.yml@${ref}`,
    event_name: 'push',
    run_id: '987654321',
    run_number: '12',
    run_attempt: '1',
    actor: 'octocat',
    actor_id: '1',
    runner_environment: 'github-hosted',
    ...overrides,
  };
}
