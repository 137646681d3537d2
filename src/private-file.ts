/**
 * Secrets Tollgate generates into the data dir (the activity signing keys, the admin token) are
 * written as private files, mode 0600, and never seen half-written: the content goes to a private
 * temp file next to the target, synced, and only then takes the target's name, by a hard link
 * (fails when the file exists: processes starting together agree on one) or a rename (replaces
 * it). The directory is synced afterwards where the file system allows.
 */
import { randomUUID } from 'node:crypto';
import { link, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/** Writes `content` to a fresh private temp file next to `file`, synced; returns its path. Removed again on failure. */
async function writeTemp(file: string, content: string): Promise<string> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomUUID()}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw err;
  }
  await handle.close();
  return temp;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some file systems cannot sync a directory; the rename/link is still atomic.
  } finally {
    await handle.close();
  }
}

/** Creates `file` (mode 0600) with `content` unless it exists. Returns false when another process created it first. */
export async function createPrivateFile(file: string, content: string): Promise<boolean> {
  const temp = await writeTemp(file, content);
  try {
    await link(temp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(temp).catch(() => {});
  }
  await syncDir(path.dirname(file));
  return true;
}

/** Replaces `file` (or creates it) with a private file (mode 0600) holding `content`, atomically. */
export async function replacePrivateFile(file: string, content: string): Promise<void> {
  const temp = await writeTemp(file, content);
  try {
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  }
  await syncDir(path.dirname(file));
}
