import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Hono } from 'hono';
import type { ActivityQuery } from '../../src/activity/recent.js';
import { createFileActivityQuery } from '../../src/activity/recent-file.js';
import { createFileSink } from '../../src/activity/sinks/file.js';
import type { ActivityEvent, Sink } from '../../src/activity/event.js';
import { createAdminApp, type AdminAppOptions } from '../../src/admin/app.js';
import { createAdminAuth, type AdminAuth } from '../../src/admin/auth.js';
import { loadConfig, type Config, type Env } from '../../src/config/index.js';
import { createSqliteTokenStore } from '../../src/tokens/sqlite-store.js';
import type { TokenStore } from '../../src/tokens/store.js';
import { eventFactory } from '../helpers/activity-events.js';
import { captureLogger } from '../helpers/log-capture.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
/** What app.request uses as the request origin (http://localhost/...). */
export const ORIGIN = 'http://localhost';

export interface AdminHarness {
  app: Hono;
  auth: AdminAuth;
  store: TokenStore;
  /** The Production file sink (deliver events to it) and the query the admin app reads them with. */
  activity: Sink & ActivityQuery;
  config: Readonly<Config>;
  dataDir: string;
  /** Move the admin app's clock. */
  clock: { now: number };
  logs(): string;
  request(pathname: string, init?: RequestInit): Promise<Response>;
  /** Signs in with the admin token; returns the Cookie header value and the CSRF token. */
  signIn(): Promise<{ cookie: string; csrf: string; setCookie: string }>;
  close(): Promise<void>;
}

/**
 * A cookie-authenticated POST, the page's way (Origin, X-CSRF-Token): `body` goes as JSON,
 * `extra` headers last (to override one).
 */
export function sessionPost(
  h: AdminHarness,
  session: { cookie: string; csrf: string },
  pathname: string,
  body?: unknown,
  extra: Record<string, string> = {},
): Promise<Response> {
  return h.request(pathname, {
    method: 'POST',
    headers: {
      cookie: session.cookie,
      origin: ORIGIN,
      'x-csrf-token': session.csrf,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...extra,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/**
 * The admin app in-process (app.request, no socket) over a real SQLite token store and, as in
 * the embedded default, recent activity read from the NDJSON file sink's Production files,
 * configured through env like production.
 */
export async function startAdminHarness(
  env: Env = {},
  extra: Pick<AdminAppOptions, 'reportLeaks'> = {},
): Promise<AdminHarness> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-admin-'));
  const result = loadConfig({ TOLLGATE_DATA_DIR: dataDir, TOLLGATE_ADMIN_TOKEN: ADMIN_TOKEN, ...env });
  if (!result.ok) throw new Error(`config invalid:\n${result.problems.join('\n')}`);
  const config = result.config;
  const { logger, lines } = captureLogger('debug');
  const clock = { now: Date.now() };
  const now = () => clock.now;
  const store = createSqliteTokenStore({ dataDir });
  const activity: Sink & ActivityQuery = {
    ...createFileSink({ dir: dataDir, stream: 'production', fsync: false }),
    ...createFileActivityQuery({ dir: dataDir, maxLines: config.activity.recentMax }),
  };
  const auth = await createAdminAuth(config, { logger, store, now });
  // As the gateway wires it: the configured route prefixes, and (unless given) the default reportLeaks.
  const app = createAdminApp({
    store,
    isAccepting: () => true,
    auth,
    activity,
    logger,
    now,
    routes: config.routes.map((r) => r.prefix),
    ...extra,
  });

  const request = (pathname: string, init?: RequestInit) => Promise.resolve(app.request(`${ORIGIN}${pathname}`, init));
  return {
    app,
    auth,
    store,
    activity,
    config,
    dataDir,
    clock,
    logs: () => lines.join(''),
    request,
    async signIn() {
      const res = await request('/api/v1/session', {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: ORIGIN },
        body: JSON.stringify({ token: ADMIN_TOKEN }),
      });
      if (res.status !== 200) throw new Error(`sign-in failed: ${res.status} ${await res.text()}`);
      const setCookie = res.headers.get('set-cookie') ?? '';
      const body = (await res.json()) as { csrfToken: string };
      return { cookie: setCookie.split(';')[0]!, csrf: body.csrfToken, setCookie };
    },
    async close() {
      auth.close();
      await activity.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const makeEvent = eventFactory({ stepMs: 1000 });

/** An activity event as the recorder would make it. */
export function activityEvent(overrides: Partial<ActivityEvent> = {}): ActivityEvent {
  return makeEvent({ package: 'left-pad', version: '1.3.0', file: 'left-pad-1.3.0.tgz', ...overrides });
}
