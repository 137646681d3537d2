/**
 * cargo: `config.json` and sparse-index files `1/<n>`, `2/<nn>`, `3/<c>/<nnn>`,
 * `<ab>/<cd>/<name>` (metadata); `[api/v1/crates/]<name>/<ver>/download` and
 * `<name>-<ver>.crate` (download); other `api/v1/crates...` calls (metadata).
 */
import { download, last, meta, type Found, type Input } from './segments.js';
import { firstSepBeforeSemver, looksLikeVersion } from './version.js';

/** Sparse-index layout: 1/<n>, 2/<nn>, 3/<c>/<nnn>, <ab>/<cd>/<name> (crate names lower-cased). */
function isCargoIndexPath(segs: readonly string[]): boolean {
  const n = segs.length;
  const name = segs[n - 1]?.toLowerCase();
  if (name === undefined || name.length === 0 || n < 2) return false;
  const a = segs[n - 2];
  const b = segs[n - 3];
  if (name.length === 1) return a === '1';
  if (name.length === 2) return a === '2';
  if (name.length === 3) return b === '3' && a === name[0];
  return b === name.slice(0, 2) && a === name.slice(2, 4);
}

export function parseCargo({ segs }: Input): Found | null {
  const n = segs.length;
  const file = last(segs);
  if (file === undefined) return meta();
  if (file === 'config.json') return meta();
  if (file === 'download' && n >= 3) return download(segs[n - 3]!, segs[n - 2]!);
  if (file.endsWith('.crate')) {
    const stem = file.slice(0, -'.crate'.length);
    const dir = segs[n - 2];
    if (dir !== undefined && stem.startsWith(`${dir}-`) && looksLikeVersion(stem.slice(dir.length + 1))) {
      return download(dir, stem.slice(dir.length + 1));
    }
    const i = firstSepBeforeSemver(stem, '-');
    return i > 0 ? download(stem.slice(0, i), stem.slice(i + 1)) : download(null, null);
  }
  const crates = segs.indexOf('crates');
  if (crates >= 0 && segs[crates - 1] === 'v1') {
    // api/v1/crates, api/v1/crates/<name>, api/v1/crates/<name>/<version>, .../dependencies
    return meta(segs[crates + 1] ?? null, segs[crates + 2] ?? null);
  }
  if (isCargoIndexPath(segs)) return meta(file.toLowerCase());
  return null;
}
