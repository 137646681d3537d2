#!/usr/bin/env node
// @ts-check
// The `tollgate` command. The TypeScript sources are compiled to dist/ by `npm ci` (prepare).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli/index.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('tollgate: dist/ is missing; run `npm ci` or `npm run build` in the checkout first\n');
  process.exit(2);
}
await import(cli.href);
