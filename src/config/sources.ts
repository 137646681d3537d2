import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ENV_NAMES, type Settings } from './settings.js';
import type { Env } from './types.js';

/** The raw values by settings key, and where each came from: the env var, or `<file>: <key>`. */
export interface Sources {
  raw: Record<string, unknown>;
  where: (key: string) => string;
  /** TOLLGATE_CONFIG as given, if set. */
  configFile: string | undefined;
  /** Relative directories in the config file are resolved against its directory. */
  fileDir: string;
  problems: string[];
}

/** What each concern's check gets: the parsed settings and how to name them. */
export interface Context {
  s: Settings;
  where: Sources['where'];
  configFile: string | undefined;
  cwd: string;
  fileDir: string;
}

/** A concern's checked slice of Config, and its problems (the slice is only used when there are none). */
export interface Checked<T> {
  value: T;
  problems: string[];
}

/** Read the config file named by TOLLGATE_CONFIG, then the env vars over it (the environment wins). */
export function readSources(env: Env, cwd: string): Sources {
  const raw: Record<string, unknown> = {};
  const from: Record<string, string> = {};
  const problems: string[] = [];
  const configFile = env.TOLLGATE_CONFIG || undefined;
  let fileDir = cwd;
  if (configFile) {
    const file = path.resolve(cwd, configFile);
    fileDir = path.dirname(file);
    const { parsed, why } = readJson(file);
    if (why) {
      problems.push(`TOLLGATE_CONFIG ${configFile} cannot be read as JSON: ${why}`);
    } else if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      problems.push(`TOLLGATE_CONFIG ${configFile} must hold a JSON object`);
    } else {
      for (const [key, value] of Object.entries(parsed)) {
        raw[key] = value;
        from[key] = `${configFile}: ${key}`;
      }
    }
  }
  for (const [key, name] of Object.entries(ENV_NAMES)) {
    const value = env[name];
    if (value !== undefined && value !== '') {
      raw[key] = value;
      from[key] = name;
    }
  }
  return { raw, where: (key) => from[key] ?? ENV_NAMES[key] ?? key, configFile, fileDir, problems };
}

/**
 * The parsed file, or why it cannot be read. A JSON syntax error is told by its position only:
 * V8's message quotes the text around it, which may be a credential in the file.
 */
function readJson(file: string): { parsed?: unknown; why?: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { why: (err as NodeJS.ErrnoException).code ?? 'unreadable' };
  }
  try {
    return { parsed: JSON.parse(text) };
  } catch (err) {
    const at = /at position \d+(?: \(line \d+ column \d+\))?/.exec((err as Error).message);
    return { why: at ? `invalid JSON ${at[0]}` : 'invalid JSON' };
  }
}
