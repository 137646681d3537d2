/**
 * PyPI: `/simple/` and `/simple/<name>/`, `/pypi/<name>[/<ver>]/json` (metadata); any path
 * ending in a wheel (PEP 427), sdist (`.tar.gz`, `.zip`, `.tar.bz2`, `.tar.xz`, `.tgz`) or egg
 * (download), or in `.metadata` (PEP 658) or `.asc` after one (metadata). Names are normalised
 * per PEP 503. A lone directory under a route pinned to the simple index is a project page.
 */
import { download, endsWithAny, last, meta, type Found, type Input } from './segments.js';
import { lastSepBeforeDigit, looksLikeVersion } from './version.js';

const SDIST_EXTENSIONS = ['.tar.gz', '.tar.bz2', '.tar.xz', '.tgz', '.tar', '.zip'] as const;
/** PEP 658 metadata and detached signatures of a distribution file. */
const DIST_SIDE_FILES = ['.metadata', '.asc'] as const;

/** PEP 503: lower-case, runs of `-`, `_`, `.` become one `-`. */
export function normalizePypiName(name: string): string {
  let out = '';
  let inRun = false;
  for (const ch of name.toLowerCase()) {
    if (ch === '-' || ch === '_' || ch === '.') {
      if (!inRun) out += '-';
      inRun = true;
    } else {
      out += ch;
      inRun = false;
    }
  }
  return out;
}

/** A PyPI distribution file name → name and version, or null when it is not one. */
function pypiFile(file: string): { name: string; version: string } | null {
  if (file.endsWith('.whl')) {
    const parts = file.slice(0, -4).split('-');
    if ((parts.length === 5 || parts.length === 6) && parts[0] && looksLikeVersion(parts[1])) {
      return { name: normalizePypiName(parts[0]), version: parts[1] };
    }
    return null;
  }
  if (file.endsWith('.egg')) {
    const parts = file.slice(0, -4).split('-');
    if (parts.length >= 2 && parts[0] && looksLikeVersion(parts[1]))
      return { name: normalizePypiName(parts[0]), version: parts[1] };
    return null;
  }
  const ext = endsWithAny(file, SDIST_EXTENSIONS);
  if (ext === undefined) return null;
  const base = file.slice(0, -ext.length);
  const dash = lastSepBeforeDigit(base, '-');
  if (dash <= 0) return null;
  return { name: normalizePypiName(base.slice(0, dash)), version: base.slice(dash + 1) };
}

export function parsePypi({ segs, dir }: Input): Found | null {
  const file = last(segs);
  if (file === undefined) return meta();
  if (!dir) {
    for (const suffix of DIST_SIDE_FILES) {
      if (file.endsWith(suffix)) {
        const dist = pypiFile(file.slice(0, -suffix.length));
        if (dist) return meta(dist.name, dist.version);
      }
    }
    const dist = pypiFile(file);
    if (dist) return download(dist.name, dist.version);
  }
  const simple = segs.indexOf('simple');
  if (simple >= 0 && simple <= 1) {
    const project = segs[simple + 1];
    return meta(project === undefined ? null : normalizePypiName(project));
  }
  if (segs[0] === 'pypi' && file === 'json' && segs[1] !== undefined) {
    return meta(normalizePypiName(segs[1]), segs.length === 4 ? segs[2]! : null);
  }
  // A route pinned to the simple index itself: `/<project>/` is the project page.
  if (dir && segs.length === 1) return meta(normalizePypiName(file));
  return null;
}
