import path from 'node:path';
import { unreadable } from './network.js';
import type { Checked, Context } from './sources.js';
import type { SecretScanningConfig } from './types.js';
import { secureUrlProblem } from './urls.js';

/**
 * Signed secret-scanning reports: where the reporters' public keys come from, a file or a URL, not
 * both (`"secretScanning": {"publicKeysFile": ...}` or `{"publicKeysUrl": ...}` in the config file,
 * or their env vars; sources.ts reads the object, so `where` names its fields).
 */
export function checkSecretScanning({ s, where, cwd }: Context): Checked<SecretScanningConfig | undefined> {
  const problems: string[] = [];
  const { secretScanningKeysFile: file, secretScanningKeysUrl: url } = s;
  if (file !== undefined && url !== undefined) {
    problems.push(
      `${where('secretScanningKeysFile')} and ${where('secretScanningKeysUrl')}: set one of them, not both`,
    );
    return { value: undefined, problems };
  }
  if (file !== undefined) {
    problems.push(...unreadable(where('secretScanningKeysFile'), file, cwd));
    return { value: { keysFile: path.resolve(cwd, file) }, problems };
  }
  if (url !== undefined) {
    const problem = secureUrlProblem(url);
    if (problem) problems.push(`${where('secretScanningKeysUrl')}: ${problem}`);
    return { value: problem ? undefined : { keysUrl: new URL(url).href }, problems };
  }
  return { value: undefined, problems };
}
