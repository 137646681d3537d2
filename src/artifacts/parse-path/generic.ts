/**
 * generic: when the layout is unambiguous the ecosystem is detected (a wheel, `.nupkg`,
 * `.deb`, `.rpm`, `-rN.apk`, `.crate`, APKINDEX, repodata, `dists/.../Release`, Go `@v/`,
 * npm `<name>/-/<name>-<ver>.tgz`, Maven `<artifact>/<version>/<artifact>-<version>...` with a
 * jar/pom/war/ear/aar/module/klib file, or `maven-metadata.xml`); otherwise `<name>/<version>/<file>`
 * when the middle segment looks like a version (starts with a digit, or `v` and a digit), else nulls.
 */
import type { Ecosystem } from '../../config/schema.js';
import { apkFile, DEB_BINARY_EXTENSIONS, rpmFile } from './distro.js';
import { MAVEN_DETECT_EXTENSIONS, mavenFileMatches } from './maven.js';
import { endsWithAny, stripChecksum, type Found, type Input } from './segments.js';
import { looksLikeVersion, startsWithSemverCore } from './version.js';

const NUGET_DETECT_EXTENSIONS = ['.nupkg', '.snupkg'] as const;
const GO_VERSION_FILES = ['.zip', '.mod', '.info'] as const;

export function parseGeneric({ segs, dir }: Input): Found | null {
  const n = segs.length;
  if (dir || n < 3) return null;
  const name = segs[n - 3]!;
  const version = segs[n - 2]!;
  if (!looksLikeVersion(version) || looksLikeVersion(name)) return null;
  return { kind: stripChecksum(segs[n - 1]!).checksum ? 'metadata' : 'download', package: name, version };
}

/**
 * Under a `generic` route, the ecosystem whose layout this unambiguously is, with the segments
 * re-rooted where that layout needs its name at the start (npm), or undefined.
 */
export function detect(segs: readonly string[]): { ecosystem: Ecosystem; segs: string[] } | undefined {
  const n = segs.length;
  const file = segs[n - 1];
  if (file === undefined) return undefined;
  const all = [...segs];
  if (file.endsWith('.whl') || file.endsWith('.whl.metadata')) return { ecosystem: 'pypi', segs: all };
  if (endsWithAny(file.toLowerCase(), NUGET_DETECT_EXTENSIONS) !== undefined) return { ecosystem: 'nuget', segs: all };
  if (endsWithAny(file, DEB_BINARY_EXTENSIONS) !== undefined && file.split('_').length === 3)
    return { ecosystem: 'deb', segs: all };
  if ((file === 'InRelease' || file === 'Release') && segs.includes('dists')) return { ecosystem: 'deb', segs: all };
  if (rpmFile(file) !== null || (file === 'repomd.xml' && segs[n - 2] === 'repodata'))
    return { ecosystem: 'rpm', segs: all };
  if (apkFile(file) !== null || file === 'APKINDEX.tar.gz') return { ecosystem: 'apk', segs: all };
  if (file.endsWith('.crate')) return { ecosystem: 'cargo', segs: all };
  const at = segs.indexOf('@v');
  if (
    (at > 0 && at === n - 2 && (file === 'list' || endsWithAny(file, GO_VERSION_FILES) !== undefined)) ||
    (file === '@latest' && n >= 2)
  ) {
    return { ecosystem: 'go', segs: all };
  }
  // npm tarball: [@scope/]<name>/-/<name>-<version>.tgz, possibly under leading directories.
  if (n >= 3 && segs[n - 2] === '-' && file.endsWith('.tgz')) {
    const nameSeg = segs[n - 3]!;
    const bare = nameSeg.includes('/') ? nameSeg.slice(nameSeg.lastIndexOf('/') + 1) : nameSeg;
    const stem = file.slice(0, -'.tgz'.length);
    if (stem.startsWith(`${bare}-`) && startsWithSemverCore(stem, bare.length + 1)) {
      const scoped = n >= 4 && segs[n - 4]!.startsWith('@') && !nameSeg.startsWith('@');
      return { ecosystem: 'npm', segs: segs.slice(scoped ? n - 4 : n - 3) };
    }
  }
  const { base } = stripChecksum(file);
  if (base === 'maven-metadata.xml' && n >= 3) return { ecosystem: 'maven', segs: all };
  if (
    n >= 4 &&
    endsWithAny(base, MAVEN_DETECT_EXTENSIONS) !== undefined &&
    looksLikeVersion(segs[n - 2]) &&
    mavenFileMatches(base, segs[n - 3]!, segs[n - 2]!)
  ) {
    return { ecosystem: 'maven', segs: all };
  }
  return undefined;
}
