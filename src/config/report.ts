import type { z } from 'zod';
import { SETTINGS, type Setting } from './settings.js';
import type { Field, Secrecy } from './schema.js';
import type { Sources } from './sources.js';
import { got } from './urls.js';

/**
 * One problem line per schema issue: where the value came from (env var, or `<file>: key[i].field`),
 * the rule, and the bad value as far as the setting's secrecy allows.
 */
export function schemaProblems(issues: z.core.$ZodIssue[], sources: Sources): string[] {
  return issues.map((issue) => {
    const [key, ...rest] = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      const at = key === undefined ? sources.configFile : `${sources.where(key)}${pathSuffix(rest)}`;
      return `${at}: unknown setting(s) ${issue.keys.join(', ')}`;
    }
    if (key === undefined) return `config: ${issue.message}`;
    const value = pick(sources.raw, [key, ...rest]);
    return `${sources.where(key)}${pathSuffix(rest)}: ${issue.message}${got(value, secrecyAt(key, rest))}`;
  });
}

/**
 * The secrecy of a setting, or of a field of one entry of a list setting (routes[0].upstreamAuth).
 * A list entry that is not reached field by field (a string where an object belongs) is not shown.
 */
function secrecyAt(key: string, rest: string[]): Secrecy | undefined {
  const setting = (SETTINGS as Record<string, Setting | undefined>)[key];
  if (!setting?.items || setting.secret) return setting?.secret;
  const field: Field | undefined = rest[1] === undefined ? undefined : setting.items[rest[1]];
  return field ? field.secret : 'value';
}

/** ['0', 'allowPost', '1'] → `[0].allowPost[1]`. */
function pathSuffix(rest: string[]): string {
  return rest.map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('');
}

function pick(obj: Record<string, unknown>, keys: string[]): unknown {
  let cur: unknown = obj;
  for (const k of keys) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}
