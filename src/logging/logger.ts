import { writeSync } from 'node:fs';
import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/**
 * JSON-lines logger (pino). Request lines carry an allow-list of fields built by the proxy
 * (never headers, query strings or tokens); redaction below is a second line of defence for
 * any object that reaches a log call by mistake.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Top-level paths only: wildcard redaction walks every logged object, which costs more than
      // the rest of a request line. Request lines are built from an allow-list and never hold these.
      redact: { paths: ['authorization', 'headers', 'token', 'password'], censor: '[redacted]' },
    },
    destination ?? bufferedStdout(),
  );
}

/** Lines are handed to the file descriptor in blocks of at least this many characters... */
const BLOCK_CHARS = 16 * 1024;
/** ...and at least this often, so a quiet gateway still shows its lines promptly. */
const FLUSH_MS = 200;

/**
 * stdout, written in blocks: lines are gathered in an array and joined once per block, then
 * handed to pino's destination (sonic-boom: the fd, partial writes, EAGAIN, the flush at exit).
 * A busy gateway makes one write per block, not per request line.
 *
 * Why not sonic-boom's own minLength: it appends each line to a pending string and measures that
 * string with Buffer.byteLength on every write, flattening the whole rope each time: ~4 KiB
 * allocated per request line, 15% of everything the gateway allocated under the bench's load
 * (sampling heap profile). Joining an array once per block allocates the block once.
 *
 * Each block is written synchronously (sonic-boom's sync mode), as Node writes process.stdout on
 * Linux: an asynchronous write goes through libuv's thread pool (a copy of the block, a thread
 * woken, a completion callback), which cost 2.9 µs per 350-byte line against 0.7 synchronously on
 * the bench machine; and a reader that stops reading now holds the gateway back instead of
 * letting unwritten lines pile up in memory (docs/operations.md, "Logs").
 */
function bufferedStdout(): DestinationStream {
  const dest = pino.destination({ dest: 1, sync: true });
  let lines: string[] = [];
  let chars = 0;
  const handOver = (): void => {
    if (lines.length === 0) return;
    const block = lines.length === 1 ? lines[0]! : lines.join('');
    lines = [];
    chars = 0;
    dest.write(block);
  };
  const timer = setInterval(handOver, FLUSH_MS);
  timer.unref();
  /** Synchronously: sonic-boom's pending writes first, then the lines not handed over yet. */
  const writeAllSync = (): void => {
    try {
      dest.flushSync();
    } catch {
      // not open yet, or stdout is gone: the lines below are still tried
    }
    if (lines.length === 0) return;
    const block = lines.join('');
    lines = [];
    chars = 0;
    try {
      writeSync(1, block);
    } catch {
      // stdout closed: nothing left to write to
    }
  };
  // A last log line before process.exit(): written before the process goes.
  process.on('exit', writeAllSync);
  return {
    write(line: string): void {
      lines.push(line);
      chars += line.length;
      if (chars >= BLOCK_CHARS) handOver();
    },
    flush(cb?: (err?: Error) => void): void {
      handOver();
      dest.flush(cb);
    },
    flushSync: writeAllSync,
  } as DestinationStream;
}
