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
    redact: {
      paths: [
        'authorization', '*.authorization', 'headers', '*.headers', 'token', '*.token',
        'password', '*.password', 'req.headers', 'res.headers',
      ],
      censor: '[redacted]',
    },
  }, destination ?? pino.destination({ dest: 1, sync: false }));
}
