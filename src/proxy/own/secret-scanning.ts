import { verify } from 'node:crypto';
import type { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { createLocalTokenRateLimiter } from '../../auth/token-rate.js';
import { isGatewayError } from '../../errors.js';
import { ownClientIp, ownError, type OwnEndpoint } from './index.js';
import type { ScannerKeys } from './scanner-keys.js';
import type { LeakReportInput, LeakReporter, LeakVerdict } from '../../tokens/leaks.js';

export interface SecretScanningOptions {
  keys: ScannerKeys;
  /** Revokes the live tokens among the reports and raises the alerts (the gateway's wiring). */
  reportLeaks: (reports: LeakReportInput[], reporter: LeakReporter) => Promise<LeakVerdict[]>;
  /** Reports one address may send a minute. */
  perMinute?: number;
}

const MAX_REPORTS = 1_000;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * `POST /-/tollgate/secret-scanning`: reports in GitHub's secret-scanning partner format, for a
 * Tollgate whose token patterns a scanner knows. The body is a JSON array of
 * `{"token", "type", "url", "source"}`, signed with ECDSA P-256 / SHA-256 over the raw bytes
 * (`Github-Public-Key-Identifier`, `Github-Public-Key-Signature`: base64 DER). Every check comes
 * before anything is revoked: the address's rate, the key, the signature, the body. The answer is
 * one verdict per reported secret: `true_positive` for a token that was live (and now is not).
 * A replayed report finds its tokens revoked already: `false_positive`, nothing more happens.
 */
export function secretScanningEndpoint(options: SecretScanningOptions): OwnEndpoint {
  const perMinute = options.perMinute ?? 60;
  const rate = createLocalTokenRateLimiter();
  return function mountSecretScanning(app: Hono) {
    app.post('/secret-scanning', async (c) => {
      const clientIp = ownClientIp((c.env as HttpBindings).incoming);
      const wait = rate.takeLocal(clientIp, perMinute, Date.now());
      if (wait > 0) {
        const res = ownError('TOLLGATE_ERR_SCANNING_RATE');
        res.headers.set('retry-after', String(wait));
        return res;
      }
      const keyId = c.req.header('github-public-key-identifier');
      const signature = c.req.header('github-public-key-signature');
      if (!keyId || !signature || !BASE64.test(signature)) return ownError('TOLLGATE_ERR_SCANNING_SIGNATURE');
      const body = Buffer.from(await c.req.arrayBuffer());
      let key;
      try {
        key = await options.keys.key(keyId);
      } catch (err) {
        if (isGatewayError(err)) return ownError(err.code);
        throw err;
      }
      if (!key) return ownError('TOLLGATE_ERR_SCANNING_KEY');
      let valid: boolean;
      try {
        valid = verify('sha256', body, key, Buffer.from(signature, 'base64'));
      } catch {
        valid = false; // not a DER signature, or a key of another kind
      }
      if (!valid) return ownError('TOLLGATE_ERR_SCANNING_SIGNATURE');
      const reports = parseReports(body);
      if (!reports) return ownError('TOLLGATE_ERR_SCANNING_BODY');
      const verdicts = await options.reportLeaks(reports, { source: 'github', by: 'secret-scanning:github', clientIp });
      return c.json(verdicts);
    });
  };
}

/** The body as reports, or undefined when it is not an array of objects with a string token. */
export function parseReports(body: Buffer): LeakReportInput[] | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(doc) || doc.length > MAX_REPORTS) return undefined;
  const reports: LeakReportInput[] = [];
  for (const item of doc as Record<string, unknown>[]) {
    if (typeof item !== 'object' || item === null || typeof item.token !== 'string') return undefined;
    reports.push({
      token: item.token,
      type: typeof item.type === 'string' ? item.type : undefined,
      url: typeof item.url === 'string' ? item.url : undefined,
      location: typeof item.source === 'string' ? item.source : undefined,
    });
  }
  return reports;
}
