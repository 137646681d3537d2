import type { Counter } from 'prom-client';

/** One label set of a prom-client Counter, counted in a plain number between scrapes. */
export interface Tally {
  /** Like the Counter's inc: adds n (default 1); a negative or infinite n throws, as prom-client's does. */
  inc(n?: number): void;
}

type Child = { inc(n: number): void };

/** A counter's tallies that were ever incremented, in that order (the order of its series on /metrics). */
type FlushList = CounterTally[];

class CounterTally implements Tally {
  private pending = 0;
  private listed = false;
  private created = false;
  constructor(
    private readonly child: Child,
    private readonly flushList: FlushList,
  ) {}

  inc(n = 1): void {
    if (!this.listed) {
      this.flushList.push(this);
      this.listed = true;
    }
    if (n >= 0 && n !== Number.POSITIVE_INFINITY) this.pending += n;
    else this.child.inc(n); // prom-client's own verdict: throws (or counts NaN), as it always did
  }

  /** Hands what was counted to prom-client; the first flush creates the series, even at 0 (as inc(0) does). */
  flush(): void {
    if (this.pending === 0 && this.created) return;
    this.child.inc(this.pending);
    this.pending = 0;
    this.created = true;
  }
}

const countersTallied = new WeakMap<object, { byLabels: Map<string, CounterTally>; flushList: FlushList }>();

/**
 * A label set of `counter` whose increments are kept in a plain number and added to the counter
 * when prom-client collects it (flushTallies): the same series, in the same order, with the same
 * values at every read. inc() on a kept prom-client child hashes and validates its label values
 * on every call, which costs far more than a plain addition (bench/README.md, activity micro).
 * Every caller with the same counter and label values gets the same tally. The counter must call
 * flushTallies from its `collect`.
 */
export function tallyFor(counter: Counter<string>, ...labelValues: string[]): Tally {
  let tallied = countersTallied.get(counter);
  if (!tallied) {
    tallied = { byLabels: new Map(), flushList: [] };
    countersTallied.set(counter, tallied);
  }
  const key = labelValues.join('\u0000');
  let tally = tallied.byLabels.get(key);
  if (!tally) {
    tally = new CounterTally(counter.labels(...labelValues), tallied.flushList);
    tallied.byLabels.set(key, tally);
  }
  return tally;
}

/**
 * Hands every tally of `counter` to prom-client: the counter's `collect` (metrics/registry.ts)
 * calls it, so it runs before every read (each scrape of /metrics, each get()).
 */
export function flushTallies(counter: object): void {
  const tallied = countersTallied.get(counter);
  if (tallied) for (const tally of tallied.flushList) tally.flush();
}
