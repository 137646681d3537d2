/**
 * Fleet-wide failure counts live in fixed windows aligned to the epoch (floor(now / windowMs),
 * src/auth/rate-limit-redis.ts), and a block lasts to the end of the window it was set in. A
 * test that counts failures across gateways and then looks for the block must run inside one
 * window: straddling a window's end splits the count in two, and neither half passes the limit.
 * When less than `needMs` of the current window is left, this waits until the next one starts.
 */
export async function awaitWindowRoom(windowMs: number, needMs: number): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < needMs) await new Promise((resolve) => setTimeout(resolve, left + 50));
}
