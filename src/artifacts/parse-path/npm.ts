/**
 * npm: `/<name>` and `/@scope%2fname` (or `/@scope/name`) packuments; `/<name>/<version>`
 * version documents (a dist-tag such as `latest` gives version null); tarballs
 * `/<name>/-/<name>-<ver>.tgz`, `/@scope/name/-/name-<ver>.tgz`; `/-/...` endpoints (search,
 * audit) are metadata without a package.
 */
import { download, last, meta, type Found, type Input } from './segments.js';
import { firstSepBeforeSemver, looksLikeVersion } from './version.js';

export function parseNpm({ segs }: Input): Found | null {
  const first = segs[0];
  if (first === undefined) return meta();
  if (first === '-') {
    // Registry endpoints: /-/v1/search, /-/npm/v1/security/..., /-/package/<name>/dist-tags.
    if (segs[1] === 'package' && segs[2] !== undefined) {
      const name =
        segs[2].startsWith('@') && !segs[2].includes('/') && segs[3] !== undefined && segs[3] !== 'dist-tags'
          ? `${segs[2]}/${segs[3]}`
          : segs[2];
      return meta(name);
    }
    return meta();
  }
  let name: string;
  let rest: string[];
  if (first.startsWith('@') && first.includes('/')) {
    name = first; // @scope%2fname, decoded
    rest = segs.slice(1);
  } else if (first.startsWith('@') && segs[1] !== undefined) {
    name = `${first}/${segs[1]}`;
    rest = segs.slice(2);
  } else {
    name = first;
    rest = segs.slice(1);
  }
  if (rest.length === 0) return meta(name);
  if (rest[0] === '-') {
    const file = last(rest);
    if (file === undefined || rest.length < 2 || !file.endsWith('.tgz')) return meta(name);
    return download(name, npmTarballVersion(name, file.slice(0, -'.tgz'.length)));
  }
  if (rest.length === 1) return meta(name, looksLikeVersion(rest[0]) ? rest[0] : null);
  return null;
}

/** `lodash-4.17.21` → `4.17.21`; the file name carries the name without its scope. */
function npmTarballVersion(name: string, base: string): string | null {
  const slash = name.lastIndexOf('/');
  const bare = slash >= 0 ? name.slice(slash + 1) : name;
  if (base.startsWith(`${bare}-`) && looksLikeVersion(base.slice(bare.length + 1))) return base.slice(bare.length + 1);
  const i = firstSepBeforeSemver(base, '-');
  return i >= 0 ? base.slice(i + 1) : null;
}
