import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transpileSources } from '../helpers/transpile.js';

// The gateway's logger writes stdout in blocks (16 KiB or 200 ms): run it in a real process and
// read what reaches the pipe.
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tollgate-stdout-'));
  transpileSources(dir, ['src/logging/logger.ts']);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(
  body: string,
): Promise<{ lines: Record<string, unknown>[]; firstLineAfterMs: number | undefined; code: number | null }> {
  const script = path.join(dir, `run-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(
    script,
    `import { createLogger } from './src/logging/logger.js';\nconst logger = createLogger('info');\n${body}\n`,
  );
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let firstLineAfterMs: number | undefined;
    let out = '';
    const proc = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      firstLineAfterMs ??= Date.now() - started;
      out += chunk;
    });
    proc.on('error', reject);
    proc.on('close', (code) =>
      resolve({
        lines: out
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>),
        firstLineAfterMs,
        code,
      }),
    );
  });
}

describe("the logger's stdout", () => {
  it('writes every line, in order, when the process exits right after logging', async () => {
    const { lines, code } = await run(`
      for (let i = 0; i < 5000; i++) logger.info({ i, path: '/npm/' + 'x'.repeat(i % 300) }, 'request');
      logger.warn('last words');
      process.exit(0);`);
    expect(code).toBe(0);
    expect(lines).toHaveLength(5001);
    expect(lines.slice(0, 5000).map((l) => l.i)).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(lines[5000]).toMatchObject({ level: 'warn', msg: 'last words' });
  });

  it('shows a lone line within the flush interval on a quiet process, and after flush() at once', async () => {
    const quiet = await run(`logger.info('alone'); setTimeout(() => process.exit(0), 3000);`);
    expect(quiet.lines.map((l) => l.msg)).toEqual(['alone']);
    expect(quiet.firstLineAfterMs).toBeLessThan(2800); // by the 200 ms timer, well before the exit at 3 s
    const flushed = await run(`logger.info('ready'); logger.flush(); setTimeout(() => process.exit(0), 3000);`);
    expect(flushed.lines.map((l) => l.msg)).toEqual(['ready']);
    expect(flushed.firstLineAfterMs).toBeLessThan(2800);
  });
});
