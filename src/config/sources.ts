import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ENV_NAMES, FILE_KEYS, type Settings } from './settings.js';
import type { Env } from './types.js';

/** The raw values by settings key, and where each came from: the env var, or `<file>: <file key>`. */
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
      readFileKeys(parsed as Record<string, unknown>, configFile, { raw, from, problems });
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

/** Config file key → settings key, for the keys that differ (`secretScanning.publicKeysFile`). */
const DOTTED = new Map(
  Object.entries(FILE_KEYS).flatMap(([key, fileKey]) => (fileKey !== key ? [[fileKey, key]] : [])),
);
/** The inverse: settings key → its dotted file key. */
const MOVED = new Map([...DOTTED].map(([fileKey, key]) => [key, fileKey]));

/** The objects that hold dotted file keys, each with its fields: secretScanning → publicKeysFile, publicKeysUrl. */
const OBJECTS = new Map<string, string[]>();
for (const fileKey of DOTTED.keys()) {
  const [object, field] = fileKey.split('.') as [string, string];
  OBJECTS.set(object, [...(OBJECTS.get(object) ?? []), field]);
}

interface Into {
  raw: Record<string, unknown>;
  from: Record<string, string>;
  problems: string[];
}

/**
 * The file's values by settings key. A setting with a dotted file key is read from its object only;
 * its settings key at the top level is refused with what to write instead. Unknown top-level keys are
 * passed on, for the strict schema to name; unknown fields of an object are named here.
 */
function readFileKeys(parsed: Record<string, unknown>, configFile: string, into: Into): void {
  for (const [name, value] of Object.entries(parsed)) {
    const fields = OBJECTS.get(name);
    const moved = MOVED.get(name);
    if (fields) {
      readObject(name, fields, value, configFile, into);
    } else if (moved !== undefined) {
      const [object, field] = moved.split('.');
      into.problems.push(`${configFile}: ${name}: not a config file key; write "${object}": {"${field}": ...} instead`);
    } else {
      into.raw[name] = value;
      into.from[name] = `${configFile}: ${name}`;
    }
  }
}

/** The fields of one object of dotted file keys (`secretScanning`), by settings key; the object is never shown in a problem. */
function readObject(name: string, fields: string[], value: unknown, configFile: string, into: Into): void {
  const holds = fields.join(' or ');
  if (!value || typeof value !== 'object' || Array.isArray(value) || Object.keys(value).length === 0) {
    into.problems.push(`${configFile}: ${name}: must be an object with ${holds}`);
    return;
  }
  for (const [field, fieldValue] of Object.entries(value)) {
    const key = DOTTED.get(`${name}.${field}`);
    if (key === undefined) {
      into.problems.push(`${configFile}: ${name}.${field}: unknown field (${name} holds ${holds})`);
    } else {
      into.raw[key] = fieldValue;
      into.from[key] = `${configFile}: ${name}.${field}`;
    }
  }
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
