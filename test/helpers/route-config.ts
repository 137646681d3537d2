import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RouteFileEntry } from '../../src/config/index.js';

/** A route as written in the JSON config file (defaults may be left out). */
export type RouteEntry = Pick<RouteFileEntry, 'prefix' | 'upstream'> & Partial<RouteFileEntry>;

export interface TempDir {
  path: string;
  /** Writes a file (creating parent directories) and returns its absolute path. */
  write(relative: string, content: string | Buffer): string;
  /** Writes a TOLLGATE_CONFIG file listing these routes and returns its path. */
  configFile(routes: RouteEntry[]): string;
  remove(): void;
}

/** A scratch directory for config files and artifact trees, removed by the test. */
export function tempDir(prefix = 'tollgate-proxy-'): TempDir {
  let configs = 0;
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const write = (relative: string, content: string | Buffer): string => {
    const file = path.join(dir, relative);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
    return file;
  };
  return {
    path: dir,
    write,
    configFile: (routes) => write(`config-${++configs}.json`, JSON.stringify({ routes }, null, 2)),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
