import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/**
 * Keeps clients on the gateway: upstream origins that leak through metadata bodies (npm
 * packuments' dist.tarball, PyPI simple pages, cargo's config.json `dl`, the NuGet service
 * index, Composer's dist.url) and through Location headers are replaced by the gateway's
 * public base for the route. Streaming, in bounded memory: only the last needle-length of
 * text is carried between chunks.
 */

/** Content types whose bodies may carry absolute URLs. Artifacts (tarballs, jars, wheels) never match. */
export function isRewritableType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const type = contentType.toLowerCase();
  return type.includes('json') || type.includes('html') || type.includes('xml') || type.startsWith('text/');
}

export interface Replacement {
  from: string;
  to: string;
}

/**
 * The needles for one upstream base: the URL as is, and with JSON-escaped slashes (`http:\/\/`),
 * which PHP's json_encode (Composer repositories) writes.
 */
export function replacementsFor(upstreamBases: readonly string[], publicBase: string): Replacement[] {
  const out: Replacement[] = [];
  for (const base of upstreamBases) {
    out.push({ from: base, to: publicBase });
    out.push({ from: base.replaceAll('/', '\\/'), to: publicBase.replaceAll('/', '\\/') });
  }
  return out;
}

function needleRegExp(replacements: readonly Replacement[]): RegExp {
  const sorted = [...replacements].sort((a, b) => b.from.length - a.from.length);
  return new RegExp(sorted.map((r) => r.from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
}

/** Replaces every needle in a string, in one left-to-right pass (the output is never rescanned). */
export function replaceAll(text: string, replacements: readonly Replacement[]): string {
  const map = new Map(replacements.map((r) => [r.from, r.to]));
  return text.replace(needleRegExp(replacements), (m) => map.get(m)!);
}

/**
 * A Transform that rewrites upstream origins in a UTF-8 text stream. Input is scanned once;
 * only raw input is carried to the next chunk (the last needle-length minus one characters after
 * the last match), so a needle split across chunks is still found and nothing is replaced twice.
 */
export function createRewriteStream(replacements: readonly Replacement[]): Transform {
  const keep = Math.max(0, ...replacements.map((r) => r.from.length)) - 1;
  const map = new Map(replacements.map((r) => [r.from, r.to]));
  const needles = needleRegExp(replacements);
  const decoder = new StringDecoder('utf8');
  let carry = '';

  function rewrite(text: string, final: boolean): string {
    let out = '';
    let last = 0;
    needles.lastIndex = 0;
    for (let m = needles.exec(text); m; m = needles.exec(text)) {
      out += text.slice(last, m.index) + map.get(m[0])!;
      last = m.index + m[0].length;
    }
    const rest = text.slice(last);
    if (final) {
      carry = '';
      return out + rest;
    }
    const cut = Math.max(0, rest.length - keep);
    carry = rest.slice(cut);
    return out + rest.slice(0, cut);
  }

  return new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      const out = rewrite(carry + decoder.write(chunk), false);
      if (out) this.push(out);
      callback();
    },
    flush(callback: TransformCallback) {
      const out = rewrite(carry + decoder.end(), true);
      if (out) this.push(out);
      callback();
    },
  });
}
