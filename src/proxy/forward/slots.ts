/**
 * How many upstream requests one route runs at once, and how many of them one token may keep
 * held by slow clients: the route's fair share of its upstream connections, per worker process.
 *
 * A request takes a slot while it talks to the upstream. A route has `max` slots; past them a
 * request waits, first come first served, and one that waits longer than the upstream timeout
 * is answered 504. A download whose client has not read for more than HOLD_AFTER_MS is *held*:
 * its connection is hostage to that client, so it gives its slot back (others may start) and is
 * counted against its token instead. A token holding `heldPerToken` downloads gets no more until
 * some finish or speed up (429). So one credential cannot take a route's whole upstream pool with
 * slow readers, and downloads read at full speed, however many, are never refused.
 *
 * Waiting requests form a linked list through themselves (no per-request allocation, no
 * long-lived Set churning: see UpstreamDeadlines).
 */

/** A download paused for a slow client this long holds its connection hostage. */
export const HOLD_AFTER_MS = 1_000;

/** A request as the slots see it. */
export interface SlotUser {
  /** The credential it counts against (the token id). */
  readonly slotKey: string;
  prevWaiting: SlotUser | null;
  nextWaiting: SlotUser | null;
  /** Its turn: a slot is its now. */
  startWithSlot(): void;
  /** Its turn came, but its token holds its share by now: answer 429. */
  refuseShare(): void;
}

export class UpstreamSlots {
  readonly max: number;
  readonly heldPerToken: number;
  #active = 0;
  readonly #held = new Map<string, number>();
  #heldTotal = 0;
  readonly #queue: SlotUser;

  constructor(max: number, heldPerToken: number) {
    this.max = max;
    this.heldPerToken = heldPerToken;
    this.#queue = { slotKey: '', prevWaiting: null, nextWaiting: null, startWithSlot() {}, refuseShare() {} };
    this.#queue.prevWaiting = this.#queue.nextWaiting = this.#queue;
  }

  /** True when this token already holds its share of slow downloads: refuse its new request. */
  overShare(key: string): boolean {
    return this.#heldTotal !== 0 && (this.#held.get(key) ?? 0) >= this.heldPerToken;
  }

  /** Starts `user` now if a slot is free (true), else queues it (false: it waits for startWithSlot). */
  acquire(user: SlotUser): boolean {
    if (this.#active < this.max && this.#queue.nextWaiting === this.#queue) {
      this.#active++;
      return true;
    }
    const last = this.#queue.prevWaiting!;
    user.prevWaiting = last;
    user.nextWaiting = this.#queue;
    last.nextWaiting = user;
    this.#queue.prevWaiting = user;
    return false;
  }

  /** A waiting request gives up (its client left, or it timed out). */
  cancel(user: SlotUser): void {
    if (user.nextWaiting === null) return;
    user.prevWaiting!.nextWaiting = user.nextWaiting;
    user.nextWaiting.prevWaiting = user.prevWaiting;
    user.prevWaiting = user.nextWaiting = null;
  }

  /** A request that had a slot is over. */
  release(): void {
    this.#active--;
    this.#startWaiting();
  }

  /** A running download became hostage to a slow client: its slot goes to the next request. */
  hold(key: string): void {
    this.#active--;
    this.#held.set(key, (this.#held.get(key) ?? 0) + 1);
    this.#heldTotal++;
    this.#startWaiting();
  }

  /** A held download moves again (`running`: it takes a slot back, even past max) or is over. */
  unhold(key: string, running: boolean): void {
    const n = (this.#held.get(key) ?? 1) - 1;
    if (n === 0) this.#held.delete(key);
    else this.#held.set(key, n);
    this.#heldTotal--;
    if (running) this.#active++;
    else this.#startWaiting();
  }

  /** For tests and metrics. */
  stats(): { active: number; waiting: number; held: number } {
    let waiting = 0;
    for (let u = this.#queue.nextWaiting; u !== this.#queue && u !== null; u = u.nextWaiting) waiting++;
    return { active: this.#active, waiting, held: this.#heldTotal };
  }

  #startWaiting(): void {
    while (this.#active < this.max) {
      const next = this.#queue.nextWaiting!;
      if (next === this.#queue) return;
      this.cancel(next);
      if (this.overShare(next.slotKey)) {
        next.refuseShare();
        continue;
      }
      this.#active++;
      next.startWithSlot();
    }
  }
}
