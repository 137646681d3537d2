import { vi } from 'vitest';

/**
 * Waits until `check()` holds, asking every `intervalMs`; fails naming `what` after `timeoutMs`.
 * For a state with no event to await (a counter, a store row, a spool's length). It works in
 * hooks too (vi.waitFor), where expect.poll cannot run; inside a test, `expect.poll` on the value
 * itself says more when it fails.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
  intervalMs = 10,
): Promise<void> {
  await vi.waitFor(
    async () => {
      if (!(await check())) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    },
    { timeout: timeoutMs, interval: intervalMs },
  );
}

/**
 * A pacing delay: the gap between a load generator's requests, a sampling interval, a window
 * that is itself what a test measures. Never a wait for something to happen: that is `until`,
 * `expect.poll` or a promise for the event.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
