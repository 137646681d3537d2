/** An exchange as UpstreamDeadlines keeps it: a link in its list. */
export interface Watched {
  prevWatched: Watched | null;
  nextWatched: Watched | null;
  /** Called every tick: `now` (performance.now()), and the time before which a silent exchange expires. */
  onTick(now: number, silentBefore: number): void;
}

/**
 * The upstream timeouts of every exchange of one forwarder, kept by one interval timer. An
 * exchange with no response headers, or no body bytes, for timeoutMs is expired (the exchange
 * aborts with undici's HeadersTimeoutError or BodyTimeoutError); one paused because its client
 * reads slowly is not, as with undici's bodyTimeout. The same tick times requests waiting for an
 * upstream slot and notices downloads held by slow clients (slots.ts).
 *
 * undici's own headersTimeout and bodyTimeout are off: they made a timer object per request,
 * and undici's timer list holds each for up to a second after it is cleared, so every one
 * outlived young-generation GCs and the gateway's peak RSS paid for them between major GCs.
 *
 * The exchanges being watched are a linked list through the exchanges themselves, not a Set. A
 * long-lived Set or Map with an entry added and deleted per request keeps request objects alive:
 * when V8 rehashes its table (every few dozen additions) the old table, in the old generation,
 * keeps its entries until the next major GC, so the requests in flight at that moment, and all
 * they reference, are promoted (bench/README.md, "Memory").
 */
export class UpstreamDeadlines {
  /** performance.now() at the last tick: exchanges stamp their progress with it, no clock read per chunk. */
  now = performance.now();
  /** The list's sentinel: its next is the first exchange watched, its prev the last. */
  readonly #head: Watched = { prevWatched: null, nextWatched: null, onTick: () => {} };
  readonly #timeoutMs: number;
  readonly #tickMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    // A timeout fires between timeoutMs and timeoutMs + 3 ticks after the last progress.
    this.#tickMs = Math.min(1_000, Math.max(10, Math.floor(timeoutMs / 10)));
    this.#head.prevWatched = this.#head.nextWatched = this.#head;
  }

  watch(exchange: Watched): void {
    if (exchange.nextWatched !== null) return; // already watched
    const last = this.#head.prevWatched!;
    exchange.prevWatched = last;
    exchange.nextWatched = this.#head;
    last.nextWatched = exchange;
    this.#head.prevWatched = exchange;
    if (this.#timer === undefined) {
      this.now = performance.now();
      this.#timer = setInterval(() => this.#tick(), this.#tickMs).unref();
    }
  }

  unwatch(exchange: Watched): void {
    if (exchange.nextWatched === null) return;
    exchange.prevWatched!.nextWatched = exchange.nextWatched;
    exchange.nextWatched.prevWatched = exchange.prevWatched;
    exchange.prevWatched = exchange.nextWatched = null;
  }

  close(): void {
    clearInterval(this.#timer);
    while (this.#head.nextWatched !== this.#head) this.unwatch(this.#head.nextWatched!);
  }

  #tick(): void {
    const previous = this.now;
    this.now = performance.now();
    // A stamp is up to one tick older than the progress it records: allow one tick more. A tick
    // that comes late found the process itself stalled (CPU starved, a long GC): the bytes that
    // arrived meanwhile wait behind this timer to be read, so the stall does not count as the
    // upstream's silence.
    const late = Math.max(0, this.now - previous - 2 * this.#tickMs);
    const before = this.now - this.#timeoutMs - this.#tickMs - late;
    let exchange = this.#head.nextWatched;
    while (exchange !== this.#head && exchange !== null) {
      const next = exchange.nextWatched; // an expired exchange leaves the list
      exchange.onTick(this.now, before);
      exchange = next;
    }
  }
}
