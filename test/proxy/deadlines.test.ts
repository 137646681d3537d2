import { describe, expect, it } from 'vitest';
import { UpstreamDeadlines, type Watched } from '../../src/proxy/forward/deadlines.js';

/** An exchange that records the cut-offs it is shown, and whose last progress is `stamp`. */
function watched(stamp: number) {
  const cutoffs: number[] = [];
  const exchange: Watched & { cutoffs: number[]; expired: () => boolean } = {
    prevWatched: null,
    nextWatched: null,
    onTick: (_now, silentBefore) => cutoffs.push(silentBefore),
    cutoffs,
    expired: () => cutoffs.some((c) => stamp < c),
  };
  return exchange;
}

const nextTick = (d: UpstreamDeadlines, after: number) =>
  new Promise<void>((resolve) => {
    const check = () => (d.now > after ? resolve() : setTimeout(check, 5));
    check();
  });

describe('UpstreamDeadlines', () => {
  it('expires an exchange silent for longer than the timeout', async () => {
    const d = new UpstreamDeadlines(100);
    const x = watched(performance.now());
    d.watch(x);
    await new Promise((resolve) => setTimeout(resolve, 250));
    await nextTick(d, performance.now());
    d.close();
    expect(x.expired()).toBe(true);
  });

  it('does not count a stall of the process itself as upstream silence', async () => {
    const d = new UpstreamDeadlines(100);
    const x = watched(performance.now());
    d.watch(x);
    await nextTick(d, performance.now()); // one tick on time
    const stalledFrom = d.now;
    const until = performance.now() + 400; // the event loop blocked for 4 timeouts
    while (performance.now() < until);
    await nextTick(d, stalledFrom); // the late tick
    d.close();
    expect(x.cutoffs.length).toBeGreaterThan(0);
    expect(x.expired()).toBe(false);
  });
});
