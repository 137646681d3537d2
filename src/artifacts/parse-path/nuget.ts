/**
 * NuGet: `.../<id>/<ver>/<id>.<ver>.nupkg|.snupkg` (download) and `<id>.nuspec` (metadata),
 * `index.json` files (service index, flat-container version lists, registrations),
 * registration leaves `<id>/<ver>.json`, v2 `api/v2/package/<id>/<ver>` (download). Ids are
 * lower-cased (the flat container's own convention).
 */
import { download, endsWithAny, last, meta, type ArtifactKind, type Found, type Input } from './segments.js';
import { isDigitAt } from './version.js';

const NUGET_PACKAGE_EXTENSIONS = ['.nupkg', '.snupkg', '.nuspec'] as const;

/** True when `s` is a NuGet version: 1-4 dot-separated numbers, then optionally `-` or `+` and a label. */
function isNugetVersion(s: string): boolean {
  let i = 0;
  for (let part = 0; part < 4; part++) {
    const from = i;
    while (i < s.length && isDigitAt(s, i)) i++;
    if (i === from) return false;
    if (i === s.length) return true;
    const c = s.charCodeAt(i);
    if (c === 0x2d /* - */ || c === 0x2b /* + */) return i + 1 < s.length;
    if (c !== 0x2e /* . */) return false;
    i++;
  }
  return false;
}

export function parseNuget({ segs }: Input): Found | null {
  const n = segs.length;
  const file = last(segs);
  if (file === undefined) return meta();
  const lower = file.toLowerCase();
  if (lower === 'index.json') {
    const parent = segs[n - 2]?.toLowerCase();
    if (parent === undefined || parent.startsWith('v3') || parent.startsWith('registration')) return meta();
    return meta(parent);
  }
  const ext = endsWithAny(lower, NUGET_PACKAGE_EXTENSIONS);
  if (ext !== undefined) {
    const kind: ArtifactKind = ext === '.nuspec' ? 'metadata' : 'download';
    const id = segs[n - 3];
    const version = segs[n - 2];
    if (id !== undefined && version !== undefined) {
      const idLower = id.toLowerCase();
      const expected = ext === '.nuspec' ? `${idLower}.nuspec` : `${idLower}.${version.toLowerCase()}${ext}`;
      if (lower === expected) return { kind, package: idLower, version };
    }
    // A bare file name: `<id>.<version>.nupkg`, where the id may itself hold `.<digit>`.
    const stem = lower.slice(0, -ext.length);
    for (let i = stem.indexOf('.'); i > 0; i = stem.indexOf('.', i + 1)) {
      if (isNugetVersion(stem.slice(i + 1)))
        return { kind, package: stem.slice(0, i), version: file.slice(i + 1, -ext.length) };
    }
    return { kind, package: null, version: null };
  }
  // v2: api/v2/package/<id>/<version>
  const pkg = segs.findIndex((s, i) => s.toLowerCase() === 'package' && segs[i - 1]?.toLowerCase() === 'v2');
  if (pkg >= 0 && segs[pkg + 1] !== undefined) {
    return download(segs[pkg + 1]!.toLowerCase(), segs[pkg + 2] ?? null);
  }
  // Registration leaf: .../registration5-gz-semver2/<id>/<version>.json
  if (lower.endsWith('.json') && n >= 3 && segs[n - 3]!.toLowerCase().startsWith('registration')) {
    return meta(segs[n - 2]!.toLowerCase(), file.slice(0, -'.json'.length));
  }
  return null;
}
