/**
 * What every layout parser shares: the path as decoded segments (Input), what a parser found in
 * them (Found), and helpers on segments and file names.
 */

export type ArtifactKind = 'download' | 'metadata';

export interface Input {
  /** Decoded, non-empty segments. */
  segs: string[];
  /** The path ended with "/" (or was empty): a directory / index page. */
  dir: boolean;
}

export interface Found {
  kind: ArtifactKind;
  package: string | null;
  version: string | null;
}

/** One ecosystem's layout: what the segments name, or null when the layout does not match. */
export type Parser = (input: Input) => Found | null;

export const meta = (pkg: string | null = null, version: string | null = null): Found => ({
  kind: 'metadata',
  package: pkg,
  version,
});
export const download = (pkg: string | null, version: string | null): Found => ({
  kind: 'download',
  package: pkg,
  version,
});

export const last = (segs: readonly string[]): string | undefined => segs[segs.length - 1];

function decodeSegment(raw: string): string {
  if (raw.indexOf('%') < 0) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw; // bad percent-encoding: keep the segment as received
  }
}

/** The path (query and fragment cut off) as decoded, non-empty segments. */
export function split(path: string): Input {
  let end = path.length;
  const q = path.indexOf('?');
  if (q >= 0) end = q;
  const h = path.indexOf('#');
  if (h >= 0 && h < end) end = h;
  // One scan with indexOf, no intermediate array of pieces (slice + split('/') + filter is slower).
  const segs: string[] = [];
  for (let start = 0; start < end;) {
    let slash = path.indexOf('/', start);
    if (slash < 0 || slash > end) slash = end;
    if (slash > start) segs.push(decodeSegment(path.slice(start, slash)));
    start = slash + 1;
  }
  return { segs, dir: segs.length === 0 || path.charCodeAt(end - 1) === 0x2f /* / */ };
}

const CHECKSUM_EXTENSIONS = ['.sha1', '.sha256', '.sha512', '.md5', '.asc', '.sig'] as const;

/** Strips up to two checksum/signature extensions (`x.jar.asc.sha1`); reports whether any was there. */
export function stripChecksum(file: string): { base: string; checksum: boolean } {
  let base = file;
  let checksum = false;
  for (let round = 0; round < 2; round++) {
    const ext = CHECKSUM_EXTENSIONS.find((e) => base.endsWith(e) && base.length > e.length);
    if (ext === undefined) break;
    base = base.slice(0, -ext.length);
    checksum = true;
  }
  return { base, checksum };
}

export function endsWithAny(s: string, suffixes: readonly string[]): string | undefined {
  return suffixes.find((x) => s.endsWith(x) && s.length > x.length);
}
