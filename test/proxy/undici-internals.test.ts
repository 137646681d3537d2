import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as undici from 'undici';
import {
  Agent,
  BodyTimeoutError,
  buildConnector,
  HeadersTimeoutError,
  Pool,
  UNDICI_INTERNAL_PATHS,
} from '../../src/proxy/forward/undici.js';

const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  dependencies: Record<string, string>;
};

/**
 * src/proxy/forward/undici.ts loads undici's own files (no exports map, so a minor release may
 * move them). These tests name what moved when an upgrade breaks it.
 */
describe('undici internals the forwarder loads', () => {
  it('pins undici to one exact version, the one installed', () => {
    const pinned = pkg.dependencies.undici;
    expect(
      pinned,
      'package.json must pin undici exactly (no ^ or ~): src/proxy/forward/undici.ts loads its private files',
    ).toMatch(/^\d+\.\d+\.\d+$/);
    const installed = (require('undici/package.json') as { version: string }).version;
    expect(installed, `node_modules has undici ${installed}, package.json pins ${pinned}: run npm ci`).toBe(pinned);
  });

  it.each(Object.entries(UNDICI_INTERNAL_PATHS))('finds %s at %s', (_name, path) => {
    expect(
      () => require.resolve(path),
      `undici no longer has ${path}: update src/proxy/forward/undici.ts for this undici version`,
    ).not.toThrow();
  });

  it('loads the very things undici exports (Pool, Agent, buildConnector, the two timeout errors)', () => {
    expect(Pool, `${UNDICI_INTERNAL_PATHS.Pool} is not undici's Pool any more`).toBe(undici.Pool);
    expect(Agent, `${UNDICI_INTERNAL_PATHS.Agent} is not undici's Agent any more`).toBe(undici.Agent);
    expect(buildConnector, `${UNDICI_INTERNAL_PATHS.buildConnector} is not undici's buildConnector any more`).toBe(
      undici.buildConnector,
    );
    expect(HeadersTimeoutError, `${UNDICI_INTERNAL_PATHS.errors} has no HeadersTimeoutError`).toBe(
      undici.errors.HeadersTimeoutError,
    );
    expect(BodyTimeoutError, `${UNDICI_INTERNAL_PATHS.errors} has no BodyTimeoutError`).toBe(
      undici.errors.BodyTimeoutError,
    );
    expect((new HeadersTimeoutError() as NodeJS.ErrnoException).code).toBe('UND_ERR_HEADERS_TIMEOUT');
    expect((new BodyTimeoutError() as NodeJS.ErrnoException).code).toBe('UND_ERR_BODY_TIMEOUT');
  });
});
