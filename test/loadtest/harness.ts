import { Writable } from 'node:stream';
import { expect } from 'vitest';
import { runLoadtest } from '../../src/loadtest/index.js';

export interface InProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

function collector(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(chunk, _enc, cb) {
        chunks.push(String(chunk));
        cb();
      },
    }),
    text: () => chunks.join(''),
  };
}

/** `tollgate loadtest <args>` in this process: stdout and stderr collected, no progress line, `signal` standing for SIGINT. */
export async function runLoadtestInProcess(args: string[], signal?: AbortSignal): Promise<InProcessResult> {
  const stdout = collector();
  const stderr = collector();
  const code = await runLoadtest(args, { stdout: stdout.stream, stderr: stderr.stream, progress: false, signal });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** None of the secrets appears in any of the texts. */
export function expectNoSecret(secrets: string[], ...texts: string[]): void {
  for (const text of texts) {
    for (const secret of secrets) expect(text.includes(secret), 'a secret in the output').toBe(false);
  }
}
