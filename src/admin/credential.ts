import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { AdminConfig } from '../config/index.js';
import type { Logger } from '../logging/logger.js';
import { createPrivateFile } from '../private-file.js';

/** Under the data dir when neither TOLLGATE_ADMIN_TOKEN nor TOLLGATE_ADMIN_TOKEN_FILE is set. */
export const ADMIN_TOKEN_FILE_NAME = 'admin-token';

export interface AdminCredential {
  /** The secret. Never log it. */
  token: string;
  source: 'env' | 'file' | 'generated';
  /** The file it was read from or generated into (undefined for env). */
  file: string | undefined;
}

/** `tga_` + 256 random bits, base64url: recognisable to secret scanners, like proxy tokens. */
export function generateAdminToken(): string {
  return `tga_${randomBytes(32).toString('base64url')}`;
}

/**
 * The admin token: from the config (env or file), else `<dataDir>/admin-token`, generated with
 * mode 0600 on first start (atomically: a private temp file hard-linked into place, so two
 * processes starting at once agree on one token). Logs where it lives, never the token.
 */
export async function loadAdminCredential(
  admin: Pick<AdminConfig, 'token' | 'tokenFile'>,
  dataDir: string,
  logger: Logger,
): Promise<AdminCredential> {
  if (admin.token !== undefined) {
    const source = admin.tokenFile ? 'file' : 'env';
    logger.info(
      { source, file: admin.tokenFile },
      source === 'file'
        ? 'admin API: admin token read from TOLLGATE_ADMIN_TOKEN_FILE'
        : 'admin API: admin token from TOLLGATE_ADMIN_TOKEN',
    );
    return { token: admin.token, source, file: admin.tokenFile };
  }
  const file = path.resolve(dataDir, ADMIN_TOKEN_FILE_NAME);
  const existing = await readTokenFile(file);
  if (existing !== undefined) {
    const mode = (await stat(file)).mode & 0o777;
    if (mode & 0o077)
      logger.warn({ file, mode: mode.toString(8) }, 'admin token file is readable by other users: chmod 600 it');
    logger.info({ source: 'file', file }, 'admin API: sign in with the admin token in this file');
    return { token: existing, source: 'file', file };
  }
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const token = generateAdminToken();
  if (await createPrivateFile(file, `${token}\n`)) {
    logger.info(
      { source: 'generated', file },
      'admin API: generated an admin token; sign in with the token in this file',
    );
    return { token, source: 'generated', file };
  }
  const raced = await readTokenFile(file);
  if (raced === undefined) throw new Error(`admin token file ${file} is empty`);
  logger.info({ source: 'file', file }, 'admin API: sign in with the admin token in this file');
  return { token: raced, source: 'file', file };
}

async function readTokenFile(file: string): Promise<string | undefined> {
  try {
    const value = (await readFile(file, 'utf8')).trim();
    if (value === '') throw new Error(`admin token file ${file} is empty: delete it to have a new one generated`);
    return value;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
