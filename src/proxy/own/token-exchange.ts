import type { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { ExchangeOutcome, TokenExchange } from '../../ci/exchange.js';
import { ownClientIp, type OwnEndpoint } from './index.js';

export interface TokenExchangeEndpointOptions {
  exchange: TokenExchange;
  /** Every exchange's outcome, whatever it was (the gateway counts, logs and audits it). Never holds a token. */
  onExchange: (outcome: ExchangeOutcome) => void;
}

/**
 * `POST /-/tollgate/token-exchange`: a CI job's OIDC ID token for a short-lived Tollgate token,
 * in the form of RFC 8693 (ci/exchange.ts does the work, ci/exchange-form.ts shapes the answers).
 * Mounted only when trust policies are configured; without them the path is the namespace's 404.
 * The body is read whole (the own endpoints' limit caps it); it is never logged.
 */
export function tokenExchangeEndpoint(options: TokenExchangeEndpointOptions): OwnEndpoint {
  return function mountTokenExchange(app: Hono) {
    app.post('/token-exchange', async (c) => {
      const clientIp = ownClientIp((c.env as HttpBindings).incoming);
      const body = await c.req.text();
      const { answer, outcome } = await options.exchange({ contentType: c.req.header('content-type'), body, clientIp });
      options.onExchange(outcome);
      return c.json(answer.body, answer.status as 200, answer.headers);
    });
  };
}
