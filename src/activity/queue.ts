import type { ActivityEvent, EncodedActivityEvent, Sink } from './event.js';
import { EncodedEventQueue } from './encoded-queue.js';
import { decodeActivityEvent, withLaterFields } from './event-codec.js';
import { openSpool, type Spool } from './spool.js';

export interface SinkRunnerOptions {
  sink: Sink;
  /** Label for metrics and logs. Default: the sink's name. */
  name?: string;
  /** Folder for this sink's disk buffer. */
  spoolDir: string;
  /** Events held in memory before new ones go to disk. */
  maxMemoryEvents: number;
  /** Bytes on disk before new events are dropped (and counted). */
  maxSpoolBytes: number;
  /** Largest batch handed to the sink. */
  batchSize: number;
  /** How long a partial batch waits for company. */
  flushIntervalMs: number;
  /** Retry backoff: base, doubled per attempt up to max, with full jitter. */
  retryBaseMs: number;
  retryMaxMs: number;
  onDelivered?: (count: number) => void;
  onRetry?: (count: number, err: unknown) => void;
  onDropped?: (count: number, reason: 'disk-full' | 'spool-error') => void;
}

export interface SinkRunner {
  readonly name: string;
  /** Synchronous, never throws, never awaits: the request path calls it. */
  enqueue(event: ActivityEvent): void;
  depth(): { memory: number; disk: number };
  /** Resolves when everything enqueued so far was delivered (tests, shutdown with a live sink). */
  drain(timeoutMs: number): Promise<boolean>;
  /** Stops delivering; whatever is still in memory goes to disk, ahead of what is there. */
  stop(): Promise<void>;
}

/** A batch from memory (encoded) or from the disk spool (events read back). */
type Batch =
  | {
      encoded: readonly EncodedActivityEvent[];
      events?: ActivityEvent[];
      count: number;
      firstId: string | undefined;
      ack: () => Promise<void>;
    }
  | {
      encoded?: undefined;
      events: ActivityEvent[];
      count: number;
      firstId: string | undefined;
      ack: () => Promise<void>;
    };

/**
 * Carries one sink's events out of the gateway, in order, at least once:
 *
 *   enqueue ──► memory queue ──(full)──► disk spool ──► delivery loop ──► sink
 *
 * In memory events are held encoded (their JSON lines back to back in reused 64 KiB segments,
 * see EncodedEventQueue), made once at enqueue, so that nothing waits for a batch as an object; a
 * sink with deliverEncoded takes the lines as they are, any other gets them decoded.
 *
 * While the memory queue has room and nothing is on disk, events stay in memory. Once it is
 * full, new events go to disk until the disk is drained again, so the order is always: memory
 * (oldest), then disk. The loop delivers in batches; a failed batch is retried with exponential
 * backoff and full jitter, unchanged (same batchId) so a sink can make the retry idempotent.
 * Past maxSpoolBytes new events are dropped and counted. On stop the memory queue is written to
 * disk ahead of the spool, and the next start (this process or its successor) delivers it.
 */
export function createSinkRunner(options: SinkRunnerOptions): SinkRunner {
  const { sink } = options;
  const spool: Spool = openSpool(options.spoolDir);
  const memory = new EncodedEventQueue();
  /** Events on their way to disk (appends are serialised inside the spool). */
  let spilling = 0;
  let toDisk = spool.events > 0;
  let stopped = false;
  let wake: (() => void) | undefined;
  /** A signal that came while the loop was not waiting: the next wait returns at once. */
  let signalled = false;
  const drainWaiters = new Set<() => void>();

  const signal = (): void => {
    const w = wake;
    wake = undefined;
    if (w) w();
    else signalled = true;
  };
  const isEmpty = () => memory.length === 0 && spool.events === 0 && spilling === 0;

  /** Bytes of spills still on their way to disk: counted against maxSpoolBytes before they land. */
  let spillingBytes = 0;
  /**
   * Events on their way to disk are written in coalesced batches: one append for everything that
   * arrived while the previous append was running. One append per event queued a promise and an
   * fs write per request, faster than the disk took them, and memory grew without bound (the soak
   * after a Redis restart).
   */
  let spillBuffer: ActivityEvent[] = [];
  let spillBufferBytes = 0;
  let spillWriting = false;
  const spillIdleWaiters: (() => void)[] = [];
  /** Resolves once every event handed to spill() is on disk (or counted as dropped). */
  const spillIdle = (): Promise<void> =>
    spillWriting ? new Promise((resolve) => spillIdleWaiters.push(resolve)) : Promise.resolve();

  function writeSpill(): void {
    spillWriting = true;
    const batch = spillBuffer;
    const bytes = spillBufferBytes;
    spillBuffer = [];
    spillBufferBytes = 0;
    const done = (ok: boolean): void => {
      spilling -= batch.length;
      spillingBytes -= bytes;
      if (!ok) options.onDropped?.(batch.length, 'spool-error');
      if (spillBuffer.length > 0) writeSpill();
      else {
        spillWriting = false;
        for (const resolve of spillIdleWaiters.splice(0)) resolve();
        signal();
      }
    };
    spool.append(batch).then(
      () => done(true),
      () => done(false),
    );
  }

  function spill(event: ActivityEvent): void {
    const size = Buffer.byteLength(JSON.stringify(event)) + 1;
    if (spool.bytes + spillingBytes + size > options.maxSpoolBytes) {
      options.onDropped?.(1, 'disk-full');
      return;
    }
    spilling++;
    spillingBytes += size;
    spillBuffer.push(event);
    spillBufferBytes += size;
    if (!spillWriting) writeSpill();
  }

  function deliver(batch: Batch, batchId: string): Promise<void> {
    if (batch.encoded === undefined) return sink.deliver(batch.events, batchId);
    if (sink.deliverEncoded) return sink.deliverEncoded(batch.encoded, batchId);
    batch.events ??= batch.encoded.map(decodeActivityEvent); // decoded once, kept for a retry
    return sink.deliver(batch.events, batchId);
  }

  async function nextBatch(): Promise<Batch | undefined> {
    if (memory.length > 0) {
      const encoded = memory.peek(options.batchSize);
      return {
        encoded,
        count: encoded.length,
        firstId: decodeActivityEvent(encoded[0]!).id,
        ack: async () => {
          memory.drop(encoded.length);
        },
      };
    }
    if (spool.events > 0) {
      const segment = await spool.peek();
      if (segment) {
        // A disk buffer left by an earlier version holds events without the later fields.
        for (const event of segment.events) withLaterFields(event);
        return {
          events: segment.events,
          count: segment.events.length,
          firstId: segment.events[0]?.id,
          ack: segment.ack,
        };
      }
    }
    if (spilling === 0 && spool.events === 0) toDisk = false;
    return undefined;
  }

  /** Waits ms; new events may cut the wait short only when `wakeable` (never a retry backoff). */
  const sleep = (ms: number, wakeable: boolean) =>
    new Promise<void>((resolve) => {
      if (stopped) return resolve(); // stop() came while a delivery was in flight
      const t = setTimeout(() => {
        if (stopWait === finish) stopWait = undefined;
        if (wake === finish) wake = undefined; // a later signal must not land on a finished wait
        resolve();
      }, ms);
      const finish = () => {
        clearTimeout(t);
        resolve();
      };
      stopWait = finish;
      if (wakeable) wake = finish;
    });
  let stopWait: (() => void) | undefined;

  async function loop(): Promise<void> {
    let attempt = 0;
    /** The batch being delivered: retried unchanged (same events, same batchId) until acked. */
    let pending: Batch | undefined;
    /** The partial batch in memory already waited flushIntervalMs for company. */
    let waited = false;
    while (!stopped) {
      const batch = pending ?? (await nextBatch());
      if (batch && batch.count === 0) {
        await batch.ack(); // a segment with nothing readable left (torn lines only)
        continue;
      }
      if (!batch) {
        for (const done of drainWaiters) if (isEmpty()) done();
        if (signalled) {
          signalled = false;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        signalled = false;
        continue;
      }
      // A partial batch from memory waits a moment for company, once, unless the queue is backing up.
      if (
        !pending &&
        !waited &&
        memory.length > 0 &&
        memory.length < options.batchSize &&
        options.flushIntervalMs > 0
      ) {
        waited = true;
        signalled = false;
        await sleep(options.flushIntervalMs, true);
        if (stopped) break;
        continue;
      }
      pending = batch;
      try {
        await deliver(batch, `${batch.firstId}-${batch.count}`);
        await batch.ack();
        pending = undefined;
        waited = false;
        attempt = 0;
        options.onDelivered?.(batch.count);
      } catch (err) {
        options.onRetry?.(batch.count, err);
        attempt++;
        const ceiling = Math.min(options.retryMaxMs, options.retryBaseMs * 2 ** Math.min(attempt, 20));
        await sleep(Math.random() * ceiling, false);
      }
    }
  }
  const running = loop();

  return {
    name: options.name ?? sink.name,
    enqueue(event) {
      if (stopped) return;
      if (!toDisk && memory.length < options.maxMemoryEvents) {
        memory.push(event);
        if (memory.length === 1 || memory.length >= options.batchSize) signal();
        return;
      }
      toDisk = true;
      spill(event);
    },
    depth: () => ({ memory: memory.length, disk: spool.events + spilling }),
    drain(timeoutMs) {
      if (isEmpty()) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          drainWaiters.delete(done);
          resolve(false);
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          drainWaiters.delete(done);
          resolve(true);
        };
        drainWaiters.add(done);
        signal();
      });
    },
    async stop() {
      stopped = true;
      signal();
      stopWait?.();
      await running;
      await spillIdle();
      const rest = memory.peek(memory.length);
      memory.drop(rest.length);
      await spool.prepend(rest.map(decodeActivityEvent));
      await sink.close();
    },
  };
}
