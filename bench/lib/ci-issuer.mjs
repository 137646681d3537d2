// @ts-check
import http from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

/**
 * A CI provider's OIDC issuer on loopback for the bench (discovery and JWKS, one ES256 key), and
 * the exchange of one of its ID tokens at a gateway: how the `tollgate-exchanged` scenario gets
 * its token, through the real endpoint. Runs in the bench process; it is used once, before the
 * measured runs.
 */

export const BENCH_CI_AUDIENCE = 'https://bench.tollgate.invalid';

/** @returns {Promise<{ url: string, policy: Record<string, unknown>, exchange(gatewayUrl: string): Promise<string>, close(): Promise<void> }>} */
export async function startBenchIssuer() {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-1', alg: 'ES256', use: 'sig' };
  let url = '';
  const server = http.createServer((req, res) => {
    const send = (/** @type {unknown} */ body) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.url === '/.well-known/openid-configuration') return send({ issuer: url, jwks_uri: `${url}/jwks` });
    if (req.url === '/jwks') return send({ keys: [jwk] });
    res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = /** @type {import('node:net').AddressInfo} */ (server.address());
  url = `http://127.0.0.1:${address.port}`;
  return {
    url,
    policy: {
      name: 'bench',
      kind: 'github',
      issuer: url,
      audience: BENCH_CI_AUDIENCE,
      allow: { repository_owner: 'bench' },
      production: { ref: 'refs/heads/main' },
      project: 'repository',
      tokenTtl: '24h',
    },
    async exchange(gatewayUrl) {
      const idToken = await new SignJWT({
        repository: 'bench/app',
        repository_owner: 'bench',
        ref: 'refs/heads/main',
        sha: '0'.repeat(40),
        run_id: '1',
        workflow: 'bench',
      })
        .setProtectedHeader({ alg: 'ES256', kid: 'bench-1', typ: 'JWT' })
        .setIssuer(url)
        .setAudience(BENCH_CI_AUDIENCE)
        .setSubject('repo:bench/app:ref:refs/heads/main')
        .setIssuedAt()
        .setExpirationTime('5m')
        .setJti(`bench-${Date.now()}`)
        .sign(privateKey);
      const res = await fetch(`${gatewayUrl}/-/tollgate/token-exchange`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: idToken,
          subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
        }).toString(),
      });
      const body = /** @type {{ access_token?: string, error_description?: string }} */ (await res.json());
      if (res.status !== 200 || !body.access_token)
        throw new Error(`token exchange: HTTP ${res.status} ${body.error_description ?? ''}`);
      return body.access_token;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve(undefined));
      }),
  };
}
