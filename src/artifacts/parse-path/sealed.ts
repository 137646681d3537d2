import type { Ecosystem } from '../../config/schema.js';
import { isPlainNumber, MAX_VERSION_CHARS } from './version.js';

/**
 * Ecosystems where `-spN` is only a candidate: real npm packages and Go modules use `-sp...`
 * pre-release tags of their own. Elsewhere `-spN` is certain. Cargo and NuGet are SemVer too;
 * they belong here if their upstreams turn out to use `-spN`.
 */
const DASH_SP_CANDIDATE_ONLY: ReadonlySet<Ecosystem> = new Set<Ecosystem>(['npm', 'go']);

/** `s` is exactly `sp<N>` or `sp<N>p<M>` with N, M plain numbers, lower-case. */
function isSpId(s: string): boolean {
  if (!s.startsWith('sp')) return false;
  const p = s.indexOf('p', 2);
  if (p < 0) return isPlainNumber(s, 2, s.length);
  return isPlainNumber(s, 2, p) && isPlainNumber(s, p + 1, s.length);
}

/** `MAJOR.MINOR.PATCH`, each a plain number. */
function isSemverCore(s: string): boolean {
  const a = s.indexOf('.');
  if (a < 0) return false;
  const b = s.indexOf('.', a + 1);
  if (b < 0) return false;
  return isPlainNumber(s, 0, a) && isPlainNumber(s, a + 1, b) && isPlainNumber(s, b + 1, s.length);
}

/** Sealed by the suffix rule alone, on one version string (no ecosystem decorations). */
function hasSealSuffix(v: string, dashIsCandidate: boolean): boolean {
  const plus = v.lastIndexOf('+');
  if (plus > 0 && isSpId(v.slice(plus + 1))) return true; // `+spN`: certain everywhere
  if (plus >= 0) return false; // build metadata after a `-spN` hides it (`1.2.3-sp1+build`)
  const dash = v.lastIndexOf('-');
  if (dash <= 0 || !isSpId(v.slice(dash + 1))) return false;
  return dashIsCandidate ? isSemverCore(v.slice(0, dash)) : true;
}

/**
 * True when `version` is a patched ("sealed") build.
 *
 * The suffix is `sp<N>` or `sp<N>p<M>` (N, M plain numbers: digits, no leading zero; `sp`
 * lower-case) ending the version, after `+` or `-`:
 * - `+spN` / `+spNpM` is certain in every ecosystem (`1.2.3+sp1`, `2.1.0+sp2p1`).
 * - `-spN` / `-spNpM` is certain everywhere except npm and Go, where it is only a candidate and
 *   counts only when the whole version is `MAJOR.MINOR.PATCH-spN[pM]` (Go: with its `v`, and
 *   optionally `+incompatible`): `1.2.3-sp2` yes; `1.2.3-beta.sp1`, `1.2-sp1`, `1.2.3-sp1.2`,
 *   `1.2.3-rc1-sp1` no.
 * - Never: `.spN` and upper-case `SP` (JBoss/Hibernate service packs such as `4.0.SP1` and
 *   `5.0.0.SP1` are upstream releases, not our patches), `_spN`, `sp` without a number, leading
 *   zeros (`sp01`), or a suffix that is not last (`1.0-sp1-SNAPSHOT`, `1.2.3+sp1.build5`).
 * Distro versions are also checked without their packaging revision, so a sealed upstream
 * version stays sealed once packaged: Debian `[epoch:]1.2.3+sp1-1` (epoch and `-revision`
 * stripped), RPM `1.2.3+sp1-1.el9` (`-release` stripped), Alpine `1.2.3-sp1-r0` (`-rN` stripped).
 */
export function isSealedVersion(ecosystem: Ecosystem, version: string | null | undefined): boolean {
  if (typeof version !== 'string' || version.length < 4 || version.length > MAX_VERSION_CHARS) return false;
  let v = version;
  switch (ecosystem) {
    case 'go': {
      if (v.endsWith('+incompatible')) v = v.slice(0, -'+incompatible'.length);
      if (v.startsWith('v')) v = v.slice(1);
      return hasSealSuffix(v, true);
    }
    case 'npm':
      return hasSealSuffix(v, DASH_SP_CANDIDATE_ONLY.has(ecosystem));
    case 'deb': {
      const colon = v.indexOf(':');
      if (colon > 0 && isPlainNumber(v, 0, colon)) v = v.slice(colon + 1);
      return hasSealSuffix(v, false) || withoutRevision(v);
    }
    case 'rpm':
      return hasSealSuffix(v, false) || withoutRevision(v);
    case 'apk': {
      const dash = v.lastIndexOf('-');
      if (dash > 0 && v.charCodeAt(dash + 1) === 0x72 /* r */ && isPlainNumber(v, dash + 2, v.length))
        v = v.slice(0, dash);
      return hasSealSuffix(v, false);
    }
    default:
      return hasSealSuffix(v, DASH_SP_CANDIDATE_ONLY.has(ecosystem));
  }
}

/** Debian/RPM: the upstream part (before the last `-`) carries the seal. */
function withoutRevision(v: string): boolean {
  const dash = v.lastIndexOf('-');
  return dash > 0 && hasSealSuffix(v.slice(0, dash), false);
}
