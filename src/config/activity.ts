import path from 'node:path';
import { ACTIVITY_SINKS, type ActivitySinkName } from './schema.js';
import { ENV_NAMES } from './settings.js';
import { unreadable } from './network.js';
import type { Checked, Context } from './sources.js';
import type { ActivityConfig } from './types.js';
import { secureUrlProblem } from './urls.js';

/** Production activity: which sinks, the webhook receiver, the signing key, buffering and delivery. */
export function checkActivity({ s, where, cwd }: Context): Checked<ActivityConfig> {
  const problems: string[] = [];
  const sinks: ActivitySinkName[] = [];
  for (const name of s.activitySinks ?? [s.redisUrl ? 'redis' : 'file']) {
    if (!(ACTIVITY_SINKS as readonly string[]).includes(name)) {
      problems.push(
        `${where('activitySinks')}: each sink must be one of ${ACTIVITY_SINKS.join(', ')}, got ${JSON.stringify(name)}`,
      );
    } else if (!sinks.includes(name as ActivitySinkName)) sinks.push(name as ActivitySinkName);
  }
  if (sinks.includes('redis') && !s.redisUrl)
    problems.push(`${where('activitySinks')}: the redis sink needs ${ENV_NAMES.redisUrl}`);

  let webhook: ActivityConfig['webhook'];
  if (s.activityWebhookUrl) {
    const problem = secureUrlProblem(s.activityWebhookUrl);
    if (problem) {
      problems.push(`${where('activityWebhookUrl')}: ${problem}`);
    } else {
      webhook = { url: new URL(s.activityWebhookUrl).href, timeoutMs: s.activityWebhookTimeoutMs };
      // Naming a webhook turns its sink on, unless the sinks are listed explicitly.
      if (!sinks.includes('webhook') && s.activitySinks === undefined) sinks.push('webhook');
    }
  }
  if (sinks.includes('webhook') && !s.activityWebhookUrl)
    problems.push(`${where('activitySinks')}: the webhook sink needs ${ENV_NAMES.activityWebhookUrl}`);
  if (s.signingKeyFile) problems.push(...unreadable(where('signingKeyFile'), s.signingKeyFile, cwd));

  return {
    value: {
      sinks,
      webhook,
      development: s.activityDevelopment === 'separate',
      streamMaxLen: s.activityStreamMaxLen,
      memoryEvents: s.activityMemoryEvents,
      spoolMaxBytes: s.activitySpoolMaxBytes,
      batchSize: s.activityBatchSize,
      flushMs: s.activityFlushMs,
      recentMax: s.activityRecentMax,
      retryMaxMs: s.activityRetryMaxMs,
      signingKeyFile: s.signingKeyFile ? path.resolve(cwd, s.signingKeyFile) : undefined,
    },
    problems,
  };
}
