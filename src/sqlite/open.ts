import Database from 'better-sqlite3';
import { closeSync, fchmodSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';

/** The embedded database's file under the data dir: the token store, and the recent-activity table where there is one. */
export const DEFAULT_DATABASE_FILE_NAME = 'tollgate.db';

export interface OpenDatabaseOptions {
  /** Created (mode 0700) when absent. */
  dataDir: string;
  /** File name under dataDir. Default tollgate.db. */
  fileName?: string;
  /**
   * FULL: a commit survives a power loss (the token store). NORMAL: in WAL mode a crash of the
   * process loses nothing, a power loss may lose the last commits, and no fsync per commit.
   */
  synchronous: 'FULL' | 'NORMAL';
}

/**
 * Creates `file` empty, mode 0600 whatever the umask, unless it exists. SQLite would create it
 * 0644 less the umask, and it creates the -wal and -shm files with the mode of the main file
 * (fchmod, past the umask): so all three are private, whatever the data dir's mode. An empty
 * file is an empty database to SQLite. A file that exists keeps its mode.
 */
function createPrivate(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  try {
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens (creating when absent, mode 0600) a SQLite file several processes share: WAL, so readers
 * never block the writer, and a 5 s busy timeout, so writers of other processes wait their turn
 * instead of failing. better-sqlite3 is synchronous: whatever runs on it runs on the event loop.
 */
export function openDatabase(options: OpenDatabaseOptions): { db: Database.Database; file: string } {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(options.dataDir, options.fileName ?? DEFAULT_DATABASE_FILE_NAME);
  createPrivate(file);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.synchronous}`);
  db.pragma('busy_timeout = 5000');
  return { db, file };
}
