import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The image cannot be built here (no Docker engine), so the Dockerfile is linted
 * (dockerfile-utils, the linter of the VS Code Docker extension; hadolint is not packaged for
 * Debian 12) and checked for the properties operators rely on.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dockerfile = readFileSync(`${ROOT}/Dockerfile`, 'utf8');

describe('Dockerfile', () => {
  it('passes the linter without a problem', () => {
    const out = execFileSync(`${ROOT}/node_modules/.bin/dockerfile-utils`, ['lint', `${ROOT}/Dockerfile`], { encoding: 'utf8' });
    expect(out.trim()).toBe('');
  });

  it('is multi-stage, installs production dependencies only in the final image, and runs as non-root', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/npm ci/);
    expect(dockerfile).toMatch(/--omit=dev/);
    expect(dockerfile).toMatch(/^USER (?!root)\S+/m);
  });

  it('keeps state in a volume and checks health on the admin port', () => {
    expect(dockerfile).toMatch(/^VOLUME \["\/data"\]/m);
    expect(dockerfile).toMatch(/TOLLGATE_DATA_DIR=\/data/);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\/healthz/ms);
  });

  it('starts the gateway exactly as `npm start` does: the same environment settings, V8 flags and entry point', () => {
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    const start = (JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { scripts: { start: string } }).scripts.start;
    const words = start.split(/\s+/);
    const assignments = words.filter((w) => /^[A-Z_][A-Z0-9_]*=/.test(w));
    expect(entrypoint).toEqual(words.slice(assignments.length));
    // The settings the README's Operations section explains (memory under load, no GC storm after idle).
    for (const flag of ['--max-semi-space-size=4', '--no-allocation-site-pretenuring', '--no-memory-reducer']) expect(entrypoint).toContain(flag);
    expect(assignments).toEqual(['GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072']);
    const env = /^ENV ((?:.*\\\n)*.*)$/m.exec(dockerfile)![1]!;
    for (const assignment of assignments) expect(env.split(/\s*\\\n\s*|\s+/)).toContain(assignment);
  });

  it('fails the linter on a broken Dockerfile (the check is real)', () => {
    const bad = `${ROOT}/test-artifacts/Dockerfile.broken`;
    execFileSync('mkdir', ['-p', `${ROOT}/test-artifacts`]);
    execFileSync('sh', ['-c', `printf 'FROM node:20\\nCOPY a\\nUSER\\n' > ${bad}`]);
    expect(() => execFileSync(`${ROOT}/node_modules/.bin/dockerfile-utils`, ['lint', bad], { encoding: 'utf8' })).toThrow();
  });
});
