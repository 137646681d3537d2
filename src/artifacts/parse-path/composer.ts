/**
 * Composer (best effort: dist URLs are whatever the repository chose): `packages.json`,
 * `p2/<vendor>/<name>[~dev].json`, v1 `p/<vendor>/<name>$<hash>.json` (metadata); archives at
 * `.../<vendor>/<name>/<version>/<file>` (Nexus, Private Packagist), `.../<vendor>/<name>/
 * <vendor>-<name>-<version>.zip`, `dists/<vendor>/<name>/<reference>.zip` (mirrors: version
 * null, the reference is a commit, not a version).
 */
import { download, endsWithAny, last, meta, type Found, type Input } from './segments.js';
import { looksLikeVersion } from './version.js';

const COMPOSER_ARCHIVE_EXTENSIONS = ['.zip', '.tar.gz', '.tgz', '.tar'] as const;

function isHex(s: string, len: number): boolean {
  if (s.length !== len) return false;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46))) return false;
  }
  return true;
}

export function parseComposer({ segs }: Input): Found | null {
  const n = segs.length;
  const file = last(segs);
  if (file === undefined) return meta();
  if (file.endsWith('.json')) {
    const p = segs[n - 3];
    if ((p === 'p2' || p === 'p') && n >= 3) {
      let name = file.slice(0, -'.json'.length);
      const dollar = name.indexOf('$'); // v1 provider files: name$<sha256>.json
      if (dollar >= 0) name = name.slice(0, dollar);
      if (name.endsWith('~dev')) name = name.slice(0, -'~dev'.length);
      if (name.length > 0) return meta(`${segs[n - 2]!}/${name}`);
    }
    return meta();
  }
  const ext = endsWithAny(file, COMPOSER_ARCHIVE_EXTENSIONS);
  if (ext === undefined) return null;
  const stem = file.slice(0, -ext.length);
  // .../<vendor>/<name>/<version>/<anything>.zip (Nexus, Private Packagist)
  if (n >= 4 && looksLikeVersion(segs[n - 2]) && segs[n - 2]!.includes('.')) {
    return download(`${segs[n - 4]!}/${segs[n - 3]!}`, segs[n - 2]!);
  }
  if (n >= 3) {
    const vendor = segs[n - 3]!;
    const name = segs[n - 2]!;
    // .../<vendor>/<name>/<reference>.zip (Packagist mirrors): a commit, not a version.
    if (isHex(stem, 40)) return download(`${vendor}/${name}`, null);
    // .../<vendor>/<name>/<vendor>-<name>-<version>[-<reference>].zip
    const prefix = `${vendor}-${name}-`;
    if (stem.startsWith(prefix)) {
      let version = stem.slice(prefix.length);
      const dash = version.lastIndexOf('-');
      if (dash > 0 && isHex(version.slice(dash + 1), 40)) version = version.slice(0, dash);
      return download(`${vendor}/${name}`, version.length > 0 ? version : null);
    }
  }
  return download(null, null);
}
