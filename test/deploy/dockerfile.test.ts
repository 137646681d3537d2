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

interface Stage {
  /** The image the stage starts from (`FROM <image>`). */
  from: string;
  /** `AS <name>`, if given. */
  name: string | undefined;
  /** Its instructions after FROM, continuation lines joined, comments left out. */
  instructions: string[];
}

/** The Dockerfile's build stages, in order (the last one is the runtime image). */
function stages(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const out: Stage[] = [];
  for (const line of lines) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) out.push({ from: from[1]!, name: from[2], instructions: [] });
    else out.at(-1)?.instructions.push(line);
  }
  return out;
}

/**
 * What is wrong with the stage the runtime image's node_modules comes from, if anything: it must
 * run npm ci without the dev dependencies, install or prune nothing else, and copy in only the
 * manifests (no sources, so no build runs there).
 */
function nodeModulesProblems(text: string): string[] {
  const all = stages(text);
  const copies = all.at(-1)!.instructions.filter((i) => /^COPY\b.*\bnode_modules\b/.test(i));
  if (copies.length !== 1) return [`the runtime image copies node_modules ${copies.length} times`];
  const source = /^COPY\s+--from=(\S+)\s/.exec(copies[0]!)?.[1];
  const stage = all.find((s) => s.name === source);
  if (!stage) return [`node_modules comes from no named stage: ${copies[0]}`];
  const problems: string[] = [];
  const npm = stage.instructions
    .filter((i) => i.startsWith('RUN '))
    .flatMap((i) => i.slice(4).split(/\s*&&\s*/))
    .filter((c) => /^npm\s/.test(c));
  if (!npm.some((c) => /^npm ci\b.*\s--omit=dev\b/.test(c))) problems.push('no npm ci --omit=dev');
  for (const c of npm) {
    if (/^npm ci\b/.test(c) && !/\s--omit=dev\b/.test(c)) problems.push(`npm ci installs dev dependencies: ${c}`);
    if (/^npm (prune|install|i|add|run)\b/.test(c)) problems.push(c);
  }
  for (const copy of stage.instructions.filter((i) => /^(COPY|ADD)\b/.test(i))) {
    if (!/^COPY( package\.json| package-lock\.json)+ \.\/$/.test(copy))
      problems.push(`copies more than the manifests: ${copy}`);
  }
  return problems;
}

describe('Dockerfile', () => {
  it('passes the linter without a problem', () => {
    const out = execFileSync(`${ROOT}/node_modules/.bin/dockerfile-utils`, ['lint', `${ROOT}/Dockerfile`], {
      encoding: 'utf8',
    });
    expect(out.trim()).toBe('');
  });

  it('is multi-stage, installs production dependencies only in the final image, and runs as non-root', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/npm ci/);
    expect(dockerfile).toMatch(/--omit=dev/);
    expect(dockerfile).toMatch(/^USER (?!root)\S+/m);
  });

  it('runs on Node.js 24 (an LTS line in support; 20 reached its end of life) in every stage', () => {
    const all = stages(dockerfile);
    expect(all.length).toBeGreaterThanOrEqual(2);
    for (const stage of all) expect(stage.from).toBe('node:24-bookworm-slim');
  });

  it("takes the runtime image's node_modules from a stage that installs production dependencies only", () => {
    expect(nodeModulesProblems(dockerfile)).toEqual([]);
    // The check is real: the former shape (everything installed, then pruned) fails it.
    const pruned = [
      'FROM node:24-bookworm-slim AS build',
      'COPY package.json package-lock.json ./',
      'COPY src ./src',
      'RUN npm ci --no-audit --no-fund && npm prune --omit=dev',
      'FROM node:24-bookworm-slim',
      'COPY --from=build /app/node_modules ./node_modules',
    ].join('\n');
    expect(nodeModulesProblems(pruned)).toEqual([
      'no npm ci --omit=dev',
      'npm ci installs dev dependencies: npm ci --no-audit --no-fund',
      'npm prune --omit=dev',
      'copies more than the manifests: COPY src ./src',
    ]);
  });

  it('keeps state in a volume and checks health on the admin port', () => {
    expect(dockerfile).toMatch(/^VOLUME \["\/data"\]/m);
    expect(dockerfile).toMatch(/TOLLGATE_DATA_DIR=\/data/);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\/healthz/ms);
  });

  it('starts the gateway exactly as `tollgate serve` and `npm start` do: the same environment settings, V8 flags and entry point', async () => {
    const { SERVE_ENV, SERVE_NODE_FLAGS } = await import('../../bin/serve-runtime.js');
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    expect(entrypoint).toEqual(['node', ...SERVE_NODE_FLAGS, 'dist/main.js']);
    // The settings the README's Operations section explains (memory under load, no GC storm after idle
    // or under large downloads).
    for (const flag of [
      '--max-semi-space-size=4',
      '--no-allocation-site-pretenuring',
      '--no-memory-reducer',
      '--no-incremental-marking',
      '--heap-growing-percent=50',
      '--no-maglev',
    ])
      expect(entrypoint).toContain(flag);
    expect(SERVE_ENV).toEqual({
      GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072:glibc.malloc.arena_max=1',
    });
    const env = /^ENV ((?:.*\\\n)*.*)$/m.exec(dockerfile)![1]!;
    for (const [name, value] of Object.entries(SERVE_ENV))
      expect(env.split(/\s*\\\n\s*|\s+/)).toContain(`${name}=${value}`);
    const start = (JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { scripts: { start: string } }).scripts
      .start;
    expect(start).toBe('node bin/tollgate.js serve');
  });

  it('fails the linter on a broken Dockerfile (the check is real)', () => {
    const bad = `${ROOT}/test-artifacts/Dockerfile.broken`;
    execFileSync('mkdir', ['-p', `${ROOT}/test-artifacts`]);
    execFileSync('sh', ['-c', `printf 'FROM node:24\\nCOPY a\\nUSER\\n' > ${bad}`]);
    expect(() =>
      execFileSync(`${ROOT}/node_modules/.bin/dockerfile-utils`, ['lint', bad], { encoding: 'utf8' }),
    ).toThrow();
  });
});
