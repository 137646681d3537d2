import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createError, ErrorCodes, isGatewayError, type ErrorCode } from '../src/errors.js';

const root = new URL('..', import.meta.url).pathname;
const docs = readFileSync(path.join(root, 'docs/errors.md'), 'utf8');
const codes = Object.keys(ErrorCodes) as ErrorCode[];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) return sources(file);
    return /\.(ts|js)$/.test(name) ? [file] : [];
  });
}

/** Every code the source names (the catalogue itself aside). */
const used = new Set(
  sources(path.join(root, 'src'))
    .filter((f) => f !== path.join(root, 'src', 'errors.ts'))
    .flatMap((f) => readFileSync(f, 'utf8').match(/TOLLGATE_ERR_[A-Z_]*[A-Z](?![A-Z_])/g) ?? []),
);

describe('the error catalogue (src/errors.ts)', () => {
  it.each(codes)('documents %s with its status in docs/errors.md', (code) => {
    const row = docs.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
    expect(row, `docs/errors.md has no row for ${code}`).toBeDefined();
    expect(row).toContain(`| ${ErrorCodes[code].status} |`);
  });

  it('documents no code that does not exist', () => {
    const documented = docs.match(/`TOLLGATE_ERR_[A-Z_]+`/g)!.map((c) => c.slice(1, -1));
    expect(documented.filter((c) => !(c in ErrorCodes))).toEqual([]);
  });

  it('declares every code the source uses, and uses every code it declares', () => {
    expect([...used].filter((c) => !(c in ErrorCodes))).toEqual([]);
    expect(codes.filter((c) => !used.has(c))).toEqual([]);
  });

  it('makes errors one factory builds and callers tell apart by code', () => {
    const err = createError('TOLLGATE_ERR_TOKEN_INPUT', 'name is required');
    expect([err.code, err.status, err.publicMessage, err.detail, err.message]).toEqual([
      'TOLLGATE_ERR_TOKEN_INPUT',
      400,
      'Invalid token input',
      'name is required',
      'Invalid token input: name is required',
    ]);
    expect(isGatewayError(err)).toBe(true);
    expect(isGatewayError(err, 'TOLLGATE_ERR_TOKEN_')).toBe(true);
    expect(isGatewayError(err, 'TOLLGATE_ERR_ADMIN_')).toBe(false);
    expect(isGatewayError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe(false);
    expect(isGatewayError(undefined)).toBe(false);
  });
});
