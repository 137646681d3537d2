/**
 * Go: `<module>/@v/list`, `<ver>.info`, `<ver>.mod` (metadata), `<ver>.zip` (download),
 * `<module>/@latest` (metadata), `sumdb/...` (metadata); `!x` decoded to `X` in module and version.
 */
import { download, endsWithAny, meta, type Found, type Input } from './segments.js';

const GO_INFO_EXTENSIONS = ['.mod', '.info'] as const;

/** Go module proxy case-encoding: `!x` → `X`. Anything else (a bad escape) is kept as is. */
function decodeGoCase(s: string): string {
  if (s.indexOf('!') < 0) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const next = s.charCodeAt(i + 1);
    if (ch === '!' && next >= 0x61 && next <= 0x7a) {
      out += String.fromCharCode(next - 0x20);
      i++;
    } else {
      out += ch;
    }
  }
  return out;
}

export function parseGo({ segs }: Input): Found | null {
  const n = segs.length;
  if (n === 0) return meta();
  if (segs[0] === 'sumdb') {
    // sumdb/sum.golang.org/lookup/<module>@<version>
    const lookup = segs.indexOf('lookup');
    if (lookup > 0 && lookup < n - 1) {
      const tail = segs.slice(lookup + 1).join('/');
      const at = tail.lastIndexOf('@');
      if (at > 0) return meta(decodeGoCase(tail.slice(0, at)), decodeGoCase(tail.slice(at + 1)));
    }
    return meta();
  }
  const at = segs.indexOf('@v');
  if (at > 0) {
    const module = decodeGoCase(segs.slice(0, at).join('/'));
    const rest = segs.slice(at + 1);
    const what = rest[0];
    if (rest.length !== 1 || what === undefined || what === 'list') return meta(module);
    if (what.endsWith('.zip')) return download(module, decodeGoCase(what.slice(0, -4)));
    const ext = endsWithAny(what, GO_INFO_EXTENSIONS);
    return meta(module, ext === undefined ? null : decodeGoCase(what.slice(0, -ext.length)));
  }
  if (segs[n - 1] === '@latest' && n >= 2) return meta(decodeGoCase(segs.slice(0, n - 1).join('/')));
  return null;
}
