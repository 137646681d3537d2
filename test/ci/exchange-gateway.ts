import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createCiVerifier,
  exchangeSuccess,
  parseExchangeRequest,
  refusalAnswer,
  TOKEN_EXCHANGE_PATH,
  type ExchangeAnswer,
} from '../../src/ci/index.js';
import type { CiProviderConfig } from '../../src/config/index.js';
import { generateToken } from '../../src/tokens/format.js';

/**
 * A stand-in for the gateway's exchange endpoint on loopback, built from src/ci (parse the form,
 * verify the subject token, answer as RFC 8693 says) but storing nothing: it hands out a fresh
 * token of the verified type. It stays for what the real endpoint never answers: `override`
 * answers instead (redirects, odd bodies), for the failures a client must still handle.
 * cli-real-gateway.test.ts runs the CLI against the real gateway.
 */
export interface ExchangeGateway {
  url: string;
  /** Forms posted to the exchange path, as received. */
  forms: URLSearchParams[];
  /** Tokens handed out, in order. */
  issued: string[];
  /** When set, every request gets this answer (or is handled by it). */
  override: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined;
  close(): Promise<void>;
}

export async function startExchangeGateway(providers: readonly CiProviderConfig[]): Promise<ExchangeGateway> {
  const verifier = createCiVerifier(providers, { maxIdTokenLifetimeMs: 3_600_000, clockSkewMs: 60_000 });
  const send = (res: http.ServerResponse, answer: ExchangeAnswer<unknown>) => {
    res
      .writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers })
      .end(JSON.stringify(answer.body));
  };
  const server = http.createServer((req, res) => {
    if (gateway.override) return gateway.override(req, res);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        if (req.method !== 'POST' || req.url !== TOKEN_EXCHANGE_PATH)
          return send(res, { status: 404, headers: {}, body: { error: 'not found' } });
        const body = Buffer.concat(chunks).toString('utf8');
        gateway.forms.push(new URLSearchParams(body));
        const parsed = parseExchangeRequest(req.headers['content-type'], body);
        if (!parsed.ok) return send(res, parsed);
        const now = Date.now();
        const verified = await verifier.verify(parsed.subjectToken, now);
        if (!verified.ok) return send(res, refusalAnswer(verified));
        const token = generateToken(verified.type);
        gateway.issued.push(token);
        send(res, exchangeSuccess(token, now + verified.tokenTtlMs, now, { tollgate_type: verified.type }));
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const gateway: ExchangeGateway = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    forms: [],
    issued: [],
    override: undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return gateway;
}
