import { chmodSync, mkdirSync, statSync } from 'node:fs';

/** A file's permission bits in octal: `600`. */
export const modeOf = (file: string): string => (statSync(file).mode & 0o777).toString(8);

/** The modes of a SQLite database and its -wal and -shm files (while a connection is open: SQLite removes them on the last close). */
export const sqliteModes = (file: string) => ({
  db: modeOf(file),
  wal: modeOf(`${file}-wal`),
  shm: modeOf(`${file}-shm`),
});

/** Creates `dir` world-writable (0777) and runs `run` under umask 0, the most permissive setting, restoring the umask after. */
export async function inWorldWritableDir<T>(dir: string, run: () => Promise<T>): Promise<T> {
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  const umask = process.umask(0);
  try {
    return await run();
  } finally {
    process.umask(umask);
  }
}
