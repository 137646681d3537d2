import path from 'node:path';
import { availableParallelism } from 'node:os';
import { checkActivity } from './activity.js';
import { checkSecretScanning } from './scanning.js';
import { checkAdmin } from './admin.js';
import { checkCi } from './ci.js';
import { checkNetwork } from './network.js';
import { schemaProblems } from './report.js';
import { checkRoutes, upstreamOnlyProblems } from './routes.js';
import { settingsSchema } from './settings.js';
import { readSources, type Context } from './sources.js';
import type { Config, ConfigResult, Env } from './types.js';

// The public face of config/: what the rest of the gateway imports.
export * from './schema.js';
export * from './types.js';
export { CI_IDENTITY_FIELDS, CI_PROVIDER_KINDS, MAX_CI_TOKEN_TTL_MS } from './ci.js';
export {
  SETTINGS,
  ENV_NAMES,
  GROUPS,
  settingsSchema,
  type Setting,
  type SettingKey,
  type Settings,
} from './settings.js';
export { isLoopbackHost, showUrl } from './urls.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Load, check and freeze the configuration, collecting every problem. Each concern (routes,
 * network, activity, admin, CI) checks its own slice and returns its problems; the config is built
 * only when there are none.
 */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): ConfigResult {
  const sources = readSources(env, cwd);
  const parsed = settingsSchema().safeParse(sources.raw);
  if (!parsed.success) {
    return {
      ok: false,
      problems: [
        ...sources.problems,
        ...schemaProblems(parsed.error.issues, sources),
        ...upstreamOnlyProblems(sources.raw.upstream, sources.where('upstream'), cwd),
      ],
    };
  }
  const s = parsed.data;
  const ctx: Context = { s, where: sources.where, configFile: sources.configFile, cwd, fileDir: sources.fileDir };
  const routes = checkRoutes(ctx);
  const network = checkNetwork(ctx);
  const activity = checkActivity(ctx);
  const admin = checkAdmin(ctx);
  const scanning = checkSecretScanning(ctx);
  const ci = checkCi(
    ctx,
    routes.value.map((r) => r.prefix),
  );
  const problems = [
    ...sources.problems,
    ...routes.problems,
    ...network.problems,
    ...activity.problems,
    ...admin.problems,
    ...scanning.problems,
    ...ci.problems,
  ];
  if (problems.length > 0) return { ok: false, problems };

  const config: Config = {
    port: s.port,
    host: s.host,
    adminPort: s.adminPort,
    adminHost: s.adminHost,
    routes: routes.value,
    redis: s.redisUrl ? { url: s.redisUrl, prefix: s.redisPrefix } : undefined,
    dataDir: path.resolve(cwd, s.dataDir),
    logLevel: s.logLevel,
    ...network.value,
    upstreamTimeoutMs: s.upstreamTimeoutMs,
    upstreamConnections: s.upstreamConnections,
    upstreamHeldPerToken: s.upstreamHeldPerToken,
    headersTimeoutMs: s.headersTimeoutMs,
    clientIdleTimeoutMs: s.clientIdleTimeoutMs,
    cacheTtlMs: s.cacheTtlMs,
    cacheMax: s.cacheMax,
    negativeCacheTtlMs: s.negativeCacheTtlMs,
    negativeCacheMax: s.negativeCacheMax,
    changePollMs: s.changePollMs,
    cacheStaleMs: s.cacheStaleMs,
    lastUsedFlushMs: s.lastUsedFlushMs,
    shutdownGraceMs: s.shutdownGraceMs,
    workers: s.workers === 'auto' ? availableParallelism() : s.workers,
    activity: activity.value,
    metrics: { token: s.metricsToken, projects: s.metricsProjects ?? [], maxProjects: s.metricsMaxProjects },
    authFailureLimit: {
      burst: s.authFailureBurst,
      refillPerMinute: s.authFailureRefillPerMinute,
      maxAddresses: s.authFailureMaxAddresses,
      windowMs: s.authFailureWindowMs,
    },
    admin: admin.value,
    secretScanning: scanning.value,
    ...ci.value,
  };
  return { ok: true, config: deepFreeze(config) };
}

/** loadConfig, throwing a ConfigError that lists every problem. */
export function loadConfigOrThrow(env: Env = process.env, cwd = process.cwd()): Readonly<Config> {
  const result = loadConfig(env, cwd);
  if (!result.ok) throw new ConfigError(result.problems);
  return result.config;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof URL)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
