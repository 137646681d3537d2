import { defineConfig } from 'vitest/config';

// Two projects: `fast` (unit and in-process tests, real Redis included) for the inner loop,
// and `e2e` (gateway subprocesses, real package-manager clients, the browser, memory bounds).
// `npm test` runs both, then `fast` again on Node.js 24 (npm run test:node24); `npm run test:fast`
// only the first.
export default defineConfig({
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
