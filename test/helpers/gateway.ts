import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config, type Env } from '../../src/config/index.js';
import { openTokenStore } from '../../src/tokens/index.js';
import { createToken } from '../../src/tokens/service.js';
import type { TokenStore, TokenRecord } from '../../src/tokens/store.js';
import type { RestrictionsInput } from '../../src/tokens/restrictions.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { captureLogger } from './log-capture.js';

export interface TestGateway {
  url: string;
  adminUrl: string;
  gateway: Gateway;
  config: Readonly<Config>;
  /** The gateway's store. Tests may open a second handle on the same backend (as the CLI does). */
  store: TokenStore;
  dataDir: string;
  /** Every log line the gateway wrote, as text. */
  logs(): string;
  /** Log lines parsed as JSON. */
  logRecords(): Record<string, unknown>[];
  /** A token made as `tollgate token create` makes it; `restrictions` as the CLI and API take them. */
  createToken(opts?: {
    name?: string;
    type?: 'production' | 'development';
    expires?: string;
    restrictions?: RestrictionsInput;
  }): Promise<{ token: string; record: TokenRecord }>;
  close(): Promise<void>;
}

let seq = 0;

/** A real gateway on loopback sockets (ports chosen by the OS), configured through env like production. */
export async function startTestGateway(env: Env = {}): Promise<TestGateway> {
  const dataDir = env.TOLLGATE_DATA_DIR ?? mkdtempSync(path.join(os.tmpdir(), 'tollgate-test-'));
  const result = loadConfig({
    TOLLGATE_PORT: '0',
    TOLLGATE_HOST: '127.0.0.1',
    TOLLGATE_ADMIN_PORT: '0',
    TOLLGATE_DATA_DIR: dataDir,
    TOLLGATE_LOG_LEVEL: 'debug',
    TOLLGATE_CHANGE_POLL_MS: '100',
    ...env,
  });
  if (!result.ok) throw new Error(`test config invalid:\n${result.problems.join('\n')}`);
  const config = result.config;
  const { logger, lines } = captureLogger(config.logLevel);
  const store = await openTokenStore(config);
  const gateway = await startGateway(config, { logger, store });
  return {
    url: `http://127.0.0.1:${gateway.proxyPort}`,
    adminUrl: `http://127.0.0.1:${gateway.adminPort}`,
    gateway,
    config,
    store,
    dataDir,
    logs: () => lines.join(''),
    logRecords: () =>
      lines
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    async createToken(opts = {}) {
      const { token, record } = await createToken(store, {
        name: opts.name ?? `test-token-${++seq}`,
        type: opts.type ?? 'production',
        expires: opts.expires,
        createdBy: 'test',
        restrictions: opts.restrictions,
        knownRoutes: config.routes.map((r) => r.prefix),
      });
      return { token, record };
    },
    async close() {
      await gateway.shutdown(1000);
      await store.close();
      if (!env.TOLLGATE_DATA_DIR) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
