/**
 * Maven: `<group path>/<artifact>/<version>/<artifact>-<version>[-classifier].<ext>`, including
 * timestamped SNAPSHOT files (version is the directory's `X-SNAPSHOT`); `maven-metadata*.xml` at
 * artifact or version level. Checksums/signatures, `.pom` and Gradle `.module` are metadata: a
 * build tool fetches them for every dependency, like Go's `.mod` and NuGet's `.nuspec`. Known
 * limit: group-level plugin metadata (`org/apache/maven/plugins/maven-metadata.xml`) cannot be
 * told from artifact-level by its path and reads as `org.apache.maven:plugins`.
 */
import { download, endsWithAny, last, meta, stripChecksum, type Found, type Input } from './segments.js';
import { isDigitAt, looksLikeVersion } from './version.js';

const MAVEN_METADATA_EXTENSIONS = ['.pom', '.module'] as const;
/** File types that make a `<artifact>/<version>/<artifact>-<version>...` path unambiguously Maven. */
export const MAVEN_DETECT_EXTENSIONS = ['.jar', '.pom', '.war', '.ear', '.aar', '.module', '.klib'] as const;

function mavenPackage(groupSegs: readonly string[], artifact: string): string | null {
  return groupSegs.length === 0 ? null : `${groupSegs.join('.')}:${artifact}`;
}

export function parseMaven({ segs, dir }: Input): Found | null {
  const n = segs.length;
  const file = last(segs);
  if (file === undefined || dir) return meta();
  const { base, checksum } = stripChecksum(file);
  if (base.startsWith('maven-metadata') && base.endsWith('.xml')) {
    const parent = segs[n - 2];
    if (parent === undefined) return meta();
    if ((parent.endsWith('-SNAPSHOT') || looksLikeVersion(parent)) && n >= 4) {
      return meta(mavenPackage(segs.slice(0, n - 3), segs[n - 3]!), parent);
    }
    return meta(mavenPackage(segs.slice(0, n - 2), parent));
  }
  if (base === 'archetype-catalog.xml' || segs.includes('.index')) return meta();
  if (n < 4) return null;
  const artifact = segs[n - 3]!;
  const version = segs[n - 2]!;
  if (!mavenFileMatches(base, artifact, version)) return null;
  const pkg = mavenPackage(segs.slice(0, n - 3), artifact);
  if (checksum || endsWithAny(base, MAVEN_METADATA_EXTENSIONS)) return meta(pkg, version);
  return download(pkg, version);
}

/** `<artifact>-<version>` followed by `.` or `-`; a `-SNAPSHOT` directory also matches timestamped files. */
export function mavenFileMatches(file: string, artifact: string, version: string): boolean {
  const exact = `${artifact}-${version}`;
  if (file.startsWith(exact)) {
    const next = file.charCodeAt(exact.length);
    return next === 0x2e /* . */ || next === 0x2d; /* - */
  }
  if (version.endsWith('-SNAPSHOT')) {
    // acme-lib/1.0-SNAPSHOT/acme-lib-1.0-20240612.123456-12.jar
    const stem = `${artifact}-${version.slice(0, -'SNAPSHOT'.length)}`;
    return file.startsWith(stem) && isDigitAt(file, stem.length);
  }
  return false;
}
