import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import type { ActivityEvent } from '../../src/activity/event.js';
import { TOKEN_EXCHANGE_GRANT, TOKEN_EXCHANGE_PATH, ID_TOKEN_TYPE } from '../../src/ci/index.js';
import type { Env } from '../../src/config/index.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { tempDir } from '../helpers/route-config.js';

/**
 * A real gateway (in-process, loopback sockets) with CI trust policies, in front of an origin:
 * what the exchange's whole-app suites start. X-Forwarded-For is believed from loopback, so each
 * test can be a client address of its own (the per-address limit counts addresses).
 */
export async function startCiGateway(
  originUrl: string,
  policies: Record<string, unknown>[],
  env: Env = {},
): Promise<TestGateway & { removeConfig(): void }> {
  const scratch = tempDir('tollgate-ci-gw-');
  const file = scratch.write(
    'tollgate.json',
    JSON.stringify({
      routes: [{ prefix: '/npm/', upstream: `${originUrl}/`, ecosystem: 'npm' }],
      ciProviders: policies,
    }),
  );
  const gw = await startTestGateway({
    TOLLGATE_CONFIG: file,
    TOLLGATE_TRUSTED_PROXIES: '127.0.0.1',
    TOLLGATE_ACTIVITY_FLUSH_MS: '10',
    ...env,
  });
  return Object.assign(gw, { removeConfig: () => scratch.remove() });
}

export interface ExchangeReply {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  text: string;
}

/** POST /-/tollgate/token-exchange as a CI job does; `form` replaces or removes (undefined) fields. */
export async function postExchange(
  gatewayUrl: string,
  idToken: string,
  options: {
    address?: string;
    form?: Record<string, string | undefined>;
    contentType?: string;
  } = {},
): Promise<ExchangeReply> {
  const fields: Record<string, string | undefined> = {
    grant_type: TOKEN_EXCHANGE_GRANT,
    subject_token: idToken,
    subject_token_type: ID_TOKEN_TYPE,
    ...options.form,
  };
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) form.set(k, v);
  const res = await fetch(`${gatewayUrl}${TOKEN_EXCHANGE_PATH}`, {
    method: 'POST',
    headers: {
      'content-type': options.contentType ?? 'application/x-www-form-urlencoded',
      ...(options.address ? { 'x-forwarded-for': options.address } : {}),
    },
    body: form.toString(),
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // Not JSON: the test looks at text.
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** The Production activity events the file sink has written so far. */
export function productionEvents(gw: TestGateway): ActivityEvent[] {
  const dir = path.join(gw.dataDir, 'activity');
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.startsWith('production-'));
  } catch {
    return [];
  }
  return files
    .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as ActivityEvent);
}

/** The Production event of a request, once the file sink has it. */
export async function productionEventOf(gw: TestGateway, requestId: string): Promise<ActivityEvent> {
  const find = () => productionEvents(gw).find((e) => e.requestId === requestId);
  await expect.poll(find, { timeout: 10_000 }).toBeDefined();
  return find()!;
}
