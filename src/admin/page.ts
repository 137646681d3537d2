import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The Settings › Tokens page: static files (HTML, seven ES modules, one stylesheet) in
 * src/admin/page/, read once at start and served from memory. No build step, no CDN.
 *
 * Where they are found: next to this module (`page/`, as in src/ and in a dist/ that has the
 * folder copied in), else the checkout's src/admin/page/ (running dist/ from a checkout).
 */

export const PAGE_FILES = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'ui.js': 'text/javascript; charset=utf-8',
  'dialogs.js': 'text/javascript; charset=utf-8',
  'tokens.js': 'text/javascript; charset=utf-8',
  'create.js': 'text/javascript; charset=utf-8',
  'reveal.js': 'text/javascript; charset=utf-8',
  'activity.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
} as const;

export type PageFile = keyof typeof PAGE_FILES;

export interface PageAsset {
  body: Uint8Array<ArrayBuffer>;
  contentType: string;
  etag: string;
}

export type PageAssets =
  { ok: true; dir: string; files: Record<PageFile, PageAsset> } | { ok: false; searched: string[] };

const CANDIDATES = [new URL('./page/', import.meta.url), new URL('../../src/admin/page/', import.meta.url)];

export function loadPageAssets(): PageAssets {
  const searched = CANDIDATES.map((u) => fileURLToPath(u));
  const dir = searched.find((d) => Object.keys(PAGE_FILES).every((f) => existsSync(d + f)));
  if (!dir) return { ok: false, searched };
  const files = {} as Record<PageFile, PageAsset>;
  for (const [name, contentType] of Object.entries(PAGE_FILES) as [PageFile, string][]) {
    const body = new Uint8Array(readFileSync(dir + name));
    files[name] = {
      body,
      contentType,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    };
  }
  return { ok: true, dir, files };
}
