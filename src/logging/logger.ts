import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/**
 * JSON-lines logger (pino). Request lines carry an allow-list of fields built by the proxy
 * (never headers, query strings or tokens); redaction below is a second line of defence for
 * any object that reaches a log call by mistake.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Top-level paths only: wildcard redaction walks every logged object (measured: tens of
    // µs per request line). Request lines are built from an allow-list and never hold these.
    redact: { paths: ['authorization', 'headers', 'token', 'password'], censor: '[redacted]' },
  }, destination ?? bufferedStdout());
}

/**
 * stdout through an asynchronous buffer: lines are written in blocks of at least 8 KiB, and at
 * least every 200 ms, so a busy gateway makes a write per block, not per request, and a quiet
 * one still shows its lines promptly.
 */
function bufferedStdout(): DestinationStream {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 8 * 1024 });
  const timer = setInterval(() => {
    try {
      dest.flush();
    } catch {
      // not ready yet (opening) or closing: the next tick or the exit handler writes it
    }
  }, 200);
  timer.unref();
  return dest;
}
