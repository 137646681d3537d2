#!/usr/bin/env node
// @ts-check
// The `tollgate` command. The TypeScript sources are compiled to dist/ by `npm ci` (prepare).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SERVE_ENV, SERVE_NODE_FLAGS } from './serve-runtime.js';

const cli = new URL('../dist/cli/index.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('tollgate: dist/ is missing; run `npm ci` or `npm run build` in the checkout first\n');
  process.exit(2);
}

if (process.argv[2] === 'serve' && process.argv.length === 3) {
  serve();
} else {
  await import(cli.href);
}

/**
 * `tollgate serve`: the gateway in a process of its own started with the runtime settings
 * (./serve-runtime.js). The malloc thresholds are read by the C library when a process starts, so
 * this one cannot take them itself: it starts the gateway, passes it the signals an operator or a
 * supervisor sends, and exits as it does.
 */
function serve() {
  const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
  const child = spawn(process.execPath, [...SERVE_NODE_FLAGS, main], {
    stdio: 'inherit',
    env: { ...process.env, ...SERVE_ENV },
  });
  for (const signal of /** @type {const} */ (['SIGTERM', 'SIGINT', 'SIGHUP'])) {
    process.on(signal, () => child.kill(signal));
  }
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else {
      process.exit(code ?? 1);
    }
  });
}
