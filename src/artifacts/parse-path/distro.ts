/**
 * Linux distribution packages, whose file names carry name and version:
 * - Debian: `<name>_<version>_<arch>.deb|.udeb|.ddeb` anywhere (download); source files
 *   `<name>_<version>.dsc|.orig.tar.*|.debian.tar.*|.diff.gz` (download); everything under
 *   `dists/` and the index files themselves (metadata).
 * - RPM: `<name>-<version>-<release>.<arch>.rpm` anywhere, version reported as
 *   `<version>-<release>` (download); `repodata/*`, `*.repo`, mirrorlist/metalink (metadata).
 * - Alpine: `<name>-<version>-r<N>.apk`, version reported as `<version>-r<N>` (download);
 *   `APKINDEX.tar.gz` (metadata).
 */
import { download, endsWithAny, last, meta, type Found, type Input } from './segments.js';
import { isPlainNumber, lastSepBeforeDigit } from './version.js';

// Debian ---------------------------------------------------------------------------------------

export const DEB_BINARY_EXTENSIONS = ['.deb', '.udeb', '.ddeb'] as const;
const DEB_SOURCE_MARKERS = ['.orig.tar.', '.debian.tar.'] as const;
const DEB_INDEX_NAMES = ['Release', 'InRelease', 'Release.gpg'] as const;
const DEB_INDEX_PREFIXES = ['Packages', 'Sources', 'Contents-', 'Translation-', 'Components-', 'icons-'] as const;

export function parseDeb({ segs }: Input): Found | null {
  const file = last(segs);
  if (file === undefined) return meta();
  const ext = endsWithAny(file, DEB_BINARY_EXTENSIONS);
  if (ext !== undefined) {
    const parts = file.slice(0, -ext.length).split('_');
    if (parts.length === 3 && parts[0] && parts[1]) return download(parts[0], parts[1]);
    return null;
  }
  const source = debSourceStem(file);
  if (source !== null) {
    const parts = source.split('_');
    if (parts.length === 2 && parts[0] && parts[1]) return download(parts[0], parts[1]);
    return null;
  }
  if (
    segs.includes('dists') ||
    segs.includes('by-hash') ||
    (DEB_INDEX_NAMES as readonly string[]).includes(file) ||
    DEB_INDEX_PREFIXES.some((p) => file.startsWith(p))
  ) {
    return meta();
  }
  return null;
}

/** `name_ver.dsc`, `name_upstream.orig.tar.xz`, `name_ver.debian.tar.xz`, `name_ver.diff.gz` → `name_ver`. */
function debSourceStem(file: string): string | null {
  if (file.endsWith('.dsc')) return file.slice(0, -4);
  if (file.endsWith('.diff.gz')) return file.slice(0, -8);
  for (const marker of DEB_SOURCE_MARKERS) {
    const i = file.lastIndexOf(marker);
    if (i > 0) return file.slice(0, i);
  }
  return null;
}

// RPM ------------------------------------------------------------------------------------------

export function rpmFile(file: string): { name: string; version: string } | null {
  if (!file.endsWith('.rpm')) return null;
  const nvra = file.slice(0, -4);
  const dot = nvra.lastIndexOf('.');
  if (dot <= 0 || dot === nvra.length - 1) return null;
  const nvr = nvra.slice(0, dot);
  const rel = nvr.lastIndexOf('-');
  if (rel <= 0) return null;
  const ver = nvr.lastIndexOf('-', rel - 1);
  if (ver <= 0 || ver === rel - 1 || rel === nvr.length - 1) return null;
  return { name: nvr.slice(0, ver), version: nvr.slice(ver + 1) };
}

export function parseRpm({ segs }: Input): Found | null {
  const file = last(segs);
  if (file === undefined) return meta();
  const rpm = rpmFile(file);
  if (rpm) return download(rpm.name, rpm.version);
  if (
    segs.includes('repodata') ||
    file.endsWith('.repo') ||
    file === 'repomd.xml' ||
    file === 'mirrorlist' ||
    file === 'metalink' ||
    file === 'RPM-GPG-KEY' ||
    file.startsWith('RPM-GPG-KEY-')
  ) {
    return meta();
  }
  return null;
}

// Alpine ---------------------------------------------------------------------------------------

export function apkFile(file: string): { name: string; version: string } | null {
  if (!file.endsWith('.apk')) return null;
  const base = file.slice(0, -4);
  const r = base.lastIndexOf('-');
  if (r <= 0 || base.charCodeAt(r + 1) !== 0x72 /* r */ || !isPlainNumber(base, r + 2, base.length)) return null;
  const v = lastSepBeforeDigit(base.slice(0, r), '-'); // the name may hold dashes, the version starts with a digit
  if (v <= 0) return null;
  return { name: base.slice(0, v), version: base.slice(v + 1) };
}

export function parseApk({ segs }: Input): Found | null {
  const file = last(segs);
  if (file === undefined) return meta();
  if (file === 'APKINDEX.tar.gz') return meta();
  const apk = apkFile(file);
  return apk ? download(apk.name, apk.version) : null;
}
