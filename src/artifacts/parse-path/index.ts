import type { Ecosystem } from '../../config/schema.js';
import { parseCargo } from './cargo.js';
import { parseComposer } from './composer.js';
import { parseApk, parseDeb, parseRpm } from './distro.js';
import { detect, parseGeneric } from './generic.js';
import { parseGo } from './go.js';
import { parseMaven } from './maven.js';
import { parseNpm } from './npm.js';
import { parseNuget } from './nuget.js';
import { normalizePypiName, parsePypi } from './pypi.js';
import { positiveInteger } from '../../positive-integer.js';
import { isSealedVersion } from './sealed.js';
import {
  endsWithAny,
  last,
  meta,
  split,
  stripChecksum,
  type ArtifactKind,
  type Found,
  type Input,
  type Parser,
} from './segments.js';

export { isSealedVersion } from './sealed.js';
export type { ArtifactKind } from './segments.js';

/**
 * Path → ecosystem/package/version for the activity event.
 *
 * Input: the part of a proxied request's path after the route prefix, raw as received
 * (percent-encoded, maybe with a query string, with or without a leading "/"), and the route's
 * ecosystem. Output: what the security team's event needs. Pure, no I/O, never throws, and the
 * work is linear in the path length: everything is string splitting and single left-to-right
 * scans, no regular expressions that could backtrack. Paths longer than MAX_PARSED_PATH_CHARS (the
 * proxy refuses anything over 4096 anyway) are not parsed at all: nulls, kind download.
 *
 * Each segment is percent-decoded on its own (a bad escape leaves that segment raw), so npm's
 * `@scope%2fname` stays one segment, Debian's `1%3a2.3-1` becomes `1:2.3-1`, and PyPI's
 * `2.1.0%2Bcu118` becomes `2.1.0+cu118`. Empty segments are ignored; a trailing "/" marks a
 * directory (index page), which has no `file`.
 *
 * Each ecosystem's layouts are described beside its parser (npm.ts, pypi.ts, maven.ts, go.ts,
 * nuget.ts, composer.ts, distro.ts for deb/rpm/apk, cargo.ts, generic.ts); the sealed-version
 * rule in sealed.ts. Anything not matched gets `package`/`version` null and `kind` from
 * `fallback`: metadata for directories, checksums, signatures and, on a pinned route, anything
 * that is not an archive file.
 */

export interface ArtifactRef {
  /** The route's ecosystem, or the detected one when the route is `generic` and the layout is unambiguous. */
  ecosystem: Ecosystem;
  kind: ArtifactKind;
  /** Maven `group:artifact`, npm with its scope, PyPI PEP 503-normalised, Go module decoded, NuGet id lower-case. */
  package: string | null;
  version: string | null;
  /** Last path segment, decoded; null for directories. */
  file: string | null;
  /** True when the version is a patched build: see isSealedVersion. */
  sealed: boolean;
}

/** Longer paths are not parsed (the proxy refuses paths over 4096 characters before this runs). */
export const MAX_PARSED_PATH_CHARS = 8192;

const PARSERS: Record<Ecosystem, Parser> = {
  npm: parseNpm,
  pypi: parsePypi,
  maven: parseMaven,
  go: parseGo,
  nuget: parseNuget,
  composer: parseComposer,
  deb: parseDeb,
  rpm: parseRpm,
  apk: parseApk,
  cargo: parseCargo,
  generic: parseGeneric,
};

/** File types that are a download even where the ecosystem's layout did not match. */
const ARCHIVE_EXTENSIONS = [
  '.tgz',
  '.tar.gz',
  '.tar.bz2',
  '.tar.xz',
  '.tar.zst',
  '.tar',
  '.zip',
  '.7z',
  '.jar',
  '.war',
  '.ear',
  '.aar',
  '.whl',
  '.egg',
  '.nupkg',
  '.snupkg',
  '.deb',
  '.udeb',
  '.rpm',
  '.apk',
  '.crate',
  '.gem',
  '.exe',
  '.msi',
  '.dmg',
] as const;

/**
 * When no layout matched. Directories, checksums and signatures are metadata. Otherwise, under a
 * generic route (a file server) any file is a download; under a pinned ecosystem only an archive
 * is (an unknown path there is an API call or a page: NuGet `/query`, cargo `/api/v1/me`).
 */
function fallback({ segs, dir }: Input, route: Ecosystem): Found {
  const file = last(segs);
  if (dir || file === undefined || stripChecksum(file).checksum) return meta();
  const isDownload = route === 'generic' || endsWithAny(file.toLowerCase(), ARCHIVE_EXTENSIONS) !== undefined;
  return { kind: isDownload ? 'download' : 'metadata', package: null, version: null };
}

/**
 * Parses the path of a proxied request (after the route prefix, raw as received) into the
 * package coordinates of the activity event. Never throws; unknown layouts give nulls.
 */
export function parseArtifactPath(ecosystem: Ecosystem, path: string): ArtifactRef {
  const route: Ecosystem = typeof ecosystem === 'string' && Object.hasOwn(PARSERS, ecosystem) ? ecosystem : 'generic';
  if (typeof path !== 'string' || path.length > MAX_PARSED_PATH_CHARS) {
    return { ecosystem: route, kind: 'download', package: null, version: null, file: null, sealed: false };
  }
  try {
    const input = split(path);
    const file = input.dir ? null : (last(input.segs) ?? null);
    let eco = route;
    let found: Found | null = null;
    if (route === 'generic') {
      const detected = detect(input.segs);
      if (detected) {
        found = PARSERS[detected.ecosystem]({ segs: detected.segs, dir: input.dir });
        if (found) eco = detected.ecosystem;
      }
    }
    found ??= PARSERS[route](input) ?? fallback(input, route);
    return {
      ecosystem: eco,
      kind: found.kind,
      package: found.package,
      version: found.version,
      file,
      sealed: found.version !== null && isSealedVersion(eco, found.version),
    };
  } catch {
    // Unreachable by design; an event with nulls beats a failed request.
    return { ecosystem: route, kind: 'download', package: null, version: null, file: null, sealed: false };
  }
}

/** Longer paths are parsed every time (real artifact paths are well under this: npm ~100, Maven ~150). */
export const MAX_REMEMBERED_PATH_CHARS = 512;

/**
 * parseArtifactPath with memory: the same path under the same ecosystem gives the same (frozen)
 * answer without parsing again. Downloads repeat: every CI job of a project fetches the same
 * tarballs, so most paths have been seen recently. Bounded: past `max` distinct paths the memory
 * is emptied and refilled, so a flood of unique paths costs one Map insert each, no growth; and
 * only paths up to MAX_REMEMBERED_PATH_CHARS are kept, so what a client can make it hold stays
 * within a few MiB (4096 paths of 512 characters, and their parts).
 */
export function createArtifactPathParser(max = 4096): (ecosystem: Ecosystem, path: string) => ArtifactRef {
  positiveInteger('createArtifactPathParser', 'max', max);
  const known = new Map<string, Map<string, ArtifactRef>>();
  let size = 0;
  return function parseRemembered(ecosystem, path) {
    let byPath = known.get(ecosystem);
    const seen = byPath?.get(path);
    if (seen !== undefined) return seen;
    const ref = Object.freeze(parseArtifactPath(ecosystem, path));
    if (typeof path !== 'string' || path.length > MAX_REMEMBERED_PATH_CHARS) return ref;
    if (size >= max) {
      known.clear();
      size = 0;
      byPath = undefined;
    }
    if (byPath === undefined) {
      byPath = new Map();
      known.set(ecosystem, byPath);
    }
    byPath.set(path, ref);
    size++;
    return ref;
  };
}

/**
 * A package pattern written the way a person names a package (`Foo_Bar*`, `Acme.*`), in the form
 * parseArtifactPath names that ecosystem's packages: PyPI's PEP 503 normal form, NuGet's lower-case
 * id; other ecosystems as written. `*` passes through.
 */
export function packagePatternIn(ecosystem: Ecosystem, pattern: string): string {
  if (ecosystem === 'pypi') return normalizePypiName(pattern);
  if (ecosystem === 'nuget') return pattern.toLowerCase();
  return pattern;
}
