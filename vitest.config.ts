import path from 'node:path';
import { defineConfig } from 'vitest/config';

// `npm run test:node24` runs the fast project on Node.js 24, whose native-addon ABI differs from
// that of the Node.js node_modules was built with: better-sqlite3 then comes from a separate tree
// built for Node 24 (scripts/setup-test.sh), which NODE24_MODULES names.
const node24Modules = process.env.NODE24_MODULES;

// Two projects: `fast` (unit and in-process tests, real Redis included) for the inner loop,
// and `e2e` (gateway subprocesses, real package-manager clients, the browser, memory bounds).
// `npm test` runs both (and `fast` again on Node 24); `npm run test:fast` only the first.
export default defineConfig({
  ...(node24Modules
    ? { resolve: { alias: [{ find: /^better-sqlite3$/, replacement: path.join(node24Modules, 'better-sqlite3') }] } }
    : {}),
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'fast',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['test/e2e/**', 'node_modules/**'],
          testTimeout: 20_000,
          hookTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          // Builds dist/ once: e2e tests run the real `tollgate` binary.
          globalSetup: ['test/global-setup.ts'],
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
