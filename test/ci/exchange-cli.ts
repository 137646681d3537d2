import { Writable } from 'node:stream';
import { exchangeCommand } from '../../src/cli/exchange.js';
import { readCiJobEnvironment } from '../../src/config/ci-job.js';

/** `tollgate token exchange` in a job with this environment: its exit code and what it printed. */
export async function runExchangeCommand(args: string[], env: Record<string, string>) {
  let stdout = '';
  let stderr = '';
  const sink = (write: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer, _, done) {
        write(chunk.toString());
        done();
      },
    });
  const code = await exchangeCommand(args, {
    env: readCiJobEnvironment(env),
    stdout: sink((s) => {
      stdout += s;
    }),
    stderr: sink((s) => {
      stderr += s;
    }),
    timeoutMs: 5000,
  });
  return { code, stdout, stderr, all: stdout + stderr };
}
